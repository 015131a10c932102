"""What a core tells the program that drives it: the events of the master, worker and standby, in one vocabulary.

A worker's and a standby's core return these among their ``Send`` actions, in order; the master's core
hands a finished generation over as an ``Outcome``. Each name means one thing on every side: ``Registered``
is a master's acceptance whether a worker or a standby registered, ``Shutdown`` its SHUTDOWN_SIGNAL, and
``Ended`` the end of a connection, for good (``fatal``) or until the next try.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from neatify.distributed.errors import DistributedError

if TYPE_CHECKING:
    from neatify.distributed.core.scheduler import GenerationJob
    from neatify.genome.batch import GenomeBatch
    from neatify.genome.genome import Genome


@dataclass(frozen=True)
class Registered:
    """The master of ``epoch`` accepted this worker or standby; it sends heartbeats every ``heartbeat_interval``
    seconds."""

    heartbeat_interval: float
    epoch: int = 0


@dataclass(frozen=True)
class Shutdown:
    """The master ended the run (SHUTDOWN_SIGNAL): a worker exits, a standby has nothing to take over."""

    reason: str


@dataclass(frozen=True)
class Ended:
    """The connection is over because of ``error``: for good when ``fatal`` (refused, or the master could not
    prove the token), else until the next try."""

    error: BaseException
    fatal: bool = False


@dataclass(frozen=True)
class Task:
    """A worker's batch to evaluate: its genes checked into one ``genome_batch``, and ``genomes``, views of its
    rows whose gene objects are built only if the fitness function reads them."""

    batch_id: int
    generation: int
    genome_batch: GenomeBatch
    genomes: list[Genome]
    context: dict[str, Any] | None = None
    """The master's ``generation_context`` sent with it (None: none)."""


@dataclass(frozen=True)
class Snapshot:
    """The primary's state after an evaluated generation: its population and its statistics rows, checked."""

    epoch: int
    generation: int
    population: dict[str, Any]
    statistics: list[dict[str, Any]]


@dataclass(frozen=True)
class Replicated:
    """A standby took a new snapshot, now ``StandbyProtocol.snapshot``."""

    snapshot: Snapshot


@dataclass(frozen=True)
class Promote:
    """A standby's primary has been gone for the silence limit: lead the run as ``epoch``."""

    epoch: int
    reason: str


@dataclass(frozen=True)
class StoodDown:
    """The master a standby dialled, of an older epoch than the standby's, stood down on meeting it (ERROR_REPORT
    ``"epoch"``): what a promoted standby tells its old primary (``io.standby.OldPrimaryFence``)."""

    reason: str


@dataclass(frozen=True)
class Follower:
    """The master a standby dialled is a standby itself (ERROR_REPORT ``"standby"``): it leads no epoch, so a
    promoted standby's fence has nothing left to fence there."""

    reason: str


@dataclass(frozen=True)
class Outcome:
    """A master's finished generation: fitness (and behaviours, when reported) by genome id, or the error that
    ended it."""

    job: GenerationJob
    fitness: dict[int, float] = field(default_factory=dict)
    behaviours: dict[int, list[float]] = field(default_factory=dict)
    error: DistributedError | None = None


Event = Registered | Shutdown | Ended | Task | Replicated | Promote | StoodDown | Follower
"""What a worker's or a standby's core returns besides ``Send``."""
