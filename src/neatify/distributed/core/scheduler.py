"""Bookkeeping of one generation's evaluation: genomes queued to be sent, batches in flight, results (no I/O).

A *batch* is the genomes of one TASK_ASSIGNMENT (its ``batch_id`` on the wire); ``SentBatch`` is the master's
record of one sent, by row of the generation's wire columns. A ``GenomeBatch`` (the genes of many genomes as
arrays) is another thing, and is never called a batch here.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from neatify.distributed.errors import DistributedError, ProtocolError
from neatify.distributed.wire.columns import WireGenomes
from neatify.distributed.wire.framing import encode_frame
from neatify.genome.genome import Genome


@dataclass(eq=False)
class SentBatch:
    """A batch sent to one worker (one TASK_ASSIGNMENT): ``rows`` of its generation's wire columns, ``ids`` theirs.

    ``timed_out``: its genomes were given to others too, so its worker is not counted as one that can
    take work. ``job`` is None once its generation is over (released, so it pins no genomes).
    """

    id: int
    job: GenerationJob | None
    rows: np.ndarray
    ids: np.ndarray
    sent_at: float
    timed_out: bool = False
    ahead: bool = False
    """Sent while its worker still held another batch (prefetched): it waits there behind that one."""
    whole: bool = False
    """It holds its worker's whole share of the generation: no batch goes ahead to hide its round trip."""
    started: float = field(init=False)
    """When its evaluation began, as far as the master knows: sent, or the report of the batch ahead of it."""

    def __post_init__(self) -> None:
        self.started = self.sent_at
        self.sent_ids = self.ids.tobytes()
        """The ids column as sent: a report in the same order matches it byte for byte."""

    def __len__(self) -> int:
        return len(self.rows)

    def release(self) -> None:
        """Forget the generation (its worker may still report; that result is ignored)."""
        self.job = None
        self.timed_out = True

    def check_report(self, ids: np.ndarray, error_ids: list[int]) -> None:
        """ProtocolError unless a report's ``ids`` and ``error_ids`` together are exactly this batch's genomes."""
        if error_ids or not self._as_sent(ids):  # a worker reports in the order sent: else compare as sets
            covered = len(ids) + len(error_ids) == len(self.ids) and np.array_equal(
                np.sort(np.concatenate((ids, np.array(error_ids, dtype=np.int64)))), np.sort(self.ids))
            if not covered:
                raise ProtocolError(f"FITNESS_REPORT for batch {self.id} does not cover exactly its genomes")

    def _as_sent(self, ids: np.ndarray) -> bool:
        """Whether ``ids`` are this batch's genomes in the order sent."""
        return len(ids) == len(self.ids) and ids.tobytes() == self.sent_ids

    def rows_of(self, ids: np.ndarray) -> np.ndarray:
        """The rows of this batch's genomes ``ids`` (each one of them)."""
        if self._as_sent(ids):
            return self.rows
        order = np.argsort(self.ids, kind="stable")
        return self.rows[order[np.searchsorted(self.ids, ids, sorter=order)]]


def group_order(genomes: list[Genome], groups: Mapping[int, int]) -> list[int]:
    """Positions of ``genomes`` with each group's together, groups in order of first appearance (stable within one).

    ``groups`` maps genome id -> group (species) id; a genome it lacks is a ``ValueError`` naming it.
    """
    missing = next((g.id for g in genomes if g.id not in groups), None)
    if missing is not None:
        raise ValueError(f"species batching: genome {missing} has no species in the map given")
    first: dict[int, int] = {}
    for genome in genomes:
        first.setdefault(groups[genome.id], len(first))
    return sorted(range(len(genomes)), key=lambda i: first[groups[genomes[i].id]])


def _refuse_repeated(generation: int, ids: np.ndarray) -> None:
    """ValueError naming a genome id that occurs twice: reports are matched to rows by id, so each must be one."""
    ordered = np.sort(ids)
    repeated = ordered[1:][ordered[1:] == ordered[:-1]]
    if repeated.size:
        raise ValueError(f"genome id {repeated[0]} occurs twice in generation {generation}; each genome needs "
                         f"its own id")


class GenerationJob:
    """One generation's genomes, which have a fitness (or a failure) yet, and the counters logged.

    The genomes are encoded once (``WireGenomes``), in sending order: with ``groups`` (genome id -> species id)
    species by species, and then ``take`` stops where the species changes, so every batch holds one species.
    Genomes are tracked by their row there, in numpy arrays: no Python work per genome while the batches go out
    and come back.
    """

    def __init__(self, generation: int, genomes: list[Genome], groups: Mapping[int, int] | None = None,
                 context: dict[str, Any] | None = None) -> None:
        self.generation = generation
        self.context = context
        """The master's ``generation_context``, sent with every task of the generation (None: none)."""
        self.genomes = genomes
        order = None if groups is None else group_order(genomes, groups)
        self.wire = WireGenomes.of([genomes[i] for i in order] if order is not None else genomes) \
            if genomes else None
        """Each genome's wire columns, made once per generation however often they are sent."""
        if self.wire is not None:
            _refuse_repeated(generation, self.wire.ids)
        count = len(genomes)
        self.group = None if groups is None or self.wire is None else \
            np.array([groups[i] for i in self.wire.ids.tolist()], dtype=np.int64)
        """Each row's species with ``groups``, else None."""
        self.queue: deque[np.ndarray] = deque([np.arange(count)] if count else [])
        """Rows to send, in runs (a re-sent batch's rows go in front); some may have been resolved meanwhile."""
        self.isolating: deque[np.ndarray] = deque()
        """Rows of batches that failed as a whole, each run sent as one batch of its own (see ``fault``): sent
        before ``queue``."""
        self.attempts: dict[int, list[str]] = {}
        """Row -> what ended each batch of that genome alone that failed as a whole, and on which worker."""
        self.quarantined: dict[int, str] = {}
        """genome id -> why it was given up on (its attempts), for genomes that failed ``limit`` times alone."""
        self.fitness = np.zeros(count, dtype=np.float64)
        self.behaviours: dict[int, list[float]] = {}
        """genome id -> behaviour, of the genomes whose report gave one."""
        self.resolved = np.zeros(count, dtype=bool)
        """Rows with a fitness (or a failure)."""
        self.failures: dict[int, tuple[int | str, str]] = {}
        """genome id -> (worker id, remote traceback) for genomes whose fitness function raised."""
        self.unresolved = count
        """Genomes still without a fitness (or a failure): queued or in a batch out (a STATUS_REPORT's ``pending``)."""
        self.error: DistributedError | None = None
        self.finished = False
        self.batches_sent = self.batches_resent = self.duplicates_ignored = 0

    @property
    def done(self) -> bool:
        return self.unresolved == 0

    @property
    def queued(self) -> bool:
        """Whether rows are queued to be sent (some may have been resolved meanwhile)."""
        return bool(self.queue or self.isolating)

    @property
    def waiting(self) -> int:
        """Rows queued (some perhaps resolved meanwhile, by a batch that reported late)."""
        return sum(len(run) for run in self.queue) + sum(len(run) for run in self.isolating)

    def task_frame(self, batch: SentBatch) -> bytes:
        """The TASK_ASSIGNMENT frame of a batch, cut from the generation's wire columns."""
        assert self.wire is not None
        return encode_frame(self.wire.task(batch.id, self.generation, batch.rows, self.context))

    def take(self, size: int) -> np.ndarray:
        """Up to ``size`` queued rows that have no result yet (of one group when there are groups); a run being
        isolated goes alone."""
        while self.isolating:
            run = self.isolating.popleft()
            run = run[~self.resolved[run]]
            if run.size > size:
                self.isolating.appendleft(run[size:])
            if run.size:
                return run[:size]
        taken: list[np.ndarray] = []
        count, group = 0, None
        while self.queue and count < size:
            run = self.queue.popleft()
            head, rest = run[:size - count], run[size - count:]
            head = head[~self.resolved[head]]
            if self.group is not None and head.size:
                group = self.group[head[0]] if group is None else group
                other = np.flatnonzero(self.group[head] != group)
                if other.size:
                    rest, head = np.concatenate((head[other[0]:], rest)), head[:other[0]]
            if rest.size:
                self.queue.appendleft(rest)
            taken.append(head)
            count += head.size
            if rest.size and group is not None and self.group is not None and self.group[rest[0]] != group:
                break
        if len(taken) == 1:
            return taken[0]
        return np.concatenate(taken) if taken else np.zeros(0, dtype=np.int64)

    def ids(self, rows: np.ndarray) -> np.ndarray:
        """The genome ids of ``rows``."""
        assert self.wire is not None
        return self.wire.ids[rows]

    def requeue(self, batch: SentBatch) -> bool:
        """Put a failed or late batch's unresolved genomes back in front; whether any were."""
        batch.timed_out = True
        missing = batch.rows[~self.resolved[batch.rows]]
        if missing.size:
            self.queue.appendleft(missing)
            self.batches_resent += 1
        return bool(missing.size)

    def fault(self, batch: SentBatch, what: str, limit: int) -> list[int]:
        """``batch`` failed as a whole (``what``: its worker died, hung or refused it): its unresolved genomes
        go back in two halves, each sent alone, so that a culprit ends up alone; a genome that fails alone
        counts an attempt, and after ``limit`` of them is quarantined. Returns the ids quarantined now."""
        batch.timed_out = True
        missing = batch.rows[~self.resolved[batch.rows]]
        if not missing.size:
            return []
        self.batches_resent += 1
        if missing.size > 1:
            half = (missing.size + 1) // 2
            self.isolating.extendleft((missing[half:], missing[:half]))
            return []
        attempts = self.attempts.setdefault(int(missing[0]), [])
        attempts.append(what)
        if len(attempts) < limit:
            self.isolating.appendleft(missing)
            return []
        genome_id = int(self.ids(missing)[0])
        self.quarantined[genome_id] = f"{len(attempts)} attempt(s) ended its evaluation: " + "; ".join(attempts)
        self.resolved[missing] = True
        self.unresolved -= 1
        return [genome_id]

    def record(self, batch: SentBatch, ids: np.ndarray, fitness: np.ndarray, errors: list[list],
               worker_id: int | str, behaviours: np.ndarray | None = None) -> int:
        """Take a report's values (checked to cover ``batch``; ``behaviours``: one row per id, if reported) for
        genomes still without one; returns how many were new."""
        rows = batch.rows_of(ids)
        new = ~self.resolved[rows]
        if not new.all():  # some were resolved by another batch (this one was re-sent, or is)
            rows, fitness = rows[new], fitness[new]
        if behaviours is not None:
            self.behaviours.update(zip(ids[new].tolist(), behaviours[new].tolist()))
        self.fitness[rows] = fitness
        self.resolved[rows] = True
        added = len(rows)
        if errors:
            error_rows = batch.rows_of(np.array([pair[0] for pair in errors], dtype=np.int64))
            for row, (genome_id, trace) in zip(error_rows.tolist(), errors):
                if not self.resolved[row]:
                    self.resolved[row] = True
                    self.failures[genome_id] = (worker_id, trace)
                    added += 1
        self.unresolved -= added
        if added == 0:
            self.duplicates_ignored += 1
        return added

    def results(self) -> dict[int, float]:
        """genome id -> fitness reported, of every genome (a failed one's is 0.0: the caller decides it)."""
        return {} if self.wire is None else dict(zip(self.wire.ids.tolist(), self.fitness.tolist()))


class SpeedShare:
    """Running sums over the workers that can take work: O(1) per change, no rescans.

    A worker counts with its ``cores`` (evaluator processes); one not yet measured counts as that many cores of
    the mean speed per core of the measured ones (1.0 when none is).
    """

    def __init__(self) -> None:
        self._known_sum = 0.0
        self._known = 0
        """Cores of the measured workers."""
        self._unknown = 0
        """Cores of the workers not measured yet."""

    def add(self, speed: float | None, cores: int = 1) -> None:
        if speed:
            self._known_sum += speed
            self._known += cores
        else:
            self._unknown += cores

    def remove(self, speed: float | None, cores: int = 1) -> None:
        if speed:
            self._known -= cores
            self._known_sum = self._known_sum - speed if self._known else 0.0
        else:
            self._unknown -= cores

    def replace(self, old: float | None, new: float | None, cores: int = 1) -> None:
        self.remove(old, cores)
        self.add(new, cores)

    def per_core(self, speed: float | None = None, cores: int = 0) -> float | None:
        """The mean speed per core of the measured workers, less one of ``speed`` and ``cores`` counted among them
        (None while none is)."""
        known = self._known - cores if speed else self._known
        return (self._known_sum - (speed or 0.0)) / known if known > 0 else None

    def share(self, speed: float | None, cores: int = 1) -> float:
        """The fraction of the queued genomes a worker of ``speed`` (unmeasured: of ``cores``) deserves."""
        default = self._known_sum / self._known if self._known else 1.0
        total = self._known_sum + default * self._unknown
        return (speed or default * cores) / total if total > 0 else 1.0


BACKED = 0.75
"""A worker counted with fewer cores than it claims is counted with twice as many (up to its claim) once its
throughput reaches this fraction of that many cores at the mean speed per core of the other measured workers."""
OVERHEAD_SHARE = 0.15
"""The most a batch's fixed cost (round trip, coding, the master's handling) may weigh against its evaluation time."""
STARVING_SHARE = 0.5
"""The most a batch's overhead may weigh against its whole turnaround before a worker is rather left without work:
a batch of a worker's share of the generation whose overhead is within this is sent, smaller than ``OVERHEAD_SHARE``
asks, so that every worker is busy; an overhead larger than that is the master's own queue (a fitness too fast for
the workers it has), which fewer, larger batches shorten."""
SMOOTHING = 0.5
"""Weight of the past in a worker's running measurements (the newest batch gets the rest)."""


def smoothed(old: float | None, new: float) -> float:
    """The running value after one more measurement."""
    return new if old is None else SMOOTHING * old + (1 - SMOOTHING) * new


FIT_MEMORY = 0.8
"""Weight of the past in a worker's fit of turnaround against batch size (about its last five batches count)."""
LEAST_COST = 1e-7
"""Fewest seconds a genome is taken to cost: the fastest rate is 10 million genomes a second (no infinite rate)."""


@dataclass
class TurnaroundFit:
    """A least-squares line through a worker's recent batches, turnaround = overhead + size x cost per genome,
    on the master's clock alone; sums decayed by ``FIT_MEMORY`` so it follows a worker whose pace changes."""

    weight: float = 0.0
    size: float = 0.0
    time: float = 0.0
    size2: float = 0.0
    size_time: float = 0.0

    def add(self, genomes: int, turnaround: float) -> None:
        d = FIT_MEMORY
        self.weight, self.size, self.time = d * self.weight + 1, d * self.size + genomes, d * self.time + turnaround
        self.size2 = d * self.size2 + genomes * genomes
        self.size_time = d * self.size_time + genomes * turnaround

    def line(self) -> tuple[float, float] | None:
        """(cost per genome, overhead per batch), or None until the sizes differ enough to tell them apart (a
        spread of at least a genome); the cost kept within 0 .. the mean turnaround per genome."""
        if self.weight < 1.5:  # one batch
            return None
        mean_size, mean_time = self.size / self.weight, self.time / self.weight
        spread = self.size2 / self.weight - mean_size ** 2
        if spread < 0.25:
            return None
        slope = (self.size_time / self.weight - mean_size * mean_time) / spread
        cost = min(max(slope, LEAST_COST), mean_time / mean_size)
        return cost, max(mean_time - cost * mean_size, 0.0)


@dataclass
class Pace:
    """A worker's evaluation rate and fixed cost per batch, as the master sees them.

    ``rate``: genomes per second of its evaluation; ``overhead``: seconds a batch costs beyond that, sent to report
    received (round trip, decoding, the master's handling). Both come from the master's own clock: the turnaround of
    batches sent to an idle worker, fitted against their sizes (``TurnaroundFit``), and of batches sent ahead, whose
    turnaround from the report they waited behind is their evaluation alone. The ``elapsed`` a worker reports is only
    a hint, taken while those do not tell yet and only if it fits them (above 0, within the turnaround): a worker that
    reports 0, or lies, cannot shrink or swell its batches for more than its first few.
    """

    rate: float | None = None
    overhead: float | None = None
    fit: TurnaroundFit = field(default_factory=TurnaroundFit)
    cost: float | None = None
    """Seconds a genome took in batches sent ahead (None: none yet)."""
    reported: float | None = None
    """Seconds a genome took by the worker's own ``elapsed``, where it fits the turnaround (above 0, within it):
    only to tell a fitness too fast to plan a generation whole (``PLAN_SENDING``), never to size a batch."""

    def observe(self, genomes: int, elapsed: float, turnaround: float, ahead: bool = False) -> None:
        """One batch reported, ``turnaround`` seconds after its send on the master's clock (``ahead``: after the
        report of the batch it waited behind); ``elapsed``: the worker's own figure."""
        if 0 < elapsed <= turnaround:
            self.reported = smoothed(self.reported, max(elapsed / genomes, LEAST_COST))
        if ahead:
            self.cost = smoothed(self.cost, max(turnaround / genomes, LEAST_COST))
            self.rate = 1 / self.cost
            return
        self.fit.add(genomes, turnaround)
        line = self.fit.line()
        if self.cost is not None:  # its evaluation seen alone: the rest of this turnaround is overhead
            self.overhead = smoothed(self.overhead, max(turnaround - genomes * self.cost, 0.0))
        elif line is not None:
            cost, self.overhead = line
            self.rate = 1 / cost
        elif 0 < elapsed <= turnaround:  # the hint fits what the master saw
            self.rate = smoothed(self.rate, genomes / max(elapsed, genomes * LEAST_COST))
            self.overhead = smoothed(self.overhead, turnaround - elapsed)

    def floor(self, limit: int) -> int:
        """The fewest genomes (at most ``limit``) whose evaluation outweighs the overhead by 1 / OVERHEAD_SHARE;
        1 until measured."""
        if not self.rate or self.overhead is None:
            return 1
        return max(1, math.ceil(min(self.overhead * self.rate / OVERHEAD_SHARE, limit)))

    def starves(self, genomes: int) -> bool:
        """Whether a batch of ``genomes`` would rather not be sent at all: its overhead outweighs STARVING_SHARE times
        its turnaround, counted at the mean turnaround per genome of this worker's batches (which includes the
        overhead: so a slow fitness never starves a worker, however noisy the fit of its cost)."""
        fit = self.fit
        if self.overhead is None or fit.size <= 0:
            return False
        return self.overhead > STARVING_SHARE * genomes * fit.time / fit.size

    def amortised(self, genomes: int) -> bool:
        """Whether a batch of ``genomes`` keeps the overhead within OVERHEAD_SHARE of its evaluation (unknown:
        assumed so); when not, a second batch sent ahead hides the round trip."""
        return self.floor(genomes + 1) <= genomes


def batch_size(waiting: int, capacity: int, share: float, fixed: int, floor: int = 1) -> int:
    """Genomes for the next batch of one worker.

    ``fixed`` > 0 is used as is (capped by the worker's capacity). Otherwise (guided self-scheduling)
    the worker gets half of its ``share`` of the ``waiting`` (queued) genomes, its share being its speed over the
    summed speed of the workers that can take work (see ``SpeedShare``), so batches shrink toward
    the end of a generation and fast workers take more; but never fewer than ``floor`` (``Pace.floor``:
    enough to amortise the worker's measured per-batch overhead), capacity and waiting genomes allowing.
    """
    if fixed > 0:
        return max(1, min(fixed, capacity, waiting))
    return max(1, min(capacity, waiting, max(floor, math.ceil(waiting * min(share, 1.0) / 2))))


PLAN_TOLERANCE = 0.25
"""Measured seconds a genome within this fraction of the median count as the median in a plan (``plan_shares``):
a turnaround carries the round trip and the master's queue, which differ with a batch's place in the sending order
more than identical workers differ."""


PLAN_SENDING = 4.0
"""A generation is planned whole unless the master's sending of a plan (its measured pace times the workers) would
outlast the generation's evaluation (at the seconds a genome the workers report) this many times: a fitness so fast
that the master's messages are the generation, which the guided batches' floor cuts to fewer."""


def plan_shares(count: int, seconds: np.ndarray, cores: np.ndarray) -> np.ndarray:
    """Genomes for each worker so that ``count`` are evaluated in the least time, each worker's share given at once.

    ``seconds``: each worker's measured seconds a genome per core (its cores over its speed; those within
    PLAN_TOLERANCE of the median taken as the median); ``cores``: its cores. A worker evaluates its share in rounds
    of ``cores`` genomes, so it finishes after ``ceil(share / cores)`` rounds of ``seconds``: the makespan is the
    least ``T`` whose whole rounds by ``T`` hold every genome, and the genomes left over are taken off the last
    rounds of the workers finishing last (latest in order first). Every worker counts from the same start: the
    master sends the shares at about the pace it takes their reports, so the reports come back as staggered as the
    tasks went out.
    """
    median = float(np.median(seconds))
    seconds = np.where(np.abs(seconds - median) <= PLAN_TOLERANCE * median, median, seconds)
    rounds_by = lambda t: np.floor(t / seconds + 1e-9)  # noqa: E731  (whole rounds each finishes by t)
    low, high = 0.0, float(math.ceil(count / cores.sum()) * seconds.max())
    for _ in range(64):
        middle = (low + high) / 2
        if (cores * rounds_by(middle)).sum() >= count:
            high = middle
        else:
            low = middle
    rounds = rounds_by(high)
    shares = (cores * rounds).astype(np.int64)
    excess = int(shares.sum()) - count
    for worker in np.lexsort((-np.arange(len(shares)), -(rounds * seconds))):
        if excess <= 0:
            break
        cut = min(excess, int(cores[worker]), int(shares[worker]))
        shares[worker] -= cut
        excess -= cut
    return shares
