"""Reporters: progress lines, statistics in memory and on disk, periodic checkpoints, logging."""

from __future__ import annotations

import csv
import io
import json
import logging
import threading
from collections.abc import Callable

import pytest

from distributed_helpers import wait_until
from neatify import Checkpoint, EvolutionConfig, Population
from neatify.reporting.reporters import CheckpointReporter, ProgressReporter, StatisticsReporter

CONFIG = EvolutionConfig(population_size=30, prob_add_node=0.2)


def size_fitness(genomes):
    for genome in genomes:
        genome.fitness = sum(abs(c.weight) for c in genome.connections.values())


def population(*reporters):
    pop = Population(num_inputs=3, num_outputs=2, config=CONFIG, seed=3)
    for reporter in reporters:
        pop.add_reporter(reporter)
    return pop


def test_progress_reporter_writes_one_line_per_generation():
    stream = io.StringIO()
    pop = population(ProgressReporter(stream))
    pop.run(size_fitness, 3)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("gen    0")
    assert f"best {pop.history[2].best_fitness:10.4f}" in lines[2]
    assert "species" in lines[1] and "eval/s" in lines[1]


def test_each_generation_is_reported_once_with_info_logging(caplog):
    """A reporter's line is the generation's report: logging at INFO (as the examples set it) adds no second one."""
    stream = io.StringIO()
    with caplog.at_level(logging.INFO):
        population(ProgressReporter(stream)).run(size_fitness, 3)
    assert len(stream.getvalue().splitlines()) == 3
    assert [r.getMessage() for r in caplog.records if r.getMessage().startswith("generation ")] == []


def test_checkpoint_reporter_finish_saves_the_last_generation_once(tmp_path):
    reporter = CheckpointReporter(tmp_path, every_generations=2)
    pop = population(reporter)
    pop.run(size_fitness, 3)
    assert reporter.finish(pop) == tmp_path / "checkpoint-2.json.gz"
    assert reporter.finish(pop) is None  # just saved
    pop.run(size_fitness, 1)
    assert reporter.finish(pop) is None  # generation 3 was saved by the schedule
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-1.json.gz", "checkpoint-2.json.gz",
                                                          "checkpoint-3.json.gz"]


class Stream(io.StringIO):
    """A text stream that says whether it is a terminal (``tty``) and remembers being asked, as a bar must ask."""

    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty
        self.asked = False

    def isatty(self) -> bool:
        self.asked = True
        return self.tty


def bar_armed() -> bool:
    """Whether a progress bar's thread is running (waiting until the bar is due, or drawing it)."""
    return any(thread.name == "neatify-progress" for thread in threading.enumerate())


def evaluated_in_halves(between: Callable[[str], None]):
    """A fitness function that sets half the genomes' fitness, calls ``between("15/30")`` (for 30 genomes), sets
    the rest and calls ``between("30/30")``."""
    def fitness(genomes):
        half = len(genomes) // 2
        for start, end in ((0, half), (half, len(genomes))):
            for genome in genomes[start:end]:
                genome.fitness = 1.0
            between(f"{end}/{len(genomes)}")
    return fitness


def test_a_generation_gets_a_progress_bar_that_counts_evaluated_genomes():
    """bar_after=0: the bar is due at once, so the test waits on what the terminal shows, never on a clock."""
    pytest.importorskip("tqdm")
    terminal = Stream(tty=True)
    pop = population(ProgressReporter(terminal, bar_after=0.0))
    pop.run_generation(evaluated_in_halves(lambda count: wait_until(
        lambda: count in terminal.getvalue(), 10, f"the bar to show {count}")))
    text = terminal.getvalue()
    assert "gen 0:" in text and "genome/s" in text and text.index("15/30") < text.index("30/30")
    assert text.rstrip().splitlines()[-1].lstrip("\r").startswith("gen    0")  # the bar cleared, then the line


@pytest.mark.parametrize("bar_after", [None, 3600.0])
def test_no_bar_when_disabled_or_before_it_is_due(bar_after):
    """On a terminal: with bar_after=None no bar exists; with an hour to wait it exists but draws nothing."""
    pytest.importorskip("tqdm")
    terminal = Stream(tty=True)
    pop = population(ProgressReporter(terminal, bar_after=bar_after))
    pop.run_generation(evaluated_in_halves(lambda count: wait_until(
        lambda: bar_armed() == (bar_after is not None), 10, "a bar to be armed, or none")))
    text = terminal.getvalue()
    assert text.count("\n") == 1 and "/30" not in text and "\r" not in text


def test_no_progress_bar_into_a_file():
    """A stream that is not a terminal (a log file, a pipe) gets only the generation's line: no bar, no \\r."""
    pytest.importorskip("tqdm")
    log = Stream(tty=False)
    pop = population(ProgressReporter(log, bar_after=0.0))
    pop.run_generation(evaluated_in_halves(lambda count: wait_until(
        lambda: log.asked, 10, "the bar to ask whether the stream is a terminal")))
    assert "\r" not in log.getvalue() and len(log.getvalue().splitlines()) == 1


def test_statistics_reporter_records_stats_and_species_sizes(tmp_path):
    stats = StatisticsReporter()
    pop = population(stats)
    pop.run(size_fitness, 4)
    assert stats.column("best_fitness") == [h.best_fitness for h in pop.history]
    generations, ids, sizes = stats.species_sizes()
    assert generations == [0, 1, 2, 3]
    assert all(sum(column) == CONFIG.population_size for column in zip(*sizes))
    assert len(ids) == len(sizes)
    assert stats.rows[-1]["species_sizes"] == {s.id: len(s.members) for s in pop.species}

    stats.save_json(tmp_path / "stats.json")
    assert StatisticsReporter.load_json(tmp_path / "stats.json").rows == stats.rows
    stats.save_csv(tmp_path / "stats.csv")
    with open(tmp_path / "stats.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [float(r["mean_fitness"]) for r in rows] == stats.column("mean_fitness")
    assert rows[0]["species_sizes"].split(" ")[0].split(":")[1].isdigit()
    assert json.loads((tmp_path / "stats.json").read_text())[0]["generation"] == 0


def test_checkpoint_reporter_saves_every_n_generations_and_resumes_exactly(tmp_path, caplog):
    reporter = CheckpointReporter(tmp_path / "ckpt", every_generations=2)
    pop = population(reporter)
    with caplog.at_level(logging.INFO, logger="neatify.reporting.reporters"):
        pop.run(size_fitness, 5)
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == [
        "checkpoint-1.json.gz", "checkpoint-3.json.gz"]
    assert reporter.last_path == tmp_path / "ckpt" / "checkpoint-3.json.gz"
    assert any("saved checkpoint" in r.getMessage() for r in caplog.records)

    resumed = Checkpoint.load(reporter.last_path)
    resumed.run_generation(size_fitness)
    assert resumed.history == pop.history


def test_checkpoint_reporter_by_time(tmp_path):
    reporter = CheckpointReporter(tmp_path, every_generations=None, every_seconds=0.0)
    population(reporter).run(size_fitness, 2)
    assert len(list(tmp_path.iterdir())) == 2


def test_checkpoint_reporter_needs_a_schedule(tmp_path):
    with pytest.raises(ValueError, match="every_generations"):
        CheckpointReporter(tmp_path, every_generations=None)


def test_statistics_reporter_keeps_fitness_medians_and_stdevs(tmp_path):
    stats = StatisticsReporter()
    pop = population(stats)
    pop.run_generation(lambda genomes: [setattr(g, "fitness", float(g.id % 4)) for g in genomes])
    fitness = sorted(g.fitness for g in pop.genomes)  # 30 genomes: 0,1,2,3 repeating
    assert stats.column("median_fitness") == [(fitness[14] + fitness[15]) / 2]
    mean = sum(fitness) / len(fitness)
    assert stats.column("stdev_fitness") == [pytest.approx((sum((f - mean) ** 2 for f in fitness) / 30) ** 0.5)]
    stats.save_csv(tmp_path / "stats.csv")
    with open(tmp_path / "stats.csv", newline="") as fh:
        assert float(next(csv.DictReader(fh))["median_fitness"]) == stats.column("median_fitness")[0]
