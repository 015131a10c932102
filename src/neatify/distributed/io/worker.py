"""The worker: ``WorkerNode`` connects to a master and evaluates batches with ``GenomeEvaluator``."""

from __future__ import annotations

import logging
import os
import queue
import socket
import ssl
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from neatify.distributed.io import tls
from neatify.distributed.config import AUTH_TOKEN_ENV, check_max_frame_bytes
from neatify.distributed.errors import (
    AuthenticationError, ConnectionClosed, DistributedError, ProtocolError, RegistrationError,
)
from neatify.distributed.io.connection import FramedConnection
from neatify.distributed.io.evaluators import EvaluatorPool
from neatify.distributed.wire.framing import PROTOCOL_VERSION
from neatify.distributed.io.scheduler_file import read_scheduler_file
from neatify.distributed.core.actions import Send
from neatify.distributed.core.events import Ended, Event, Registered, Shutdown, Task
from neatify.distributed.core.worker import REGISTRATION_TIMEOUT, WorkerProtocol
from neatify.evaluation import NO_STATE, BatchResult, evaluate_batch
from neatify.genome.genome import Genome

logger = logging.getLogger("neatify.distributed.io.worker")

FitnessFunction = Callable[[list[Genome]], Any]

MAX_INPUTS = 1 << 20
"""Default of ``WorkerNode.max_inputs``: the most inputs (or outputs) a task's genomes may have."""

_LEAVE_GRACE = 5.0
"""Seconds a leaving worker waits for the master to close the connection."""


class GenomeEvaluator:
    """Runs a fitness function on a batch and reports, per genome, a float fitness or a traceback."""

    def __init__(self, fitness_function: FitnessFunction, state: Any = NO_STATE) -> None:
        self.fitness_function = fitness_function
        self.state = state
        """Passed to the fitness function as its second argument (a ``setup`` result), unless ``NO_STATE``."""

    def evaluate(self, genomes: list[Genome], generation: int | None = None, context: Any = None) -> BatchResult:
        """``([[id, fitness], ...], [[id, traceback], ...])`` covering every genome exactly once, failures
        pinned to their genome (see ``neatify.evaluation.evaluate_batch``, told the ``generation`` and ``context``)."""
        return evaluate_batch(self.fitness_function, genomes, self.state, generation, context)


class WorkerNode:
    """A worker process's node: connects (retrying with backoff), registers, evaluates batches.

    ``start()`` blocks until the master sends SHUTDOWN_SIGNAL (then returns) or ``stop()`` is called.
    It raises ``RegistrationError``/``AuthenticationError`` when the master refuses it for good or
    cannot prove it is the master (auth token, TLS certificate), and ``ConnectionError`` after
    ``max_connect_attempts`` failed tries in a row (None retries forever). With ``tls_ca`` it speaks
    TLS and checks that the master's certificate chains to that CA and names ``tls_server_name``
    (default: the host dialled). With ``scheduler_file`` instead of ``master_host``/``master_port`` it
    waits for that file and reads the master's address from it before every connection attempt. With
    ``masters`` (a primary and its hot standbys) it tries them in turn, a round of them between two waits,
    and never serves a master of a lower epoch than one it has served.
    ``setup``, if given, runs once per ``WorkerNode`` before it first registers; its result reaches the
    fitness function as a second argument, ``fitness_function(genomes, state)``, as with
    ``ParallelEvaluator`` and ``RayEvaluator``.
    With ``processes`` > 1 the worker registers once, saying it feeds that many cores, and evaluates each task in
    as many local evaluator processes (``neatify.distributed.io.evaluators``; ``setup`` then runs once in each,
    and the fitness function must be picklable); one that dies is replaced and only its genomes are evaluated
    again. ``capacity`` is then the genomes per batch for each of them.
    """

    def __init__(self, master_host: str | None = None, master_port: int | None = None,
                 worker_id: int | str | None = None,
                 fitness_function: FitnessFunction | None = None, capacity: int = 50,
                 auth_token: str | None = None, max_connect_attempts: int | None = None,
                 retry_initial: float = 0.5, retry_max: float = 10.0,
                 max_frame_bytes: int = 64 * 1024 * 1024, tls_ca: str | None = None,
                 tls_server_name: str | None = None, setup: Callable[[], Any] | None = None,
                 scheduler_file: str | Path | None = None, masters: Sequence[tuple[str, int]] | None = None,
                 max_inputs: int = MAX_INPUTS, processes: int = 1) -> None:
        if fitness_function is None:
            raise ValueError("a WorkerNode needs a fitness_function")
        self.masters = _masters(master_host, master_port, scheduler_file, masters)
        """The addresses tried in turn (one with master_host/master_port; none with a scheduler file)."""
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        if processes < 1:
            raise ValueError(f"processes must be at least 1, got {processes}")
        self.processes = processes
        self.pool: EvaluatorPool | None = None
        """The evaluator processes while ``start()`` runs, with ``processes`` > 1."""
        self.master_host, self.master_port = self.masters[0] if self.masters else (None, None)
        self.worker_id = worker_id if worker_id is not None else f"{socket.gethostname()}-{os.getpid()}"
        self.evaluator = GenomeEvaluator(fitness_function)
        self.capacity = capacity
        self.auth_token = auth_token if auth_token is not None else (os.environ.get(AUTH_TOKEN_ENV) or None)
        self.max_connect_attempts = max_connect_attempts
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self.max_frame_bytes = check_max_frame_bytes(max_frame_bytes)
        self.max_inputs = max_inputs
        """A task whose genomes have more inputs or outputs is refused (each genome reported as an error naming
        the sizes), not evaluated: a master cannot make this worker build networks that exhaust its memory."""
        self.tls_server_name = tls_server_name or self.master_host
        self._tls = None if tls_ca is None else tls.client_context(tls_ca)
        self.scheduler_file = scheduler_file
        self._tls_name_given = tls_server_name is not None
        self.epoch = 0
        """The epoch of the master last registered with or named by the scheduler file followed (0: none yet)."""
        self.served_epoch = 0
        """The highest epoch of a master this worker has served: told at registration, and a master of a lower
        one is refused."""
        self._heartbeat: float | None = None
        """The heartbeat interval of the last master served: with several masters, the longest wait between
        two rounds of them (its standby takes over within 3 of them)."""
        self._next = 0
        """Index in ``masters`` of the address to try next."""
        self.batches_done = 0
        self._setup = setup
        self._stop = threading.Event()
        self.shut_down = threading.Event()
        """Set when the master tells this worker to exit (while a batch may still be evaluated)."""

    def stop(self) -> None:
        """Leave: ``start()`` tells the master (after the batch in hand) and returns. Signal-handler safe."""
        self._stop.set()

    def start(self) -> None:
        """Serve the master until it shuts us down or ``stop()`` is called (see the class docstring)."""
        if self.processes > 1:
            self.pool = EvaluatorPool(self.evaluator.fitness_function, self.processes, f"worker {self.worker_id}",
                                      self._setup)
            self._setup = None
        try:
            self._connect_and_serve()
        finally:
            if self.pool is not None:
                self.pool.close()

    def _connect_and_serve(self) -> None:
        """Connect (again, with backoff) and serve until shut down or stopped."""
        self._run_setup()
        failures = 0
        while not self._stop.is_set():
            waiting = self._discover()
            if waiting is not None:
                failures += 1
                self._back_off(failures, waiting, where=f"scheduler file {self.scheduler_file}")
                continue
            try:
                sock = socket.create_connection((self.master_host, self.master_port), timeout=5.0)
            except OSError as exc:
                failures += 1
                self._back_off(failures, f"cannot reach master ({exc})")
                continue
            conn = FramedConnection(sock, self.max_frame_bytes)
            timeout = self._registration_timeout
            core = WorkerProtocol(self.worker_id, self.capacity, self.auth_token, self._where, self.max_frame_bytes,
                                  time.monotonic(), tls=self._tls is not None, epoch=self.served_epoch,
                                  registration_timeout=timeout, cores=self.processes)
            try:
                if self._tls is not None:
                    conn.start_tls(self._tls, time.monotonic() + timeout, self.tls_server_name)
                early = self._register(conn, core)
                failures = 0
                self._serve(conn, core, early)
                return
            except ssl.SSLCertVerificationError as exc:
                raise AuthenticationError(f"worker {self.worker_id}: the TLS certificate of the master at "
                                          f"{self._where} is not trusted ({exc.verify_message}); check tls_ca and "
                                          "tls_server_name") from None
            except (ConnectionClosed, ProtocolError, OSError) as exc:
                if self._stop.is_set():
                    return
                if core.accepted:
                    logger.warning("worker %s: lost the master (%s); reconnecting", self.worker_id, exc)
                failures += 1
                self._back_off(failures, f"{'connection lost' if core.accepted else 'registration failed'} ({exc})")
            finally:
                conn.close()
                if self.pool is not None:
                    self.pool.forget()

    def _run_setup(self) -> None:
        """Run ``setup`` (once: reconnections keep its state) and hand its result to the evaluator."""
        if self._setup is None:
            return
        logger.info("worker %s: running setup %s", self.worker_id, getattr(self._setup, "__name__", self._setup))
        self.evaluator.state = self._setup()
        self._setup = None

    @property
    def _registration_timeout(self) -> float:
        """Seconds a master has to answer the registration: REGISTRATION_TIMEOUT, but with several masters no
        more than the last one's heartbeat interval, so a frozen master (its kernel still accepts connections)
        does not hold the worker back from the standby that takes over."""
        if len(self.masters) < 2 or self._heartbeat is None:
            return REGISTRATION_TIMEOUT
        return min(REGISTRATION_TIMEOUT, self._heartbeat)

    @property
    def _where(self) -> str:
        return f"{self.master_host}:{self.master_port}"

    def _discover(self) -> str | None:
        """With a scheduler file, (re)read the master's address from it; why to wait instead, if so."""
        if self.scheduler_file is None:
            return None
        info = read_scheduler_file(self.scheduler_file)
        if info is None:
            return "waiting for the master to write it"
        if info.epoch < self.served_epoch:  # only a master served counts: a file alone may be stale or forged
            return (f"it names epoch {info.epoch}, older than epoch {self.served_epoch} this worker has served; "
                    "waiting for a newer one")
        if info.protocol_version != PROTOCOL_VERSION:
            raise RegistrationError(f"worker {self.worker_id}: the master in scheduler file {self.scheduler_file} "
                                    f"speaks protocol version {info.protocol_version}, this worker "
                                    f"{PROTOCOL_VERSION}: run the same neatify version on both")
        if (info.host, info.port, info.epoch) != (self.master_host, self.master_port, self.epoch):
            logger.info("worker %s: scheduler file %s names master %s (epoch %d)", self.worker_id,
                        self.scheduler_file, info.address, info.epoch)
        self.master_host, self.master_port, self.epoch = info.host, info.port, info.epoch
        if not self._tls_name_given:
            self.tls_server_name = info.host
        return None

    def _back_off(self, failures: int, reason: str, where: str | None = None) -> None:
        """Go on to the next master, waiting after each round of them (doubling up to retry_max, and with
        several masters up to the last one's heartbeat interval); raise once max_connect_attempts is spent."""
        where = where or self._where
        if self.max_connect_attempts is not None and failures >= self.max_connect_attempts:
            raise ConnectionError(f"worker {self.worker_id}: could not register with master at {where} after "
                                  f"{failures} attempt(s): {reason}")
        rounds, rest = divmod(failures, max(len(self.masters), 1))
        cap = self.retry_max if len(self.masters) < 2 or self._heartbeat is None else min(self.retry_max,
                                                                                           self._heartbeat)
        delay = 0.0 if rest else min(cap, self.retry_initial * 2 ** (rounds - 1))
        self._rotate()
        until = "it gets in" if self.max_connect_attempts is None else f"attempt {self.max_connect_attempts}"
        logger.log(self._retry_level(failures), "worker %s: %s at %s; attempt %d, %s in %.1fs and on until %s",
                   self.worker_id, reason, where, failures, "retrying" if len(self.masters) < 2 else
                   f"trying {self._where}", delay, until)
        self._stop.wait(delay)

    def _rotate(self) -> None:
        """Make the next of ``masters`` the one to dial."""
        if len(self.masters) < 2:
            return
        self._next = (self._next + 1) % len(self.masters)
        self.master_host, self.master_port = self.masters[self._next]
        if not self._tls_name_given:
            self.tls_server_name = self.master_host

    @staticmethod
    def _retry_level(failures: int) -> int:
        """WARNING for the 1st, 2nd, 4th, 8th... failed attempt in a row, INFO for the others: a worker
        that cannot get in says so at once, then ever more rarely however long it keeps trying."""
        return logging.WARNING if failures & (failures - 1) == 0 else logging.INFO

    def _register(self, conn: FramedConnection, core: WorkerProtocol) -> list[Send | Event]:
        """Register (mutually authenticated with a token), in this thread, until accepted or refused;
        returns the events that came after the acceptance in the same read (a first task, say)."""
        conn.send_bytes(core.hello().data)
        while True:
            events = self._pump(conn, core)
            for i, event in enumerate(events):
                if isinstance(event, Send):
                    conn.send_bytes(event.data)
                elif isinstance(event, Ended):
                    self._fail(event)
                elif isinstance(event, Registered):
                    logger.info("worker %s: registered with master %s (epoch %d)", self.worker_id, self._where,
                                event.epoch)
                    self.served_epoch = max(self.served_epoch, event.epoch)
                    self.epoch, self._heartbeat = event.epoch, event.heartbeat_interval
                    return events[i + 1:]

    @staticmethod
    def _pump(conn: FramedConnection, core: WorkerProtocol) -> list[Send | Event]:
        """One read from the socket through the protocol (or, after a quiet read, the time passing)."""
        try:
            data = conn.read_some()
        except ConnectionClosed:
            return core.closed()
        return core.tick(time.monotonic()) if data is None else core.received(data, time.monotonic())

    @staticmethod
    def _fail(ended: Ended) -> None:
        """Raise what ended the connection (logged first when the master refused this worker for good)."""
        if ended.fatal:
            logger.error("%s", ended.error)
        raise ended.error

    def _serve(self, conn: FramedConnection, core: WorkerProtocol, early: list[Send | Event]) -> None:
        """Evaluate batches until shut down or stopped (returns) or the connection is lost (raises)."""
        tasks: queue.Queue[Task | BaseException | None] = queue.Queue()
        reader = threading.Thread(target=self._read, args=(conn, core, tasks, early),
                                  name=f"neatify-worker-{self.worker_id}-reader", daemon=True)
        reader.start()
        while not self._stop.is_set():
            if self.pool is not None and self.pool.broken is not None:
                raise DistributedError(self.pool.broken)
            try:
                task = tasks.get(timeout=0.5)
            except queue.Empty:
                continue
            if task is None:
                logger.info("worker %s: shutdown received after %d batch(es); exiting", self.worker_id,
                            self.batches_done)
                return
            if isinstance(task, BaseException):
                raise task
            self._take(conn, core, task)
        if self.pool is not None:
            self.pool.drain()
        logger.info("worker %s: leaving after %d batch(es)", self.worker_id, self.batches_done)
        conn.send_bytes(core.leaving())
        # Hang up only after the master has (or _LEAVE_GRACE): a batch it sends meanwhile then arrives,
        # ignored, instead of failing its send, and the master learns why this worker went.
        reader.join(_LEAVE_GRACE)

    def _take(self, conn: FramedConnection, core: WorkerProtocol, task: Task) -> None:
        """Evaluate a task and report it: here, or handed to the evaluator processes (reported when they are
        done, from their thread: a connection lost meanwhile only drops the report, the reader notices the loss)."""
        refusal = self._refusal(task)
        if self.pool is None or refusal is not None:
            start = time.monotonic()
            result = refusal or self._evaluate(task)
            self._report(conn, core, task.batch_id, result, time.monotonic() - start)
            return

        def done(batch_id: int, result: BatchResult, elapsed: float) -> None:
            try:
                self._report(conn, core, batch_id, result, elapsed)
            except OSError as exc:
                logger.debug("worker %s: report of batch %d not sent (%s)", self.worker_id, batch_id, exc)

        self.pool.submit(task.batch_id, task.genome_batch, done, task.generation, task.context)

    def _report(self, conn: FramedConnection, core: WorkerProtocol, batch_id: int, result: BatchResult,
                elapsed: float) -> None:
        """Send a batch's FITNESS_REPORT."""
        conn.send_bytes(core.report(batch_id, *result, elapsed))
        self.batches_done += 1

    def _refusal(self, task: Task) -> BatchResult | None:
        """Every genome's error when the task's networks would be too large for this worker, else None."""
        genome_batch = task.genome_batch
        if max(genome_batch.num_inputs, genome_batch.num_outputs) <= self.max_inputs:
            return None
        problem = (f"worker {self.worker_id} refuses the task: its genomes have {genome_batch.num_inputs} inputs "
                   f"and {genome_batch.num_outputs} outputs, more than this worker's max_inputs {self.max_inputs}")
        return [], [[genome.id, problem] for genome in task.genomes]

    def _evaluate(self, task: Task) -> BatchResult:
        """The batch's results; a failure outside the per-genome checks is reported as every genome's error (the
        master names one) instead of ending this worker."""
        try:
            return self.evaluator.evaluate(task.genomes, task.generation, task.context)
        except Exception:
            trace = traceback.format_exc()
            return [], [[genome.id, trace] for genome in task.genomes]

    def _read(self, conn: FramedConnection, core: WorkerProtocol, tasks: queue.Queue[Task | BaseException | None],
              events: list[Send | Event]) -> None:
        """Reader thread: answer heartbeats at once, queue tasks, report the end of the connection."""
        try:
            while self._handle(conn, events, tasks):
                events = self._pump(conn, core)
        except OSError as exc:
            tasks.put(exc)

    def _handle(self, conn: FramedConnection, events: list[Send | Event],
                tasks: queue.Queue[Task | BaseException | None]) -> bool:
        """Act on the events of a registered connection; False once it is over."""
        for event in events:
            if isinstance(event, Send):
                conn.send_bytes(event.data)
            elif isinstance(event, Task):
                tasks.put(event)
            elif isinstance(event, Shutdown):
                self.shut_down.set()
                self._stop.set()
                tasks.put(None)
                return False
            elif isinstance(event, Ended):
                tasks.put(event.error)
                return False
        return True


def _masters(host: str | None, port: int | None, scheduler_file: str | Path | None,
             masters: Sequence[tuple[str, int]] | None) -> list[tuple[str, int]]:
    """The addresses a ``WorkerNode`` is given: exactly one of host and port, ``masters``, or a scheduler file."""
    given = [name for name, value in (("master_host and master_port", host is not None or port is not None),
                                      ("masters", masters is not None), ("a scheduler_file", scheduler_file is not None))
             if value]
    if len(given) != 1:
        raise ValueError("a WorkerNode needs master_host and master_port, masters, or a scheduler_file: exactly one "
                         f"of them (got {' and '.join(given) or 'none'})")
    if masters is not None:
        if not masters:
            raise ValueError("masters must name at least one (host, port)")
        return [(str(h), int(p)) for h, p in masters]
    if scheduler_file is not None:
        return []
    if host is None or port is None:
        raise ValueError("a WorkerNode needs both master_host and master_port")
    return [(host, port)]
