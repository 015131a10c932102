"""Bookkeeping of one generation's evaluation: pending genomes, batches in flight, results (no I/O)."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

from neatify.distributed.errors import DistributedError
from neatify.distributed.genome_wire import encode_genomes
from neatify.distributed.protocol import task_frame
from neatify.genome import Genome


@dataclass
class Batch:
    """Genomes sent to one worker in one TASK_ASSIGNMENT.

    ``timed_out``: its genomes were given to others too, so its worker is not counted as one that can
    take work. ``job`` is None once its generation is over (released, so it pins no genomes).
    """

    id: int
    job: GenerationJob | None
    genome_ids: list[int]
    sent_at: float
    timed_out: bool = False
    ahead: bool = False
    """Sent while its worker still held another batch (prefetched): it waits there behind that one."""
    started: float = field(init=False)
    """When its evaluation began, as far as the master knows: sent, or the report of the batch ahead of it."""

    def __post_init__(self) -> None:
        self.started = self.sent_at

    def release(self) -> None:
        """Forget the generation (its worker may still report; that result is ignored)."""
        self.job = None
        self.timed_out = True


def group_order(genomes: list[Genome], groups: Mapping[int, int]) -> list[int]:
    """Genome ids with each group's together, groups in order of first appearance (stable within one).

    ``groups`` maps genome id -> group (species) id; a genome it lacks is a ``ValueError`` naming it.
    """
    missing = next((g.id for g in genomes if g.id not in groups), None)
    if missing is not None:
        raise ValueError(f"species batching: genome {missing} has no species in the map given")
    first: dict[int, int] = {}
    for genome in genomes:
        first.setdefault(groups[genome.id], len(first))
    return sorted((g.id for g in genomes), key=lambda i: first[groups[i]])


@dataclass
class GenerationJob:
    """One generation's genomes, which have a fitness (or a failure) yet, and the counters logged.

    ``groups`` (genome id -> species id), when given, makes every batch hold genomes of one species:
    the pending genomes are ordered species by species and ``take`` stops where the species changes.
    """

    generation: int
    genomes: list[Genome]
    groups: Mapping[int, int] | None = None
    pending: deque[int] = field(default_factory=deque)
    results: dict[int, float] = field(default_factory=dict)
    failures: dict[int, tuple[int | str, str]] = field(default_factory=dict)
    """genome id -> (worker id, remote traceback) for genomes whose fitness function raised."""
    error: DistributedError | None = None
    finished: bool = False
    batches_sent: int = 0
    batches_resent: int = 0
    duplicates_ignored: int = 0

    def __post_init__(self) -> None:
        self.encoded = dict(zip((g.id for g in self.genomes), encode_genomes(self.genomes)))
        """Each genome's wire encoding, made once per generation however often it is sent."""
        if self.groups is None:
            self.pending.extend(g.id for g in self.genomes)
        else:
            self.pending.extend(group_order(self.genomes, self.groups))

    def task_frame(self, batch_id: int, genome_ids: list[int]) -> bytes:
        """The TASK_ASSIGNMENT frame of a batch, spliced from the genomes' ready encodings."""
        return task_frame(batch_id, self.generation, [self.encoded[i] for i in genome_ids])

    @property
    def done(self) -> bool:
        return self.unresolved == 0

    @property
    def unresolved(self) -> int:
        """Genomes still without a fitness (or a failure): pending or in a batch out."""
        return len(self.genomes) - len(self.results) - len(self.failures)

    def is_resolved(self, genome_id: int) -> bool:
        return genome_id in self.results or genome_id in self.failures

    def take(self, size: int) -> list[int]:
        """Up to ``size`` pending genome ids that have no result yet (of one group when there are groups)."""
        taken: list[int] = []
        while self.pending and len(taken) < size:
            genome_id = self.pending[0]
            if self.is_resolved(genome_id):
                self.pending.popleft()
            elif taken and self.groups is not None and self.groups[genome_id] != self.groups[taken[0]]:
                break
            else:
                taken.append(self.pending.popleft())
        return taken

    def requeue(self, batch: Batch) -> bool:
        """Put a failed or late batch's unresolved genomes back in front; whether any were."""
        batch.timed_out = True
        missing = [i for i in batch.genome_ids if not self.is_resolved(i)]
        self.pending.extendleft(reversed(missing))
        if missing:
            self.batches_resent += 1
        return bool(missing)

    def record(self, batch: Batch, fitness: list[list], errors: list[list], worker_id: int | str) -> int:
        """Take a report's values for genomes still without one; returns how many were new."""
        new = 0
        for genome_id, value in fitness:
            if not self.is_resolved(genome_id):
                self.results[genome_id] = float(value)
                new += 1
        for genome_id, trace in errors:
            if not self.is_resolved(genome_id):
                self.failures[genome_id] = (worker_id, trace)
                new += 1
        if new == 0:
            self.duplicates_ignored += 1
        return new


class SpeedShare:
    """Running sums over the workers that can take work: O(1) per change, no rescans.

    A worker not yet measured counts as the mean of the measured ones (1.0 when none is).
    """

    def __init__(self) -> None:
        self._known_sum = 0.0
        self._known = 0
        self._unknown = 0

    def add(self, speed: float | None) -> None:
        if speed:
            self._known_sum += speed
            self._known += 1
        else:
            self._unknown += 1

    def remove(self, speed: float | None) -> None:
        if speed:
            self._known -= 1
            self._known_sum = self._known_sum - speed if self._known else 0.0
        else:
            self._unknown -= 1

    def replace(self, old: float | None, new: float | None) -> None:
        self.remove(old)
        self.add(new)

    def share(self, speed: float | None) -> float:
        """The fraction of the pending genomes a worker of ``speed`` deserves."""
        default = self._known_sum / self._known if self._known else 1.0
        total = self._known_sum + default * self._unknown
        return (speed or default) / total if total > 0 else 1.0


OVERHEAD_SHARE = 0.15
"""The most a batch's fixed cost (round trip, coding, the master's handling) may weigh against its evaluation time."""
SMOOTHING = 0.5
"""Weight of the past in a worker's running measurements (the newest batch gets the rest)."""


def smoothed(old: float | None, new: float) -> float:
    """The running value after one more measurement."""
    return new if old is None else SMOOTHING * old + (1 - SMOOTHING) * new


@dataclass
class Pace:
    """A worker's measured evaluation rate and fixed cost per batch, over its past batches.

    ``rate``: genomes per second of its own evaluation (a report's ``elapsed``; a report of 0 s measures
    nothing). ``overhead``: seconds a batch costs it beyond that, sent to report received (round trip,
    decoding, the master's handling), measured on batches that did not wait behind another.
    """

    rate: float | None = None
    overhead: float | None = None

    def observe(self, genomes: int, elapsed: float, turnaround: float | None) -> None:
        """One batch reported: ``elapsed`` of evaluation, ``turnaround`` from its send (None: it was sent ahead)."""
        if elapsed > 0:  # at most a genome a microsecond: a lying report's 1e-300 s overflows nothing
            self.rate = smoothed(self.rate, genomes / max(elapsed, 1e-6))
        if turnaround is not None:
            self.overhead = smoothed(self.overhead, max(turnaround - elapsed, 0.0))

    def floor(self, limit: int) -> int:
        """The fewest genomes (at most ``limit``) whose evaluation outweighs the overhead by 1 / OVERHEAD_SHARE;
        1 until measured."""
        if not self.rate or self.overhead is None:
            return 1
        return max(1, math.ceil(min(self.overhead * self.rate / OVERHEAD_SHARE, limit)))

    def amortised(self, genomes: int) -> bool:
        """Whether a batch of ``genomes`` keeps the overhead within OVERHEAD_SHARE of its evaluation (unknown:
        assumed so); when not, a second batch sent ahead hides the round trip."""
        return self.floor(genomes + 1) <= genomes


def batch_size(pending: int, capacity: int, share: float, fixed: int, floor: int = 1) -> int:
    """Genomes for the next batch of one worker.

    ``fixed`` > 0 is used as is (capped by the worker's capacity). Otherwise (guided self-scheduling)
    the worker gets half of its ``share`` of the pending genomes, its share being its speed over the
    summed speed of the workers that can take work (see ``SpeedShare``), so batches shrink toward
    the end of a generation and fast workers take more; but never fewer than ``floor`` (``Pace.floor``:
    enough to amortise the worker's measured per-batch overhead), capacity and pending genomes allowing.
    """
    if fixed > 0:
        return max(1, min(fixed, capacity, pending))
    return max(1, min(capacity, pending, max(floor, math.ceil(pending * min(share, 1.0) / 2))))
