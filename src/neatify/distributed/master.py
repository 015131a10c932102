"""The master: ``SystemCoordinator`` serves workers over TCP; ``DistributedPopulation`` evolves with it."""

from __future__ import annotations

import errno
import ipaddress
import logging
import math
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from neatify.checkpoint import Checkpoint
from neatify.config import EvolutionConfig
from neatify.distributed import auth, tls
from neatify.distributed.config import DistributedConfig
from neatify.distributed.errors import (
    ConnectionClosed, DistributedError, ProtocolError, RemoteFitnessError, WorkerLostError, WorkerWaitTimeout,
)
from neatify.distributed.protocol import PROTOCOL_VERSION, FramedConnection, MessageType
from neatify.distributed.scheduler import Batch, GenerationJob, batch_size, speed_pool
from neatify.genome import Genome
from neatify.population import FitnessFunction, Population

logger = logging.getLogger("neatify.distributed.master")

_SPEED_SMOOTHING = 0.5
_SHUTDOWN_GRACE = 2.0
_ACCEPT_RETRY = (0.05, 1.0)
"""First and longest wait (seconds) before accepting again after accept() failed (e.g. out of descriptors)."""


@dataclass(eq=False)
class _Peer:
    """A registered worker connection."""

    conn: FramedConnection
    worker_id: str
    """Canonical (``auth.canonical_worker_id``), so ids sent as 7 and "7" are one worker."""
    capacity: int
    address: str
    last_seen: float
    batch: Batch | None = None
    speed: float | None = None
    probe_sent: float | None = None
    """When the oldest heartbeat not yet answered (by any message) was sent; None: none outstanding."""

    @property
    def counts_in_share(self) -> bool:
        """Whether this worker takes part in the speed share: not while it sits on a timed-out batch."""
        return self.batch is None or not self.batch.timed_out


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
        self._tls = None if config.tls_cert is None else tls.server_context(config.tls_cert, config.tls_key)

    # --- lifecycle ---
    def start(self) -> None:
        """Bind the listening socket and start accepting workers."""
        if not _is_loopback(self.config.host) and not self.config.auth_token:
            logger.warning("master listening on %s without an auth token: anyone who can reach this port can "
                           "register a worker; set auth_token or $NEATIFY_AUTH_TOKEN", self.config.host)
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.config.host, self.config.port))
        listener.listen(self.config.listen_backlog)
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
        """Accept until shutdown; a failed accept (out of descriptors, say) is logged and retried with backoff."""
        assert self._listener is not None
        failures = 0
        while not self._stopping.is_set():
            try:
                sock, address = self._listener.accept()
                self._open(sock, f"{address[0]}:{address[1]}")
            except (OSError, RuntimeError) as exc:  # RuntimeError: no thread could be started
                if self._stopping.is_set():
                    return
                failures += 1
                delay = min(_ACCEPT_RETRY[1], _ACCEPT_RETRY[0] * 2 ** (failures - 1))
                log = logger.warning if failures == 1 else logger.debug
                log("cannot accept a connection (%s); retrying in %.2fs%s", exc, delay,
                    " (raise the open-files limit, ulimit -n)" if getattr(exc, "errno", None) == errno.EMFILE else "")
                self._stopping.wait(delay)
                continue
            if failures:
                logger.info("accepting connections again after %d failed attempt(s)", failures)
                failures = 0

    def _open(self, sock: socket.socket, name: str) -> None:
        """Start serving one accepted connection in a thread of its own."""
        try:
            conn = FramedConnection(sock, self.config.max_frame_bytes, min(1.0, self.config.heartbeat_interval),
                                    stall_timeout=self.config.peer_timeout)
        except OSError:
            sock.close()
            raise
        with self._cond:
            self._connections.add(conn)
        try:
            threading.Thread(target=self._serve, args=(conn, name), name=f"neatify-master-{name}",
                             daemon=True).start()
        except RuntimeError:
            with self._cond:
                self._connections.discard(conn)
            conn.close()
            raise

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
        """TLS handshake (if configured), registration and authentication, all within handshake_timeout."""
        deadline = time.monotonic() + self.config.handshake_timeout
        if self._tls is not None and not self._start_tls(conn, deadline, address):
            return None
        hello = self._expect_registration(conn, deadline, address)
        if hello is None:
            return None
        worker_id = auth.canonical_worker_id(hello["worker_id"])
        if hello["protocol_version"] != PROTOCOL_VERSION:
            return self._refuse(conn, address, f"protocol version mismatch: worker {worker_id} speaks version "
                                f"{hello['protocol_version']}, master speaks {PROTOCOL_VERSION}", code="version")
        if self.config.auth_token and not self._authenticate(conn, hello, worker_id, deadline, address):
            return None
        with self._cond:
            if self._stopping.is_set():
                return None
            duplicate = any(p.worker_id == worker_id for p in self._peers)
            if not duplicate:  # ack before the peer is listed, so no task or heartbeat can overtake the ack
                conn.mark_registered(max_items=hello["capacity"])  # a report lists at most one batch's genomes
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

    def _start_tls(self, conn: FramedConnection, deadline: float, address: str) -> bool:
        """Run the TLS handshake in this connection's thread (never the accept loop); False if it failed."""
        assert self._tls is not None
        try:
            conn.start_tls(self._tls, deadline)
        except OSError as exc:
            logger.warning("closing connection from %s: TLS handshake failed (%s)", address, exc or type(exc).__name__)
            return False
        return True

    def _authenticate(self, conn: FramedConnection, hello: dict[str, Any], worker_id: str, deadline: float,
                      address: str) -> bool:
        """Mutual challenge-response: prove the token over both nonces, then check the worker's proof."""
        token = self.config.auth_token
        assert token
        if "nonce" not in hello:
            self._refuse(conn, address, f"authentication failed for worker {worker_id}: its registration has no "
                         "nonce", code="auth")
            return False
        nonce = auth.new_nonce()
        conn.send(MessageType.REGISTRATION_ACK, {
            "status": "challenge", "nonce": nonce,
            "proof": auth.proof(token, "master", PROTOCOL_VERSION, hello["nonce"], nonce, worker_id)})
        answer = self._expect_registration(conn, deadline, address)
        if answer is None:
            return False
        candidate = answer.pop("proof", b"")
        if answer != hello or not auth.verify(candidate, token, "worker", PROTOCOL_VERSION, hello["nonce"], nonce,
                                              worker_id):
            self._refuse(conn, address, f"authentication failed for worker {worker_id}: wrong or missing auth token "
                         "(or a proof not made for this connection)", code="auth")
            return False
        return True

    def _expect_registration(self, conn: FramedConnection, deadline: float, address: str) -> dict[str, Any] | None:
        """The next WORKER_REGISTRATION; None (logged) on timeout or when the worker refuses this master."""
        message = conn.recv(deadline)
        if message is None:
            logger.warning("closing connection from %s: no registration within %.1fs", address,
                           self.config.handshake_timeout)
            return None
        mtype, payload = message
        if mtype is MessageType.ERROR_REPORT:
            logger.warning("worker from %s refused this master: %s", address, payload["message"])
            return None
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
        non_finite = next(((i, v) for i, v in payload["fitness"] if not math.isfinite(v)), None)
        if non_finite is not None:  # a conforming worker reports such a value as an error, never as fitness
            raise ProtocolError(f"FITNESS_REPORT for batch {batch.id} gives genome {non_finite[0]} the non-finite "
                                f"fitness {non_finite[1]!r}")
        peer.batch = None
        elapsed = max(time.monotonic() - batch.sent_at, 1e-6)
        speed = len(batch.genome_ids) / elapsed
        peer.speed = speed if peer.speed is None else _SPEED_SMOOTHING * peer.speed + (1 - _SPEED_SMOOTHING) * speed
        job = batch.job
        if job is None or job.finished:
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
            if batch is not None and not batch.timed_out:
                self._recover(batch, f"worker {peer.worker_id} lost ({reason})")
            self._cond.notify_all()
        peer.conn.close()

    def _recover(self, batch: Batch, why: str) -> None:
        """Called with the lock held: re-queue a batch, or fail the generation without fault tolerance."""
        job = batch.job
        assert job is not None and not job.finished, "only batches of the running generation are recovered"
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
            with self._cond:
                peers = list(self._peers)
            for peer in peers:
                problem = self._health_problem(peer, time.monotonic())
                if problem is not None:
                    self._drop(peer, problem)
                    continue
                try:  # a send in flight (a big batch) makes progress of its own: no heartbeat queued behind it
                    sent_at = time.monotonic()
                    if peer.conn.send_if_idle(MessageType.HEARTBEAT_REQUEST, {"sent": time.time()}) \
                            and peer.probe_sent is None:
                        peer.probe_sent = sent_at
                except OSError as exc:
                    self._drop(peer, f"heartbeat failed: {exc}")

    def _health_problem(self, peer: _Peer, now: float) -> str | None:
        """Why ``peer`` must be dropped now: a heartbeat unanswered too long while no bytes we sent moved
        toward it (a busy master delays probes, never blames the peer), or a batch it never reports."""
        if peer.probe_sent is not None and peer.last_seen >= peer.probe_sent:
            peer.probe_sent = None
        if peer.probe_sent is not None:
            silent = now - peer.probe_sent
            delivered = peer.conn.delivered_at()
            if delivered is not None:
                silent = min(silent, now - delivered)
            if silent > self.config.peer_timeout:
                return f"no answer for {silent:.1f}s"
        batch = peer.batch
        if batch is not None and now - batch.sent_at > self.config.result_deadline:
            return (f"no result for batch {batch.id} after {now - batch.sent_at:.1f}s "
                    f"(2 x task_timeout; its genomes were re-sent)")
        return None

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
                for peer in self._peers:  # batches still out (timed out, or the run failed) pin no genomes
                    if peer.batch is not None and peer.batch.job is job:
                        peer.batch.release()
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
            default, total = speed_pool([p.speed for p in self._peers if p.counts_in_share])
            for peer in self._peers:
                if peer.batch is not None or not job.pending:
                    continue
                size = batch_size(len(job.pending), peer.capacity, (peer.speed or default) / total,
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
