"""The master: ``SystemCoordinator`` serves workers over TCP; ``DistributedPopulation`` evolves with it.

One asyncio event loop, in a thread of its own, does all the I/O: no thread per connection, writes
buffered per connection. It feeds every event to a ``MasterProtocol`` (``neatify.distributed.core.master``), which
holds all of the protocol's logic, and carries out the actions it returns.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import errno
import ipaddress
import itertools
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import msgpack
import msgspec

from neatify.io.checkpoint import Checkpoint
from neatify.io.lock import CheckpointLock
from neatify.config import EvolutionConfig
from neatify.distributed.io import tls
from neatify.distributed.config import DistributedConfig
from neatify.distributed.errors import DistributedError, WorkerWaitTimeout
from neatify.distributed.core.actions import Action, Close, Send
from neatify.distributed.core.fencing import resumed_epoch
from neatify.distributed.core.master import MasterProtocol
from neatify.distributed.wire.messages import StateSnapshot
from neatify.distributed.io.connection import unsent_bytes
from neatify.distributed.wire.framing import PROTOCOL_VERSION, encode_frame
from neatify.distributed.core.scheduler import GenerationJob
from neatify.distributed.io.scheduler_file import (
    SchedulerInfo, advertised_host, remove_scheduler_file, write_scheduler_file,
)
from neatify.distributed.io.standby import OldPrimaryFence, StandbyLink
from neatify.distributed.core.events import Outcome, Shutdown, Snapshot
from neatify.distributed.core.standby import encode_state
from neatify.evaluation import generation_context
from neatify.genome.genome import Genome
from neatify.population import FitnessFunction, Population
from neatify.reporting.reporters import CheckpointReporter, Reporter, StatisticsReporter

logger = logging.getLogger("neatify.distributed.io.master")

_SHUTDOWN_GRACE = 2.0
_WAIT_NOTICE = 2.0
"""Seconds of waiting for workers after which the wait is logged at WARNING (INFO at once)."""
_BURST = 32
"""Most batches of a generation planned whole written at a time (``MasterProtocol.send_planned``)."""
_BURST_BYTES = 1 << 18
"""Bytes of planned batches after which a burst ends (a few big batches of a worker of many cores)."""
_BACKLOG_BYTES = 1 << 16
"""A kernel send queue longer than this that shrinks shows the peer reading (heartbeats never queue so much)."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (a loopback address or "localhost"): off it, a token is required."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _PeerConnection(asyncio.Protocol):
    """One connection's events, handed to the coordinator (which owns the protocol state)."""

    def __init__(self, coordinator: SystemCoordinator) -> None:
        self.coordinator = coordinator
        self.id = next(coordinator._ids)
        self.transport: asyncio.Transport | None = None
        self.eof = False
        self.queued = 0
        """Write-buffer plus kernel send-queue bytes at the last tick (to see the peer taking them)."""
        self.written = 0
        """Bytes written since the last tick."""
        self.early: list[bytes] | None = []
        """Bytes that came before the protocol knew the connection (None once it does): with TLS the peer's first
        frame may ride with its last handshake record, delivered before ``start_tls`` returns."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.coordinator._accepted(self)

    def data_received(self, data: bytes) -> None:
        if self.early is not None:
            self.early.append(data)
            return
        core = self.coordinator._core
        self.coordinator.bytes_in += len(data)
        self.coordinator._apply(core.received(self.id, data, time.monotonic()))

    def eof_received(self) -> bool:
        self.eof = True
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        reason = "connection closed by peer" if exc is None else (str(exc) or type(exc).__name__)
        self.coordinator._lost(self, reason)

    def backlog(self) -> int:
        """Bytes written but not yet taken by the peer: the transport's buffer and the kernel's queue
        (asked of the kernel only when enough was written lately to matter)."""
        assert self.transport is not None
        written, self.written = self.written, 0
        if written + self.queued <= _BACKLOG_BYTES:
            return self.transport.get_write_buffer_size()
        kernel = unsent_bytes(self.transport.get_extra_info("socket"))
        return self.transport.get_write_buffer_size() + (kernel or 0)


class SystemCoordinator:
    """Accepts and registers workers, watches them with heartbeats, and farms out a generation's genomes."""

    def __init__(self, config: DistributedConfig, epoch: int = 1, generation: int | None = None) -> None:
        self.config = config
        self._core = MasterProtocol(config, started=time.monotonic(), epoch=epoch,
                                    standby=config.standby_of is not None, generation=generation)
        self._connections: dict[int, _PeerConnection] = {}
        self._ids = itertools.count(1)
        self._started = False
        """Whether min_workers were reached once; later generations only need one worker."""
        self._stopping = False
        self._changed = threading.Condition()
        """Notified (from the loop) whenever the number of workers changed."""
        self._workers_seen = 0
        self._waiting: concurrent.futures.Future[Outcome] | None = None
        self._accept_failed = False
        self._tls = None if config.tls_cert is None else tls.server_context(config.tls_cert, config.tls_key)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self._advertised: SchedulerInfo | None = None
        """What this master wrote to ``config.scheduler_file``."""
        self.quarantined: dict[int, dict[int, str]] = {}
        """Generation -> {genome id: why} of the genomes quarantined in it (see ``max_genome_attempts``)."""
        self.bytes_in = self.bytes_out = self.batches_resent = 0
        """Bytes received from and sent to peers, batches re-sent in finished generations (metrics' counters)."""

    # --- lifecycle (caller's thread) ---
    def start(self) -> None:
        """Bind the listening socket and start accepting workers (in the event loop's thread)."""
        if not is_loopback(self.config.host) and not self.config.auth_token:
            logger.warning("master listening on %s without an auth token: anyone who can reach this port can "
                           "register a worker; set auth_token or $NEATIFY_AUTH_TOKEN", self.config.host)
        loop = self._loop = asyncio.new_event_loop()
        loop.set_exception_handler(self._loop_error)
        self._thread = threading.Thread(target=loop.run_forever, name="neatify-master-loop", daemon=True)
        self._thread.start()
        try:
            self._server = asyncio.run_coroutine_threadsafe(self._listen(), loop).result()
            if not self._core.standby:  # a standby advertises itself once promoted
                self._advertise()
        except BaseException:
            self._stop_loop()
            raise
        self._core.where = f"{self.config.host}:{self.port}"
        logger.info("master listening on %s:%d", self.config.host, self.port)

    def _advertise(self) -> None:
        """Write the scheduler file, if configured, now that the port is bound, with this master's epoch."""
        path = self.config.scheduler_file
        if path is None:
            return
        info = SchedulerInfo(advertised_host(self.config.host), self.port, self._core.epoch, PROTOCOL_VERSION,
                             os.getpid())
        write_scheduler_file(path, info)
        self._advertised = info
        logger.info("wrote %s to scheduler file %s", info.address, path)

    async def _listen(self) -> asyncio.base_events.Server:
        server = await asyncio.get_running_loop().create_server(
            lambda: _PeerConnection(self), self.config.host, self.config.port, backlog=self.config.listen_backlog,
            reuse_address=True)
        self._schedule_tick()
        return server

    @property
    def port(self) -> int:
        """The port actually bound (useful with ``port=0``)."""
        assert self._server is not None, "coordinator not started"
        return self._server.sockets[0].getsockname()[1]

    @property
    def num_workers(self) -> int:
        """Workers registered right now."""
        return self._core.num_workers

    @property
    def protocol(self) -> MasterProtocol:
        """The sans-IO core, to read only in the event loop's thread (``loop``), as the dashboard does."""
        return self._core

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop doing all of this master's I/O (a dashboard serves HTTP from it too)."""
        assert self._loop is not None, "coordinator not started"
        return self._loop

    @property
    def standby_linked(self) -> bool:
        """Whether a hot standby follows this master now."""
        return self._core.has_follower

    @property
    def standby(self) -> bool:
        """Whether this master is a standby not yet promoted (it refuses workers)."""
        return self._core.standby

    @property
    def epoch(self) -> int:
        """This master's epoch (told to every worker it accepts; see docs/distributed.md, "Hot standby")."""
        return self._core.epoch

    def promotion(self, epoch: int) -> int:
        """The epoch ``promote(epoch)`` would lead now."""
        done: concurrent.futures.Future[int] = concurrent.futures.Future()
        self._in_loop(lambda: done.set_result(self._core.promotion(epoch)))
        return done.result()

    def promote(self, epoch: int) -> int:
        """A standby whose primary is gone: accept workers as the master of ``epoch`` (or of one above every epoch
        it has seen), rewrite the scheduler file; the epoch it leads."""
        def change() -> None:
            self._core.promote(epoch)

        self._in_loop(change)
        self._advertise()
        return self._core.epoch

    def holds(self, epoch: int, generation: int) -> None:
        """A standby replicated a state of ``epoch`` after ``generation``: what it tells a standby it refuses
        (``core.fencing``)."""
        self._in_loop(lambda: self._core.holds(epoch, generation))

    def reached(self, generation: int) -> None:
        """This master's state is now after ``generation``: a standby holding a newer one of its epoch leads."""
        self._in_loop(lambda: self._core.reached(generation))

    def replicate(self, generation: int, state: bytes) -> None:
        """Send the state after evaluated ``generation`` (``core.standby.encode_state``) to the standby."""
        frame = encode_frame(StateSnapshot(self._core.epoch, generation, state))
        self._in_loop(lambda: self._core.replicate(frame))

    def _in_loop(self, change: Callable[[], list[Action] | None]) -> None:
        """Run ``change`` of the protocol in the event loop's thread, carry out its actions, and wait for it."""
        assert self._loop is not None
        done: concurrent.futures.Future[None] = concurrent.futures.Future()

        def run() -> None:
            try:
                self._apply(change() or [])
            except BaseException as exc:  # handed to the waiting caller
                done.set_exception(exc)
            else:
                done.set_result(None)

        self._loop.call_soon_threadsafe(run)
        done.result()

    def shutdown(self) -> None:
        """Send SHUTDOWN_SIGNAL to every worker, close every connection and free the port."""
        if self._stopping or self._loop is None:
            return
        self._stopping = True
        with self._changed:
            self._changed.notify_all()
        if self._advertised is not None and self.config.scheduler_file is not None:
            remove_scheduler_file(self.config.scheduler_file, self._advertised)
        told = asyncio.run_coroutine_threadsafe(self._close_all(), self._loop).result()
        self._stop_loop()
        logger.info("master shut down; sent shutdown to %d worker(s)", told)

    async def _close_all(self) -> int:
        actions = self._core.shutdown(time.monotonic())
        self._apply(actions)
        await self._linger()
        assert self._server is not None
        self._server.close()
        deadline = time.monotonic() + _SHUTDOWN_GRACE
        while self._core.num_workers and time.monotonic() < deadline:  # workers hang up first: no TIME_WAIT here
            await asyncio.sleep(0.02)
        for connection in list(self._connections.values()):
            assert connection.transport is not None
            connection.transport.abort()
        await asyncio.sleep(0)  # let connection_lost run
        return len(actions)

    async def _linger(self) -> None:
        """Keep listening while workers lost shortly before the end may come back (``MasterProtocol.awaited``):
        each one that registers is told that the run is over, so its supervisor ends too."""
        awaited = self._core.awaited(time.monotonic())
        if not awaited:
            return
        logger.info("waiting up to %.1fs for %d worker(s) lost shortly before the end (%s), to tell them the run is "
                    "over", self.config.shutdown_linger, len(awaited), ", ".join(awaited[:5]))
        while self._core.awaited(time.monotonic()):
            await asyncio.sleep(0.05)

    def _stop_loop(self) -> None:
        loop = self._loop
        assert loop is not None
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        loop.close()

    # --- evaluation (caller's thread) ---
    def wait_for_workers(self, count: int) -> None:
        """Block until ``count`` workers are registered (bounded by ``worker_wait_timeout``)."""
        if self._core.num_workers >= count:
            return
        limit = self.config.worker_wait_timeout
        deadline = None if limit is None else time.monotonic() + limit
        why = f"waiting for {count} worker(s) to register on {self._core.where}"
        logger.info("%s (%d connected)", why, self._core.num_workers)
        notice: float | None = time.monotonic() + _WAIT_NOTICE
        with self._changed:
            while self._core.num_workers < count:
                if self._core.stood_down is not None:
                    raise self._core.stood_down
                if self._stopping:
                    raise DistributedError("master shut down while waiting for workers")
                if notice is not None and time.monotonic() >= notice:
                    logger.warning("still %s (%d connected)", why, self._core.num_workers)
                    notice = None
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise WorkerWaitTimeout(f"gave up after {limit:.1f}s {why} ({self._core.num_workers} "
                                            "connected); start workers or raise --worker-wait-timeout "
                                            "(DistributedConfig.worker_wait_timeout)")
                self._changed.wait(0.5 if remaining is None else min(0.5, remaining))

    def evaluate(self, genomes: list[Genome], generation: int,
                 species: Mapping[int, int] | None = None) -> dict[int, float]:
        """Evaluate ``genomes`` on the workers; returns genome id -> fitness, exactly one per genome.

        The first call waits for ``min_workers``; later ones go on with whatever workers are left.
        ``species`` (genome id -> species id) keeps each batch to one species with ``batching="species"``.
        """
        return self.evaluate_outcome(genomes, generation, species).fitness

    def evaluate_outcome(self, genomes: list[Genome], generation: int, species: Mapping[int, int] | None = None,
                         context: dict[str, Any] | None = None) -> Outcome:
        """``evaluate``, with the behaviours the workers reported beside the fitness; ``context`` (the master's
        ``generation_context``, plain data) goes with every task of the generation."""
        if self._core.stood_down is not None:
            raise self._core.stood_down
        if self._stopping:
            raise DistributedError("the master was shut down; it evaluates nothing more")
        self.wait_for_workers(1 if self._started else self.config.min_workers)
        self._started = True
        job = GenerationJob(generation, genomes, self._groups(species), context)  # encoded here, off the event loop
        future: concurrent.futures.Future[Outcome] = concurrent.futures.Future()
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._submit, job, future)
        return future.result()

    def _groups(self, species: Mapping[int, int] | None) -> Mapping[int, int] | None:
        """The grouping of a generation's batches: its species with ``batching="species"``, else none."""
        if self.config.batching != "species":
            return None
        if species is None:
            logger.debug("batching='species' but no species known (DistributedEvaluator used as a plain fitness "
                         "function): batching by genomes")
        return species

    # --- the event loop's side ---
    def _submit(self, job: GenerationJob, future: concurrent.futures.Future[Outcome]) -> None:
        self._waiting = future
        self._apply(self._core.submit(job, time.monotonic(), 1))
        self._send_burst()

    def _send_burst(self) -> None:
        """Send the generation's planned batches one at a time up to ``_BURST`` of them or ``_BURST_BYTES``, then
        the next burst after the loop's next poll, until none waits: the first workers evaluate while the rest are
        encoded and written, and reports meanwhile are taken in between."""
        batches = written = 0
        while self._core.planned and batches < _BURST and written < _BURST_BYTES:
            actions = self._core.send_planned(time.monotonic(), 1)
            self._apply(actions)
            batches += 1
            written += sum(len(action.data) for action in actions if isinstance(action, Send))
        if self._core.planned:
            assert self._loop is not None
            self._loop.call_soon(self._send_burst)

    def _apply(self, actions: list[Action]) -> None:
        """Carry out the protocol's actions, then hand over a finished generation."""
        for action in actions:
            connection = self._connections.get(action.conn)
            if connection is None or connection.transport is None:
                continue
            if isinstance(action, Send):
                connection.transport.write(action.data)
                connection.written += len(action.data)
                self.bytes_out += len(action.data)
            elif isinstance(action, Close):
                if action.flush:
                    connection.transport.close()
                else:
                    connection.transport.abort()
        outcome = self._core.take_outcome()
        self.batches_resent += 0 if outcome is None else outcome.job.batches_resent
        if outcome is not None and outcome.job.quarantined:
            self.quarantined[outcome.job.generation] = dict(outcome.job.quarantined)
        if outcome is not None and self._waiting is not None:
            future, self._waiting = self._waiting, None
            if outcome.error is not None:
                future.set_exception(outcome.error)
            else:
                future.set_result(outcome)
        if self._core.num_workers != self._workers_seen or self._core.stood_down is not None:  # wake waiters
            self._workers_seen = self._core.num_workers
            with self._changed:
                self._changed.notify_all()

    def _accepted(self, connection: _PeerConnection) -> None:
        if self._accept_failed:
            self._accept_failed = False
            logger.info("accepting connections again")
        assert connection.transport is not None
        peer = connection.transport.get_extra_info("peername")
        address = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        if self._tls is None:
            self._opened(connection, address)
        else:  # the handshake runs as a task of its own, bounded by handshake_timeout: accepting goes on
            connection.transport.pause_reading()
            assert self._loop is not None
            self._loop.create_task(self._start_tls(connection, address))

    async def _start_tls(self, connection: _PeerConnection, address: str) -> None:
        assert self._loop is not None and self._tls is not None and connection.transport is not None
        try:
            transport = await self._loop.start_tls(connection.transport, connection, self._tls, server_side=True,
                                                   ssl_handshake_timeout=self.config.handshake_timeout)
        except (OSError, asyncio.TimeoutError) as exc:
            logger.warning("closing connection from %s: TLS handshake failed (%s)", address,
                           exc or type(exc).__name__)
            connection.transport.abort()
            return
        connection.transport = transport  # type: ignore[assignment]
        self._opened(connection, address)

    def _opened(self, connection: _PeerConnection, address: str) -> None:
        self._connections[connection.id] = connection
        self._apply(self._core.connected(connection.id, address, time.monotonic()))
        early, connection.early = connection.early or [], None
        for data in early:
            connection.data_received(data)

    def _lost(self, connection: _PeerConnection, reason: str) -> None:
        self._connections.pop(connection.id, None)
        self._apply(self._core.closed(connection.id, reason, time.monotonic(), eof=connection.eof))

    def _schedule_tick(self) -> None:
        interval = min(0.5, self.config.heartbeat_interval / 2, self.config.task_timeout / 4)
        assert self._loop is not None
        self._loop.call_later(interval, self._tick)

    def _tick(self) -> None:
        now = time.monotonic()
        for connection in self._connections.values():  # a peer taking a big batch is alive though its answers wait
            queued = connection.backlog()
            if connection.queued > _BACKLOG_BYTES and queued < connection.queued:
                self._core.delivered(connection.id, now)
            connection.queued = queued
        self._apply(self._core.tick(now))
        if not self._stopping:
            self._schedule_tick()

    def _loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """asyncio's reports: a failed accept (it retries by itself after a second) is worth a warning."""
        exc = context.get("exception")
        if isinstance(exc, OSError) and "accept" in context.get("message", ""):
            if not self._accept_failed:
                hint = " (raise the open-files limit, ulimit -n)" if exc.errno == errno.EMFILE else ""
                logger.warning("cannot accept a connection (%s); retrying in 1s%s", exc, hint)
            self._accept_failed = True
            return
        logger.debug("event loop: %s", context.get("message"), exc_info=exc)


def wire_context(fitness_fn: Callable[..., Any]) -> dict[str, Any] | None:
    """``fitness_fn``'s ``generation_context()`` as sent in a TASK_ASSIGNMENT: None or a map of plain msgpack data;
    TypeError naming the fitness function otherwise."""
    context = generation_context(fitness_fn)
    try:
        if context is not None and not isinstance(context, dict):
            raise TypeError(f"got a {type(context).__name__}")
        if context is not None:  # what the worker's decoder takes: str keys, no extension types
            msgpack.unpackb(msgspec.msgpack.encode(context), strict_map_key=True)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"the generation_context() of {fitness_fn!r} must be None or a dict of plain data (str keys; "
                        f"lists, floats, ints, strings, bools): {exc}") from None
    return context


class DistributedEvaluator(Reporter):
    """TCP workers as a fitness function: ``pop.run_generation(DistributedEvaluator(config))``.

    Like ``ParallelEvaluator`` and ``RayEvaluator``, so one ``Population`` with its reporters and
    checkpoints serves every backend. Added to the population as a reporter too
    (``pop.add_reporter(evaluator)``), it labels each generation on the wire and in logs with the
    population's number and, with ``batching="species"``, batches by its species (``DistributedPopulation``
    is exactly that). The master starts listening at construction (``port``); ``close()``, or leaving a
    ``with`` block, tells the workers to exit and frees the port. ``local``, the master's own copy of the workers'
    fitness function (never run here), sends its ``generation_context()`` with every task, as a process pool does.
    """

    def __init__(self, config: DistributedConfig | None = None, epoch: int = 1, generation: int | None = None) -> None:
        self.config = config if config is not None else DistributedConfig()
        self.coordinator = SystemCoordinator(self.config, epoch, generation)
        self.coordinator.start()
        self.calls = 0
        """The generation the next call is labelled with (a reporter's population's, else the calls so far)."""
        self._species: dict[int, int] | None = None
        """Genome id -> species id of the generation about to be evaluated (as a reporter, batching by species)."""
        self.local: Callable[..., Any] | None = None
        """Whose ``generation_context()`` goes with each generation's tasks (``neatify.evaluation``; None: none)."""

    @property
    def port(self) -> int:
        """The port the master listens on."""
        return self.coordinator.port

    def start_generation(self, population: Population) -> None:
        """As a reporter: the next call evaluates ``population``'s generation (and batches by its species)."""
        self.calls = population.generation
        self._species = {genome.id: s.id for s in population.species for genome in s.members} \
            if self.config.batching == "species" else None

    def __call__(self, genomes: list[Genome]) -> None:
        """Set each genome's fitness from the workers."""
        species, self._species = self._species, None
        self.evaluate(genomes, self.calls, species)

    def evaluate(self, genomes: list[Genome], generation: int, species: Mapping[int, int] | None = None) -> None:
        """Set each genome's fitness from the workers, labelled ``generation`` on the wire and in logs
        (``species``: genome id -> species id, for ``batching="species"``)."""
        context = None if self.local is None else wire_context(self.local)
        outcome = self.coordinator.evaluate_outcome(genomes, generation, species, context)
        for genome in genomes:
            genome.fitness = outcome.fitness[genome.id]
        for genome in genomes if outcome.behaviours else ():
            genome.behaviour = outcome.behaviours.get(genome.id)
        for genome in genomes:  # given error_fitness (it raised, or was quarantined): no behaviour
            genome.failed = genome.id in outcome.job.failures or genome.id in outcome.job.quarantined
        self.calls = generation + 1

    def close(self) -> None:
        """Tell every worker to exit and free the port (idempotent)."""
        self.coordinator.shutdown()

    def __enter__(self) -> DistributedEvaluator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class DistributedPopulation(Population):
    """A ``Population`` whose genomes are evaluated by ``WorkerNode``s over TCP: a ``Population`` run through its
    ``DistributedEvaluator`` (``evaluator``, also one of its reporters), checkpointed through a ``CheckpointReporter``.

    The fitness function given to ``run_generation`` on the master is not run: the workers' own
    fitness functions compute fitness (pass a dummy such as ``lambda genomes: None``, or the master's copy of the
    task, whose ``generation_context()`` then goes with every task: a normalised ``GymEvaluator``'s statistics). With
    ``checkpoint_path`` the population is restored from that file when it exists, and saved to
    it after every evaluated generation, so a restarted master continues the run exactly. A damaged
    checkpoint, or a path where none can be written, raises ``CheckpointError`` before any worker is served.
    After every evaluated generation it also sends its state (and the rows of its first ``StatisticsReporter``)
    to its hot standby, if one follows it. With ``distributed_config.standby_of`` it is that standby: call
    ``follow()`` before evolving.
    """

    def __init__(self, pop_size: int | None = None, num_inputs: int = 2, num_outputs: int = 1,
                 config: EvolutionConfig | None = None, seed: int | None = None,
                 distributed_config: DistributedConfig | None = None,
                 checkpoint_path: str | Path | None = None) -> None:
        super().__init__(pop_size, num_inputs, num_outputs, config, seed)
        self.checkpoint_path = None if checkpoint_path is None else Path(checkpoint_path)
        self.checkpoints = None if self.checkpoint_path is None else \
            CheckpointReporter(self.checkpoint_path.parent, filename=self.checkpoint_path.name)
        """Saves this master's state after every evaluated generation (None without ``checkpoint_path``)."""
        self.distributed_config = distributed_config if distributed_config is not None else DistributedConfig()
        self.epoch = self._resume(self.distributed_config)
        """This master's epoch (a promoted standby's is above every one it saw), saved in the checkpoint."""
        state = self.state_dict()
        self._settings = self._run_settings(state, seed is not None or self._resumed)
        """What this master's arguments fixed of the run, which a standby's primary must share."""
        self._lock = None if self.checkpoint_path is None else CheckpointLock(self.checkpoint_path)
        """Held while this master leads: no second master leads the run saved in the same file."""
        if self.distributed_config.standby_of is None:
            self._lead()
        try:
            self.evaluator = DistributedEvaluator(self.distributed_config, self.epoch, self.generation)
        except BaseException:  # the port is taken, say: the lock goes with this master
            if self._lock is not None:
                self._lock.release()
            raise
        self.add_reporter(self.evaluator)
        self.coordinator = self.evaluator.coordinator
        self.replicated_statistics: list[dict[str, Any]] = []
        """A promoted standby's: the primary's statistics rows up to the last replicated generation."""
        self._fence: OldPrimaryFence | None = None
        """A promoted standby's watch on its old primary, which stands down should it run again."""
        if not self.coordinator.standby:  # a standby linking before the first generation ends gets the start
            self._replicate(state)

    @property
    def port(self) -> int:
        """The port the master listens on."""
        return self.coordinator.port

    @property
    def leader(self) -> str:
        """This master's leader id, written with its epoch into its checkpoints (the fencing token): its address."""
        return f"{self.distributed_config.host}:{self.port}"

    def _resume(self, config: DistributedConfig) -> int:
        """Load the checkpoint, if there is one; the epoch to start at: a standby's as saved (it leads nothing),
        a primary's above it unless this master led it (``core.fencing.resumed_epoch``)."""
        self._resumed = self.checkpoint_path is not None and self.checkpoint_path.exists()
        self._led = False
        """Whether this master led the epoch of the checkpoint it resumed (a standby then follows as one linked)."""
        if not self._resumed:
            return 1
        state, saved, leader = Checkpoint.read_fenced(self.checkpoint_path)
        self.load_state_dict(state)
        me = f"{config.host}:{config.port}" if config.port else None
        self._led = me is not None and leader == me
        epoch = (saved or 1) if config.standby_of is not None else resumed_epoch(saved, leader, me)
        logger.info("resumed from checkpoint %s at generation %d (epoch %d, led by %s)", self.checkpoint_path,
                    self.generation, epoch, leader or "no one named")
        return epoch

    def _lead(self) -> None:
        """About to lead: take the checkpoint's lock (CheckpointError naming its holder if another master has it)."""
        if self._lock is not None:
            config = self.distributed_config
            self._lock.acquire(f"pid {os.getpid()} on {socket.gethostname()}, master on {config.host}:{config.port}")

    def run_generation(self, fitness_fn: FitnessFunction | None = None) -> None:
        """Breed and evaluate one generation on the workers (``fitness_fn`` is ignored), then save the checkpoint
        if configured and send the state to the standby, if one follows (one that links later gets the last state
        sent, at worst the start, and the next generation's: an older state only replays generations the same
        way)."""
        if self.coordinator.standby:
            raise DistributedError("a standby evolves only once promoted: call follow() first")
        self.evaluator.local = fitness_fn
        super().run_generation(self.evaluator)
        self.coordinator.reached(self.generation)  # before any standby holds it
        linked = self.coordinator.standby_linked
        if self.checkpoints is None and not linked:
            return
        state = self.state_dict()  # per-gene work: built once for both, and not for no one
        if self.checkpoints is not None:
            self.checkpoints.save_state(state, self.generation, self.epoch, self.leader)
        if linked:
            self._replicate(state)

    def _replicate(self, state: dict[str, Any]) -> None:
        """Send this population's ``state`` and its statistics rows to the standby."""
        statistics = next((r.rows for r in self.reporters if isinstance(r, StatisticsReporter)),
                          self.replicated_statistics)
        self.coordinator.replicate(self.generation, encode_state(state, statistics))

    def follow(self) -> bool:
        """A standby: follow the primary until it ends the run (False) or is gone for ``peer_timeout``
        (True: promoted, this population holds the last replicated state and leads the run as the next epoch,
        ``replicated_statistics`` the primary's statistics rows)."""
        link = StandbyLink(self.distributed_config, self._replicated, self.epoch, self.generation, self._led)
        ended = link.follow()
        if isinstance(ended, Shutdown):
            logger.info("standby: the primary ended the run (%s); not taking over", ended.reason)
            return False
        logger.warning("standby: promoting to epoch %d: %s", ended.epoch, ended.reason)
        snapshot = link.core.snapshot
        if snapshot is not None:
            self.load_state_dict(snapshot.population)
            self.replicated_statistics = snapshot.statistics
        self._lead()
        epoch = self.coordinator.promotion(ended.epoch)
        state = self.state_dict()
        if self.checkpoints is not None:  # the epoch on disk before a worker serves it: a resubmission resumes it
            self.checkpoints.save_state(state, self.generation, epoch, self.leader)
        self.epoch = self.coordinator.promote(epoch)
        self._fence = OldPrimaryFence(self.distributed_config, self.epoch)
        self._fence.start()
        self._replicate(state)  # a standby of its own (the old primary, restarted) gets it at once
        return True

    @staticmethod
    def _run_settings(state: dict[str, Any], seeded: bool = True) -> dict[str, Any]:
        """The settings of a run file found in a population state: inputs, outputs, evolution config and (if one
        was given rather than drawn at random) the seed."""
        settings = {"num_inputs": state["num_inputs"], "num_outputs": state["num_outputs"], **state["config"]}
        return {**settings, "seed": state["seed"]} if seeded else settings

    def _check_same_run(self, state: dict[str, Any]) -> None:
        """A standby given another run file than its primary's would adopt the primary's run unawares: refuse."""
        theirs = self._run_settings(state)
        differ = [f"{key} {theirs[key]!r} there, {mine!r} here" for key, mine in self._settings.items()
                  if theirs[key] != mine]
        if differ:
            raise DistributedError(f"standby: the run of the primary at {self.distributed_config.standby_of} differs "
                                   f"from this standby's ({'; '.join(differ)}); give the standby the primary's run "
                                   "file")

    def _replicated(self, snapshot: Snapshot) -> None:
        """Check that the primary's latest state is of this run, then save it to this standby's checkpoint, if it
        has one."""
        self._check_same_run(snapshot.population)
        self.coordinator.holds(snapshot.epoch, snapshot.generation)
        if self.checkpoints is not None:
            self.checkpoints.save_state(snapshot.population, snapshot.generation, snapshot.epoch,
                                        self.distributed_config.standby_of)
        logger.info("standby: replicated generation %d of the primary (epoch %d)", snapshot.generation,
                    snapshot.epoch)

    def shutdown(self) -> None:
        """Tell every worker to exit and free the master's port."""
        if self._fence is not None:
            self._fence.close()
        self.evaluator.close()
        if self._lock is not None:
            self._lock.release()

    def __enter__(self) -> DistributedPopulation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
