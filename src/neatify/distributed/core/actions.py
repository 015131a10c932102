"""What a core asks its I/O shell to do on the wire: the one action vocabulary of the master, worker and standby.

A core never writes or closes a socket itself; it returns these, in order, and the shell carries them out.
``conn`` names the connection: the master's id for it, or ``ONLY`` from a worker or a standby, which has
one connection at a time.
"""

from __future__ import annotations

from dataclasses import dataclass

ONLY = 0
"""The ``conn`` of a worker's or a standby's actions: the one connection it has (the master's ids start at 1)."""


@dataclass(frozen=True)
class Send:
    """Write ``data`` (whole frames) to connection ``conn``."""

    data: bytes
    conn: int = ONLY


@dataclass(frozen=True)
class Close:
    """Close connection ``conn``: after what was sent to it (``flush``), or at once (a silent peer reads nothing)."""

    reason: str
    flush: bool = True
    conn: int = ONLY


Action = Send | Close
