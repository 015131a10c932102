"""``resample=True`` on every backend: each tells the fitness function the generation before its batch
(``set_generation``), so a run drawing new episodes each generation equals the serial run on the process pool
and on TCP workers (Ray: tests/test_gym_ray.py)."""

from __future__ import annotations

import functools

import pytest

pytest.importorskip("gymnasium")

from distributed_helpers import HERE, HOST  # noqa: E402
from gym_envs import normalized_cartpole, resampled_cartpole  # noqa: E402
from neatify import EvolutionConfig, Population  # noqa: E402
from neatify.io.checkpoint import Checkpoint  # noqa: E402
from neatify.backends.processes import ParallelEvaluator  # noqa: E402
from neatify.distributed import DistributedConfig, DistributedPopulation  # noqa: E402
from neatify.gym import GymEvaluator  # noqa: E402

CONFIG = EvolutionConfig(population_size=24, prob_add_node=0.2)
GENERATIONS, SEED = 3, 11


def fitness_history(population: Population, fitness_fn) -> list[list[float]]:
    """Every genome's fitness in each of GENERATIONS generations of ``population`` run by ``fitness_fn``."""
    history = []
    for _ in range(GENERATIONS):
        population.run_generation(fitness_fn)
        history.append([g.fitness for g in population.genomes])
    return history


def serial_history() -> list[list[float]]:
    return fitness_history(Population(num_inputs=4, num_outputs=2, config=CONFIG, seed=SEED), resampled_cartpole())


def normalized_population(task: GymEvaluator) -> Population:
    """A population whose ``task`` learns the observation statistics (a reporter)."""
    population = Population(num_inputs=4, num_outputs=2, config=CONFIG, seed=SEED)
    population.add_reporter(task)
    return population


def test_normalisation_changes_the_run_after_its_first_generation() -> None:
    task = normalized_cartpole()
    normalized = fitness_history(normalized_population(task), task)
    plain = serial_history()
    assert normalized[0] == plain[0] and normalized[1:] != plain[1:] and task.normalizer.count > 0


def test_a_normalized_run_resumed_from_its_checkpoint_continues_as_the_unbroken_run(tmp_path) -> None:
    """The checkpoint holds the statistics the task learnt (its ``generation_context``); a fresh task added to the
    resumed population gets them back, so the next generation is the one the unbroken run evaluates."""
    task = normalized_cartpole()
    population = normalized_population(task)
    unbroken = fitness_history(population, task)
    task = normalized_cartpole()
    population = normalized_population(task)
    for _ in range(GENERATIONS - 1):
        population.run_generation(task)
    Checkpoint.save(population, tmp_path / "run.json")
    assert "generation_context" not in Population(num_inputs=4, num_outputs=2, config=CONFIG, seed=SEED).state_dict()
    resumed, task = Checkpoint.load(tmp_path / "run.json"), normalized_cartpole()
    resumed.add_reporter(task)
    resumed.run_generation(task)
    assert [g.fitness for g in resumed.genomes] == unbroken[-1]


@pytest.mark.slow
def test_a_normalized_run_on_the_process_pool_equals_serial() -> None:
    """The workers get the local evaluator's statistics with each generation (``generation_context``)."""
    task = normalized_cartpole()
    serial = fitness_history(normalized_population(task), task)
    task = normalized_cartpole()
    with ParallelEvaluator(task, workers=2) as evaluator:
        assert fitness_history(normalized_population(task), evaluator) == serial


def test_the_population_tells_the_generation_through_wrappers_and_only_resample_moves() -> None:
    moving, fixed = resampled_cartpole(), GymEvaluator("CartPole-v1", episodes=2, max_steps=60, seed=5)

    @functools.wraps(moving)
    def wrapped(genomes):
        moving(genomes)
        fixed(genomes)

    population = Population(num_inputs=4, num_outputs=2, config=CONFIG, seed=SEED)
    population.run(wrapped, GENERATIONS)
    assert (moving.generation, fixed.generation) == (GENERATIONS - 1, 0)
    genomes = population.genomes
    fixed(genomes)
    first = [g.fitness for g in genomes]
    moving(genomes)
    assert [g.fitness for g in genomes] != first


def test_a_resampled_run_differs_from_one_on_fixed_episodes() -> None:
    fixed = fitness_history(Population(num_inputs=4, num_outputs=2, config=CONFIG, seed=SEED),
                            GymEvaluator("CartPole-v1", episodes=2, max_steps=60, seed=5))
    resampled = serial_history()
    assert resampled[0] == fixed[0] and resampled[1:] != fixed[1:]


@pytest.mark.slow
def test_a_resampled_run_on_the_process_pool_equals_serial() -> None:
    with ParallelEvaluator(resampled_cartpole(), workers=2) as evaluator:
        assert fitness_history(Population(num_inputs=4, num_outputs=2, config=CONFIG, seed=SEED),
                               evaluator) == serial_history()


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_resampled_run_on_tcp_workers_equals_serial(procs) -> None:
    """One plain worker and one feeding two evaluator processes: both tell their fitness function the generation."""
    settings = DistributedConfig(host=HOST, port=0, min_workers=2, heartbeat_interval=0.2, worker_wait_timeout=60.0)
    with DistributedPopulation(config=CONFIG, num_inputs=4, num_outputs=2, seed=SEED,
                               distributed_config=settings) as population:
        worker = ["-m", "neatify", "worker", "gym_envs:resampled_cartpole_task", "--master-port", str(population.port),
                  "--capacity", "7", "--max-connect-attempts", "50"]
        procs.start("worker-1", *worker, "--worker-id", "w1", cwd=HERE)
        procs.start("worker-2", *worker, "--worker-id", "w2", "--processes", "2", cwd=HERE)  # evaluator processes
        distributed = fitness_history(population, lambda genomes: None)
    assert distributed == serial_history()


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_normalized_run_on_tcp_workers_equals_serial(procs) -> None:
    """The master's copy of the task learns the statistics and sends them with every task (TASK_ASSIGNMENT's
    ``context``) to a plain worker and to one feeding two evaluator processes."""
    task = normalized_cartpole()
    serial = fitness_history(normalized_population(task), task)
    settings = DistributedConfig(host=HOST, port=0, min_workers=2, heartbeat_interval=0.2, worker_wait_timeout=60.0)
    task = normalized_cartpole()
    with DistributedPopulation(config=CONFIG, num_inputs=4, num_outputs=2, seed=SEED,
                               distributed_config=settings) as population:
        population.add_reporter(task)
        worker = ["-m", "neatify", "worker", "gym_envs:normalized_cartpole_task", "--master-port",
                  str(population.port), "--capacity", "7", "--max-connect-attempts", "50"]
        procs.start("worker-1", *worker, "--worker-id", "w1", cwd=HERE)
        procs.start("worker-2", *worker, "--worker-id", "w2", "--processes", "2", cwd=HERE)
        distributed = fitness_history(population, task)
    assert distributed == serial and task.normalizer.count > 0
