"""A connection's named state, and the table of the moves between states (the manner of h11's ``_state``).

A connection's state is its ``Role`` (what the peer registers as: set once, by its first request) and its
``Phase`` (how far registration went). The master keeps one per connection; a worker and a standby keep
one for their connection to a master, with the same table: both sides move through the same phases. A
move the table lacks is a bug in a core, never a peer's doing (a peer's bad message is a ``ProtocolError``
before any move): ``ConnectionStateError`` names the connection and both states.
"""

from __future__ import annotations

from enum import Enum


class Role(Enum):
    """What a peer registers as, told by its first request."""

    WORKER = "worker"
    STATUS = "status"
    """A status client: answered with one STATUS_REPORT, never registered."""
    STANDBY = "standby"


class Phase(Enum):
    """How far a connection's registration went."""

    OPENED = "opened"
    """Connected; its registration not yet challenged or accepted."""
    CHALLENGED = "challenged"
    """The registration was challenged (with an auth token); its proof is awaited."""
    REGISTERED = "registered"
    """Accepted: a worker serving, or a standby following."""
    CLOSED = "closed"


_REGISTERING = {
    Phase.OPENED: frozenset({Phase.CHALLENGED, Phase.REGISTERED, Phase.CLOSED}),
    Phase.CHALLENGED: frozenset({Phase.REGISTERED, Phase.CLOSED}),
    Phase.REGISTERED: frozenset({Phase.CLOSED}),
}
TRANSITIONS: dict[Role | None, dict[Phase, frozenset[Phase]]] = {
    None: {Phase.OPENED: frozenset({Phase.CLOSED})},  # nothing read yet: it can only end
    Role.WORKER: _REGISTERING,
    Role.STANDBY: _REGISTERING,
    Role.STATUS: {Phase.OPENED: frozenset({Phase.CHALLENGED, Phase.CLOSED}),
                  Phase.CHALLENGED: frozenset({Phase.CLOSED})},  # answered, then hung up on: never registered
}
"""Each role's phases and the phases each may move to (CLOSED to none)."""


class ConnectionStateError(RuntimeError):
    """A core tried a move between states that the table forbids: a bug in neatify, not the peer's doing."""


class ConnectionState:
    """One connection's role and phase; changed only through ``claim`` and ``advance``, which check the table."""

    __slots__ = ("conn", "role", "phase")

    def __init__(self, conn: int | str, role: Role | None = None) -> None:
        self.conn = conn
        """The connection, for the error's message."""
        self.role = role
        self.phase = Phase.OPENED

    def __repr__(self) -> str:
        return f"connection {self.conn} ({'no role' if self.role is None else self.role.value}, {self.phase.value})"

    def claim(self, role: Role) -> None:
        """The peer's first request says what it registers as."""
        if self.role is not None or self.phase is not Phase.OPENED:
            raise ConnectionStateError(f"internal error: {self!r} cannot take the role {role.value}")
        self.role = role

    def advance(self, phase: Phase) -> None:
        """Move to ``phase``, if the table lets this role move there from its phase."""
        if phase not in TRANSITIONS[self.role].get(self.phase, ()):
            raise ConnectionStateError(f"internal error: {self!r} cannot move to {phase.value}")
        self.phase = phase

    @property
    def registered(self) -> bool:
        return self.phase is Phase.REGISTERED

    @property
    def closed(self) -> bool:
        return self.phase is Phase.CLOSED
