"""The master: ``SystemCoordinator`` serves workers over TCP; ``DistributedPopulation`` evolves with it."""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from neatify.checkpoint import Checkpoint
from neatify.config import EvolutionConfig
from neatify.distributed import auth
from neatify.distributed.config import DistributedConfig
from neatify.distributed.errors import (
    ConnectionClosed, DistributedError, ProtocolError, RemoteFitnessError, WorkerLostError, WorkerWaitTimeout,
)
from neatify.distributed.protocol import PROTOCOL_VERSION, FramedConnection, MessageType
from neatify.distributed.scheduler import Batch, GenerationJob, batch_size
from neatify.genome import Genome
from neatify.population import FitnessFunction, Population

logger = logging.getLogger("neatify.distributed.master")

_SPEED_SMOOTHING = 0.5
_SHUTDOWN_GRACE = 2.0


@dataclass(eq=False)
class _Peer:
    """A registered worker connection."""

    conn: FramedConnection
    worker_id: int | str
    capacity: int
    address: str
    last_seen: float
    batch: Batch | None = None
    speed: float | None = None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class SystemCoordinator:
    """Accepts and registers workers, watches them with heartbeats, and farms out a generation's genomes."""

    def __init__(self, config: DistributedConfig) -> None:
        self.config = config
        self._cond = threading.Condition()
        self._peers: list[_Peer] = []
        self._connections: set[FramedConnection] = set()
        self._job: GenerationJob | None = None
        self._next_batch_id = 0
        self._started = False
        """Whether min_workers were reached once; later generations only need one worker."""
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._listener: socket.socket | None = None

    # --- lifecycle ---
    def start(self) -> None:
        """Bind the listening socket and start accepting workers."""
        if not _is_loopback(self.config.host) and not self.config.auth_token:
            logger.warning("master listening on %s without an auth token: anyone who can reach this port can "
                           "register a worker; set auth_token or $NEATIFY_AUTH_TOKEN", self.config.host)
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.config.host, self.config.port))
        listener.listen(64)
        self._listener = listener
        logger.info("master listening on %s:%d", self.config.host, self.port)
        for target, name in ((self._accept_loop, "accept"), (self._monitor_loop, "monitor")):
            thread = threading.Thread(target=target, name=f"neatify-master-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    @property
    def port(self) -> int:
        """The port actually bound (useful with ``port=0``)."""
        assert self._listener is not None, "coordinator not started"
        return self._listener.getsockname()[1]

    @property
    def num_workers(self) -> int:
        """Workers registered right now."""
        with self._cond:
            return len(self._peers)

    def shutdown(self) -> None:
        """Send SHUTDOWN_SIGNAL to every worker, close every connection and free the port."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        with self._cond:
            peers = list(self._peers)
            self._cond.notify_all()
        for peer in peers:
            try:
                peer.conn.send(MessageType.SHUTDOWN_SIGNAL, {"reason": "master shutting down"})
            except OSError:
                pass
        deadline = time.monotonic() + _SHUTDOWN_GRACE
        with self._cond:  # let workers close first, so the port is not held in TIME_WAIT here
            while self._peers and time.monotonic() < deadline:
                self._cond.wait(0.05)
            connections = list(self._connections)
        for conn in connections:
            conn.close()
        if self._listener is not None:
            try:
                self._listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._listener.close()
        for thread in self._threads:
            thread.join(timeout=5.0)
        logger.info("master shut down; sent shutdown to %d worker(s)", len(peers))

    # --- connections ---
    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                sock, address = self._listener.accept()
            except OSError:
                return
            conn = FramedConnection(sock, self.config.max_frame_bytes, min(1.0, self.config.heartbeat_interval))
            with self._cond:
                if self._stopping.is_set():
                    conn.close()
                    return
                self._connections.add(conn)
            name = f"{address[0]}:{address[1]}"
            threading.Thread(target=self._serve, args=(conn, name), name=f"neatify-master-{name}",
                             daemon=True).start()

    def _serve(self, conn: FramedConnection, address: str) -> None:
        peer: _Peer | None = None
        reason = "connection closed"
        try:
            peer = self._register(conn, address)
            if peer is None:
                return
            while True:
                message = conn.recv()
                assert message is not None
                self._dispatch(peer, *message)
        except ProtocolError as exc:
            reason = f"protocol error: {exc}"
            logger.warning("closing connection from %s (worker %s): %s", address,
                           "?" if peer is None else peer.worker_id, exc)
        except (ConnectionClosed, OSError) as exc:
            reason = str(exc) or type(exc).__name__
        finally:
            if peer is not None:  # first, so that a send failing on the closed socket cannot claim the reason
                self._drop(peer, reason)
            conn.close()
            with self._cond:
                self._connections.discard(conn)

    def _register(self, conn: FramedConnection, address: str) -> _Peer | None:
        deadline = time.monotonic() + self.config.handshake_timeout
        hello = self._expect_registration(conn, deadline, address)
        if hello is None:
            return None
        worker_id = hello["worker_id"]
        if hello["protocol_version"] != PROTOCOL_VERSION:
            return self._refuse(conn, address, f"protocol version mismatch: worker {worker_id} speaks version "
                                f"{hello['protocol_version']}, master speaks {PROTOCOL_VERSION}", code="version")
        token = self.config.auth_token
        if token:
            nonce = auth.new_nonce()
            conn.send(MessageType.REGISTRATION_ACK, {"status": "challenge", "nonce": nonce})
            answer = self._expect_registration(conn, deadline, address)
            if answer is None:
                return None
            if answer["worker_id"] != worker_id or not auth.verify(token, nonce, worker_id, answer.get("proof", b"")):
                return self._refuse(conn, address, f"authentication failed for worker {worker_id}: wrong or "
                                    "missing auth token", code="auth")
        with self._cond:
            if self._stopping.is_set():
                return None
            duplicate = any(p.worker_id == worker_id for p in self._peers)
            if not duplicate:  # ack before the peer is listed, so no task or heartbeat can overtake the ack
                conn.send(MessageType.REGISTRATION_ACK, {"status": "accepted",
                                                         "heartbeat_interval": self.config.heartbeat_interval})
                peer = _Peer(conn, worker_id, hello["capacity"], address, time.monotonic())
                self._peers.append(peer)
                self._cond.notify_all()
                count = len(self._peers)
        if duplicate:
            return self._refuse(conn, address, f"worker id {worker_id} is already connected", code="busy")
        logger.info("worker %s registered from %s (capacity %d); %d worker(s) connected",
                    worker_id, address, peer.capacity, count)
        return peer

    def _expect_registration(self, conn: FramedConnection, deadline: float, address: str) -> dict[str, Any] | None:
        message = conn.recv(deadline)
        if message is None:
            logger.warning("closing connection from %s: no registration within %.1fs", address,
                           self.config.handshake_timeout)
            return None
        mtype, payload = message
        if mtype is not MessageType.WORKER_REGISTRATION:
            raise ProtocolError(f"expected WORKER_REGISTRATION, got {mtype.name}")
        return payload

    @staticmethod
    def _refuse(conn: FramedConnection, address: str, reason: str, code: str) -> None:
        logger.warning("refusing worker from %s: %s", address, reason)
        conn.send(MessageType.ERROR_REPORT, {"message": reason, "fatal": code != "busy", "code": code})
        return None

    def _dispatch(self, peer: _Peer, mtype: MessageType, payload: dict[str, Any]) -> None:
        with self._cond:
            peer.last_seen = time.monotonic()
            if mtype is MessageType.HEARTBEAT_RESPONSE:
                return
            if mtype is MessageType.FITNESS_REPORT:
                self._on_report(peer, payload)
            elif mtype is MessageType.STATUS_UPDATE:
                raise ConnectionClosed(f"worker {peer.worker_id} is leaving")
            elif mtype is MessageType.ERROR_REPORT:
                raise ConnectionClosed(f"worker {peer.worker_id} reported an error: {payload['message']}")
            else:
                raise ProtocolError(f"unexpected {mtype.name} from a registered worker")

    def _on_report(self, peer: _Peer, payload: dict[str, Any]) -> None:
        batch = peer.batch
        if batch is None or batch.id != payload["batch_id"]:
            raise ProtocolError(f"FITNESS_REPORT for batch {payload['batch_id']}, which this worker does not hold")
        reported = [pair[0] for pair in payload["fitness"]] + [pair[0] for pair in payload["errors"]]
        if sorted(reported) != sorted(batch.genome_ids):
            raise ProtocolError(f"FITNESS_REPORT for batch {batch.id} does not cover exactly its genomes")
        peer.batch = None
        elapsed = max(time.monotonic() - batch.sent_at, 1e-6)
        speed = len(batch.genome_ids) / elapsed
        peer.speed = speed if peer.speed is None else _SPEED_SMOOTHING * peer.speed + (1 - _SPEED_SMOOTHING) * speed
        job = batch.job
        if job.finished:
            logger.debug("ignoring late result of batch %d from worker %s", batch.id, peer.worker_id)
        elif job.record(batch, payload["fitness"], payload["errors"], peer.worker_id) == 0:
            logger.info("ignoring duplicate result of batch %d from worker %s", batch.id, peer.worker_id)
        elif payload["errors"] and self.config.error_fitness is None and job.error is None:
            genome_id, trace = payload["errors"][0]
            job.error = RemoteFitnessError(peer.worker_id, genome_id, trace)
        self._cond.notify_all()

    def _drop(self, peer: _Peer, reason: str) -> None:
        """Forget a worker; its unfinished batch goes back to the pending genomes."""
        with self._cond:
            if peer not in self._peers:
                return
            self._peers.remove(peer)
            batch, peer.batch = peer.batch, None
            if not self._stopping.is_set():
                logger.warning("worker %s lost (%s); %d worker(s) connected", peer.worker_id, reason,
                               len(self._peers))
            if batch is not None and not batch.job.finished and not batch.timed_out:
                self._recover(batch, f"worker {peer.worker_id} lost ({reason})")
            self._cond.notify_all()
        peer.conn.close()

    def _recover(self, batch: Batch, why: str) -> None:
        """Called with the lock held: re-queue a batch, or fail the generation without fault tolerance."""
        job = batch.job
        if not self.config.enable_fault_tolerance:
            if job.error is None:
                job.error = WorkerLostError(f"{why} with batch {batch.id} unfinished and enable_fault_tolerance "
                                            "off")
            return
        if job.requeue(batch):
            logger.warning("%s: re-sending the unfinished genomes of batch %d", why, batch.id)

    def _monitor_loop(self) -> None:
        interval = self.config.heartbeat_interval
        while not self._stopping.wait(interval):
            now = time.monotonic()
            with self._cond:
                peers = list(self._peers)
            for peer in peers:
                silent = now - peer.last_seen
                if silent > self.config.peer_timeout:
                    self._drop(peer, f"no answer for {silent:.1f}s")
                    continue
                try:
                    peer.conn.send(MessageType.HEARTBEAT_REQUEST, {"sent": time.time()})
                except OSError as exc:
                    self._drop(peer, f"heartbeat failed: {exc}")

    # --- evaluation ---
    def wait_for_workers(self, count: int) -> None:
        """Block until ``count`` workers are registered (bounded by ``worker_wait_timeout``)."""
        with self._cond:
            self._wait_until(lambda: len(self._peers) >= count,
                             f"waiting for {count} worker(s) to register on port {self.port}")

    def _wait_until(self, ready: Any, why: str) -> None:
        """Called with the lock held: wait for ``ready()``, logging why, up to worker_wait_timeout."""
        if ready():
            return
        limit = self.config.worker_wait_timeout
        deadline = None if limit is None else time.monotonic() + limit
        logger.info("%s (%d connected)", why, len(self._peers))
        while not ready():
            if self._stopping.is_set():
                raise DistributedError("master shut down while waiting for workers")
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise WorkerWaitTimeout(f"gave up after {limit:.1f}s {why} ({len(self._peers)} connected); "
                                        "start workers or raise worker_wait_timeout")
            self._cond.wait(0.5 if remaining is None else min(0.5, remaining))

    def evaluate(self, genomes: list[Genome], generation: int) -> dict[int, float]:
        """Evaluate ``genomes`` on the workers; returns genome id -> fitness, exactly one per genome.

        The first call waits for ``min_workers``; later ones go on with whatever workers are left.
        """
        self.wait_for_workers(1 if self._started else self.config.min_workers)
        self._started = True
        start = time.monotonic()
        with self._cond:
            job = self._job = GenerationJob(generation, genomes)
        try:
            while True:
                sends = self._plan(job)
                for peer, payload in sends:
                    try:
                        peer.conn.send(MessageType.TASK_ASSIGNMENT, payload)
                    except OSError as exc:
                        self._drop(peer, f"sending batch failed: {exc}")
                with self._cond:
                    if job.error is not None:
                        raise job.error
                    if job.done:
                        break
                    self._expire(job)
                    if not self._peers:
                        self._wait_until(lambda: bool(self._peers) or job.done or job.error is not None,
                                         f"all workers gone with {len(job.genomes) - len(job.results)} genome(s) "
                                         f"of generation {generation} unevaluated; waiting for workers")
                    elif not self._has_work_for_idle(job):
                        self._cond.wait(min(0.5, self.config.task_timeout / 4))
        finally:
            with self._cond:
                job.finished = True
                self._job = None
                workers = len(self._peers)
        elapsed = max(time.monotonic() - start, 1e-9)
        logger.info("generation %d: %d worker(s) connected, %d batch(es) sent, %d re-sent after a failure, "
                    "%d duplicate(s) ignored, %.1f genomes/s", generation, workers, job.batches_sent,
                    job.batches_resent, job.duplicates_ignored, len(genomes) / elapsed)
        fitness = dict(job.results)
        for genome_id, (worker_id, trace) in job.failures.items():
            logger.warning("fitness function raised on worker %s for genome %d; giving it error_fitness %r:\n%s",
                           worker_id, genome_id, self.config.error_fitness, trace.rstrip())
            fitness[genome_id] = float(self.config.error_fitness)  # type: ignore[arg-type]
        return fitness

    def _has_work_for_idle(self, job: GenerationJob) -> bool:
        return bool(job.pending) and any(p.batch is None for p in self._peers)

    def _plan(self, job: GenerationJob) -> list[tuple[_Peer, dict[str, Any]]]:
        """Give a batch to every idle worker while genomes are pending (lock taken here)."""
        sends = []
        with self._cond:
            speeds = [p.speed for p in self._peers]
            for peer in self._peers:
                if peer.batch is not None or not job.pending:
                    continue
                size = batch_size(len(job.pending), peer.capacity, peer.speed, speeds,
                                  self.config.batch_size_per_worker)
                ids = job.take(size)
                if not ids:
                    break
                self._next_batch_id += 1
                peer.batch = Batch(self._next_batch_id, job, ids, time.monotonic())
                job.batches_sent += 1
                sends.append((peer, {"batch_id": peer.batch.id, "generation": job.generation,
                                     "genomes": [job.payloads[i] for i in ids]}))
        return sends

    def _expire(self, job: GenerationJob) -> None:
        """Called with the lock held: re-queue batches older than task_timeout (their worker keeps them)."""
        now = time.monotonic()
        for peer in self._peers:
            batch = peer.batch
            if batch is not None and batch.job is job and not batch.timed_out \
                    and now - batch.sent_at > self.config.task_timeout:
                self._recover(batch, f"worker {peer.worker_id} exceeded task_timeout "
                                     f"({self.config.task_timeout:.1f}s)")


class DistributedPopulation(Population):
    """A ``Population`` whose genomes are evaluated by ``WorkerNode``s over TCP.

    The fitness function given to ``run_generation`` on the master is ignored: the workers' own
    fitness functions compute fitness (pass a dummy such as ``lambda genomes: None``). With
    ``checkpoint_path`` the population is restored from that file when it exists, and saved to
    it after every evaluated generation, so a restarted master continues the run exactly. A damaged
    checkpoint, or a path where none can be written, raises ``CheckpointError`` before any worker is served.
    """

    def __init__(self, pop_size: int | None = None, num_inputs: int = 2, num_outputs: int = 1,
                 config: EvolutionConfig | None = None, seed: int | None = None,
                 distributed_config: DistributedConfig | None = None,
                 checkpoint_path: str | Path | None = None) -> None:
        super().__init__(pop_size, num_inputs, num_outputs, config, seed)
        self.checkpoint_path = None if checkpoint_path is None else Path(checkpoint_path)
        if self.checkpoint_path is not None:
            Checkpoint.check_writable(self.checkpoint_path)
            if self.checkpoint_path.exists():
                self.load_state_dict(Checkpoint.read_state(self.checkpoint_path))
                logger.info("resumed from checkpoint %s at generation %d", self.checkpoint_path, self.generation)
        self.distributed_config = distributed_config if distributed_config is not None else DistributedConfig()
        self.coordinator = SystemCoordinator(self.distributed_config)
        self.coordinator.start()

    @property
    def port(self) -> int:
        """The port the master listens on."""
        return self.coordinator.port

    def evaluate(self, fitness_fn: FitnessFunction) -> None:
        """Set each genome's fitness from the workers; ``fitness_fn`` is ignored."""
        fitness = self.coordinator.evaluate(self.genomes, self.generation)
        for genome in self.genomes:
            genome.fitness = fitness[genome.id]

    def run_generation(self, fitness_fn: FitnessFunction) -> None:
        """Breed and evaluate one generation on the workers, then save the checkpoint if configured."""
        super().run_generation(fitness_fn)
        if self.checkpoint_path is not None:
            Checkpoint.save(self, self.checkpoint_path)

    def shutdown(self) -> None:
        """Tell every worker to exit and free the master's port."""
        self.coordinator.shutdown()

    def __enter__(self) -> DistributedPopulation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
