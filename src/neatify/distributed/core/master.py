"""The master's side of the protocol, sans I/O: fed connection events and the time, it returns actions.

In the manner of h11, no socket, thread or clock lives here: ``SystemCoordinator`` drives it from one
event loop, and the tests drive it with a fake clock and in-memory peers. ``MasterProtocol`` routes each
event by the connection's named state (``_state``) to the part that owns it:

- ``registration``: what a new connection is, and the mutual proof of the auth token;
- ``fencing``: this master's epoch, standing down before a newer one, the standby that follows it;
- ``liveness``: heartbeats, and the deadlines after which a connection is given up;
- ``dispatch``: the registered workers and the generation they evaluate.

Ending a connection, whoever decides it, goes through one path (``_close``): its worker's batches go to
others, its standby stops following, and its state moves to CLOSED.
"""

from __future__ import annotations

from collections.abc import Mapping

from neatify.distributed.config import DistributedConfig
from neatify.distributed.core._state import Phase, Role
from neatify.distributed.core.actions import Action, Send
from neatify.distributed.core.dispatch import Dispatcher
from neatify.distributed.core.events import Outcome
from neatify.distributed.core.fencing import Fencing
from neatify.distributed.core.liveness import Liveness
from neatify.distributed.core.peers import Connection, Peers, Worker, logger
from neatify.distributed.core.registration import Registration
from neatify.distributed.core.scheduler import GenerationJob
from neatify.distributed.errors import DistributedError, ProtocolError, SupersededError
from neatify.distributed.wire import auth
from neatify.distributed.wire.framing import encode_frame
from neatify.distributed.wire.messages import (
    ErrorReport, FitnessReport, HeartbeatResponse, Message, ShutdownSignal, StandbyRegistration, StatusReport,
    StatusUpdate, WorkerRegistration,
)


class MasterProtocol:
    """The master's state machine. Every method takes ``now`` (seconds, any monotonic clock) and returns
    the actions to carry out in order; ``take_outcome()`` hands over a generation once it is finished."""

    def __init__(self, config: DistributedConfig, where: str = "?", started: float = 0.0, epoch: int = 1,
                 standby: bool = False, generation: int | None = None) -> None:
        self.config = config
        self.started = started
        """When the master started (on the clock of ``now``), for the status report's uptime."""
        self._peers = Peers(config, where)
        self._registration = Registration(self._peers)
        self._fencing = Fencing(self._peers, epoch, standby, generation)
        self._liveness = Liveness(config, started)
        self._dispatcher = Dispatcher(self._peers)

    # --- what the driver reads ---
    @property
    def where(self) -> str:
        """The listening address, for log lines."""
        return self._peers.where

    @where.setter
    def where(self, where: str) -> None:
        self._peers.where = where

    @property
    def stopping(self) -> bool:
        """Shut down or stood down: it admits no one more."""
        return self._peers.stopping

    @property
    def epoch(self) -> int:
        """This master's epoch: a promoted standby leads with its primary's plus one (told to every worker)."""
        return self._fencing.epoch

    @property
    def standby(self) -> bool:
        """Following a primary: workers are refused (non-fatally, so they try their next master) until ``promote``."""
        return self._fencing.standby

    @property
    def stood_down(self) -> SupersededError | None:
        """Set once a peer showed a higher epoch: this master serves no one any more."""
        return self._fencing.stood_down

    @property
    def has_follower(self) -> bool:
        """Whether a standby follows this master now (only then is a generation's state worth building)."""
        return self._fencing.follower is not None

    @property
    def num_workers(self) -> int:
        """Workers registered right now."""
        return len(self._dispatcher.workers)

    @property
    def workers(self) -> Mapping[str, Worker]:
        """The registered workers by id, in the order they registered (to read, not to change)."""
        return self._dispatcher.workers

    def status(self, now: float) -> StatusReport:
        """The STATUS_REPORT: workers and their load, genomes left in the generation, the last rate."""
        return self._dispatcher.status(max(now - self.started, 0.0))

    def take_outcome(self) -> Outcome | None:
        """The generation finished since the last call, if any."""
        return self._dispatcher.take_outcome()

    # --- events ---
    def connected(self, conn: int, address: str, now: float) -> list[Action]:
        """A peer connected (after the TLS handshake, when there is one)."""
        self._peers.open(conn, address, now)
        return []

    def received(self, conn: int, data: bytes, now: float) -> list[Action]:
        """Bytes arrived on ``conn``."""
        connection = self._peers.get(conn)
        if connection is None:
            return []
        actions: list[Action] = []
        connection.decoder.buffer(data)
        try:
            while (connection.state.phase is not Phase.CLOSED
                   and (message := connection.decoder.next_message()) is not None):
                connection.last_seen = now
                self._on_message(connection, message, now, actions)
        except ProtocolError as exc:
            self._log_closing(connection, exc)
            self._close(connection, f"protocol error: {exc}", now, actions)
        return actions

    def closed(self, conn: int, reason: str, now: float, eof: bool = False) -> list[Action]:
        """The connection ended (the peer closed it, or it broke); ``eof``: a clean end of stream."""
        connection = self._peers.forget(conn)
        if connection is None:
            return []
        actions: list[Action] = []
        if eof:
            try:
                connection.decoder.check_eof()
            except ProtocolError as exc:
                self._log_closing(connection, exc)
                reason = f"protocol error: {exc}"
        self._let_go(connection, reason, now, actions, _evaluating(connection))
        return actions

    def delivered(self, conn: int, now: float) -> None:
        """Bytes sent to ``conn`` moved toward the peer: it reads, so it is alive (its answers may wait
        behind a big batch)."""
        connection = self._peers.get(conn)
        if connection is not None:
            connection.last_seen = now

    def tick(self, now: float) -> list[Action]:
        """Time passed: timeouts, heartbeats, late batches, planning."""
        actions: list[Action] = []
        for connection, problem in self._liveness.overdue(now, self._peers, self._dispatcher.workers.values(),
                                                         self._fencing.follower):
            self._close(connection, problem, now, actions, flush=False, suspect=_evaluating(connection))
        if not self.stopping:
            actions += self._liveness.heartbeats(now, self._registered())
        self._dispatcher.tick(now, actions)
        return actions

    def submit(self, job: GenerationJob, now: float, burst: int | None = None) -> list[Action]:
        """Start evaluating ``job``'s genomes (one generation at a time); ``burst``: at most that many batches of a
        generation planned whole are sent now, the rest by ``send_planned`` (``planned`` says whether any wait)."""
        actions: list[Action] = []
        self._dispatcher.submit(job, now, actions, burst)
        return actions

    @property
    def planned(self) -> bool:
        """Whether batches planned for the running generation wait to be sent (``send_planned``)."""
        return self._dispatcher.planned

    def send_planned(self, now: float, burst: int | None = None) -> list[Action]:
        """Send up to ``burst`` (None: all) of the running generation's planned batches not sent yet."""
        actions: list[Action] = []
        self._dispatcher.send_planned(now, actions, burst)
        return actions

    def shutdown(self, now: float) -> list[Action]:
        """Tell every worker, and the standby, to exit; a generation still running fails."""
        self._peers.stopping = True
        self._dispatcher.fail(DistributedError("master shut down during the generation"), now)
        frame = encode_frame(ShutdownSignal("master shutting down"))
        return [Send(frame, connection.id) for connection in self._registered()]

    def promotion(self, epoch: int) -> int:
        """The epoch ``promote(epoch)`` would lead now (to write it to the checkpoint before any worker serves it)."""
        return self._fencing.promotion(epoch)

    def promote(self, epoch: int) -> int:
        """This standby's primary is gone: lead the run as epoch ``epoch`` (or above every epoch seen), accepting
        workers from now on; the epoch it leads."""
        return self._fencing.promote(epoch)

    def holds(self, epoch: int, generation: int | None = None) -> None:
        """This standby replicated a state of ``epoch`` after ``generation`` (``Fencing.holds``)."""
        self._fencing.holds(epoch, generation)

    def reached(self, generation: int) -> None:
        """This master's state is now after ``generation`` (told before it is replicated): a standby registering
        with a newer state of its epoch leads instead (``Fencing.fenced``)."""
        self._fencing.reached(generation)

    def replicate(self, frame: bytes) -> list[Action]:
        """A generation was evaluated: send its STATE_SNAPSHOT ``frame`` to the standby (and to one that
        registers later)."""
        return self._fencing.replicate(frame)

    # --- routing by state ---
    def _registered(self) -> list[Connection]:
        """The connections of the registered workers, then the standby's."""
        follower = self._fencing.follower
        return [worker.connection for worker in self._dispatcher.workers.values()] + ([follower] if follower else [])

    def _on_message(self, connection: Connection, message: Message, now: float, actions: list[Action]) -> None:
        state = connection.state
        if state.phase is not Phase.REGISTERED:
            request = self._registration.on_message(connection, message, self.standby, actions)
            if request is not None:
                self._serve(connection, request, now, actions)
        elif state.role is Role.WORKER:
            assert connection.worker is not None
            self._on_worker_message(connection, connection.worker, message, now, actions)
        else:
            self._on_follower_message(connection, message, now, actions)

    def _serve(self, connection: Connection, request: Message, now: float, actions: list[Action]) -> None:
        """An authenticated request: a status report, or (unless stopping, or superseded) a worker or a standby
        admitted."""
        if connection.state.role is Role.STATUS:
            actions.append(Send(encode_frame(self.status(now)), connection.id))
            self._peers.close(connection, "status sent", actions)
        elif self.stopping:
            self._too_late(connection, request, actions)
        elif isinstance(request, StandbyRegistration):
            if not self._fenced(connection, "standby", request.epoch, now, actions, request.generation):
                self._fencing.follow(connection, actions)
        elif isinstance(request, WorkerRegistration):
            self._admit(connection, request, now, actions)

    def _too_late(self, connection: Connection, request: Message, actions: list[Action]) -> None:
        """A peer registering after the run ended: a worker of this master's epoch or older is accepted and told to
        exit at once (a supervised child restarted after a crash would otherwise wait for this master for ever);
        anyone else, or anyone once this master stood down (the run goes on elsewhere), is only closed."""
        if isinstance(request, WorkerRegistration) and self.stood_down is None and (request.epoch or 0) <= self.epoch:
            self._dispatcher.lost.pop(auth.canonical_worker_id(request.worker_id), None)
            actions.append(Send(self._fencing.accepted(), connection.id))
            actions.append(Send(encode_frame(ShutdownSignal("master shutting down: the run is over")), connection.id))
        self._peers.close(connection, "master shutting down", actions)

    def awaited(self, now: float) -> list[str]:
        """The workers lost less than ``shutdown_linger`` seconds ago that have not registered again: a master
        ending the run (``shutdown``) waits for those, to tell them so."""
        linger = self.config.shutdown_linger
        if self.stood_down is not None:  # the run goes on elsewhere: nothing to tell them
            return []
        return [worker_id for worker_id, lost in self._dispatcher.lost.items() if now - lost < linger]

    def _admit(self, connection: Connection, hello: WorkerRegistration, now: float, actions: list[Action]) -> None:
        worker_id = auth.canonical_worker_id(hello.worker_id)
        if self._fenced(connection, f"worker {worker_id}", hello.epoch or 0, now, actions):
            return
        if worker_id in self._dispatcher.workers:
            self._peers.refuse(connection, f"worker id {worker_id} is already connected", "busy", actions)
            return
        cores = hello.cores or 1
        connection.decoder.mark_registered(max_items=hello.capacity * cores)  # a report lists at most one batch
        connection.state.advance(Phase.REGISTERED)
        actions.append(Send(self._fencing.accepted(), connection.id))
        self._dispatcher.add(connection, worker_id, hello.capacity, now, actions, cores)

    def _on_worker_message(self, connection: Connection, worker: Worker, message: Message, now: float,
                           actions: list[Action]) -> None:
        match message:
            case HeartbeatResponse():
                pass
            case FitnessReport():
                self._dispatcher.on_report(worker, message, now, actions)
            case StatusUpdate():
                self._close(connection, f"worker {worker.worker_id} is leaving", now, actions)
                self._dispatcher.lost.pop(worker.worker_id, None)  # it comes back for no later run
            case ErrorReport():
                self._close(connection, f"worker {worker.worker_id} reported an error: {message.message}", now,
                            actions, suspect=message.batch_id)
            case _:
                raise ProtocolError(f"unexpected {message.TYPE.name} from a registered worker")

    def _on_follower_message(self, connection: Connection, message: Message, now: float,
                             actions: list[Action]) -> None:
        match message:
            case HeartbeatResponse():
                pass
            case ErrorReport():
                self._close(connection, f"it reported an error: {message.message}", now, actions)
            case _:
                raise ProtocolError(f"unexpected {message.TYPE.name} from the standby")

    # --- epochs ---
    def _fenced(self, connection: Connection, who: str, epoch: int, now: float, actions: list[Action],
                generation: int | None = None) -> bool:
        """An authenticated peer that has served a higher epoch than this master's (or, a standby, holds a newer
        state of its epoch): refused, and a master that led stands down (whether the peer was refused)."""
        reason = self._fencing.fenced(connection, who, epoch, actions, generation)
        if reason is None:
            return connection.state.closed
        self._stand_down(reason, now, actions)
        return True

    def _stand_down(self, reason: str, now: float, actions: list[Action]) -> None:
        """Serve no one any more: the running generation fails, every connection closes (workers move on)."""
        error = self._fencing.supersede(reason)
        self._peers.stopping = True
        self._dispatcher.fail(error, now)
        for connection in self._peers:
            self._close(connection, "master stood down", now, actions)

    # --- ending a connection ---
    def _close(self, connection: Connection, reason: str, now: float, actions: list[Action],
               flush: bool = True, suspect: int | None = None) -> None:
        """Close a connection from this side, letting its worker or standby go first."""
        self._let_go(connection, reason, now, actions, suspect)
        self._peers.close(connection, reason, actions, flush)

    def _let_go(self, connection: Connection, reason: str, now: float, actions: list[Action],
                suspect: int | None = None) -> None:
        """A connection ends: its worker's unfinished batches go to others (batch ``suspect`` counted as failed,
        ``Dispatcher.drop``); its standby no longer follows."""
        if connection.worker is not None:
            self._dispatcher.drop(connection.worker, reason, now, actions, suspect)
        self._fencing.unfollow(connection, reason)

    @staticmethod
    def _log_closing(connection: Connection, exc: ProtocolError) -> None:
        """A bad frame: a WARNING from a registered worker; from an unregistered peer (a stranger, a port
        scan) only INFO, so that no one without the token can flood the log with warnings."""
        worker = connection.worker
        log = logger.info if worker is None else logger.warning
        log("closing connection from %s (worker %s): %s", connection.address, "?" if worker is None else
            worker.worker_id, exc)


def _evaluating(connection: Connection) -> int | None:
    """The batch a worker evaluates (its oldest): when it dies or falls silent, the likeliest cause."""
    worker = connection.worker
    return worker.batches[0].id if worker is not None and worker.batches else None
