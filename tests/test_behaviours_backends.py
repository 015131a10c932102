"""Behaviours through the backends: a novelty run on the process pool and on real TCP workers equals the serial
run, behaviours, novelty archive and archive of elites included (Ray: test_behaviours_ray.py)."""

from __future__ import annotations

import pytest

from behaviour_task import xor_behaviour_fitness
from neatify import EvolutionConfig, Population
from neatify.backends.processes import ParallelEvaluator

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

