"""The champion picked on held-out episodes: ``GymEvaluator.held_out`` and ``HeldOutChampion``."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("gymnasium")

from neatify import EvolutionConfig, Population  # noqa: E402
from neatify.gym import GymEvaluator, HeldOutChampion, episode_seeds  # noqa: E402

CONFIG = EvolutionConfig(population_size=8, prob_add_node=0.2)


def test_a_held_out_copy_keeps_its_own_fixed_episodes_and_only_reads_the_normaliser() -> None:
    task = GymEvaluator("CartPole-v1", episodes=2, max_steps=20, seed=3, resample=True, normalize=True)
    held = task.held_out(4, seed=99)
    population = Population(num_inputs=4, num_outputs=2, config=CONFIG, seed=2)
    population.add_reporter(task)  # learns the statistics
    population.run_generation(task)
    genomes = population.genomes
    held.set_generation(5)
    task.set_generation(5)
    assert (held.episodes, held.seed, held.generation, task.generation, task.episodes) == (4, 99, 0, 5, 2)
    statistics = task.normalizer.to_dict()
    assert held.normalizer is task.normalizer and statistics["count"] > 0
    episodes = held.run(genomes)
    assert held.normalizer.to_dict() == statistics and episodes.returns.shape == (8, 4)
    alone = GymEvaluator("CartPole-v1", episodes=4, max_steps=20, seed=99, normalize=True)
    alone.bank()
    alone.normalizer = task.normalizer
    assert np.array_equal(alone.run(genomes).returns, episodes.returns)
    assert episode_seeds(99, 0, 4) != episode_seeds(3, 5, 4)
    with pytest.raises(ValueError, match="episodes must be at least 1, got 0"):
        task.held_out(0, seed=1)


def test_statistics_handed_to_the_task_reach_its_held_out_copy() -> None:
    """As on a resume (the checkpoint's statistics handed to the task): the copy validating beside it sees them."""
    task = GymEvaluator("CartPole-v1", episodes=1, max_steps=20, seed=3, normalize=True)
    held = task.held_out(2, seed=99)
    saved = dict(task.generation_context()["normalizer"], count=7.0, mean=[0.5, 0.0, 0.0, 0.0])
    task.set_generation(3, {"normalizer": saved})
    assert held.normalizer is task.normalizer and held.normalizer.to_dict() == saved
    with pytest.raises(ValueError, match="statistics of size 2 for observations of size 4"):
        task.set_generation(4, {"normalizer": dict(saved, size=2, mean=[0.0, 0.0], m2=[0.0, 0.0])})


def test_the_champion_is_the_best_of_each_generations_top_on_the_held_out_episodes() -> None:
    task = GymEvaluator("CartPole-v1", episodes=1, max_steps=30, seed=3, resample=True)
    validation = task.held_out(3, seed=50)
    champion = HeldOutChampion(validation, top=4)
    population = Population(num_inputs=4, num_outputs=2, config=CONFIG, seed=5)
    population.add_reporter(champion)
    best_each = []
    for _ in range(3):
        population.run_generation(task)
        top = np.argsort(-population.fitness, kind="stable")[:4].tolist()
        genomes = [population.genomes[row] for row in top]
        best_each.append(max(validation.run(genomes).returns.mean(axis=1).tolist()))
    assert champion.score == max(best_each) and champion.evaluations == 3 * 4 * 3
    returns = validation.run([champion.genome]).returns[0]
    assert float(returns.mean()) == champion.score and champion.stderr == float(returns.std(ddof=1) / np.sqrt(3))
    with pytest.raises(ValueError, match="top must be at least 1"):
        HeldOutChampion(validation, top=0)


def test_the_champion_keeps_the_statistics_it_was_validated_with() -> None:
    task = GymEvaluator("CartPole-v1", episodes=2, max_steps=40, seed=3, resample=True, normalize=True)
    validation = task.held_out(3, seed=50)
    champion = HeldOutChampion(validation, top=3)
    population = Population(num_inputs=4, num_outputs=2, config=CONFIG, seed=5)
    population.add_reporter(champion)
    population.add_reporter(task)
    for _ in range(3):
        before, score = task.normalizer.to_dict(), champion.score
        population.run_generation(task)
        if champion.score != score:  # a new champion, validated with the statistics its generation trained with
            picked_with = before
    assert champion.statistics == picked_with != task.normalizer.to_dict()
    test = task.held_out(3, seed=50, statistics=champion.statistics)
    assert test.normalizer is not task.normalizer and test.normalizer.to_dict() == picked_with
    assert float(test.run([champion.genome]).returns.mean()) == champion.score
