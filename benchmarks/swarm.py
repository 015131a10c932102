"""Many workers against one real master: N workers simulated by one process over real sockets on 127.0.0.1.

    python benchmarks/swarm.py [--workers 10,100,500,1000,2000] [--pops 1000,10000] [--generations 3]
                               [--listen-backlog B] [--timeout S] [--cost-ms MS] [--shapes 1000x1,32x32]
                               [--profile DIR] [--timeline]

For each population size and number of workers a master (``DistributedPopulation``) runs in a child
process. This process opens N non-blocking sockets at once (one thread, ``selectors``), registers
them all concurrently and answers every heartbeat and task at once, with a trivial fitness (the
number of connection genes). Printed per point: the registration time (first connect to the last
REGISTRATION_ACK), the median time of a whole generation through the master (breeding and
distributed evaluation) and of a local ``Population`` with the same seed and fitness, measured in
the same child after the distributed run, their ratio, and whether the two runs ended identical.

The population's genomes are unread views of a ``GenomeBatch``: the local fitness ``len(genome.connections)``
builds each genome's gene objects, which the simulated workers never do. With ``--batch-views`` the local
run reads each view's connection count from its batch instead (no gene objects), as the simulated
workers read it from a task's ``conn_counts`` column: the ratio then shows the master's own cost. With
``--zero-elapsed`` the simulated workers report an ``elapsed`` of 0 s (a worker with a coarse clock, or written
from the wire's description): the master must size their batches from its own clock.

With ``--cost-ms MS`` the fitness costs MS milliseconds a genome: a simulated worker of C cores (``--shapes
WORKERSxCORES``, registering with ``cores`` C) evaluates each genome of a task on its first free core, and answers a
task once its last genome is done, on its own timer (the selector loop never sleeps for it). Printed then: the
evaluation efficiency, (population x cost / cores) / (distributed generation - local generation), the share of
the ideal evaluation time the master's generation achieves (the local run then reads its batch: ``--batch-views``),
and the same over the evaluation step alone ("step eff": the distributed evaluator's call less the local fitness
function's call, medians), which leaves out how much breeding varies between runs on a loaded machine.
``--profile DIR`` writes the master child's cProfile of
its distributed generations to DIR (one file per point) and prints its costliest functions. ``--timeline`` (with
``--cost-ms``) prints each timed generation's timeline: when the master bred, encoded, wrote the first and last
task, when the swarm received the last one and ended the last evaluation, how late its reports went out, when the
master took the last report and ended the generation, and the CPU each side spent (``timeline_rows``; both
processes read the same monotonic clock).
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import errno
import heapq
import io
import pstats
import json
import os
import resource
import selectors
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from neatify import Population
from neatify.distributed import DistributedConfig, DistributedPopulation
from neatify.distributed.config import AUTH_TOKEN_ENV
from neatify.distributed.wire.columns import GENE_COUNT
from neatify.distributed.wire.messages import (
    FITNESS, FitnessReport, HeartbeatRequest, HeartbeatResponse, Message, RegistrationAck, ShutdownSignal,
    TaskAssignment, WorkerRegistration,
)
from neatify.distributed.wire.framing import PROTOCOL_VERSION, decode_message, encode_frame

HOST = "127.0.0.1"
SEED = 0
CAPACITY = 50
"""Genomes a simulated worker accepts per batch (``WorkerNode``'s default)."""
MAX_FRAME_BYTES = DistributedConfig().max_frame_bytes
_LENGTH = struct.Struct(">I")
_RECV_CHUNK = 1 << 16
_MASTER_EXIT_GRACE = 60.0
MAX_CONNECTS = 10
"""Connection attempts per worker before registration counts as failed (a real worker retries too)."""


class SwarmError(RuntimeError):
    """The run cannot go on: says what failed or what was being waited for."""


def raise_fd_limit() -> None:
    """Raise this process's open-file soft limit to its hard limit (2,000 workers need 2,000+ sockets)."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def local_fitness(genomes) -> None:
    """The trivial deterministic fitness of both runs: the number of connection genes."""
    for genome in genomes:
        genome.fitness = float(len(genome.connections))


def batch_fitness(genomes) -> None:
    """``local_fitness`` read from the batch of an unread view (its row's span of connections), building no genes."""
    for genome in genomes:
        batch, row = genome.batch_row()
        count = len(genome.connections) if batch is None else batch.conn_start[row + 1] - batch.conn_start[row]
        genome.fitness = float(count)


def wire_fitness(task: TaskAssignment) -> bytes:
    """The same fitness read from a task as sent, as FITNESS_REPORT's column: each genome's connection count."""
    return np.frombuffer(task.conn_counts, GENE_COUNT).astype(FITNESS).tobytes()


@dataclasses.dataclass(eq=False)
class SimulatedWorker:
    """One simulated worker's socket, buffers and progress."""

    worker_id: str
    sock: socket.socket | None = None
    connects: int = 0
    inbox: bytearray = dataclasses.field(default_factory=bytearray)
    outbox: bytearray = dataclasses.field(default_factory=bytearray)
    connected: bool = False
    registered: bool = False
    shut_down: bool = False
    cores: list[float] = dataclasses.field(default_factory=list)
    """When each of its cores comes free (a heap; with a cost per genome)."""


def registration_reply(worker: SimulatedWorker, message: Message | None) -> bytes | None:
    """The registration handshake (no auth token): the frame to send next, given the
    master's last message (None just after connecting); marks the worker registered once accepted."""
    if message is None:
        cores = len(worker.cores)  # said only when above 1, as a real worker does (a master before it knows none)
        return encode_frame(WorkerRegistration(PROTOCOL_VERSION, worker.worker_id, CAPACITY,
                                               **({"cores": cores} if cores > 1 else {})))
    if isinstance(message, RegistrationAck) and message.status == "accepted":
        worker.registered = True
        return None
    raise SwarmError(f"worker {worker.worker_id} not registered: the master answered {message}")


def take_frames(buffer: bytearray) -> Iterator[Message]:
    """Decode (and remove) every whole frame at the start of ``buffer``."""
    while len(buffer) >= _LENGTH.size:
        (length,) = _LENGTH.unpack_from(buffer)
        if not 1 <= length <= MAX_FRAME_BYTES:
            raise SwarmError(f"frame length {length} out of range 1..{MAX_FRAME_BYTES}")
        end = _LENGTH.size + length
        if len(buffer) < end:
            return
        code, body = buffer[_LENGTH.size], bytes(buffer[_LENGTH.size + 1:end])
        del buffer[:end]
        yield decode_message(code, body)


def fitness_report(task: TaskAssignment, started: float | None, now: float | None = None) -> bytes:
    """The FITNESS_REPORT answering one TASK_ASSIGNMENT: its ids as sent, the fitness column, and the seconds since
    ``started`` until ``now`` (default: this moment; ``started`` None: reported as 0)."""
    elapsed = 0.0 if started is None else (time.perf_counter() if now is None else now) - started
    return encode_frame(FitnessReport(task.batch_id, task.ids, wire_fitness(task), [], elapsed))


def evaluation_done(cores: list[float], genomes: int, cost: float, arrived: float) -> float:
    """When a task of ``genomes`` arriving at ``arrived`` is evaluated, each genome taking ``cost`` seconds on the
    first core free (``cores``: the heap of when each comes free, updated)."""
    done = arrived
    for _ in range(genomes):
        done = max(cores[0], arrived) + cost
        heapq.heapreplace(cores, done)
    return done


class Swarm:
    """N simulated workers on one selector: registers them all at once, then answers until shutdown."""

    def __init__(self, port: int, count: int, zero_elapsed: bool = False, cores: int = 1, cost: float = 0.0) -> None:
        self.port = port
        self.zero_elapsed = zero_elapsed
        self.cost = cost
        """Seconds a genome costs (0: answered at once)."""
        self.workers = [SimulatedWorker(f"swarm-{i}", cores=[0.0] * cores) for i in range(count)]
        self.due: list[tuple[float, int, SimulatedWorker, bytes]] = []
        """Reports waiting for their evaluation to end: (when, sequence, worker, frame), a heap."""
        self.selector = selectors.DefaultSelector()
        self.registered = 0
        self.last_ack = 0.0
        self.genomes_evaluated = 0
        self.tasks = 0
        self.log: list[tuple[int, int, float, float, float, int]] = []
        """With a timeline: (generation, task, received, evaluation done, report sent, genomes) of each task."""
        self.cpu: dict[int, list[float]] = {}
        """With a timeline: generation -> this process's CPU seconds at its first task and at its last report."""
        self.timeline = False

    def register_all(self, deadline: float) -> float:
        """Connect every worker at once and register them; seconds from the first connect to the last ack."""
        start = time.perf_counter()
        for worker in self.workers:
            self._connect(worker, "")
        self._run_until(lambda: self.registered == len(self.workers), deadline,
                        lambda: f"{len(self.workers) - self.registered} of {len(self.workers)} workers to register "
                                f"({sum(not w.connected for w in self.workers)} still connecting)")
        return self.last_ack - start

    def serve(self, deadline: float) -> None:
        """Answer heartbeats and tasks until the master has sent every worker SHUTDOWN_SIGNAL."""
        self._run_until(lambda: all(w.shut_down for w in self.workers), deadline,
                        lambda: f"SHUTDOWN_SIGNAL to {sum(not w.shut_down for w in self.workers)} worker(s) "
                                f"(the master is still running generations)")

    @property
    def reconnects(self) -> int:
        """Connections that failed before registration and were made again."""
        return sum(w.connects - 1 for w in self.workers)

    def close(self) -> None:
        for worker in self.workers:
            if worker.sock is not None:
                worker.sock.close()
        self.selector.close()

    def _connect(self, worker: SimulatedWorker, why_again: str) -> None:
        """(Re)open the worker's connection, as a real worker does after a failure before registration."""
        if worker.connects >= MAX_CONNECTS:
            raise SwarmError(f"worker {worker.worker_id} failed to register in {MAX_CONNECTS} connections; "
                             f"last: {why_again}")
        if worker.sock is not None:
            self.selector.unregister(worker.sock)
            worker.sock.close()
        worker.connects += 1
        worker.connected = False
        worker.inbox.clear()
        worker.outbox.clear()
        worker.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        worker.sock.setblocking(False)
        err = worker.sock.connect_ex((HOST, self.port))
        if err not in (0, errno.EINPROGRESS):
            raise SwarmError(f"worker {worker.worker_id}: connect failed: {os.strerror(err)}")
        self.selector.register(worker.sock, selectors.EVENT_WRITE, worker)

    def _run_until(self, done: Callable[[], bool], deadline: float, waiting_for: Callable[[], str]) -> None:
        while not done():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SwarmError(f"timed out waiting for {waiting_for()}")
            wait = min(remaining, 0.5) if not self.due else max(0.0, min(remaining, self.due[0][0] - time.perf_counter()))
            for key, mask in self.selector.select(wait):
                self._on_event(key.data, mask)
            self._send_due()

    def _send_due(self) -> None:
        """Send the reports whose evaluation has ended."""
        now = time.perf_counter()
        while self.due and self.due[0][0] <= now:
            _, task, worker, frame = heapq.heappop(self.due)
            if not worker.shut_down:
                self._send(worker, frame)
            if self.timeline:
                entry = self.log[task]
                self.log[task] = (*entry[:4], time.perf_counter(), entry[5])
                self.cpu[entry[0]][1] = time.process_time()

    def _on_event(self, worker: SimulatedWorker, mask: int) -> None:
        if mask & selectors.EVENT_WRITE:
            if not worker.connected:
                self._on_connected(worker)
            else:
                self._flush(worker)
        if mask & selectors.EVENT_READ and not worker.shut_down:
            self._read(worker)

    def _on_connected(self, worker: SimulatedWorker) -> None:
        err = worker.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            self._connect(worker, f"connect failed: {os.strerror(err)}")
            return
        worker.connected = True
        worker.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.selector.modify(worker.sock, selectors.EVENT_READ, worker)
        self._send(worker, registration_reply(worker, None))

    def _read(self, worker: SimulatedWorker) -> None:
        try:
            chunk = worker.sock.recv(_RECV_CHUNK)
        except BlockingIOError:
            return
        except OSError as exc:
            self._lost(worker, f"connection failed: {exc}")
            return
        if not chunk:
            self._lost(worker, "connection closed by the master")
            return
        worker.inbox += chunk
        started = time.perf_counter()
        for message in take_frames(worker.inbox):
            if worker.shut_down:  # frames behind the shutdown are not answered: the socket is closed
                break
            self._handle(worker, message, started)

    def _lost(self, worker: SimulatedWorker, why: str) -> None:
        """A connection failed: made again before registration, fatal after it."""
        if worker.registered:
            raise SwarmError(f"worker {worker.worker_id} lost its registered connection: {why}")
        self._connect(worker, why)

    def _handle(self, worker: SimulatedWorker, message: Message, started: float) -> None:
        if not worker.registered:
            frame = registration_reply(worker, message)
            if frame is not None:
                self._send(worker, frame)
            elif worker.registered:
                self.registered += 1
                self.last_ack = time.perf_counter()
        elif isinstance(message, HeartbeatRequest):
            self._send(worker, encode_frame(HeartbeatResponse(message.sent)))
        elif isinstance(message, TaskAssignment):
            self._answer(worker, message, started)
            self.genomes_evaluated += message.size
            self.tasks += 1
        elif isinstance(message, ShutdownSignal):
            worker.shut_down = True
            self.selector.unregister(worker.sock)
            worker.sock.close()
        else:
            raise SwarmError(f"worker {worker.worker_id} got an unexpected {message}")

    def _answer(self, worker: SimulatedWorker, task: TaskAssignment, started: float) -> None:
        """Report a task at once, or with a cost per genome once its cores have evaluated it."""
        if not self.cost:
            self._send(worker, fitness_report(task, None if self.zero_elapsed else started))
            return
        done = evaluation_done(worker.cores, task.size, self.cost, started)
        frame = fitness_report(task, None if self.zero_elapsed else started, done)
        heapq.heappush(self.due, (done, self.tasks, worker, frame))
        if self.timeline:
            self.log.append((task.generation, self.tasks, started, done, done, task.size))
            self.cpu.setdefault(task.generation, [time.process_time(), 0.0])

    def _send(self, worker: SimulatedWorker, frame: bytes) -> None:
        worker.outbox += frame
        self._flush(worker)

    def _flush(self, worker: SimulatedWorker) -> None:
        try:
            sent = worker.sock.send(worker.outbox)
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            self._lost(worker, f"send failed: {exc}")
            return
        del worker.outbox[:sent]
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if worker.outbox else 0)
        if self.selector.get_key(worker.sock).events != events:
            self.selector.modify(worker.sock, events, worker)


@dataclasses.dataclass
class PointResult:
    """One (population, workers) measurement."""

    pop_size: int
    workers: int
    cores: int
    """Cores of each worker."""
    registered: int
    registration_s: float
    reconnects: int
    genomes_evaluated: int
    tasks: int
    """Tasks answered over every generation run (the timed ones and the two before them)."""
    distributed_s: float
    """Median seconds of a whole generation through the master."""
    local_s: float
    """Median seconds of a whole local generation."""
    identical: bool
    step_s: float = 0.0
    """Median seconds of the evaluation step alone (the distributed evaluator's call: encoding, sending,
    evaluation, reports, fitness set) less the local fitness function's call: breeding's noise left out."""
    profile: str = ""
    """The master's costliest functions (with a profile)."""
    timeline: list[str] = dataclasses.field(default_factory=list)
    """With a timeline: one line per timed generation (``timeline_rows``)."""

    def efficiency(self, cost: float, step: bool = False) -> float:
        """(population x cost / cores) / (distributed generation - local generation); ``step``: over ``step_s``."""
        spent = self.step_s if step else self.distributed_s - self.local_s
        return self.pop_size * cost / (self.workers * self.cores) / max(spent, 1e-9)


def run_point(pop_size: int, workers: int, generations: int, timeout: float,
              listen_backlog: int | None = None, batch_views: bool = False, zero_elapsed: bool = False,
              cores: int = 1, cost: float = 0.0, profile: Path | None = None, timeline: bool = False) -> PointResult:
    """Start a master child, swarm it with ``workers`` simulated workers of ``cores`` each (a genome costing ``cost``
    seconds) and collect its timings; with ``profile`` the master child's cProfile is written there."""
    deadline = time.monotonic() + timeout
    with tempfile.TemporaryDirectory(prefix="neatify-swarm-") as tmp:
        out, log_path = Path(tmp) / "result.json", Path(tmp) / "master.log"
        command = [sys.executable, __file__, "master", "--pop-size", str(pop_size), "--workers", str(workers),
                   "--generations", str(generations), "--timeout", str(timeout), "--out", str(out)]
        if listen_backlog is not None:
            command += ["--listen-backlog", str(listen_backlog)]
        if batch_views:
            command.append("--batch-views")
        if profile is not None:
            command += ["--profile", str(profile)]
        if timeline:
            command.append("--timeline")
        env = {k: v for k, v in os.environ.items() if k != AUTH_TOKEN_ENV}
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            port = _read_json(out, proc, deadline, "the master to bind its port")["port"]
            swarm = Swarm(port, workers, zero_elapsed, cores, cost)
            swarm.timeline = timeline
            try:
                registration = swarm.register_all(deadline)
                swarm.serve(deadline)
            finally:
                swarm.close()
            result = _read_json(out, proc, deadline + _MASTER_EXIT_GRACE, "the master's results", "distributed")
        except SwarmError as exc:
            raise SwarmError(f"pop {pop_size}, {workers} workers: {exc}\nmaster log (tail):\n"
                             f"{log_path.read_text(errors='replace')[-3000:]}") from None
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=30)
    return PointResult(pop_size, workers, cores, swarm.registered, registration, swarm.reconnects,
                       swarm.genomes_evaluated, swarm.tasks,
                       statistics.median(result["distributed"]), statistics.median(result["local"]),
                       result["identical"],
                       statistics.median(result["distributed_steps"]) - statistics.median(result["local_steps"]),
                       result.get("profile", ""),
                       timeline_rows(result["timeline"], swarm.log, swarm.cpu, pop_size * cost / (workers * cores))
                       if timeline else [])


TIMELINE_HEADER = (f"{'gen':>5} {'breed':>6} {'encode':>7} {'1st send':>9} {'last send':>10} {'last recv':>10} "
                   f"{'eval end':>9} {'ideal':>6} {'late max':>9} {'last rep':>9} {'ended':>6} {'after':>6} "
                   f"{'tasks':>6} {'most':>5} {'cpu loop':>9} {'cpu main':>9} {'cpu swarm':>10}")


def timeline_rows(master: list[dict[str, Any]], swarm_log: list[tuple], swarm_cpu: dict[int, list[float]],
                  ideal: float) -> list[str]:
    """One line per timed generation, in ms: breeding (from the generation's start), encoding (to the job's
    arrival in the event loop), then from that arrival: the first and last task frames written, the last task
    received by the swarm, the last evaluation done on the swarm's clock (``ideal``: pop x cost / cores), the worst
    lateness of a report sent after its evaluation ended, the last report taken by the master, the generation's end,
    and the rest of the generation after it; the tasks and the most genomes in one; CPU ms of the master's loop
    thread, of its caller's thread and of the swarm."""
    labels = sorted({entry[0] for entry in swarm_log})[-len(master):]
    rows = []
    for label, mark in zip(labels, master):
        tasks = [entry for entry in swarm_log if entry[0] == label]
        zero, sends = mark["submitted"], mark.get("sends", [])
        ms = lambda t: (t - zero) * 1e3  # noqa: E731
        cpu = swarm_cpu.get(label, [0.0, 0.0])
        rows.append(f"{label:>5} {(mark['evaluate'] - mark['start']) * 1e3:>6.0f} "
                    f"{(zero - mark['evaluate']) * 1e3:>7.0f} {ms(sends[0][0]):>9.0f} {ms(sends[-1][0]):>10.0f} "
                    f"{ms(max(t[2] for t in tasks)):>10.0f} {ms(max(t[3] for t in tasks)):>9.0f} {ideal * 1e3:>6.0f} "
                    f"{max(t[4] - t[3] for t in tasks) * 1e3:>9.1f} {ms(max(mark['reports'])):>9.0f} "
                    f"{ms(mark['ended']):>6.0f} {(mark['end'] - mark['ended']) * 1e3:>6.0f} "
                    f"{sum(n for _, n in sends):>6} {max(t[5] for t in tasks):>5} {mark['cpu_loop'] * 1e3:>9.0f} "
                    f"{mark['cpu_main'] * 1e3:>9.0f} {(cpu[1] - cpu[0]) * 1e3:>10.0f}")
    return rows


def _read_json(path: Path, proc: subprocess.Popen, deadline: float, what: str, key: str = "port") -> dict[str, Any]:
    """Wait (bounded) for the master child to write ``path`` holding ``key``."""
    while True:
        exited = proc.poll() is not None  # before reading, so a file written just before exiting is seen
        data = json.loads(path.read_text()) if path.exists() else {}
        if key in data:
            return data
        if exited:
            raise SwarmError(f"the master exited with status {proc.returncode} while waiting for {what}")
        if time.monotonic() > deadline:
            raise SwarmError(f"timed out waiting for {what}")
        time.sleep(0.02)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)


class LoopProfiler:
    """cProfile of the master's two threads: its event loop (every message in and out is handled there) and the
    caller's (breeding, and the generation's encoding and results), switched on and off from the caller's."""

    def __init__(self, loop: Any) -> None:
        self.loop = loop
        self.profile = cProfile.Profile()
        self.main = cProfile.Profile()

    def _in_loop(self, call: Callable[[], None]) -> None:
        done = threading.Event()
        self.loop.call_soon_threadsafe(lambda: (call(), done.set()))
        if not done.wait(30.0):
            raise SwarmError("the master's event loop did not run the profiler switch within 30 s")

    def enable(self) -> None:
        self._in_loop(self.profile.enable)
        self.main.enable()

    def disable(self) -> None:
        self.main.disable()
        self._in_loop(self.profile.disable)

    def report(self, path: str) -> str:
        """Write the loop's profile to ``path`` and the caller's beside it (``.main``); the 15 costliest functions
        (own time) of each as text."""
        self.profile.dump_stats(path)
        self.main.dump_stats(f"{path}.main")
        text = io.StringIO()
        for name, profile in (("event loop", self.profile), ("caller (breeding, encoding)", self.main)):
            text.write(f"master's {name} thread:\n")
            pstats.Stats(profile, stream=text).sort_stats("tottime").print_stats(15)
        return text.getvalue()


class MasterTimeline:
    """The master child's marks of each timed generation on the shared monotonic clock (the swarm's
    ``perf_counter`` is the same clock on Linux): hooks on its coordinator and dispatcher record when breeding
    ended, the job was submitted, each task frame was written, each report taken, the generation ended; and the
    CPU seconds of its event loop's thread and of the caller's."""

    def __init__(self, coordinator: Any) -> None:
        self.generations: list[dict[str, Any]] = []
        self._now: dict[str, Any] | None = None
        loop_thread = coordinator._thread
        self._loop_clock = time.pthread_getcpuclockid(loop_thread.ident)
        dispatcher = coordinator._core._dispatcher
        self._wrap(coordinator, "evaluate_outcome", lambda g: g.setdefault("evaluate", time.perf_counter()),
                   lambda g: g.setdefault("returned", time.perf_counter()))
        self._wrap(coordinator, "_submit", lambda g: g.setdefault("submitted", time.perf_counter()), None)
        self._wrap(coordinator, "_apply", None, None, self._sent)
        self._wrap(dispatcher, "on_report", None, lambda g: self._reported(g, dispatcher))

    def _wrap(self, owner: Any, name: str, before: Callable | None, after: Callable | None,
              with_args: Callable | None = None) -> None:
        original = getattr(owner, name)

        def hooked(*args: Any, **kwargs: Any) -> Any:
            generation = self._now
            if generation is not None and before is not None:
                before(generation)
            result = original(*args, **kwargs)
            if generation is not None:
                if after is not None:
                    after(generation)
                if with_args is not None:
                    with_args(generation, *args)
            return result

        setattr(owner, name, hooked)

    @staticmethod
    def _sent(generation: dict[str, Any], actions: list[Any]) -> None:
        tasks = sum(1 for a in actions if getattr(a, "data", b"\0" * 5)[4] == TaskAssignment.TYPE)
        if tasks:
            generation.setdefault("sends", []).append((time.perf_counter(), tasks))

    @staticmethod
    def _reported(generation: dict[str, Any], dispatcher: Any) -> None:
        generation.setdefault("reports", []).append(time.perf_counter())
        if dispatcher._running is None:
            generation.setdefault("ended", time.perf_counter())

    def begin(self) -> None:
        self._now = {"start": time.perf_counter(), "cpu_loop": time.clock_gettime(self._loop_clock),
                     "cpu_main": time.thread_time()}

    def end(self) -> None:
        generation, self._now = self._now, None
        assert generation is not None
        generation["end"] = time.perf_counter()
        generation["cpu_loop"] = time.clock_gettime(self._loop_clock) - generation["cpu_loop"]
        generation["cpu_main"] = time.thread_time() - generation["cpu_main"]
        self.generations.append(generation)


def _timed_generations(pop: Population, fitness_fn: Callable[[list], None], generations: int,
                       profiler: LoopProfiler | None = None, timeline: MasterTimeline | None = None) -> list[float]:
    """Seconds of each of ``generations`` whole generations, after two untimed ones: the initial one and
    the first bred one, which carry the process's one-time costs (loading the compiled loops of breeding).
    ``profiler`` profiles the master's event loop during the timed ones."""
    for _ in range(2):
        pop.run_generation(fitness_fn)
    times = []
    if profiler is not None:
        profiler.enable()
    for _ in range(generations):
        if timeline is not None:
            timeline.begin()
        start = time.perf_counter()
        pop.run_generation(fitness_fn)
        times.append(time.perf_counter() - start)
        if timeline is not None:
            timeline.end()
    if profiler is not None:
        profiler.disable()
    return times


def _timed_call(call: Callable, seconds: list[float]) -> Callable:
    """``call``, appending the seconds each call took to ``seconds``."""
    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return call(*args, **kwargs)
        finally:
            seconds.append(time.perf_counter() - start)

    return timed


def master_main(args: argparse.Namespace) -> int:
    """The child: a master on a free port, then the same run locally; writes the timings and the verdict."""
    raise_fd_limit()
    out = Path(args.out)
    backlog = {} if args.listen_backlog is None else {"listen_backlog": args.listen_backlog}
    config = DistributedConfig(host=HOST, port=0, min_workers=args.workers, worker_wait_timeout=args.timeout,
                               **backlog)
    with DistributedPopulation(args.pop_size, 2, 1, seed=SEED, distributed_config=config) as pop:
        _write_json(out, {"port": pop.port})
        pop.coordinator.wait_for_workers(args.workers)
        profiler = LoopProfiler(pop.coordinator._loop) if args.profile else None
        timeline = MasterTimeline(pop.coordinator) if args.timeline else None
        distributed_steps: list[float] = []
        pop.evaluator.evaluate = _timed_call(pop.evaluator.evaluate, distributed_steps)
        distributed = _timed_generations(pop, lambda genomes: None, args.generations, profiler, timeline)
    profile = "" if profiler is None else profiler.report(args.profile)
    local_pop = Population(args.pop_size, 2, 1, seed=SEED)
    local_steps: list[float] = []
    local = _timed_generations(local_pop, _timed_call(batch_fitness if args.batch_views else local_fitness,
                                                      local_steps), args.generations)
    _write_json(out, {"distributed": distributed, "local": local, "distributed_steps": distributed_steps[2:],
                      "local_steps": local_steps[2:],
                      "identical": pop.state_dict() == local_pop.state_dict(), "profile": profile,
                      "timeline": [] if timeline is None else timeline.generations})
    return 0


def _int_list(text: str) -> list[int]:
    return [int(v) for v in text.split(",")]


def _check_backlog_flag(listen_backlog: int | None) -> str:
    """What backlog the master will use; a clear error if ``--listen-backlog`` cannot be honoured."""
    has_field = "listen_backlog" in {f.name for f in dataclasses.fields(DistributedConfig)}
    if listen_backlog is not None and not has_field:
        raise SystemExit("--listen-backlog: this neatify's DistributedConfig has no listen_backlog field")
    if listen_backlog is not None:
        return str(listen_backlog)
    return str(DistributedConfig().listen_backlog) if has_field else "the master's fixed default"


def _shapes(text: str) -> list[tuple[int, int]]:
    """``WORKERSxCORES,...``: each point's number of workers and cores per worker."""
    shapes = []
    for item in text.split(","):
        workers, _, cores = item.partition("x")
        shapes.append((int(workers), int(cores or 1)))
    return shapes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=_int_list, default=[10, 100, 500, 1000, 2000])
    parser.add_argument("--shapes", type=_shapes, default=None, metavar="WORKERSxCORES,...",
                        help="points of workers of several cores each (default: --workers, of one core)")
    parser.add_argument("--pops", type=_int_list, default=[1000, 10000])
    parser.add_argument("--generations", type=int, default=3, help="timed generations per point")
    parser.add_argument("--listen-backlog", type=int, default=None,
                        help="DistributedConfig.listen_backlog (if this neatify has it); default: its default")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds a point may take in all")
    parser.add_argument("--batch-views", action="store_true",
                        help="the local run reads connection counts from its batch, building no genes (see above)")
    parser.add_argument("--zero-elapsed", action="store_true",
                        help="the simulated workers report an elapsed time of 0 s (see above)")
    parser.add_argument("--cost-ms", type=float, default=0.0, help="milliseconds of evaluation a genome (see above)")
    parser.add_argument("--profile", metavar="DIR", help="write the master's profile of each point to DIR")
    parser.add_argument("--timeline", action="store_true",
                        help="with --cost-ms: print each timed generation's timeline (see timeline_rows)")
    args = parser.parse_args()
    raise_fd_limit()
    backlog = _check_backlog_flag(args.listen_backlog)
    cost = args.cost_ms / 1e3
    args.batch_views |= cost > 0  # the local generation then is breeding alone, as the efficiency needs
    local = "connection counts read from the batch" if args.batch_views else "len(genome.connections)"
    print(f"swarm: seed {SEED}, {args.generations} timed generation(s) per point (median), listen backlog {backlog}, "
          f"local fitness {local}, reported elapsed {'0 s' if args.zero_elapsed else 'measured'}, "
          f"cost {args.cost_ms:g} ms a genome")
    print(f"{'population':>10} {'workers':>8} {'cores':>6} {'registration s':>15} {'distributed ms/gen':>19} "
          f"{'local ms/gen':>13} {'ratio':>7} {'efficiency':>11} {'step eff':>10} {'identical':>10} "
          f"{'reconnects':>11} {'tasks/gen':>10}", flush=True)
    failed = False
    shapes = args.shapes or [(workers, 1) for workers in args.workers]
    for pop_size in args.pops:
        for workers, cores in shapes:
            profile = None if args.profile is None else Path(args.profile) / f"master-{pop_size}-{workers}x{cores}.prof"
            try:
                r = run_point(pop_size, workers, args.generations, args.timeout, args.listen_backlog, args.batch_views,
                              args.zero_elapsed, cores, cost, profile, args.timeline and cost > 0)
            except SwarmError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 1
            failed |= not r.identical
            efficiency = f"{r.efficiency(cost):.2f}" if cost else "-"
            step = f"{r.efficiency(cost, step=True):.2f}" if cost else "-"
            print(f"{pop_size:>10} {workers:>8} {cores:>6} {r.registration_s:>15.2f} {r.distributed_s * 1e3:>19.1f} "
                  f"{r.local_s * 1e3:>13.1f} {r.distributed_s / r.local_s:>7.2f} {efficiency:>11} {step:>10} "
                  f"{'yes' if r.identical else 'NO':>10} {r.reconnects:>11} {r.tasks / (args.generations + 2):>10.0f}",
                  flush=True)
            if r.profile:
                print(r.profile, flush=True)
            if r.timeline:
                print("\n".join(["  timeline (ms):", "  " + TIMELINE_HEADER, *("  " + row for row in r.timeline)]),
                      flush=True)
    return 1 if failed else 0


def _master_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=("master",))
    for name in ("--pop-size", "--workers", "--generations"):
        parser.add_argument(name, type=int, required=True)
    parser.add_argument("--listen-backlog", type=int, default=None)
    parser.add_argument("--timeout", type=float, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--batch-views", action="store_true")
    parser.add_argument("--profile", default=None)
    parser.add_argument("--timeline", action="store_true")
    return parser.parse_args()


if __name__ == "__main__":
    sys.exit(master_main(_master_args()) if sys.argv[1:2] == ["master"] else main())
