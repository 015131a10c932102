"""Bookkeeping of one generation's evaluation: pending genomes, batches in flight, results (no I/O)."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from neatify.distributed.errors import DistributedError
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

    def release(self) -> None:
        """Forget the generation (its worker may still report; that result is ignored)."""
        self.job = None
        self.timed_out = True


@dataclass
class GenerationJob:
    """One generation's genomes, which have a fitness (or a failure) yet, and the counters logged."""

    generation: int
    genomes: list[Genome]
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
        self.payloads = {g.id: {**g.to_dict(), "fitness": None} for g in self.genomes}
        self.pending.extend(g.id for g in self.genomes)

    @property
    def done(self) -> bool:
        return len(self.results) + len(self.failures) == len(self.genomes)

    def is_resolved(self, genome_id: int) -> bool:
        return genome_id in self.results or genome_id in self.failures

    def take(self, size: int) -> list[int]:
        """Up to ``size`` pending genome ids that have no result yet."""
        taken: list[int] = []
        while self.pending and len(taken) < size:
            genome_id = self.pending.popleft()
            if not self.is_resolved(genome_id):
                taken.append(genome_id)
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


def speed_pool(speeds: list[float | None]) -> tuple[float, float]:
    """``(default, total)``: the speed assumed for a worker not yet measured (the mean of the known
    speeds, else 1) and the sum of all speeds with that default filled in. One pass over the workers."""
    known = [s for s in speeds if s]
    default = sum(known) / len(known) if known else 1.0
    return default, sum(known) + default * (len(speeds) - len(known))


def batch_size(pending: int, capacity: int, share: float, fixed: int) -> int:
    """Genomes for the next batch of one worker.

    ``fixed`` > 0 is used as is (capped by the worker's capacity). Otherwise (guided self-scheduling)
    the worker gets half of its ``share`` of the pending genomes, its share being its speed over the
    summed speed of the workers that can take work (see ``speed_pool``), so batches shrink toward
    the end of a generation and fast workers take more.
    """
    if fixed > 0:
        return max(1, min(fixed, capacity, pending))
    return max(1, min(capacity, pending, math.ceil(pending * min(share, 1.0) / 2)))
