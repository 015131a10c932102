"""The master's side of the protocol, sans I/O: fed connection events and the time, it returns actions.

In the manner of h11, no socket, thread or clock lives here: ``SystemCoordinator`` drives it from one
event loop, and the tests drive it with a fake clock and in-memory peers. It owns registration
(mutual authentication), heartbeats and timeouts, batch planning, results and recovery.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

import numpy as np

from neatify.distributed.wire import auth
from neatify.distributed.config import DistributedConfig
from neatify.distributed.errors import (
    DistributedError, ProtocolError, RemoteFitnessError, SupersededError, WorkerLostError, WorkerWaitTimeout,
)
from neatify.distributed.wire.messages import (
    ErrorReport, FitnessReport, HeartbeatRequest, HeartbeatResponse, Message, RegistrationAck, ShutdownSignal,
    StandbyRegistration, StatusReport, StatusRequest, StatusUpdate, WorkerRegistration,
)
from neatify.distributed.wire.framing import PROTOCOL_VERSION, FrameDecoder, encode_frame
from neatify.distributed.core.scheduler import Batch, GenerationJob, Pace, SpeedShare, batch_size, smoothed

logger = logging.getLogger("neatify.distributed.io.master")

_RETRYABLE = ("busy", "standby", "epoch")
"""ERROR_REPORT codes of a refusal that another try, or another master, may get past (``fatal`` false)."""
_Request = WorkerRegistration | StatusRequest | StandbyRegistration
"""A first request the master authenticates: a worker's, a status client's or a standby's."""


@dataclass(frozen=True)
class Send:
    """Write ``data`` (whole frames) to connection ``conn``."""

    conn: int
    data: bytes


@dataclass(frozen=True)
class Close:
    """Close connection ``conn``: after what was sent to it (``flush``), or at once (a silent peer reads nothing)."""

    conn: int
    reason: str
    flush: bool = True


Action = Send | Close


@dataclass(eq=False)
class _Peer:
    """A registered worker."""

    conn: int
    worker_id: str
    capacity: int
    address: str
    last_seen: float
    batches: list[Batch] = field(default_factory=list)
    """Its batches out, oldest first: at most two, the second sent ahead while the first is evaluated."""
    speed: float | None = None
    pace: Pace = field(default_factory=Pace)
    probe_sent: float | None = None
    """When the oldest heartbeat not yet answered (by any message) was sent; None: none outstanding."""
    counted: bool = True
    """Whether it is in the speed share: not while it sits on a timed-out batch."""


@dataclass(eq=False)
class _Follower:
    """The standby master following this one (at most one): it gets the state after every generation."""

    conn: int
    address: str
    last_seen: float
    probe_sent: float | None = None


@dataclass(eq=False)
class _Connection:
    """A connection, registered or not yet."""

    id: int
    address: str
    opened: float
    decoder: FrameDecoder
    hello: _Request | None = None
    """The registration being authenticated (its ``nonce`` answered by ``master_nonce``)."""
    master_nonce: bytes | None = None
    peer: _Peer | None = None
    status_client: bool = False
    """It asked for the status (STATUS_REQUEST) instead of registering: it never becomes a worker."""
    standby_client: bool = False
    """It registers as a standby (STANDBY_REGISTRATION): it follows this master, never becomes a worker."""
    follower: _Follower | None = None


@dataclass
class _Running:
    """The generation being evaluated and when it (or the wait for any worker) began."""

    job: GenerationJob
    started: float
    alone_since: float | None = None


@dataclass
class Outcome:
    """A finished generation: fitness by genome id, or the error that ended it."""

    job: GenerationJob
    fitness: dict[int, float] = field(default_factory=dict)
    error: DistributedError | None = None


class MasterProtocol:
    """The master's state machine. Every method takes ``now`` (seconds, any monotonic clock) and returns
    the actions to carry out in order; ``take_outcome()`` hands over a generation once it is finished."""

    def __init__(self, config: DistributedConfig, where: str = "?", started: float = 0.0, epoch: int = 1,
                 standby: bool = False) -> None:
        self.config = config
        self.epoch = epoch
        """This master's epoch: a promoted standby leads with its primary's plus one (told to every worker)."""
        self.standby = standby
        """Following a primary: workers are refused (non-fatally, so they try their next master) until ``promote``."""
        self.stood_down: SupersededError | None = None
        """Set once a peer showed a higher epoch: this master serves no one any more."""
        self._follower: _Follower | None = None
        self._snapshot: bytes | None = None
        """The last STATE_SNAPSHOT frame, sent to a standby as soon as it registers."""
        self.where = where
        """The listening address, for log lines."""
        self.started = started
        """When the master started (on the clock of ``now``), for the status report's uptime."""
        self._connections: dict[int, _Connection] = {}
        self._peers: dict[str, _Peer] = {}
        self._idle: dict[_Peer, None] = {}
        """Registered peers without a batch, in the order they became idle (an ordered set)."""
        self._open: dict[_Peer, None] = {}
        """Peers with one batch out, too small to amortise their round trip: a second may be sent ahead."""
        self._share = SpeedShare()
        self._running: _Running | None = None
        self._outcome: Outcome | None = None
        self._next_batch_id = 0
        self._last_heartbeat = started
        """When heartbeats last went out: the first round one interval after the start (a worker that has just
        registered has just shown it is alive, and a round to every worker costs the master a send each)."""
        self._generation = -1
        """The generation running, or the last one submitted (-1: none yet)."""
        self._last_rate = 0.0
        """Genomes per second of the last generation evaluated."""
        self.stopping = False

    # --- what the driver reads ---
    @property
    def num_workers(self) -> int:
        """Workers registered right now."""
        return len(self._peers)

    def status(self, now: float) -> StatusReport:
        """The STATUS_REPORT: workers and their load, genomes left in the generation, the last rate."""
        running = self._running
        return StatusReport(workers=len(self._peers), busy=len(self._peers) - len(self._idle), idle=len(self._idle),
                            pending=0 if running is None else running.job.unresolved, generation=self._generation,
                            evaluating=running is not None, genomes_per_s=self._last_rate,
                            uptime=max(now - self.started, 0.0))

    def take_outcome(self) -> Outcome | None:
        """The generation finished since the last call, if any."""
        outcome, self._outcome = self._outcome, None
        return outcome

    # --- events ---
    def connected(self, conn: int, address: str, now: float) -> list[Action]:
        """A peer connected (after the TLS handshake, when there is one)."""
        self._connections[conn] = _Connection(conn, address, now, FrameDecoder(self.config.max_frame_bytes))
        return []

    def received(self, conn: int, data: bytes, now: float) -> list[Action]:
        """Bytes arrived on ``conn``."""
        connection = self._connections.get(conn)
        if connection is None:
            return []
        actions: list[Action] = []
        connection.decoder.buffer(data)
        try:
            while conn in self._connections and (message := connection.decoder.next_message()) is not None:
                self._on_message(connection, message, now, actions)
        except ProtocolError as exc:
            self._fail(connection, exc, now, actions)
        return actions

    def closed(self, conn: int, reason: str, now: float, eof: bool = False) -> list[Action]:
        """The connection ended (the peer closed it, or it broke); ``eof``: a clean end of stream."""
        connection = self._connections.pop(conn, None)
        if connection is None:
            return []
        actions: list[Action] = []
        if eof:
            try:
                connection.decoder.check_eof()
            except ProtocolError as exc:
                self._log_closing(connection, exc)
                reason = f"protocol error: {exc}"
        if connection.peer is not None:
            self._drop(connection.peer, reason, now, actions)
        if connection.follower is not None:
            self._unfollow(connection.follower, reason)
        return actions

    def delivered(self, conn: int, now: float) -> None:
        """Bytes sent to ``conn`` moved toward the peer: it reads, so it is alive (its answers may wait
        behind a big batch)."""
        connection = self._connections.get(conn)
        link = None if connection is None else connection.peer or connection.follower
        if link is not None:
            link.last_seen = now

    def tick(self, now: float) -> list[Action]:
        """Time passed: timeouts, heartbeats, late batches, planning."""
        actions: list[Action] = []
        for connection in list(self._connections.values()):
            if connection.peer is None and now - connection.opened > self.config.handshake_timeout:
                logger.info("closing connection from %s: no registration within %.1fs", connection.address,
                            self.config.handshake_timeout)  # a stranger or a port scan: nothing to act on
                self._close(connection, "no registration in time", actions, flush=False)
        for peer in list(self._peers.values()):
            problem = self._health_problem(peer, now)
            if problem is not None:
                self._drop(peer, problem, now, actions)
                self._close(self._connections[peer.conn], problem, actions, flush=False)
        follower = self._follower
        if follower is not None and (problem := self._probe_problem(follower, now)) is not None:
            self._unfollow(follower, problem)
            self._close(self._connections[follower.conn], problem, actions, flush=False)
        if now - self._last_heartbeat >= self.config.heartbeat_interval and not self.stopping:
            self._last_heartbeat = now
            frame = encode_frame(HeartbeatRequest(now))
            for link in [*self._peers.values(), *filter(None, [self._follower])]:
                actions.append(Send(link.conn, frame))
                if link.probe_sent is None:
                    link.probe_sent = now
        if self._running is not None:
            self._expire(now)
            self._check_alone(now)
        self._plan(now, actions)
        return actions

    def submit(self, job: GenerationJob, now: float) -> list[Action]:
        """Start evaluating ``job``'s genomes (one generation at a time)."""
        assert self._running is None, "a generation is already being evaluated"
        self._running = _Running(job, now)
        self._generation = job.generation
        actions: list[Action] = []
        self._check_alone(now)
        self._plan(now, actions)
        self._settle(now)
        return actions

    def shutdown(self, now: float) -> list[Action]:
        """Tell every worker, and the standby, to exit; a generation still running fails."""
        self.stopping = True
        if self._running is not None:
            self._running.job.error = DistributedError("master shut down during the generation")
            self._settle(now)
        frame = encode_frame(ShutdownSignal("master shutting down"))
        return [Send(link.conn, frame) for link in [*self._peers.values(), *filter(None, [self._follower])]]

    def promote(self, epoch: int) -> None:
        """This standby's primary is gone: lead the run as epoch ``epoch``, accepting workers from now on."""
        assert self.standby and epoch > self.epoch, "only a standby is promoted, to a higher epoch"
        self.standby, self.epoch = False, epoch
        logger.warning("standby promoted on %s: leading the run as epoch %d", self.where, epoch)

    @property
    def has_follower(self) -> bool:
        """Whether a standby follows this master now (only then is a generation's state worth building)."""
        return self._follower is not None

    def replicate(self, frame: bytes) -> list[Action]:
        """A generation was evaluated: send its STATE_SNAPSHOT ``frame`` to the standby (and to one that
        registers later)."""
        self._snapshot = frame
        return [] if self._follower is None else [Send(self._follower.conn, frame)]

    # --- registration ---
    def _on_message(self, connection: _Connection, message: Message, now: float, actions: list[Action]) -> None:
        peer = connection.peer
        if connection.follower is not None:
            self._on_follower_message(connection, connection.follower, message, now, actions)
            return
        if peer is None:
            self._on_registration(connection, message, now, actions)
            return
        peer.last_seen = now
        match message:
            case HeartbeatResponse():
                pass
            case FitnessReport():
                self._on_report(peer, message, now)
                self._settle(now)
                self._plan(now, actions)
            case StatusUpdate():
                self._leave(connection, f"worker {peer.worker_id} is leaving", now, actions)
            case ErrorReport():
                self._leave(connection, f"worker {peer.worker_id} reported an error: {message.message}", now, actions)
            case _:
                raise ProtocolError(f"unexpected {message.TYPE.name} from a registered worker")

    def _on_registration(self, connection: _Connection, message: Message, now: float, actions: list[Action]) -> None:
        if isinstance(message, ErrorReport):
            who = "standby" if connection.standby_client else "worker"
            logger.warning("%s from %s refused this master: %s", who, connection.address, message.message)
            self._close(connection, f"the {who} refused this master", actions)
            return
        if connection.status_client or (isinstance(message, StatusRequest) and connection.hello is None):
            self._on_status_request(connection, message, now, actions)
            return
        if connection.standby_client or (isinstance(message, StandbyRegistration) and connection.hello is None):
            self._on_standby_registration(connection, message, now, actions)
            return
        if not isinstance(message, WorkerRegistration):
            raise ProtocolError(f"expected WORKER_REGISTRATION, got {message.TYPE.name}")
        if connection.hello is not None:
            self._check_proof(connection, message, now, actions)
            return
        worker_id = auth.canonical_worker_id(message.worker_id)
        if self.standby:
            self._refuse(connection, f"this master on {self.where} is a standby; it takes workers once its "
                         "primary is gone", "standby", actions)
        elif message.protocol_version != PROTOCOL_VERSION:
            self._refuse(connection, f"protocol version mismatch: worker {worker_id} speaks version "
                         f"{message.protocol_version}, master speaks {PROTOCOL_VERSION}", "version", actions)
        elif not self.config.auth_token:
            self._admit(connection, message, now, actions)
        elif message.nonce is None:
            self._refuse(connection, f"authentication failed for worker {worker_id}: its registration has no "
                         "nonce", "auth", actions)
        else:
            self._challenge(connection, message, worker_id, actions)

    def _challenge(self, connection: _Connection, hello: _Request, worker_id: str, actions: list[Action]) -> None:
        """Answer a first request that carries a nonce with this master's nonce and proof of the token."""
        assert self.config.auth_token and hello.nonce is not None
        connection.hello, connection.master_nonce = hello, auth.new_nonce()
        actions.append(Send(connection.id, encode_frame(RegistrationAck(
            "challenge", nonce=connection.master_nonce,
            proof=auth.proof(self.config.auth_token, "master", PROTOCOL_VERSION, hello.nonce,
                             connection.master_nonce, worker_id)))))

    def _proven(self, connection: _Connection, answer: _Request, role: auth.Role, worker_id: str) -> bool:
        """Whether ``answer`` repeats the first request unchanged plus ``role``'s proof over both nonces."""
        hello, token = connection.hello, self.config.auth_token
        assert hello is not None and hello.nonce is not None and token and connection.master_nonce is not None
        return replace(answer, proof=None) == hello and auth.verify(
            answer.proof or b"", token, role, PROTOCOL_VERSION, hello.nonce, connection.master_nonce, worker_id)

    def _check_proof(self, connection: _Connection, answer: WorkerRegistration, now: float,
                     actions: list[Action]) -> None:
        """The worker's answer to the challenge: the same registration plus its proof over both nonces."""
        hello = connection.hello
        assert isinstance(hello, WorkerRegistration)
        worker_id = auth.canonical_worker_id(hello.worker_id)
        if not self._proven(connection, answer, "worker", worker_id):
            self._refuse(connection, f"authentication failed for worker {worker_id}: wrong or missing auth token "
                         "(or a proof not made for this connection)", "auth", actions)
            return
        self._admit(connection, hello, now, actions)

    def _on_status_request(self, connection: _Connection, message: Message, now: float,
                           actions: list[Action]) -> None:
        """A status client, not a worker: answer STATUS_REPORT and hang up; with a token, only once it has
        given the mutual proof a worker gives (role ``"status"``)."""
        if not isinstance(message, StatusRequest):
            raise ProtocolError(f"expected STATUS_REQUEST, got {message.TYPE.name}")
        connection.status_client = True
        if self._authenticated(connection, message, "status", auth.STATUS_CLIENT_ID, actions):
            actions.append(Send(connection.id, encode_frame(self.status(now))))
            self._close(connection, "status sent", actions)

    def _authenticated(self, connection: _Connection, request: StatusRequest | StandbyRegistration, role: auth.Role,
                       client_id: str, actions: list[Action]) -> bool:
        """Whether a status client's or a standby's request may be served: no token is set, or it gave the
        mutual proof a worker gives under ``role`` (its first request is challenged, a failed one refused)."""
        if not self.config.auth_token:
            return True
        if connection.hello is None:
            if request.nonce is None:
                self._refuse(connection, f"{role} refused: the request has no nonce and this master requires the "
                             "auth token", "auth", actions)
            else:
                self._challenge(connection, request, client_id, actions)
            return False
        if not self._proven(connection, request, role, client_id):
            self._refuse(connection, f"{role} refused: wrong or missing auth token", "auth", actions)
            return False
        return True

    def _admit(self, connection: _Connection, hello: WorkerRegistration, now: float, actions: list[Action]) -> None:
        worker_id = auth.canonical_worker_id(hello.worker_id)
        if self.stopping:
            self._close(connection, "master shutting down", actions)
            return
        if self._fenced(connection, f"worker {worker_id}", hello.epoch or 0, now, actions):
            return
        if worker_id in self._peers:
            self._refuse(connection, f"worker id {worker_id} is already connected", "busy", actions)
            return
        connection.decoder.mark_registered(max_items=hello.capacity)  # a report lists at most one batch
        actions.append(Send(connection.id, self._accepted()))
        peer = connection.peer = _Peer(connection.id, worker_id, hello.capacity, connection.address, now)
        self._peers[worker_id] = peer
        self._share.add(None)
        self._place(peer)
        logger.info("worker %s registered from %s (capacity %d); %d worker(s) connected", worker_id,
                    connection.address, peer.capacity, len(self._peers))
        self._plan(now, actions)

    def _accepted(self) -> bytes:
        """The REGISTRATION_ACK that admits a worker or a standby."""
        return encode_frame(RegistrationAck("accepted", heartbeat_interval=self.config.heartbeat_interval,
                                            epoch=self.epoch))

    def _refuse(self, connection: _Connection, reason: str, code: str, actions: list[Action]) -> None:
        # a standby refuses every worker, and a spare standby retries while another follows, as they should
        log = logger.info if code == "standby" or (code == "busy" and connection.standby_client) else logger.warning
        log("refusing %s from %s: %s", "standby" if connection.standby_client else "worker", connection.address,
            reason)
        actions.append(Send(connection.id, encode_frame(ErrorReport(reason, fatal=code not in _RETRYABLE, code=code))))
        self._close(connection, reason, actions)

    # --- epochs ---
    def _fenced(self, connection: _Connection, who: str, epoch: int, now: float, actions: list[Action]) -> bool:
        """An authenticated peer that has served epoch ``epoch``: above this master's, a newer master leads the
        run and this one stands down (whether it did)."""
        if epoch <= self.epoch:
            return False
        reason = f"{who} from {connection.address} has served epoch {epoch}, newer than this master's {self.epoch}"
        self._refuse(connection, f"this master (epoch {self.epoch}) is superseded and stands down: {reason}", "epoch",
                     actions)
        self._stand_down(reason, now, actions)
        return True

    def _stand_down(self, reason: str, now: float, actions: list[Action]) -> None:
        """Serve no one any more: the running generation fails, every connection closes (workers move on)."""
        error = SupersededError(f"master on {self.where} (epoch {self.epoch}) stood down: {reason}; a newer master "
                                "leads this run, so this one does not continue a second copy of it")
        logger.error("%s", error)
        self.stood_down, self.stopping = error, True
        if self._running is not None and self._running.job.error is None:
            self._running.job.error = error
            self._settle(now)
        for connection in list(self._connections.values()):
            if connection.peer is not None:
                self._drop(connection.peer, "master stood down", now, actions)
            self._close(connection, "master stood down", actions)
        self._follower = None

    # --- the standby following this master ---
    def _on_standby_registration(self, connection: _Connection, message: Message, now: float,
                                 actions: list[Action]) -> None:
        """A standby registers, mutually authenticated as a worker is (role ``"standby"``)."""
        if not isinstance(message, StandbyRegistration):
            raise ProtocolError(f"expected STANDBY_REGISTRATION, got {message.TYPE.name}")
        connection.standby_client = True
        if connection.hello is None and message.protocol_version != PROTOCOL_VERSION:
            self._refuse(connection, f"protocol version mismatch: the standby speaks version "
                         f"{message.protocol_version}, this master {PROTOCOL_VERSION}", "version", actions)
        elif self._authenticated(connection, message, "standby", auth.STANDBY_CLIENT_ID, actions):
            self._follow(connection, message, now, actions)

    def _follow(self, connection: _Connection, hello: StandbyRegistration, now: float, actions: list[Action]) -> None:
        """Admit an authenticated standby (one at a time) and send it the last state at once."""
        if self.stopping:
            self._close(connection, "master shutting down", actions)
            return
        if self._fenced(connection, "standby", hello.epoch, now, actions):
            return
        if self.standby or self._follower is not None:
            why = "this master is a standby itself" if self.standby else "another standby already follows it"
            self._refuse(connection, f"standby refused: {why}", "busy", actions)
            return
        self._follower = connection.follower = _Follower(connection.id, connection.address, now)
        actions.append(Send(connection.id, self._accepted()))
        if self._snapshot is not None:
            actions.append(Send(connection.id, self._snapshot))
        logger.info("standby from %s follows this master (epoch %d)", connection.address, self.epoch)

    def _on_follower_message(self, connection: _Connection, follower: _Follower, message: Message, now: float,
                             actions: list[Action]) -> None:
        follower.last_seen = now
        match message:
            case HeartbeatResponse():
                pass
            case ErrorReport():
                self._unfollow(follower, f"it reported an error: {message.message}")
                self._close(connection, "the standby reported an error", actions)
            case _:
                raise ProtocolError(f"unexpected {message.TYPE.name} from the standby")

    def _unfollow(self, follower: _Follower, reason: str) -> None:
        if self._follower is follower:
            self._follower = None
            if not self.stopping:
                logger.warning("standby from %s lost (%s)", follower.address, reason)

    # --- registered workers ---
    def _on_report(self, peer: _Peer, report: FitnessReport, now: float) -> None:
        batch = next((b for b in peer.batches if b.id == report.batch_id), None)
        if batch is None:
            raise ProtocolError(f"FITNESS_REPORT for batch {report.batch_id}, which this worker does not hold")
        ids, fitness = report.columns()
        batch.check_report(ids, [pair[0] for pair in report.errors])
        if not np.isfinite(fitness).all():  # a conforming worker reports such a value as an error, never as fitness
            i = np.flatnonzero(~np.isfinite(fitness))[0]
            raise ProtocolError(f"FITNESS_REPORT for batch {batch.id} gives genome {ids[i]} the non-finite "
                                f"fitness {float(fitness[i])!r}")
        turnaround = max(now - batch.started, 1e-6)
        self._set_speed(peer, len(batch) / turnaround)
        peer.pace.observe(len(batch), report.elapsed, None if batch.ahead else turnaround)
        peer.batches.remove(batch)
        for waiting in peer.batches:  # the one sent ahead is being evaluated from now on
            waiting.started = max(waiting.started, now)
        self._place(peer)
        job = batch.job
        if job is None or job.finished:
            logger.debug("ignoring late result of batch %d from worker %s", batch.id, peer.worker_id)
        elif job.record(batch, ids, fitness, report.errors, peer.worker_id) == 0:
            logger.info("ignoring duplicate result of batch %d from worker %s", batch.id, peer.worker_id)
        elif report.errors and self.config.error_fitness is None and job.error is None:
            genome_id, trace = report.errors[0]
            job.error = RemoteFitnessError(peer.worker_id, genome_id, trace)

    def _set_speed(self, peer: _Peer, measured: float) -> None:
        old, peer.speed = peer.speed, smoothed(peer.speed, measured)
        if peer.counted:
            self._share.replace(old, peer.speed)

    def _place(self, peer: _Peer) -> None:
        """File a registered peer where planning looks: idle (no batch), open (one batch a second may follow)
        or neither; one with a late batch out counts in no speed share and gets nothing until it reports."""
        late = any(batch.timed_out for batch in peer.batches)
        if late:
            self._uncount(peer)
        elif not peer.counted:
            peer.counted = True
            self._share.add(peer.speed)
        _mark(self._idle, peer, not late and not peer.batches)
        _mark(self._open, peer, not late and len(peer.batches) == 1
              and not peer.pace.amortised(len(peer.batches[0])))

    def _probe_problem(self, link: _Peer | _Follower, now: float) -> str | None:
        """A heartbeat to ``link`` unanswered (by anything) for longer than ``peer_timeout``, if so."""
        if link.probe_sent is not None and link.last_seen >= link.probe_sent:
            link.probe_sent = None
        if link.probe_sent is not None and now - link.probe_sent > self.config.peer_timeout:
            return f"no answer for {now - link.probe_sent:.1f}s"
        return None

    def _health_problem(self, peer: _Peer, now: float) -> str | None:
        """Why ``peer`` must go now: a heartbeat unanswered too long, or a batch it never reports."""
        problem = self._probe_problem(peer, now)
        if problem is not None:
            return problem
        batch = peer.batches[0] if peer.batches else None
        if batch is not None and now - batch.started > self.config.result_deadline:
            return (f"no result for batch {batch.id} after {now - batch.started:.1f}s "
                    f"(2 x task_timeout; its genomes were re-sent)")
        return None

    def _leave(self, connection: _Connection, reason: str, now: float, actions: list[Action]) -> None:
        assert connection.peer is not None
        self._drop(connection.peer, reason, now, actions)
        self._close(connection, reason, actions)

    def _fail(self, connection: _Connection, exc: ProtocolError, now: float, actions: list[Action]) -> None:
        """A bad frame: close this one connection (its batch goes to others), with the reason logged."""
        peer = connection.peer
        self._log_closing(connection, exc)
        if peer is not None:
            self._drop(peer, f"protocol error: {exc}", now, actions)
        self._close(connection, str(exc), actions)

    @staticmethod
    def _log_closing(connection: _Connection, exc: ProtocolError) -> None:
        """A bad frame: a WARNING from a registered worker; from an unregistered peer (a stranger, a port
        scan) only INFO, so that no one without the token can flood the log with warnings."""
        peer = connection.peer
        log = logger.info if peer is None else logger.warning
        log("closing connection from %s (worker %s): %s", connection.address, "?" if peer is None else peer.worker_id,
            exc)

    def _close(self, connection: _Connection, reason: str, actions: list[Action], flush: bool = True) -> None:
        self._connections.pop(connection.id, None)
        actions.append(Close(connection.id, reason, flush))

    def _drop(self, peer: _Peer, reason: str, now: float, actions: list[Action]) -> None:
        """Forget a worker; its unfinished batch goes back to the pending genomes."""
        if self._peers.get(peer.worker_id) is not peer:
            return
        del self._peers[peer.worker_id]
        self._idle.pop(peer, None)
        self._open.pop(peer, None)
        self._uncount(peer)
        batches, peer.batches = peer.batches, []
        if not self.stopping:
            logger.warning("worker %s lost (%s); %d worker(s) connected", peer.worker_id, reason, len(self._peers))
        for batch in batches:
            if not batch.timed_out:
                self._recover(batch, f"worker {peer.worker_id} lost ({reason})")
        self._settle(now)
        self._check_alone(now)
        self._plan(now, actions)

    # --- the generation ---
    def _recover(self, batch: Batch, why: str) -> None:
        """Re-queue a batch of the running generation, or fail it without fault tolerance."""
        job = batch.job
        assert job is not None and not job.finished, "only batches of the running generation are recovered"
        if not self.config.enable_fault_tolerance:
            if job.error is None:
                job.error = WorkerLostError(f"{why} with batch {batch.id} unfinished and enable_fault_tolerance "
                                            "off")
            return
        if job.requeue(batch):
            logger.warning("%s: re-sending the unfinished genomes of batch %d", why, batch.id)

    def _expire(self, now: float) -> None:
        """Re-queue a worker's batches once the one it evaluates is older than task_timeout (the one sent ahead
        waits behind it); the worker keeps them and stops counting in the share."""
        assert self._running is not None
        job = self._running.job
        for peer in self._peers.values():
            head = peer.batches[0] if peer.batches else None
            if head is None or head.timed_out or now - head.started <= self.config.task_timeout:
                continue
            for batch in peer.batches:
                if batch.job is job and not batch.timed_out:
                    self._recover(batch, f"worker {peer.worker_id} exceeded task_timeout "
                                         f"({self.config.task_timeout:.1f}s)")
            self._place(peer)
        self._settle(now)

    def _uncount(self, peer: _Peer) -> None:
        if peer.counted:
            peer.counted = False
            self._share.remove(peer.speed)

    def _check_alone(self, now: float) -> None:
        """With no worker at all, log it once and fail after worker_wait_timeout."""
        running = self._running
        if running is None or self._peers:
            if running is not None:
                running.alone_since = None
            return
        job = running.job
        if running.alone_since is None:
            running.alone_since = now
            logger.warning("all workers gone with %d genome(s) of generation %d unevaluated; waiting for workers "
                           "on %s", job.unresolved, job.generation, self.where)
        limit = self.config.worker_wait_timeout
        if limit is not None and now - running.alone_since >= limit and job.error is None:
            job.error = WorkerWaitTimeout(f"gave up after {limit:.1f}s waiting for workers on {self.where} with "
                                          f"generation {job.generation} unfinished; start workers or raise "
                                          "worker_wait_timeout")
            self._settle(now)

    def _plan(self, now: float, actions: list[Action]) -> None:
        """Give a batch to idle workers, then a second to open ones, while genomes are pending: O(batches
        sent), not O(workers)."""
        running = self._running
        if running is None:
            return
        job = running.job
        while job.pending and (self._idle or self._open) and not job.finished:
            peer = next(iter(self._idle or self._open))
            size = batch_size(job.waiting, peer.capacity, self._share.share(peer.speed),
                              self.config.batch_size_per_worker, peer.pace.floor(peer.capacity))
            rows = job.take(size)
            if not rows.size:
                break
            self._next_batch_id += 1
            batch = Batch(self._next_batch_id, job, rows, job.ids(rows), now, ahead=bool(peer.batches))
            peer.batches.append(batch)
            job.batches_sent += 1
            self._place(peer)
            actions.append(Send(peer.conn, job.task_frame(batch)))

    def _settle(self, now: float) -> None:
        """If the running generation is over (done or failed), hand it over as the outcome."""
        running = self._running
        if running is None:
            return
        job = running.job
        if job.error is None and not job.done:
            return
        self._running = None
        job.finished = True
        for peer in self._peers.values():  # batches still out (timed out, or the run failed) pin no genomes
            released = [batch for batch in peer.batches if batch.job is job]
            for batch in released:
                batch.release()
            if released:
                self._place(peer)
        if job.error is not None:
            self._outcome = Outcome(job, error=job.error)
            return
        elapsed = max(now - running.started, 1e-9)
        self._last_rate = len(job.genomes) / elapsed
        logger.debug("generation %d: %d worker(s) connected, %d batch(es) sent, %d re-sent after a failure, "
                     "%d duplicate(s) ignored, %.1f genomes/s", job.generation, len(self._peers), job.batches_sent,
                     job.batches_resent, job.duplicates_ignored, self._last_rate)
        fitness = job.results()
        for genome_id, (worker_id, trace) in job.failures.items():
            logger.warning("fitness function raised on worker %s for genome %d; giving it error_fitness %r:\n%s",
                           worker_id, genome_id, self.config.error_fitness, trace.rstrip())
            fitness[genome_id] = float(self.config.error_fitness)  # type: ignore[arg-type]
        self._outcome = Outcome(job, fitness)


def _mark(members: dict[_Peer, None], peer: _Peer, member: bool) -> None:
    """Put ``peer`` in or out of the ordered set ``members`` (one already in keeps its place)."""
    if not member:
        members.pop(peer, None)
    elif peer not in members:
        members[peer] = None
