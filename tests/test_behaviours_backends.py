"""Behaviours through the backends: a novelty run on the process pool and on real TCP workers equals the serial
run, behaviours, novelty archive and archive of elites included (Ray: test_behaviours_ray.py)."""

from __future__ import annotations

import pytest

from behaviour_task import xor_behaviour_fitness
from neatify import EvolutionConfig, Population
from distributed_helpers import HERE, HOST
from neatify.backends.processes import ParallelEvaluator
from neatify.distributed import DistributedConfig, DistributedPopulation

CONFIG = EvolutionConfig(population_size=40, behaviour_size=4, selection="pareto", objectives=["fitness", "novelty"],
                         novelty_threshold=0.3, elite_cells=3, target_species=4)
GENERATIONS, SEED = 3, 13


def novelty_run(fitness_fn) -> dict:
    """The state of a short novelty run evaluated by ``fitness_fn``."""
    pop = Population(config=CONFIG, num_inputs=2, num_outputs=1, seed=SEED)
    pop.run(fitness_fn, GENERATIONS)
    assert len(pop.selection.archive) > 0 and pop.behaviours.shape == (40, 4)
    return pop.state_dict()


@pytest.mark.slow
def test_process_pool_carries_behaviours_as_the_serial_run():
    with ParallelEvaluator(xor_behaviour_fitness, workers=2) as evaluator:
        assert novelty_run(evaluator) == novelty_run(xor_behaviour_fitness)



@pytest.mark.slow
@pytest.mark.timeout(90)
def test_tcp_workers_report_behaviours_as_the_serial_run(procs):
    """Two ``neatify worker`` processes: the behaviours travel in the FITNESS_REPORT's behaviours column."""
    settings = DistributedConfig(host=HOST, port=0, min_workers=2, heartbeat_interval=0.2, worker_wait_timeout=30.0)
    with DistributedPopulation(config=CONFIG, num_inputs=2, num_outputs=1, seed=SEED,
                               distributed_config=settings) as pop:
        for i in (1, 2):
            procs.start(f"worker-{i}", "-m", "neatify", "worker", "behaviour_task:xor_behaviour_fitness",
                        "--master-port", str(pop.port), "--worker-id", f"w{i}", "--capacity", "7",
                        "--max-connect-attempts", "50", cwd=HERE)
        for _ in range(GENERATIONS):
            pop.run_generation()
        distributed = pop.state_dict()
    assert distributed == novelty_run(xor_behaviour_fitness)
