"""One evaluation contract: the same table of fitness functions (tests/fitness_table.py) through a serial
Population, ParallelEvaluator and TCP workers (RayEvaluator: tests/test_ray.py) gives the same fitness
values, or the same error naming the same genome; with error_fitness the other genomes keep their values."""

from __future__ import annotations

import os

import pytest

import fitness_table
from distributed_helpers import HERE, HOST, Processes
from fitness_table import (
    CASES, ERROR_FITNESS, FAULTY, OFFSET, POP, SEED, TARGET, expected, outcome, serial, setup_of,
)
from neatify import EvaluationError, FitnessError, Population
from neatify.distributed import DistributedConfig, DistributedEvaluator, RemoteFitnessError
from neatify.evaluation import apply_results, check_error_fitness, evaluate_batch
from neatify.backends.processes import ParallelEvaluator


def through_pool(name: str, error_fitness: float | None = None) -> tuple:
    with ParallelEvaluator(getattr(fitness_table, name), workers=2, setup=setup_of(name),
                           error_fitness=error_fitness) as evaluator:
        return outcome(evaluator)


@pytest.fixture
def through_tcp(tmp_path):
    """Runs a case on a DistributedEvaluator served by one ``neatify worker fitness_table:NAME`` process."""
    with Processes(tmp_path) as procs:
        def run(name: str, error_fitness: float | None = None) -> tuple:
            config = DistributedConfig(host=HOST, port=0, heartbeat_interval=0.5, worker_wait_timeout=30.0,
                                       error_fitness=error_fitness)
            setup = ["--setup", "fitness_table:make_state"] if setup_of(name) else []
            with DistributedEvaluator(config) as evaluator:
                worker = procs.start(f"worker-{name}", "-m", "neatify", "worker", f"fitness_table:{name}",
                                     "--master-port", str(evaluator.port), "--worker-id", "w", "--capacity", "4",
                                     "--max-connect-attempts", "20", *setup,
                                     env={"PYTHONPATH": os.pathsep.join(filter(None, [
                                         str(HERE), os.environ.get("PYTHONPATH")]))})
                result = outcome(evaluator)
            assert worker.wait(30) == 0, procs.log(worker)
            return result

        yield run


def test_the_serial_table():
    good = serial("good")[1]
    assert good == {g.id: fitness_table.score(g) for g in Population(POP, 2, 1, seed=SEED).genomes}
    assert serial("with_state") == ("fitness", {k: v + OFFSET for k, v in good.items()})
    for name, last_line in FAULTY.items():
        assert expected(name) == ("error", TARGET, last_line)


@pytest.mark.slow
@pytest.mark.parametrize("name", CASES)
def test_the_pool_gives_the_serial_outcome(name):
    assert through_pool(name) == expected(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", CASES)
def test_tcp_workers_give_the_serial_outcome(name, through_tcp):
    assert through_tcp(name) == expected(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["raising", "unset", "nan"])
def test_error_fitness_keeps_every_other_genome_s_value(name, through_tcp):
    want = expected(name, ERROR_FITNESS)
    assert through_pool(name, ERROR_FITNESS) == want
    assert through_tcp(name, ERROR_FITNESS) == want


def test_the_error_names_genome_and_where_and_tcp_s_is_a_remote_fitness_error():
    error = RemoteFitnessError("w7", 5, "Traceback (most recent call last):\nKeyError: 'x'\n")
    assert isinstance(error, EvaluationError) and isinstance(error, FitnessError)
    assert (error.genome_id, error.where, error.worker_id) == (5, "worker w7", "w7")
    assert str(error) == "fitness function failed on worker w7 for genome 5:\nTraceback (most recent call last):\n" \
                         "KeyError: 'x'"


def test_a_batch_that_raises_only_as_a_whole_is_pinned_to_its_first_genome():
    genomes = Population(4, 2, 1, seed=1).genomes

    def fails_in_company(batch):
        for genome in batch:
            genome.fitness = 1.0
        if len(batch) > 1:
            raise RuntimeError("only with others")

    fitness, errors = evaluate_batch(fails_in_company, genomes)
    assert [genome_id for genome_id, _ in errors] == [genomes[0].id]
    assert "RuntimeError: only with others" in errors[0][1]
    assert fitness == [[g.id, 1.0] for g in genomes[1:]]


def test_state_none_from_setup_still_reaches_the_fitness_function():
    genomes = Population(2, 2, 1, seed=1).genomes
    seen = []

    def fitness(batch, state):
        seen.append(state)
        for genome in batch:
            genome.fitness = 2.0

    assert evaluate_batch(fitness, genomes, None) == ([[g.id, 2.0] for g in genomes], [])
    assert seen == [None]


def test_apply_results_sets_values_then_raises_or_penalises(caplog):
    genomes = {g.id: g for g in Population(3, 2, 1, seed=1).genomes}
    result = ([[0, 1.5], [2, 2.5]], [[1, "Traceback\nValueError: no\n"]])
    with pytest.raises(EvaluationError, match=r"failed on actor 9 for genome 1:\nTraceback\nValueError: no$"):
        apply_results(genomes, result, "actor 9")
    assert (genomes[0].fitness, genomes[2].fitness) == (1.5, 2.5)
    apply_results(genomes, result, "actor 9", error_fitness=-3.0)
    assert genomes[1].fitness == -3.0
    assert "giving it error_fitness -3.0" in caplog.text and "ValueError: no" in caplog.text


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "1", True])
def test_error_fitness_must_be_a_finite_number(bad):
    with pytest.raises(ValueError, match="error_fitness must be a finite number or None"):
        check_error_fitness(bad)
    with pytest.raises(ValueError, match="error_fitness must be a finite number"):
        DistributedConfig(error_fitness=bad)
    assert check_error_fitness(-1) == -1.0 and check_error_fitness(None) is None
