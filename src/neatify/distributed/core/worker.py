"""The worker's side of the protocol, sans I/O: fed the master's bytes and the time, it returns events.

Registration (with the mutual proof of the auth token), heartbeats, the check of every task, and
silence detection live here, with no socket, thread or clock; ``WorkerNode`` moves the bytes and
runs the fitness function, and the tests drive this with a fake clock.
"""

from __future__ import annotations

from dataclasses import replace

from neatify.distributed.wire import auth
from neatify.distributed.config import AUTH_TOKEN_ENV
from neatify.distributed.errors import (
    AuthenticationError, ConnectionClosed, DistributedError, ProtocolError, RegistrationError,
)
from neatify.distributed.core._state import ConnectionState, Phase, Role
from neatify.distributed.core.actions import Send
from neatify.distributed.core.events import Ended, Event, Registered, Shutdown, Task
from neatify.distributed.wire.columns import decode_genome_batch
from neatify.distributed.wire.messages import (
    ErrorReport, FitnessReport, HeartbeatRequest, HeartbeatResponse, Message, RegistrationAck, ShutdownSignal,
    StatusUpdate, TaskAssignment, WorkerRegistration,
)
from neatify.distributed.wire.framing import PROTOCOL_VERSION, FrameDecoder, encode_frame

REGISTRATION_TIMEOUT = 30.0
"""Seconds the master has to answer a registration."""
_DEFAULT_HEARTBEAT = 10.0


class WorkerProtocol:
    """One connection of a worker to its master. ``hello()`` starts it; ``received``/``tick``/``closed``
    return ``Send`` actions and events in order; ``report``/``leaving`` make the worker's own frames."""

    def __init__(self, worker_id: int | str, capacity: int, auth_token: str | None, where: str,
                 max_frame_bytes: int, now: float, tls: bool = False, epoch: int = 0,
                 registration_timeout: float = REGISTRATION_TIMEOUT, cores: int = 1) -> None:
        self.worker_id = worker_id
        self.epoch = epoch
        """The highest epoch this worker has served: a master of a lower one is refused."""
        self.auth_token = auth_token
        self.where = where
        """The master's address, for messages."""
        self.tls = tls
        self.decoder = FrameDecoder(max_frame_bytes)
        self.state = ConnectionState(where, Role.WORKER)
        """OPENED, CHALLENGED once the master proved the token and this worker answered, REGISTERED, CLOSED."""
        self._hello = WorkerRegistration(PROTOCOL_VERSION, worker_id, capacity, nonce=auth.new_nonce(), epoch=epoch,
                                         cores=cores if cores > 1 else None)  # absent: 1, as older workers send
        self.heartbeat_interval: float | None = None
        """Set once registered."""
        self._silence_limit = registration_timeout
        """Until registered: seconds the master has to answer (a frozen master accepts the connection but says
        nothing)."""
        self._last_heard = now

    @property
    def accepted(self) -> bool:
        """Whether the master accepted this worker on this connection (still so once the connection is over)."""
        return self.heartbeat_interval is not None

    @property
    def over(self) -> bool:
        """The connection is over (failed, or the master shut this worker down)."""
        return self.state.closed

    def hello(self) -> Send:
        """The registration to send first."""
        return Send(encode_frame(self._hello))

    def received(self, data: bytes, now: float) -> list[Send | Event]:
        """Bytes arrived from the master (any bytes count as a sign of life, even part of a big task)."""
        self._last_heard = now
        events: list[Send | Event] = []
        self.decoder.buffer(data)
        try:
            while not self.over and (message := self.decoder.next_message()) is not None:
                if self.state.registered:
                    self._on_message(message, events)
                else:
                    self._on_registration(message, events)
        except ProtocolError as exc:
            self._refuse(exc, events)
        except (DistributedError, ConnectionRefusedError) as exc:  # refused: for good, or for now (id busy)
            self._fail(exc, events)
        return events

    def tick(self, now: float) -> list[Send | Event]:
        """Time passed: the master silent too long (no answer to the registration, no heartbeat) ends it."""
        if self.over or now - self._last_heard <= self._silence_limit:
            return []
        what = "master silent" if self.accepted else "no registration answer"
        events: list[Send | Event] = []
        self._fail(ConnectionClosed(f"{what} for {now - self._last_heard:.1f}s"), events)
        return events

    def closed(self) -> list[Send | Event]:
        """The master closed the connection (or it broke)."""
        if self.over:
            return []
        hint = "" if self.accepted or self.tls else \
            " before answering the registration (a master using TLS does this to plain peers: give tls_ca)"
        try:
            self.decoder.check_eof()
            error: DistributedError = ConnectionClosed(f"connection closed by peer{hint}")
        except ProtocolError as exc:
            error = exc
        events: list[Send | Event] = []
        self._fail(error, events)
        return events

    def report(self, batch_id: int, fitness: list[list], errors: list[list], elapsed: float) -> bytes:
        """The FITNESS_REPORT of a batch: ``[genome id, fitness]`` and ``[genome id, traceback]`` pairs."""
        return encode_frame(FitnessReport.of(batch_id, fitness, errors, elapsed))

    @staticmethod
    def leaving() -> bytes:
        """The STATUS_UPDATE saying this worker leaves (its batch goes to others at once)."""
        return encode_frame(StatusUpdate("leaving"))

    # --- registration ---
    def _on_registration(self, message: Message, events: list[Send | Event]) -> None:
        if isinstance(message, ErrorReport):
            if not message.fatal:
                raise ConnectionRefusedError(f"refused for now: {message.message}")
            error = AuthenticationError if message.code == "auth" else RegistrationError
            raise error(f"worker {self.worker_id}: master at {self.where} refused registration: {message.message}")
        if not isinstance(message, RegistrationAck):
            raise ProtocolError(f"expected REGISTRATION_ACK, got {message.TYPE.name}")
        if message.status == "accepted":
            if self.auth_token and self.state.phase is Phase.OPENED:
                self._distrust("accepted this worker without proving it knows the auth token (it has none "
                               "set, or it is not the real master)", events)
                return
            epoch = message.epoch or 0
            if epoch < self.epoch:
                self._refuse_stale(epoch, events)
                return
            self.decoder.mark_registered()
            self.state.advance(Phase.REGISTERED)
            interval = message.heartbeat_interval
            self.heartbeat_interval = _DEFAULT_HEARTBEAT if interval is None else interval
            self._silence_limit = 3 * self.heartbeat_interval
            events.append(Registered(self.heartbeat_interval, epoch))
            return
        if self.state.phase is Phase.CHALLENGED or message.nonce is None or message.proof is None:
            raise ProtocolError("a challenge must come once, with a nonce and a proof")
        if not self.auth_token:
            raise AuthenticationError(f"worker {self.worker_id}: master at {self.where} requires an auth token "
                                      f"(set auth_token or ${AUTH_TOKEN_ENV})")
        assert self._hello.nonce is not None
        answer = auth.answer_challenge(self.auth_token, "worker", PROTOCOL_VERSION, self._hello.nonce, message.nonce,
                                       message.proof, self.worker_id)
        if answer is None:
            self._distrust("could not prove it knows the auth token (the tokens differ, or it is not the real "
                           "master)", events)
            return
        self.state.advance(Phase.CHALLENGED)
        events.append(Send(encode_frame(replace(self._hello, proof=answer))))

    def _refuse_stale(self, epoch: int, events: list[Send | Event]) -> None:
        """A master of an older epoch than one served (an old primary revived): tell it, try the next master."""
        message = (f"worker {self.worker_id}: master at {self.where} leads epoch {epoch}, older than epoch "
                   f"{self.epoch} this worker has served; refusing it")
        events.append(Send(encode_frame(ErrorReport(message, fatal=False, code="epoch"))))
        self._fail(ConnectionRefusedError(message), events)

    def _distrust(self, why: str, events: list[Send | Event]) -> None:
        """Tell the master why this worker will not work for it, and end the connection."""
        message = f"worker {self.worker_id}: master at {self.where} {why}; refusing to work for it"
        events.append(Send(encode_frame(ErrorReport(message, fatal=True, code="auth"))))
        self._fail(AuthenticationError(message), events)

    # --- registered ---
    def _on_message(self, message: Message, events: list[Send | Event]) -> None:
        match message:
            case HeartbeatRequest(sent=sent):
                events.append(Send(encode_frame(HeartbeatResponse(sent))))
            case TaskAssignment():
                try:
                    genome_batch = decode_genome_batch(message)  # all checked, in bulk
                except ProtocolError as exc:  # an unknown activation, say: the master counts it against the task
                    self._refuse(exc, events, message.batch_id)
                    return
                events.append(Task(message.batch_id, message.generation, genome_batch, genome_batch.views(),
                                   message.context))
            case ShutdownSignal(reason=reason):
                self.state.advance(Phase.CLOSED)
                events.append(Shutdown(reason))
            case _:
                raise ProtocolError(f"unexpected {message.TYPE.name} from the master")

    def _refuse(self, error: ProtocolError, events: list[Send | Event], batch_id: int | None = None) -> None:
        """Tell the master why (and which task, ``batch_id``, is refused) before hanging up."""
        events.append(Send(encode_frame(ErrorReport(str(error), fatal=False, code="error", batch_id=batch_id))))
        self._fail(error, events)

    def _fail(self, error: BaseException, events: list[Send | Event]) -> None:
        """The connection is over: for good if the master refused this worker (``RegistrationError``)."""
        self.state.advance(Phase.CLOSED)
        events.append(Ended(error, fatal=isinstance(error, RegistrationError)))
