"""One evaluation contract: the same table of fitness functions (tests/fitness_table.py) through a serial
Population, ParallelEvaluator, RayEvaluator and TCP workers gives the same fitness values, or the same
error naming the same genome; with error_fitness the other genomes keep their values."""

from __future__ import annotations

import os

import pytest

import fitness_table
from distributed_helpers import HERE, HOST, Processes
from fitness_table import OFFSET, TARGET
from neatify import EvaluationError, FitnessError, Population
from neatify.distributed import DistributedConfig, DistributedEvaluator, RemoteFitnessError
from neatify.evaluation import apply_results, check_error_fitness, evaluate_batch
from neatify.parallel import ParallelEvaluator

POP, SEED = 12, 4
ERROR_FITNESS = -1.0
FAULTY = {  # case: what the error's last line says
    "raising": f"ZeroDivisionError: deliberate failure on genome {TARGET}",
    "unset": f"FitnessError: genome {TARGET} has no fitness: the fitness function must set genome.fitness on "
             "every genome it is given",
    "nan": f"FitnessError: genome {TARGET} has non-finite fitness nan",
    "tensor": f"FitnessError: genome {TARGET} has fitness tensor(1.5000) of type Tensor; expected a float "
              "(use .item() on a tensor)",
    "boolean": f"FitnessError: genome {TARGET} has fitness True of type bool; expected a float",
}
CASES = ("good", "with_state", *FAULTY)
RAY_CASES = ("with_state", "raising", "unset")  # Ray starts actors slowly: a few cases stand for the table


def outcome(fitness_fn) -> tuple:
    """One generation of a fresh population: ``("fitness", {id: value})`` or ``("error", genome id, last line)``."""
    pop = Population(POP, 2, 1, seed=SEED)
    try:
        pop.run_generation(fitness_fn)
    except Exception as exc:
        text = exc.remote_traceback if isinstance(exc, EvaluationError) else f"{type(exc).__name__}: {exc}"
        return "error", getattr(exc, "genome_id", None), text.strip().splitlines()[-1]
    return "fitness", {g.id: g.fitness for g in pop.genomes}


def serial(name: str) -> tuple:
    function = getattr(fitness_table, name)
    if name == "with_state":
        return outcome(lambda genomes: function(genomes, fitness_table.make_state()))
    return outcome(function)


def expected(name: str, error_fitness: float | None = None) -> tuple:
    """The serial outcome, a raised exception pinned to the genome it names as the backends pin it; with
    ``error_fitness``, the good values with the faulty genome's replaced."""
    if error_fitness is not None:
        values = serial("good")[1]
        return "fitness", {**values, TARGET: error_fitness}
    result = serial(name)
    if result[0] == "error" and result[1] is None:
        assert f"genome {TARGET}" in result[2]
        return "error", TARGET, result[2]
    return result


def setup_of(name: str):
    return fitness_table.make_state if name == "with_state" else None


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


@pytest.fixture
def through_ray(local_ray):
    from neatify.ray import RayEvaluator

    def run(name: str, error_fitness: float | None = None) -> tuple:
        with RayEvaluator(getattr(fitness_table, name), num_actors=2, setup=setup_of(name), timeout=60,
                          error_fitness=error_fitness) as evaluator:
            return outcome(evaluator)

    return run


def test_the_serial_table():
    good = serial("good")[1]
    assert good == {g.id: fitness_table.score(g) for g in Population(POP, 2, 1, seed=SEED).genomes}
    assert serial("with_state") == ("fitness", {k: v + OFFSET for k, v in good.items()})
    for name, last_line in FAULTY.items():
        assert expected(name) == ("error", TARGET, last_line)


@pytest.mark.parametrize("name", CASES)
def test_the_pool_gives_the_serial_outcome(name):
    assert through_pool(name) == expected(name)


@pytest.mark.parametrize("name", CASES)
def test_tcp_workers_give_the_serial_outcome(name, through_tcp):
    assert through_tcp(name) == expected(name)


@pytest.mark.parametrize("name", RAY_CASES)
def test_ray_gives_the_serial_outcome(name, through_ray):
    assert through_ray(name) == expected(name)


@pytest.mark.parametrize("name", ["raising", "unset", "nan"])
def test_error_fitness_keeps_every_other_genome_s_value(name, through_tcp):
    want = expected(name, ERROR_FITNESS)
    assert through_pool(name, ERROR_FITNESS) == want
    assert through_tcp(name, ERROR_FITNESS) == want


def test_error_fitness_on_ray_keeps_every_other_genome_s_value(through_ray):
    assert through_ray("raising", ERROR_FITNESS) == expected("raising", ERROR_FITNESS)


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
