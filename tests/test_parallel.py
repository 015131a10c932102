"""ParallelEvaluator: local processes give exactly the serial result."""

from __future__ import annotations

import os
import pickle
import random
import subprocess
import sys
import time
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import pytest

from helpers import serial_and_parallel_fitness
from neat_python_style import eval_genomes, unpacking
from neatify import EvaluationError, EvolutionConfig, Population
from neatify.backends.processes import ParallelEvaluator, column_batches, split_batches
from neatify.io.columns import decode_columns
from neatify.population import NeatPythonFitnessError
from xor_task import xor_fitness

CONFIG = EvolutionConfig(population_size=40, prob_add_node=0.2, prob_add_connection=0.3)


def pid_fitness(genomes, state):
    for genome in genomes:
        genome.fitness = float(state["pid"] != os.getpid()) + genome.id


def make_state():
    return {"pid": os.getpid()}


def failing_fitness(genomes):
    raise RuntimeError("fitness exploded")


def dying_fitness(genomes):
    os._exit(3)


def sleeping_fitness(genomes):
    time.sleep(60)


def failing_setup():
    raise OSError("no environment here")


def run(fitness_fn, generations=4):
    pop = Population(num_inputs=2, num_outputs=1, config=CONFIG, seed=7)
    pop.run(fitness_fn, generations)
    return pop


def test_split_batches_covers_everything_in_order():
    items = list(range(10))
    batches = split_batches(items, 4)
    assert [len(b) for b in batches] == [3, 3, 2, 2]
    assert sum(batches, []) == items
    assert split_batches([1, 2], 8) == [[1], [2]]


def test_column_batches_carry_every_genome_once_in_order_through_pickle():
    """What a pool process or a Ray actor gets: the genomes' genes exactly, in near-equal contiguous batches."""
    pop = Population(num_inputs=2, num_outputs=1, config=CONFIG, seed=3)
    rng = random.Random(0)
    for genome in pop.genomes[::3]:
        genome.mutate_add_node(pop.config, rng, pop.tracker)
        genome.mutate_add_connection(pop.config, rng, pop.tracker)
    batches = column_batches(pop.genomes, 6)
    received = [g for batch in batches for g in decode_columns(pickle.loads(pickle.dumps(batch))).views()]
    assert [len(decode_columns(batch)) for batch in batches] == [7, 7, 7, 7, 6, 6]

    def genes(genome):
        return (genome.id, sorted(n.to_list() for n in genome.nodes.values()),
                sorted(c.to_list() for c in genome.connections.values()))
    assert [genes(g) for g in received] == [genes(g) for g in pop.genomes]
    assert all(g.fitness is None for g in received)


@pytest.mark.slow
def test_parallel_run_is_identical_to_serial():
    serial = run(xor_fitness)
    with ParallelEvaluator(xor_fitness, workers=2) as evaluator:
        parallel = run(evaluator)
    assert parallel.history == serial.history
    assert [g.fitness for g in parallel.genomes] == [g.fitness for g in serial.genomes]
    assert parallel.best_genome.to_dict() == serial.best_genome.to_dict()


@pytest.mark.slow
def test_setup_runs_once_per_worker_and_its_result_reaches_the_fitness():
    pop = Population(num_inputs=2, num_outputs=1, config=CONFIG, seed=1)
    with ParallelEvaluator(pid_fitness, workers=2, setup=make_state) as evaluator:
        pop.run_generation(evaluator)
    # state was made in the worker itself (same pid), so the flag is 0 and fitness == id
    assert [g.fitness for g in pop.genomes] == [float(g.id) for g in pop.genomes]


@pytest.mark.slow
def test_fitness_errors_reach_the_caller_and_close_is_final():
    pop = Population(num_inputs=2, num_outputs=1, config=CONFIG, seed=1)
    evaluator = ParallelEvaluator(failing_fitness, workers=1)
    with pytest.raises(EvaluationError, match="RuntimeError: fitness exploded") as info:
        pop.run_generation(evaluator)
    assert info.value.genome_id == pop.genomes[0].id  # every genome fails alike: the first one is named
    evaluator.close()
    evaluator.close()
    with pytest.raises(RuntimeError, match="closed"):
        evaluator(pop.genomes)


@pytest.mark.slow
@pytest.mark.parametrize("fitness_fn, setup, at_start_up", [(dying_fitness, None, False),
                                                            (pid_fitness, failing_setup, True)])
def test_a_dead_worker_or_failed_setup_raises_instead_of_hanging(fitness_fn, setup, at_start_up):
    pop = Population(num_inputs=2, num_outputs=1, config=CONFIG, seed=1)
    with ParallelEvaluator(fitness_fn, workers=2, setup=setup) as evaluator:
        with pytest.raises(BrokenProcessPool) as error:
            pop.run_generation(evaluator)
    assert ("died at start-up" in str(error.value)) == at_start_up


NO_MAIN_GUARD = """
from neatify import Population
from neatify.backends.processes import ParallelEvaluator


def fitness(genomes):
    for genome in genomes:
        genome.fitness = 1.0


with ParallelEvaluator(fitness, workers=2) as evaluator:
    Population(pop_size=10, num_inputs=2, num_outputs=1, seed=1).run_generation(evaluator)
"""


@pytest.mark.slow
def test_a_script_without_a_main_guard_is_told_so(tmp_path):
    (tmp_path / "script.py").write_text(NO_MAIN_GUARD)
    result = subprocess.run([sys.executable, "script.py"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    error = [line for line in result.stderr.splitlines() if line.startswith("concurrent.futures")][-1]
    assert "BrokenProcessPool: the worker processes died at start-up" in error
    assert "if __name__ == \"__main__\":" in error


@pytest.mark.slow
def test_a_batch_slower_than_the_timeout_stops_the_pool():
    pop = Population(num_inputs=2, num_outputs=1, config=CONFIG, seed=1)
    evaluator = ParallelEvaluator(sleeping_fitness, workers=1, timeout=0.5)
    started = time.monotonic()
    with pytest.raises(TimeoutError, match=r"batch 1 of 4 took over 0.5 s \(1 worker processes\)"):
        pop.run_generation(evaluator)
    assert time.monotonic() - started < 20
    with pytest.raises(RuntimeError, match="closed"):
        evaluator(pop.genomes)


@pytest.mark.slow
def test_gym_example_task_gives_the_same_fitness_in_worker_processes(monkeypatch):
    pytest.importorskip("gymnasium")
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "examples"))  # workers import it too
    from cartpole_gym import GymEvaluator

    serial, parallel = serial_and_parallel_fitness(GymEvaluator("CartPole-v1", episodes=2, max_steps=200), 4, 2,
                                                   CONFIG, seed=2)
    assert parallel == serial
    assert max(serial) > min(serial) >= 1.0


def test_a_neat_python_fitness_function_is_refused_before_any_process_starts():
    with pytest.raises(NeatPythonFitnessError, match=r"eval_genomes\(genomes, config\) cannot be called"):
        ParallelEvaluator(eval_genomes, workers=2)
    with ParallelEvaluator(pid_fitness, workers=1, setup=make_state):  # with setup, the second argument is its state
        pass


@pytest.mark.slow
def test_a_failed_generation_names_the_neat_python_habit_and_nothing_else(capfd):
    """Unpacking (genome_id, genome) pairs fails in the workers: the error says what to write instead, and
    leaving the pool prints no stray thread exception (cancelled batches were never killed under the pool)."""
    pop = Population(num_inputs=2, num_outputs=1, config=CONFIG, seed=1)
    with pytest.raises(EvaluationError) as info:
        with ParallelEvaluator(unpacking, workers=2) as evaluator:
            pop.run_generation(evaluator)
    assert "TypeError: cannot unpack non-iterable Genome object" in str(info.value)
    assert "unpacks (genome_id, genome) pairs, as neat-python's do" in str(info.value)
    assert "During handling" not in str(info.value)
    err = capfd.readouterr().err
    assert "Exception in thread" not in err and "InvalidStateError" not in err, err
