"""The standby master's link to its primary, sans I/O: fed the primary's bytes and the time, it returns events.

Registration (mutually authenticated under role ``"standby"``), heartbeats, every state snapshot checked
in full before it is trusted, and the promotion timer, which runs across reconnections: once linked, a
primary unheard of for the silence limit is gone and the standby takes over as the next epoch.
``StandbyLink`` (``neatify.distributed.io.standby``) moves the bytes; the tests drive this with a fake clock.
"""

from __future__ import annotations

from typing import Any

import msgpack

from neatify.io.checkpoint import state_problem, statistics_problem
from neatify.distributed.wire import auth
from neatify.distributed.config import AUTH_TOKEN_ENV
from neatify.distributed.errors import AuthenticationError, ConnectionClosed, DistributedError, ProtocolError
from neatify.distributed.wire.messages import (
    ErrorReport, HeartbeatRequest, HeartbeatResponse, Message, RegistrationAck, ShutdownSignal, StandbyRegistration,
    StateSnapshot,
)
from neatify.distributed.wire.framing import PROTOCOL_VERSION, FrameDecoder, encode_frame
from neatify.distributed.core._state import ConnectionState, Phase, Role
from neatify.distributed.core.actions import Send
from neatify.distributed.core.events import (
    Ended, Event, Follower, Promote, Registered, Replicated, Shutdown, Snapshot, StoodDown,
)

_STATE_KEYS = {"population", "statistics"}


def encode_state(population: dict[str, Any], statistics: list[dict[str, Any]]) -> bytes:
    """The ``state`` of a STATE_SNAPSHOT: one msgpack document of plain data (never pickle)."""
    return msgpack.packb({"population": population, "statistics": statistics}, use_bin_type=True)


def decode_state(blob: bytes) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The population state and statistics rows of a snapshot, checked in full (ProtocolError naming the problem);
    the population with the check a checkpoint gets, so the standby never adopts a state it could not resume."""
    try:  # species ids key the statistics' species sizes, so map keys may be ints
        data = msgpack.unpackb(blob, raw=False, strict_map_key=False, max_ext_len=0)
    except Exception as exc:  # msgpack raises several unrelated exception types on bad input
        raise ProtocolError(f"state snapshot is not valid msgpack ({type(exc).__name__}: {exc})") from None
    if not isinstance(data, dict) or set(data) != _STATE_KEYS:
        raise ProtocolError("state snapshot must be a map of exactly population and statistics")
    problem = state_problem(data["population"]) or statistics_problem(data["statistics"])
    if problem:
        raise ProtocolError(f"state snapshot refused: {problem}")
    return data["population"], data["statistics"]


class StandbyProtocol:
    """The standby's side of its link to the primary, over every connection it opens. ``connect`` starts one;
    ``received``/``tick``/``closed`` return events in order."""

    def __init__(self, auth_token: str | None, where: str, max_frame_bytes: int, silence_limit: float, now: float,
                 epoch: int = 0, generation: int | None = None, led: bool = False) -> None:
        self.auth_token = auth_token
        self.where = where
        """The primary's address, for messages."""
        self.max_frame_bytes = max_frame_bytes
        self.silence_limit = silence_limit
        """Seconds without a byte from the primary after which it is gone (raised to 3 of its heartbeat intervals)."""
        self.epoch = epoch
        """The highest epoch the primary (or this standby's checkpoint) showed; a promotion leads the next one."""
        self.generation = generation
        """The generation of the state this standby holds (its checkpoint's, then its last snapshot's), told in its
        registration: on equal epochs the newer state leads (None: not told, as a fence does)."""
        self.linked = led
        """Whether a primary accepted this standby once, or it resumed a checkpoint of the epoch it led itself
        (``led``: no master it knows of leads a newer one): only then may it be promoted (a standby started before
        its primary never runs the evolution on its own)."""
        self.snapshot: Snapshot | None = None
        """The last good snapshot."""
        self.fruitless = 0
        """Links in a row that registered but ended before a snapshot was taken (a primary sends its state on
        registering, so such a link is one whose snapshot this standby refuses: over its frame limit, say)."""
        self._took_state = False
        """Whether the current connection gave a good snapshot."""
        self.primary_older: str | None = None
        """Why the master at the primary's address holds an older state than this standby's own (its checkpoint's),
        if it does: it stood down on meeting this standby's epoch, or it is a standby holding a lower epoch. The
        newer state leads, so this standby does."""
        self._last_heard = now
        self._awake = now
        """When this core was last called: a longer gap than the silence limit is time it was stopped itself."""
        self._opened = now
        """When the current connection was opened (its own silence counts from then)."""
        self._decoder = FrameDecoder(max_frame_bytes)
        """The current connection's."""
        self._state: ConnectionState | None = None
        """The current connection's (None before the first): CLOSED between connections."""
        self._nonce = b""

    @property
    def connected(self) -> bool:
        """Whether a connection to the primary is open and not over."""
        return self._state is not None and not self._state.closed

    def pause(self, base: float) -> float:
        """How long to wait before the next connection: ``base``, doubled for every fruitless link in a row, at most
        half the silence limit (no re-link storm, and a promotion delayed by little)."""
        return min(base * 2 ** min(self.fruitless, 30), max(base, self.silence_limit / 2))

    def connect(self, now: float) -> Send:
        """A new connection to the primary is open: the registration to send first."""
        self._woke(now)
        self._decoder, self._opened, self._took_state = FrameDecoder(self.max_frame_bytes), now, False
        self._state = ConnectionState(self.where, Role.STANDBY)
        self._nonce = auth.new_nonce()
        return Send(encode_frame(self._hello()))

    def received(self, data: bytes, now: float) -> list[Send | Event]:
        """Bytes arrived from the primary (any bytes are a sign of life)."""
        self._woke(now)
        self._last_heard = now
        events: list[Send | Event] = []
        if self._state is None or self._state.closed:  # the connection already ended
            return events
        self._decoder.buffer(data)
        try:
            while self.connected and (message := self._decoder.next_message()) is not None:
                (self._on_message if self._state.registered else self._on_registration)(message, events)
        except ProtocolError as exc:  # tell the primary why before hanging up
            events.append(Send(encode_frame(ErrorReport(str(exc), fatal=False, code="error"))))
            self._end(Ended(exc), events)
        except DistributedError as exc:
            self._end(Ended(exc, fatal=isinstance(exc, AuthenticationError)), events)
        return events

    def closed(self, now: float) -> list[Send | Event]:
        """The primary closed the connection (or it broke)."""
        self._woke(now)
        if not self.connected:
            return []
        try:
            self._decoder.check_eof()
            error: DistributedError = ConnectionClosed(f"primary at {self.where} closed the connection")
        except ProtocolError as exc:
            error = exc
        events: list[Send | Event] = []
        self._end(Ended(error), events)
        return events

    def tick(self, now: float) -> list[Send | Event]:
        """Time passed: a connection silent for the limit ends; a linked primary unheard of for it is gone."""
        self._woke(now)
        events: list[Send | Event] = []
        quiet = now - max(self._last_heard, self._opened)
        if self.connected and quiet > self.silence_limit:
            self._end(Ended(ConnectionClosed(f"primary at {self.where} silent for {quiet:.1f}s")), events)
        silence = now - self._last_heard
        if self.primary_older is not None:
            events.append(Promote(self.epoch + 1, f"the master at {self.where} holds an older state than this "
                                                  f"standby's epoch {self.epoch} ({self.primary_older})"))
        elif self.linked and silence > self.silence_limit:
            replicated = "no generation" if self.snapshot is None else f"generation {self.snapshot.generation}"
            events.append(Promote(self.epoch + 1, f"primary at {self.where} unheard of for {silence:.1f}s "
                                                  f"(limit {self.silence_limit:.1f}s); last replicated: {replicated}"))
        return events

    def _woke(self, now: float) -> None:
        """Silence this standby could not observe proves nothing: after a gap longer than the silence limit since
        its last call (the standby itself was stopped: SIGSTOP, a stalled VM), the silence count restarts."""
        if now - self._awake > self.silence_limit:
            self._last_heard = self._opened = now
        self._awake = now

    # --- registration ---
    def _hello(self, proof: bytes | None = None) -> StandbyRegistration:
        return StandbyRegistration(PROTOCOL_VERSION, self.epoch, nonce=self._nonce, proof=proof,
                                   generation=self.generation)

    def _on_registration(self, message: Message, events: list[Send | Event]) -> None:
        if isinstance(message, ErrorReport) and message.code == "epoch":
            self.primary_older = f"it stood down: {message.message}"
            self._end(StoodDown(message.message), events)
            return
        if isinstance(message, ErrorReport) and message.code == "standby":
            if message.epoch is not None and message.epoch < self.epoch:  # a tie promotes neither
                self.primary_older = f"a standby holding epoch {message.epoch}: {message.message}"
            self._end(Follower(message.message), events)
            return
        if isinstance(message, ErrorReport):
            error = AuthenticationError if message.code == "auth" else DistributedError
            refused = error(f"primary at {self.where} refused this standby: {message.message}")
            self._end(Ended(refused, fatal=message.fatal), events)
            return
        if not isinstance(message, RegistrationAck):
            raise ProtocolError(f"expected REGISTRATION_ACK, got {message.TYPE.name}")
        if message.status == "challenge":
            self._answer_challenge(message, events)
        elif self.auth_token and self._state.phase is Phase.OPENED:
            self._distrust("accepted this standby without proving it knows the auth token", events)
        else:
            self._accepted(message, events)

    def _answer_challenge(self, challenge: RegistrationAck, events: list[Send | Event]) -> None:
        if self._state.phase is Phase.CHALLENGED or challenge.nonce is None or challenge.proof is None:
            raise ProtocolError("a challenge must come once, with a nonce and a proof")
        if not self.auth_token:
            raise AuthenticationError(f"primary at {self.where} requires an auth token (set auth_token or "
                                      f"${AUTH_TOKEN_ENV})")
        answer = auth.answer_challenge(self.auth_token, "standby", PROTOCOL_VERSION, self._nonce, challenge.nonce,
                                       challenge.proof, auth.STANDBY_CLIENT_ID)
        if answer is None:
            self._distrust("could not prove it knows the auth token (the tokens differ, or it is not the primary)",
                           events)
            return
        self._state.advance(Phase.CHALLENGED)
        events.append(Send(encode_frame(self._hello(answer))))

    def _accepted(self, ack: RegistrationAck, events: list[Send | Event]) -> None:
        epoch = ack.epoch or 0
        if epoch < self.epoch:
            raise ProtocolError(f"primary at {self.where} leads epoch {epoch}, older than epoch {self.epoch} "
                                "already replicated")
        self._decoder.mark_registered()
        self._state.advance(Phase.REGISTERED)
        self.linked, self.epoch = True, epoch
        interval = ack.heartbeat_interval or 0.0
        self.silence_limit = max(self.silence_limit, 3 * interval)
        events.append(Registered(interval, epoch))

    def _distrust(self, why: str, events: list[Send | Event]) -> None:
        message = f"standby: primary at {self.where} {why}; refusing to follow it"
        events.append(Send(encode_frame(ErrorReport(message, fatal=True, code="auth"))))
        self._end(Ended(AuthenticationError(message), fatal=True), events)

    # --- linked ---
    def _on_message(self, message: Message, events: list[Send | Event]) -> None:
        match message:
            case HeartbeatRequest():
                events.append(Send(encode_frame(HeartbeatResponse(message.sent))))
            case StateSnapshot():
                events.append(Replicated(self._adopt(message)))
            case ShutdownSignal():
                self._end(Shutdown(message.reason), events)
            case _:
                raise ProtocolError(f"unexpected {message.TYPE.name} from the primary")

    def _adopt(self, received: StateSnapshot) -> Snapshot:
        """The snapshot ``received`` once checked in full; until then the last good one stays."""
        if received.epoch != self.epoch:
            raise ProtocolError(f"state snapshot of epoch {received.epoch} from the primary of epoch {self.epoch}")
        population, statistics = decode_state(received.state)
        if population["generation"] != received.generation:
            raise ProtocolError(f"state snapshot says generation {received.generation}, its state "
                                f"{population['generation']}")
        self.snapshot = Snapshot(received.epoch, received.generation, population, statistics)
        self.generation = received.generation
        self.fruitless, self._took_state = 0, True
        return self.snapshot

    def _end(self, event: Ended | Shutdown | StoodDown | Follower, events: list[Send | Event]) -> None:
        """The connection is over (and with ``Shutdown``, following altogether)."""
        assert self._state is not None
        if self._state.registered and not self._took_state:
            self.fruitless += 1
        self._state.advance(Phase.CLOSED)
        events.append(event)
