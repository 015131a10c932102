"""Supervised workers: one process keeps worker processes running (``neatify worker ... --processes N|auto``
supervises its one worker, which feeds N evaluator processes of its own: ``evaluators``).

The supervisor starts one child process per worker, restarts a child that ends abnormally (after an
exponential backoff, each restart logged), leaves alone a child that exited 0 (its master shut it
down) and returns once every child has. A child exiting 0 means the run is over: from then on no child
is restarted, and children still running after ``shutdown_grace`` seconds (one that missed the shutdown
while it reconnected, one stuck in its fitness function) are stopped; the supervisor then returns 0.
On SIGTERM or SIGINT it sends SIGTERM to every child, waits ``stop_grace`` seconds, kills what is left,
and returns 128 + the signal's number.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

logger = logging.getLogger("neatify.distributed.io.supervisor")


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask, as taskset, cgroups cpusets and Slurm set it)."""
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity is not None else (os.cpu_count() or 1)


def describe_exit(code: int) -> str:
    """An exit status in words: ``status 1`` or ``killed by SIGKILL``."""
    if code >= 0:
        return f"status {code}"
    try:
        return f"killed by {signal.Signals(-code).name}"
    except ValueError:
        return f"killed by signal {-code}"


@dataclass
class _Child:
    """One supervised worker: its command, its process while it runs, and its recent failures."""

    name: str
    argv: list[str]
    proc: subprocess.Popen | None = None
    started: float = 0.0
    failures: int = 0
    """Abnormal exits in a row, each soon after its start (a child that ran ``stable_after`` counts afresh)."""
    restart_at: float | None = None
    exit_code: int | None = field(default=None)
    """Set once the child is over for good (0: its master shut it down)."""


class Supervisor:
    """Runs one child process per command in ``commands`` (name -> argv) and keeps them running.

    A child that exits abnormally is restarted after ``backoff_initial`` seconds, doubling up to
    ``backoff_max`` while it keeps failing within ``stable_after`` seconds of its start; after
    ``give_up_after`` such failures in a row (a bad token, say) it is left dead. Once a child has exited 0
    (the master shut the workers down) none is restarted, and the rest are stopped after ``shutdown_grace``.
    """

    def __init__(self, commands: dict[str, Sequence[str]], backoff_initial: float = 0.5, backoff_max: float = 30.0,
                 stable_after: float = 60.0, give_up_after: int = 5, stop_grace: float = 10.0,
                 poll_interval: float = 0.1, shutdown_grace: float = 10.0) -> None:
        if not commands:
            raise ValueError("a Supervisor needs at least one command")
        self.children = [_Child(name, list(argv)) for name, argv in commands.items()]
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.stable_after = stable_after
        self.give_up_after = give_up_after
        self.stop_grace = stop_grace
        self.poll_interval = poll_interval
        self.shutdown_grace = shutdown_grace
        self.run_over_at: float | None = None
        """When a child first exited 0: its master shut the workers down, so the run is over."""
        self._signum: int | None = None
        self._wake = threading.Event()

    def run(self) -> int:
        """Supervise until every child is over (0 if all exited 0, else 1) or a signal arrives (128 + signum).

        Installs SIGTERM and SIGINT handlers for its duration, so call it from the main thread.
        """
        with self._signals():
            for child in self.children:
                self._start(child)
            while self._signum is None:
                now = time.monotonic()
                for child in self.children:
                    self._check(child, now)
                if all(child.exit_code is not None for child in self.children):
                    return self._finished()
                if self.run_over_at is not None and now - self.run_over_at > self.shutdown_grace:
                    self._stop_running(f"still running {self.shutdown_grace:.0f}s after the master shut the "
                                       "workers down")
                    return self._finished()
                self._wake.wait(self.poll_interval)
            self._stop_running(f"{signal.Signals(self._signum).name} received")
            return 128 + self._signum

    def stop(self, signum: int = signal.SIGTERM) -> None:
        """Make ``run()`` stop every child and return 128 + ``signum`` (signal-handler and thread safe)."""
        if self._signum is None:
            self._signum = signum
        self._wake.set()

    @contextmanager
    def _signals(self) -> Iterator[None]:
        previous = {s: signal.signal(s, lambda signum, frame: self.stop(signum)) for s in (signal.SIGTERM,
                                                                                         signal.SIGINT)}
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _start(self, child: _Child) -> None:
        child.proc = subprocess.Popen(child.argv)
        child.started = time.monotonic()
        child.restart_at = None
        logger.info("started worker %s (pid %d)", child.name, child.proc.pid)

    def _check(self, child: _Child, now: float) -> None:
        """Notice a child that ended (restart it later, or leave it be), or restart one whose delay is up."""
        if child.proc is None:
            if child.restart_at is not None and self.run_over_at is not None:
                logger.info("worker %s: not restarting it, the master has shut the workers down", child.name)
                child.restart_at, child.exit_code = None, 0
            elif child.restart_at is not None and now >= child.restart_at:
                self._start(child)
            return
        code = child.proc.poll()
        if code is None:
            return
        pid, child.proc = child.proc.pid, None
        if self.run_over_at is not None:  # what ails a worker after the run does not matter any more
            logger.info("worker %s (pid %d) %s after the master shut the workers down", child.name, pid,
                        describe_exit(code))
            child.exit_code = 0
            return
        if code == 0:
            logger.info("worker %s (pid %d) exited normally: the master shut it down", child.name, pid)
            child.exit_code, self.run_over_at = 0, now
            return
        child.failures = child.failures + 1 if now - child.started < self.stable_after else 1
        if child.failures >= self.give_up_after:
            logger.error("worker %s (pid %d) %s; it failed %d times in a row, each within %.0fs of starting: "
                         "not restarting it", child.name, pid, describe_exit(code), child.failures, self.stable_after)
            child.exit_code = code
            return
        delay = min(self.backoff_max, self.backoff_initial * 2 ** (child.failures - 1))
        logger.warning("worker %s (pid %d) %s; restarting it in %.1fs", child.name, pid, describe_exit(code), delay)
        child.restart_at = now + delay

    def _finished(self) -> int:
        failed = [child.name for child in self.children if child.exit_code != 0]
        if failed:
            logger.error("all workers are over; %d did not exit normally: %s", len(failed), ", ".join(failed))
            return 1
        logger.info("all %d worker(s) exited normally", len(self.children))
        return 0

    def _stop_running(self, why: str) -> None:
        """Send SIGTERM to every running child, wait ``stop_grace`` for them, kill the rest; none is restarted."""
        running = [(child, child.proc) for child in self.children if child.proc is not None]
        logger.info("%s: stopping %d worker process(es)", why, len(running))
        for _, proc in running:
            proc.terminate()
        deadline = time.monotonic() + self.stop_grace
        for child, proc in running:
            child.proc, child.restart_at, child.exit_code = None, None, 0
            try:
                proc.wait(max(deadline - time.monotonic(), 0.0))
            except subprocess.TimeoutExpired:
                logger.warning("worker pid %d still running %.0fs after SIGTERM; killing it", proc.pid,
                               self.stop_grace)
                proc.kill()
                proc.wait()
