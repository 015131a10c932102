"""Reporters: objects a Population calls around each generation (progress, statistics, checkpoints)."""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from neatify.io.checkpoint import Checkpoint, CheckpointError

if TYPE_CHECKING:
    from neatify.population import GenerationStats, Population

logger = logging.getLogger("neatify.reporting.reporters")


class Reporter:
    """Base class; override what you need. Add one with ``population.add_reporter(reporter)``."""

    def start_generation(self, population: Population) -> None:
        """Called before the generation's genomes are evaluated."""

    def end_generation(self, population: Population, stats: GenerationStats) -> None:
        """Called once every genome of the generation has its fitness."""


class _Timed(Reporter):
    """Measures how long each generation's evaluation took (``self.elapsed``, seconds)."""

    def __init__(self) -> None:
        self._started = time.perf_counter()
        self.elapsed = 0.0

    def start_generation(self, population: Population) -> None:
        self._started = time.perf_counter()

    def end_generation(self, population: Population, stats: GenerationStats) -> None:
        self.elapsed = time.perf_counter() - self._started


class ProgressReporter(_Timed):
    """Writes one line per generation: best/mean fitness, species, complexity, evaluations per second.

    A generation still being evaluated after ``bar_after`` seconds also gets a tqdm progress bar on a
    terminal (``pip install '.[progress]'``; none without tqdm, with ``bar_after=None``, or
    when its stream is not a terminal, so log files get no carriage-return lines). The bar
    counts genomes that have a fitness, so it moves with evaluators that set fitness as results
    arrive (a serial loop, ``ParallelEvaluator``); ``RayEvaluator`` and the distributed master set
    every fitness at the end of the generation, so for them it shows only the elapsed time.
    """

    def __init__(self, stream: TextIO | None = None, bar_after: float | None = 2.0) -> None:
        super().__init__()
        self.stream = stream
        self.bar_after = bar_after
        self._bar: _ProgressBar | None = None

    def start_generation(self, population: Population) -> None:
        super().start_generation(population)
        self._stop_bar()  # a previous evaluation that raised leaves one behind
        if self.bar_after is not None:
            self._bar = _ProgressBar.start(population, self.bar_after, self.stream)

    def end_generation(self, population: Population, stats: GenerationStats) -> None:
        super().end_generation(population, stats)
        self._stop_bar()
        rate = len(population.genomes) / self.elapsed if self.elapsed > 0 else float("inf")
        line = (f"gen {stats.generation:4d}  best {stats.best_fitness:10.4f}  mean {stats.mean_fitness:10.4f}  "
                f"species {stats.num_species:3d}  hidden {stats.mean_hidden:6.2f}  "
                f"connections {stats.mean_connections:7.2f}  {rate:9.1f} eval/s")
        stream = self.stream if self.stream is not None else sys.stdout
        print(line, file=stream, flush=True)

    def _stop_bar(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


class _ProgressBar:
    """A thread that shows a tqdm bar of evaluated genomes once a generation runs long."""

    _POLL = 0.2

    def __init__(self, population: Population, delay: float, stream: TextIO | None) -> None:
        self._genomes = population.genomes
        self._generation = population.generation
        self._delay = delay
        self._stream = stream
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="neatify-progress", daemon=True)

    @classmethod
    def start(cls, population: Population, delay: float, stream: TextIO | None) -> _ProgressBar | None:
        try:
            import tqdm  # noqa: F401
        except ImportError:
            logger.debug("tqdm is not installed: no progress bar (pip install '.[progress]')")
            return None
        bar = cls(population, delay, stream)
        bar._thread.start()
        return bar

    def _run(self) -> None:
        from tqdm import tqdm

        if self._done.wait(self._delay):
            return
        with tqdm(total=len(self._genomes), desc=f"gen {self._generation}", unit="genome", leave=False,
                  file=self._stream if self._stream is not None else sys.stderr, disable=None) as bar:
            while True:
                bar.update(sum(g.fitness is not None for g in self._genomes) - bar.n)
                if self._done.wait(self._POLL):
                    break

    def stop(self) -> None:
        self._done.set()
        self._thread.join(timeout=5.0)


class StatisticsReporter(_Timed):
    """Keeps every generation's statistics and species sizes in memory; saves them as CSV or JSON."""

    def __init__(self, rows: list[dict[str, Any]] | None = None) -> None:
        super().__init__()
        self.rows: list[dict[str, Any]] = list(rows or [])
        """Per generation (starting with ``rows``: those of earlier generations, a promoted standby's, say): the GenerationStats fields, ``median_fitness``, ``stdev_fitness`` (population
        standard deviation), ``seconds`` and ``species_sizes`` {id: size}."""

    def end_generation(self, population: Population, stats: GenerationStats) -> None:
        super().end_generation(population, stats)
        row = dataclasses.asdict(stats)
        fitness = [g.fitness for g in population.genomes]
        row["median_fitness"] = statistics.median(fitness)
        row["stdev_fitness"] = statistics.pstdev(fitness)
        row["seconds"] = self.elapsed
        row["species_sizes"] = {s.id: len(s.members) for s in population.species}
        self.rows.append(row)

    def column(self, name: str) -> list[Any]:
        """One statistic over all generations, e.g. ``column("best_fitness")``."""
        return [row[name] for row in self.rows]

    def species_sizes(self) -> tuple[list[int], list[int], list[list[int]]]:
        """(generations, species ids, sizes[species][generation]) with 0 where a species was absent."""
        ids = sorted({sid for row in self.rows for sid in row["species_sizes"]})
        sizes = [[row["species_sizes"].get(sid, 0) for row in self.rows] for sid in ids]
        return self.column("generation"), ids, sizes

    def save_json(self, path: str | Path) -> None:
        """All rows as a JSON list (species ids become string keys)."""
        Path(path).write_text(json.dumps(self.rows, indent=1))
        logger.debug("wrote statistics of %d generations to %s", len(self.rows), path)

    @classmethod
    def load_json(cls, path: str | Path) -> StatisticsReporter:
        """A reporter holding the rows a ``save_json`` wrote."""
        reporter = cls()
        for row in json.loads(Path(path).read_text()):
            row["species_sizes"] = {int(k): v for k, v in row["species_sizes"].items()}
            reporter.rows.append(row)
        return reporter

    def save_csv(self, path: str | Path) -> None:
        """One line per generation; species sizes as ``id:size`` pairs separated by spaces."""
        with open(path, "w", newline="") as fh:
            writer = None
            for row in self.rows:
                flat = dict(row, species_sizes=" ".join(f"{k}:{v}" for k, v in row["species_sizes"].items()))
                if writer is None:
                    writer = csv.DictWriter(fh, fieldnames=list(flat))
                    writer.writeheader()
                writer.writerow(flat)
        logger.debug("wrote statistics of %d generations to %s", len(self.rows), path)


class CheckpointReporter(Reporter):
    """Saves a checkpoint every ``every_generations`` generations and/or ``every_seconds`` seconds: the one way
    a run is checkpointed, local or distributed (``DistributedPopulation(checkpoint_path=)`` saves through one).

    Files are ``{directory}/{prefix}{generation}.json.gz``, made with the directory if need be; with
    ``filename`` every checkpoint replaces that one file (atomically) in ``directory``, which must exist.
    ``Checkpoint.load`` continues the run. A checkpoint that cannot be written fails at construction.
    """

    def __init__(self, directory: str | Path, every_generations: int | None = 1, every_seconds: float | None = None,
                 prefix: str = "checkpoint-", filename: str | None = None) -> None:
        if every_generations is None and every_seconds is None:
            raise ValueError("give every_generations, every_seconds or both")
        if every_generations is not None and every_generations < 1:
            raise ValueError(f"every_generations must be at least 1, got {every_generations}")
        self.directory = Path(directory)
        self.every_generations = every_generations
        self.every_seconds = every_seconds
        self.prefix = prefix
        self.filename = filename
        self.last_path: Path | None = None
        self._last_time = time.monotonic()
        self._saved_generation: int | None = None
        self._check_writable()

    def end_generation(self, population: Population, stats: GenerationStats) -> None:
        due_generation = self.every_generations is not None and (stats.generation + 1) % self.every_generations == 0
        due_time = self.every_seconds is not None and time.monotonic() - self._last_time >= self.every_seconds
        if due_generation or due_time:
            self.save(population)

    def finish(self, population: Population) -> Path | None:
        """At a run's end, save its last generation unless that one was just saved; returns the new path."""
        if self._saved_generation == population.generation:
            return None
        return self.save(population)

    def _check_writable(self) -> None:
        """Fail now, not after the first generations, when no checkpoint can be written where it goes."""
        if self.filename is None:
            try:
                self.directory.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise CheckpointError(f"{self.directory}: cannot make the checkpoint directory: {exc.strerror}") \
                    from None
        Checkpoint.check_writable(self.path(0))

    def path(self, generation: int) -> Path:
        """Where the checkpoint of ``generation`` goes."""
        return self.directory / (self.filename or f"{self.prefix}{generation}.json.gz")

    def save(self, population: Population) -> Path:
        """Write a checkpoint of ``population`` now; returns its path."""
        return self.save_state(population.state_dict(), population.generation)

    def save_state(self, state: dict[str, Any], generation: int, epoch: int | None = None,
                   leader: str | None = None) -> Path:
        """Write a ``Population.state_dict()`` already taken, of ``generation`` (``epoch``: that of the distributed
        master it is the state of, ``leader`` who led it, see ``Checkpoint.read_fenced``); returns its path."""
        if self.filename is None:
            self.directory.mkdir(parents=True, exist_ok=True)
        path = self.path(generation)
        Checkpoint.save_state(state, path, epoch, leader)
        self.last_path = path
        self._last_time = time.monotonic()
        self._saved_generation = generation
        logger.info("saved checkpoint %s", path)
        return path
