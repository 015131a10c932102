"""ES-HyperNEAT on a backend: CPPNs evolved through a process pool give the same run as evolved locally
(the workers decode the CPPNs themselves), as a genome's XOR score does not depend on the batch it is scored in."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neatify import NeatModule, Population
from neatify.backends.processes import ParallelEvaluator
from neatify.config.evolution import EvolutionConfig
from neatify.hyperneat.es_params import ESParams
from neatify.hyperneat.es_xor import XOR_CASES, XOR_TARGETS, ESXorFitness

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


def grown_cppns(fitness: ESXorFitness, generations: int = 3) -> list:
    """The CPPNs of a small seeded run after ``generations`` generations scored by ``fitness``."""
    population = Population(48, 4, 1, config=CPPN_CONFIG, seed=5)
    for _ in range(generations):
        genomes = population.ask()
        population.tell(fitness.scores(genomes))
    return population.ask()


def test_a_genome_scores_the_same_bit_for_bit_in_any_batch():
    fitness = ESXorFitness(PARAMS)
    genomes = grown_cppns(fitness)
    whole = fitness.scores(genomes)
    for size in (5, 13):
        apart = np.concatenate([fitness.scores(genomes[i:i + size]) for i in range(0, len(genomes), size)])
        assert np.array_equal(whole, apart), size
    assert [fitness.scores([genome])[0] for genome in genomes[:4]] == whole[:4].tolist()  # each alone
    assert len(set(whole.tolist())) > 3


def test_the_score_is_the_phenotypes_xor_score_unrounded():
    """Each score is 4 minus the squared error of its phenotype run alone as a ``NeatModule``, to float64's
    precision (not rounded to float32's)."""
    fitness = ESXorFitness(PARAMS)
    genomes = grown_cppns(fitness)
    cases = torch.from_numpy(XOR_CASES)
    alone = [4.0 - float(((NeatModule(phenotype, dtype=torch.float64)(cases)[:, 0].numpy() - XOR_TARGETS) ** 2).sum())
             for phenotype in fitness.decoder.phenotypes(genomes).batch.views()]
    np.testing.assert_allclose(fitness.scores(genomes), alone, rtol=0, atol=1e-12)
