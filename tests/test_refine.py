"""Weight refinement (``refine_samples``): a sep-CMA-ES's samples in every generation, counted, reproducible, saved."""

from __future__ import annotations

import json

import numpy as np
import pytest

from neatify import EvolutionConfig, Population
from neatify.backends.processes import ParallelEvaluator
from neatify.breeding.refine import structure, vector
from neatify.breeding.refine_cma import Strategy
from neatify.config.errors import ConfigError
from neatify.io.checkpoint import Checkpoint
from xor_task import xor_fitness

REFINED = EvolutionConfig(population_size=30, refine_samples=10, refine_sigma=0.5)
RESTARTING = REFINED.replace(refine_patience=2, refine_tolerance=0.5, refine_growth=2.0, refine_max_samples=30)
"""Restarts every few generations on XOR, each doubling the samples up to 30."""


def _run(population: Population, generations: int) -> list[list[float]]:
    fitness = []
    for _ in range(generations):
        population.run_generation(xor_fitness)
        fitness.append(population.fitness.tolist())
    return fitness


def test_the_default_config_has_no_search_and_saves_no_search_state():
    population = Population(num_inputs=2, num_outputs=1, seed=1)
    population.run_generation(xor_fitness)
    assert population.refiner is None and "refine" not in population.state_dict()


def test_each_generation_ends_with_the_samples_of_the_champions_topology_and_every_genome_counts():
    population = Population(num_inputs=2, num_outputs=1, config=REFINED, seed=3)
    _run(population, 2)
    batch, search = population.batch, population.refiner.search
    samples = range(len(batch) - 10, len(batch))
    shape = structure(search.template, 0)
    assert all(structure(batch, row) == shape for row in samples)
    vectors = np.stack([vector(batch, row) for row in samples])
    assert len(np.unique(vectors, axis=0)) == 10, "each sample draws its own weights"
    assert len(batch) == 30 and len(set(batch.ids.tolist())) == 30
    assert [h.evaluations for h in population.history] == [30, 60]


def test_the_search_starts_on_the_first_generations_champion():
    population = Population(num_inputs=2, num_outputs=1, config=REFINED, seed=4)
    _run(population, 1)
    row = int(np.argmax(population.fitness))
    best, weights = population.fitness[row], vector(population.batch, row)
    population.ask()
    search = population.refiner.search
    assert search.best == best and np.array_equal(search.strategy.mean, weights)


@pytest.mark.parametrize("config", [REFINED, RESTARTING], ids=["plain", "restarting"])
def test_the_same_seed_gives_the_same_run_and_a_checkpoint_continues_it_exactly(tmp_path, config):
    first = Population(num_inputs=2, num_outputs=1, config=config, seed=7)
    again = Population(num_inputs=2, num_outputs=1, config=config, seed=7)
    assert _run(first, 4) == _run(again, 4)
    Checkpoint.save(first, tmp_path / "run.ckpt")
    resumed = Checkpoint.load(tmp_path / "run.ckpt")
    json.dumps(Population(num_inputs=2, num_outputs=1, config=config, seed=7).state_dict(), allow_nan=False)
    json.dumps(first.state_dict(), allow_nan=False)  # plain data, strict JSON
    assert _run(resumed, 3) == _run(first, 3)
    assert resumed.refiner.search.strategy.sigma == first.refiner.search.strategy.sigma
    assert resumed.refiner.search.samples == first.refiner.search.samples


@pytest.mark.slow
@pytest.mark.parametrize("config", [REFINED, RESTARTING], ids=["plain", "restarting"])
def test_the_samples_evaluated_in_worker_processes_give_the_same_run(config):
    serial = Population(num_inputs=2, num_outputs=1, config=config, seed=9)
    parallel = Population(num_inputs=2, num_outputs=1, config=config, seed=9)
    with ParallelEvaluator(xor_fitness, workers=2) as evaluator:
        for _ in range(6):
            parallel.run_generation(evaluator)
    assert _run(serial, 6)[-1] == parallel.fitness.tolist() and serial.history == parallel.history


def test_refinement_solves_xor():
    population = Population(num_inputs=2, num_outputs=1, config=REFINED.replace(population_size=60), seed=0)
    population.run(xor_fitness, generations=150, fitness_threshold=3.9)
    assert population.best_genome.fitness > 3.9


@pytest.mark.parametrize("full", [True, False])
def test_the_strategy_climbs_a_quadratic_and_shrinks_its_steps_near_the_top(full):
    target = np.array([3.0, -2.0, 0.5, 1.5, -1.0])
    strategy = Strategy.start(np.zeros(5), sigma=0.5, full=full)
    generator = np.random.default_rng(0)
    for _ in range(150):
        samples = strategy.draw(12, generator)
        strategy.update(samples, -((samples - target) ** 2).sum(axis=1))
    assert np.abs(strategy.mean - target).max() < 1e-3
    assert strategy.sigma < 0.01


def _updates_to_reach(full: bool, seed: int) -> int:
    """Updates a strategy needs to bring a narrow diagonal valley (rotated 45 degrees) below 1e-6."""
    rotation = np.linalg.qr(np.random.default_rng(99).standard_normal((6, 6)))[0]
    scales = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 1000.0])
    strategy = Strategy.start(np.ones(6), sigma=0.5, full=full)
    generator = np.random.default_rng(seed)
    for update in range(1, 3000):
        samples = strategy.draw(10, generator)
        cost = (((samples @ rotation) * scales) ** 2).sum(axis=1)
        if cost.min() < 1e-6:
            return update
        strategy.update(samples, -cost)
    return 3000


def test_a_full_covariance_learns_correlated_weights_in_fewer_updates_than_a_diagonal_one():
    full = [_updates_to_reach(True, seed) for seed in range(3)]
    diagonal = [_updates_to_reach(False, seed) for seed in range(3)]
    assert max(full) < min(diagonal), (full, diagonal)


def test_a_genome_with_more_numbers_than_the_full_limit_gets_a_diagonal_covariance():
    small = Population(num_inputs=2, num_outputs=1, config=REFINED, seed=2)
    large = Population(num_inputs=2, num_outputs=1, config=REFINED.replace(refine_full_limit=2), seed=2)
    for population in (small, large):
        _run(population, 2)
    n = len(small.refiner.search.strategy.mean)
    assert small.refiner.search.strategy.covariance.shape == (n, n)
    assert large.refiner.search.strategy.covariance.shape == (len(large.refiner.search.strategy.mean),)


@pytest.mark.parametrize("changes, key", [({"refine_samples": 1}, "refine_samples"),
                                          ({"refine_samples": 150}, "refine_samples"),
                                          ({"refine_samples": -2}, "refine_samples"),
                                          ({"refine_sigma": 0.0}, "refine_sigma"),
                                          ({"refine_full_limit": -1}, "refine_full_limit"),
                                          ({"refine_tolerance": -0.1}, "refine_tolerance"),
                                          ({"refine_growth": 0.5}, "refine_growth"),
                                          ({"refine_max_samples": 1}, "refine_max_samples")])
def test_bad_refinement_settings_are_refused_by_name(changes, key):
    with pytest.raises(ConfigError, match=key):
        EvolutionConfig(**changes)


def test_a_stalled_search_starts_afresh_from_random_weights_with_its_first_step_size():
    config = REFINED.replace(refine_patience=3)
    population = Population(num_inputs=2, num_outputs=1, config=config, seed=5)
    seen = []
    for _ in range(5):
        population.ask()
        population.tell(np.ones(30))  # nothing ever improves
        search = population.refiner.search
        seen.append(None if search is None else (search.strategy.updates, search.strategy.sigma))
    assert [updates for updates, _ in seen[1:]] == [0, 1, 2, 0], "three updates without a better one: a new start"
    assert seen[3][1] != config.refine_sigma and seen[4][1] == config.refine_sigma
    assert not np.array_equal(search.strategy.mean, vector(search.template, 0)), "random weights, not the champion's"


def _stalling(config: EvolutionConfig, fitness_of) -> list[tuple[int, int, int]]:
    """(generation size, the search's samples, its updates) in generations 2-9, the search's samples (all of
    the first generation) scoring ``fitness_of(generation)``, NEAT's offspring 0."""
    population = Population(num_inputs=2, num_outputs=1, config=config, seed=5)
    seen = []
    for generation in range(9):
        population.ask()
        fitness = np.zeros(len(population.batch))
        fitness[len(fitness) - population.refiner.pending:] = fitness_of(generation)
        population.tell(fitness)
        search = population.refiner.search  # None in the first generation: nothing evaluated yet
        seen.append((len(population.batch), search.samples, search.strategy.updates) if search else None)
    return seen[1:]


def test_each_restart_multiplies_the_samples_by_the_growth_up_to_the_most_allowed():
    config = REFINED.replace(refine_patience=2, refine_growth=2.0, refine_max_samples=30)
    seen = _stalling(config, lambda generation: 1.0)
    assert [samples for _, samples, _ in seen] == [10, 10, 10, 20, 20, 20, 30, 30]
    assert [size for size, _, _ in seen] == [30, 30, 30, 40, 40, 40, 50, 50], "20 bred, then the samples"
    assert [updates for _, _, updates in seen] == [0, 1, 2, 0, 1, 2, 0, 1]


def test_a_best_creeping_up_by_less_than_the_tolerance_counts_as_stalled():
    def creeping(generation: int) -> float:
        return 100.0 + generation
    strict = _stalling(REFINED.replace(refine_patience=3), creeping)
    tolerant = _stalling(REFINED.replace(refine_patience=3, refine_tolerance=0.05), creeping)
    assert [updates for _, _, updates in strict] == list(range(8)), "every rise is progress: never restarts"
    assert [updates for _, _, updates in tolerant] == [0, 1, 2, 3, 0, 1, 2, 3], "1 % rises are not: restarts"
