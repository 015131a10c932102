"""The worker's side of the protocol, sans I/O: fed the master's bytes and the time, it returns events.

Registration (with the mutual proof of the auth token), heartbeats, the check of every task, and
silence detection live here, with no socket, thread or clock; ``WorkerNode`` moves the bytes and
runs the fitness function, and the tests drive this with a fake clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from neatify.distributed import auth
from neatify.distributed.config import AUTH_TOKEN_ENV
from neatify.distributed.errors import (
    AuthenticationError, ConnectionClosed, DistributedError, ProtocolError, RegistrationError,
)
from neatify.distributed.protocol import PROTOCOL_VERSION, FrameDecoder, MessageType, encode_frame
from neatify.distributed.genome_wire import decode_genomes
from neatify.genome import Genome

REGISTRATION_TIMEOUT = 30.0
"""Seconds the master has to answer a registration."""
_DEFAULT_HEARTBEAT = 10.0


@dataclass(frozen=True)
class Send:
    """Bytes (whole frames) to write to the master."""

    data: bytes


@dataclass(frozen=True)
class Registered:
    """The master accepted this worker; it sends heartbeats every ``heartbeat_interval`` seconds."""

    heartbeat_interval: float


@dataclass(frozen=True)
class Task:
    """A batch to evaluate (its genomes checked, then built)."""

    batch_id: int
    generation: int
    genomes: list[Genome]


@dataclass(frozen=True)
class Shutdown:
    """The master told this worker to exit."""

    reason: str


@dataclass(frozen=True)
class Failed:
    """The connection is over: raise ``error`` (after writing what was sent before it)."""

    error: BaseException


Event = Send | Registered | Task | Shutdown | Failed


class WorkerProtocol:
    """One connection of a worker to its master. ``hello()`` starts it; ``received``/``tick``/``closed``
    return events in order; ``report``/``leaving`` make the worker's own frames."""

    def __init__(self, worker_id: int | str, capacity: int, auth_token: str | None, where: str,
                 max_frame_bytes: int, now: float, tls: bool = False) -> None:
        self.worker_id = worker_id
        self.auth_token = auth_token
        self.where = where
        """The master's address, for messages."""
        self.tls = tls
        self.decoder = FrameDecoder(max_frame_bytes)
        self._hello: dict[str, Any] = {"protocol_version": PROTOCOL_VERSION, "worker_id": worker_id,
                                       "capacity": capacity, "nonce": auth.new_nonce()}
        self._master_proven = False
        self.heartbeat_interval: float | None = None
        """Set once registered."""
        self._silence_limit = REGISTRATION_TIMEOUT
        self._last_heard = now
        self.over = False

    @property
    def registered(self) -> bool:
        return self.heartbeat_interval is not None

    def hello(self) -> Send:
        """The registration to send first."""
        return Send(encode_frame(MessageType.WORKER_REGISTRATION, self._hello))

    def received(self, data: bytes, now: float) -> list[Event]:
        """Bytes arrived from the master (any bytes count as a sign of life, even part of a big task)."""
        self._last_heard = now
        events: list[Event] = []
        self.decoder.buffer(data)
        try:
            while not self.over and (message := self.decoder.next_message()) is not None:
                mtype, payload = message
                if self.registered:
                    self._on_message(mtype, payload, events)
                else:
                    self._on_registration(mtype, payload, events)
        except ProtocolError as exc:  # tell the master why before hanging up
            events.append(Send(encode_frame(MessageType.ERROR_REPORT, {"message": str(exc), "fatal": False,
                                                                       "code": "error"})))
            self._fail(exc, events)
        except (DistributedError, ConnectionRefusedError) as exc:  # refused: for good, or for now (id busy)
            self._fail(exc, events)
        return events

    def tick(self, now: float) -> list[Event]:
        """Time passed: the master silent too long (no answer to the registration, no heartbeat) ends it."""
        if self.over or now - self._last_heard <= self._silence_limit:
            return []
        what = "no registration answer" if not self.registered else "master silent"
        events: list[Event] = []
        self._fail(ConnectionClosed(f"{what} for {now - self._last_heard:.1f}s"), events)
        return events

    def closed(self) -> list[Event]:
        """The master closed the connection (or it broke)."""
        if self.over:
            return []
        hint = "" if self.registered or self.tls else \
            " before answering the registration (a master using TLS does this to plain peers: give tls_ca)"
        try:
            self.decoder.check_eof()
            error: DistributedError = ConnectionClosed(f"connection closed by peer{hint}")
        except ProtocolError as exc:
            error = exc
        events: list[Event] = []
        self._fail(error, events)
        return events

    def report(self, batch_id: int, fitness: list[list], errors: list[list], elapsed: float) -> bytes:
        """The FITNESS_REPORT of a batch."""
        return encode_frame(MessageType.FITNESS_REPORT, {"batch_id": batch_id, "fitness": fitness,
                                                         "errors": errors, "elapsed": elapsed})

    @staticmethod
    def leaving() -> bytes:
        """The STATUS_UPDATE saying this worker leaves (its batch goes to others at once)."""
        return encode_frame(MessageType.STATUS_UPDATE, {"state": "leaving"})

    # --- registration ---
    def _on_registration(self, mtype: MessageType, payload: dict[str, Any], events: list[Event]) -> None:
        if mtype is MessageType.ERROR_REPORT:
            reason = payload["message"]
            if not payload["fatal"]:
                raise ConnectionRefusedError(f"refused for now: {reason}")
            error = AuthenticationError if payload["code"] == "auth" else RegistrationError
            raise error(f"worker {self.worker_id}: master at {self.where} refused registration: {reason}")
        if mtype is not MessageType.REGISTRATION_ACK:
            raise ProtocolError(f"expected REGISTRATION_ACK, got {mtype.name}")
        if payload["status"] == "accepted":
            if self.auth_token and not self._master_proven:
                self._distrust("accepted this worker without proving it knows the auth token (it has none "
                               "set, or it is not the real master)", events)
                return
            self.decoder.mark_registered()
            self.heartbeat_interval = payload.get("heartbeat_interval", _DEFAULT_HEARTBEAT)
            self._silence_limit = 3 * self.heartbeat_interval
            events.append(Registered(self.heartbeat_interval))
            return
        if self._master_proven or "nonce" not in payload or "proof" not in payload:
            raise ProtocolError("a challenge must come once, with a nonce and a proof")
        if not self.auth_token:
            raise AuthenticationError(f"worker {self.worker_id}: master at {self.where} requires an auth token "
                                      f"(set auth_token or ${AUTH_TOKEN_ENV})")
        nonce = self._hello["nonce"]
        if not auth.verify(payload["proof"], self.auth_token, "master", PROTOCOL_VERSION, nonce, payload["nonce"],
                           self.worker_id):
            self._distrust("could not prove it knows the auth token (the tokens differ, or it is not the real "
                           "master)", events)
            return
        self._master_proven = True
        events.append(Send(encode_frame(MessageType.WORKER_REGISTRATION, {**self._hello, "proof": auth.proof(
            self.auth_token, "worker", PROTOCOL_VERSION, nonce, payload["nonce"], self.worker_id)})))

    def _distrust(self, why: str, events: list[Event]) -> None:
        """Tell the master why this worker will not work for it, and end the connection."""
        message = f"worker {self.worker_id}: master at {self.where} {why}; refusing to work for it"
        events.append(Send(encode_frame(MessageType.ERROR_REPORT, {"message": message, "fatal": True,
                                                                   "code": "auth"})))
        self._fail(AuthenticationError(message), events)

    # --- registered ---
    def _on_message(self, mtype: MessageType, payload: dict[str, Any], events: list[Event]) -> None:
        if mtype is MessageType.HEARTBEAT_REQUEST:
            events.append(Send(encode_frame(MessageType.HEARTBEAT_RESPONSE, {"sent": payload["sent"]})))
        elif mtype is MessageType.TASK_ASSIGNMENT:  # every genome checked before any is built
            events.append(Task(payload["batch_id"], payload["generation"], decode_genomes(payload)))
        elif mtype is MessageType.SHUTDOWN_SIGNAL:
            self.over = True
            events.append(Shutdown(payload["reason"]))
        else:
            raise ProtocolError(f"unexpected {mtype.name} from the master")

    def _fail(self, error: BaseException, events: list[Event]) -> None:
        self.over = True
        events.append(Failed(error))
