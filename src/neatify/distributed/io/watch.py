"""What a run's dashboard and metrics show: each generation's fitness and species and the champion's picture,
kept by a reporter, and the workers as the master's core sees them.

The reporter runs in the population's thread, the pages in the master's event loop: the rows are handed over
under a lock, and the core is read only in the loop's thread.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from neatify.distributed.core.peers import Worker
from neatify.genome.genome import Genome
from neatify.population import GenerationStats, Population
from neatify.reporting.reporters import Reporter
from neatify.reporting.svg import network_svg


@dataclass
class Champion:
    """The best genome so far, drawn only once someone asks for its picture (``svg``), and then only once."""

    genome: Genome
    _svg: str | None = None

    def summary(self) -> dict[str, Any]:
        """What the dashboard's state tells of it (the picture has a page of its own; the genes are never sent)."""
        return {"genome": self.genome.id, "fitness": self.genome.fitness}

    @property
    def svg(self) -> str:
        """Its network drawn (``network_svg``)."""
        if self._svg is None:
            self._svg = network_svg(self.genome, f"genome {self.genome.id}")
        return self._svg


class RunWatch(Reporter):
    """A reporter keeping every generation's best and mean fitness, species sizes and evaluations so far, and
    the champion drawn: the history a dashboard plots and the metrics' fitness figures."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows: list[dict[str, Any]] = []
        self._generations: list[int] = []
        self.champion: Champion | None = None

    def end_generation(self, population: Population, stats: GenerationStats) -> None:
        self.add(stats, _species_sizes(population), _champion(population, self.champion))

    def add(self, stats: GenerationStats, species: dict[str, int], champion: Champion | None) -> None:
        """Record one evaluated generation (and the champion after it)."""
        row = {"generation": stats.generation, "best": stats.best_fitness, "mean": stats.mean_fitness,
               "evaluations": stats.evaluations, "species": species}
        with self._lock:
            self._rows.append(row)
            self._generations.append(stats.generation)
            self.champion = champion

    def since(self, generation: int) -> list[dict[str, Any]]:
        """The rows of the generations from ``generation`` on (a page polling asks only for what is new)."""
        with self._lock:
            return self._rows[bisect.bisect_left(self._generations, generation):]

    def last(self) -> dict[str, Any] | None:
        """The row of the last generation evaluated (None before the first)."""
        with self._lock:
            return self._rows[-1] if self._rows else None

    @classmethod
    def from_population(cls, population: Population) -> RunWatch:
        """A checkpoint's history: best and mean fitness of every generation, species sizes of the last."""
        watch = cls()
        for stats in population.history[:-1]:
            watch.add(stats, {}, None)
        if population.history:
            watch.add(population.history[-1], _species_sizes(population), _champion(population, None))
        return watch


def _species_sizes(population: Population) -> dict[str, int]:
    """Members of each species, by id (JSON keys are text)."""
    return {str(s.id): len(s.members) for s in population.species}


def _champion(population: Population, last: Champion | None) -> Champion | None:
    """The population's best genome (``last`` while it is the same one: ``Population`` replaces, never changes it)."""
    best = population.best_genome
    if best is None or best.fitness is None:
        return last
    if last is not None and last.genome is best:
        return last
    return Champion(best)


@dataclass(frozen=True)
class WorkerRow:
    """One line of the dashboard's workers table."""

    id: str
    capacity: int
    rate: float
    """Genomes per second over its batches' turnaround (0 before its first report)."""
    batches_out: int
    reported: int
    resent: int
    lateness: float
    """Seconds its oldest batch out has taken beyond what its rate predicts (0 when on time or idle)."""
    late: bool
    """Whether a batch of it passed ``task_timeout`` (and was given to others too)."""


def worker_rows(workers: Iterable[Worker], now: float) -> list[dict[str, Any]]:
    """The workers table, read from the master's core in its event loop's thread."""
    return [asdict(_worker_row(worker, now)) for worker in workers]


def _worker_row(worker: Worker, now: float) -> WorkerRow:
    rate = worker.speed or 0.0
    head = worker.batches[0] if worker.batches else None
    lateness = 0.0
    if head is not None and rate > 0:
        lateness = max(now - head.started - len(head) / rate, 0.0)
    return WorkerRow(worker.worker_id, worker.capacity, rate, len(worker.batches), worker.batches_done, worker.resent,
                     lateness, any(batch.timed_out for batch in worker.batches))
