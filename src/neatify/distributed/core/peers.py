"""The master's records of its peers: each connection with its named state, the worker registered on one, and
``Peers``, the open connections with the two ways the master ends one (closing, refusing)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

from neatify.distributed.config import DistributedConfig
from neatify.distributed.core._state import ConnectionState, Phase, Role
from neatify.distributed.core.actions import Action, Close, Send
from neatify.distributed.core.scheduler import Pace, SentBatch
from neatify.distributed.wire.framing import FrameDecoder, encode_frame
from neatify.distributed.wire.messages import ErrorReport, StandbyRegistration, StatusRequest, WorkerRegistration

logger = logging.getLogger("neatify.distributed.io.master")
"""The master's log, every part of its core included (named as users and tests filter it)."""

Request = WorkerRegistration | StatusRequest | StandbyRegistration
"""A first request the master authenticates: a worker's, a status client's or a standby's."""
RETRYABLE = ("busy", "standby", "epoch")
"""ERROR_REPORT codes of a refusal that another try, or another master, may get past (``fatal`` false)."""


@dataclass(frozen=True)
class Challenge:
    """A first request challenged (with an auth token), and the nonce this master answered it with."""

    request: Request
    nonce: bytes


@dataclass(eq=False)
class Connection:
    """A connection, registered or not yet, and when it was last heard from."""

    id: int
    address: str
    opened: float
    decoder: FrameDecoder
    state: ConnectionState
    last_seen: float
    """When a message (or, for a registered peer, bytes taken off its queue) last showed it alive."""
    probe_sent: float | None = None
    """When the oldest heartbeat not yet answered (by any message) was sent; None: none outstanding."""
    challenge: Challenge | None = None
    """Its request being authenticated: set while CHALLENGED."""
    worker: Worker | None = None
    """The worker registered on it: set while a REGISTERED worker."""


@dataclass(eq=False)
class Worker:
    """A registered worker: its batches out and its measured speed."""

    connection: Connection
    worker_id: str
    capacity: int
    batches: list[SentBatch] = field(default_factory=list)
    """Its batches out, oldest first: those after the first sent ahead while it is evaluated (at most ``cores`` + 1
    when guided; a planned share above ``capacity`` times ``cores`` goes in as many as it takes)."""
    speed: float | None = None
    pace: Pace = field(default_factory=Pace)
    counted: bool = True
    """Whether it is in the speed share: not while it sits on a timed-out batch."""
    batches_done: int = 0
    """Batches it reported (the dashboard's and metrics' counts)."""
    resent: int = 0
    """Batches re-sent to others because it held them past task_timeout."""
    generation: int = -1
    """The generation of the last batch sent to it."""
    busy_since: float = 0.0
    """When it last went from holding no batch to holding one."""
    reported: int = 0
    """Genomes it reported since: its throughput over that time is the speed of a worker of several cores."""
    cores: int = 1
    """Evaluator processes it is counted with (of its registration's ``claimed``, as many as its throughput backs):
    it counts as that many workers in the speed share, its batches may be ``cores`` times ``capacity``, and it may
    hold up to ``cores`` + 1 batches at once."""
    claimed: int = 1
    """Evaluator processes behind its one connection, as its registration claims."""

    @property
    def held(self) -> int:
        """Genomes in its batches out."""
        return sum(len(batch) for batch in self.batches)


class Peers:
    """The master's open connections by id, where it listens (for log lines), and whether it is stopping (it
    admits no one more and warns of no loss)."""

    def __init__(self, config: DistributedConfig, where: str) -> None:
        self.config = config
        self.where = where
        self.stopping = False
        self._by_id: dict[int, Connection] = {}

    def __iter__(self) -> Iterator[Connection]:
        """The open connections, oldest first (a copy: they may close meanwhile)."""
        return iter(list(self._by_id.values()))

    def get(self, conn: int) -> Connection | None:
        return self._by_id.get(conn)

    def open(self, conn: int, address: str, now: float) -> None:
        self._by_id[conn] = Connection(conn, address, now, FrameDecoder(self.config.max_frame_bytes),
                                       ConnectionState(conn), now)

    def forget(self, conn: int) -> Connection | None:
        """The peer closed ``conn`` (or it broke): its connection, closed, if it was open."""
        connection = self._by_id.pop(conn, None)
        if connection is not None:
            connection.state.advance(Phase.CLOSED)
        return connection

    def close(self, connection: Connection, reason: str, actions: list[Action], flush: bool = True) -> None:
        """Close ``connection`` from this side (its worker or standby must have been let go first)."""
        self._by_id.pop(connection.id, None)
        connection.state.advance(Phase.CLOSED)
        actions.append(Close(reason, flush, connection.id))

    def refuse(self, connection: Connection, reason: str, code: str, actions: list[Action],
               epoch: int | None = None) -> None:
        """Tell an unregistered peer why it is refused (ERROR_REPORT ``code``, with ``epoch`` if given), then close
        its connection."""
        standby = connection.state.role is Role.STANDBY
        # a standby refuses every worker, and a spare standby retries while another follows, as they should
        log = logger.info if code == "standby" or (code == "busy" and standby) else logger.warning
        log("refusing %s from %s: %s", "standby" if standby else "worker", connection.address, reason)
        report = ErrorReport(reason, fatal=code not in RETRYABLE, code=code, epoch=epoch)
        actions.append(Send(encode_frame(report), connection.id))
        self.close(connection, reason, actions)
