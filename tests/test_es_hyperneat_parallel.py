"""ES-HyperNEAT on a backend: CPPNs evolved through a process pool give the same run as evolved locally
(the workers decode the CPPNs themselves)."""

from __future__ import annotations

import pytest

from neatify import Population
from neatify.backends.processes import ParallelEvaluator
from neatify.config.evolution import EvolutionConfig
from neatify.hyperneat.es_params import ESParams
from neatify.hyperneat.es_xor import ESXorFitness

CPPN_CONFIG = EvolutionConfig(activation_default="tanh", prob_mutate_activation=0.3, prob_add_node=0.2,
                              activation_options=["sin", "gauss", "sigmoid", "tanh", "abs", "identity"])
PARAMS = ESParams(initial_depth=1, max_depth=2, band_threshold=0.1)


def history(fitness_fn, generations: int = 3) -> list[list[float]]:
    """Every generation's fitness, genome by genome, of a small seeded run."""
    population = Population(24, 4, 1, config=CPPN_CONFIG, seed=11)
    seen = []
    for _ in range(generations):
        population.run_generation(fitness_fn)
        seen.append([g.fitness for g in population.genomes])
    return seen


@pytest.mark.slow
def test_a_run_through_the_process_pool_equals_the_local_run():
    local = history(ESXorFitness(PARAMS))
    with ParallelEvaluator(ESXorFitness(PARAMS), workers=2, batches_per_worker=2) as pool:
        pooled = history(pool)
    assert pooled == local
    assert len({f for generation in local for f in generation}) > 3  # the phenotypes differ
