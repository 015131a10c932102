"""neatify.gym: the whole population's episodes at once, equal to stepping each genome alone."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

gymnasium = pytest.importorskip("gymnasium")

from gymnasium import spaces  # noqa: E402

from gym_envs import Corridor, nan_corridor, raising_corridor  # noqa: E402
from helpers import make_genome  # noqa: E402
from neatify import EvolutionConfig, Genome, Population  # noqa: E402
from neatify.evaluation import evaluate_batch  # noqa: E402
from neatify.gym import (ActionAdapter, GymEvaluator, ObservationNormalizer, UnsupportedSpaceError,  # noqa: E402
                         episode_seeds)
from neatify.network import Network  # noqa: E402


def population_genomes(num_inputs: int, num_outputs: int, count: int, seed: int = 3) -> list[Genome]:
    """A seeded first generation, mutated a few times so that the networks differ in structure."""
    config = EvolutionConfig(population_size=count, prob_add_node=0.5, prob_add_connection=0.5)
    population = Population(num_inputs=num_inputs, num_outputs=num_outputs, config=config, seed=seed)
    for generation in range(3):
        population.run(lambda genomes: [setattr(g, "fitness", float(g.id % 7)) for g in genomes], 1)
    return list(population.genomes)


def reference_returns(env_id: str, genome: Genome, seeds: list[int], max_steps: int,
                      to_action) -> list[float]:
    """Each episode's return, genome alone, one gymnasium step and one Network call at a time."""
    env, net, returns = gymnasium.make(env_id), Network(genome), []
    for seed in seeds:
        observation, _ = env.reset(seed=seed)
        net.reset()
        total = 0.0
        for _ in range(max_steps):
            outputs = np.array(net.activate([float(v) for v in observation]))
            observation, reward, terminated, truncated, _ = env.step(to_action(outputs))
            total += float(reward)
            if terminated or truncated:
                break
        returns.append(total)
    return returns


def test_cartpole_returns_equal_each_genome_stepped_alone() -> None:
    genomes = population_genomes(4, 2, 10)
    evaluator = GymEvaluator("CartPole-v1", episodes=2, max_steps=100, seed=5)
    episodes = evaluator.run(genomes)
    seeds = episode_seeds(5, 0, 2)
    for k, genome in enumerate(genomes):
        expected = reference_returns("CartPole-v1", genome, seeds, 100, lambda out: int(out.argmax()))
        assert episodes.returns[k].tolist() == pytest.approx(expected), f"genome {genome.id}"
    assert len({tuple(r) for r in episodes.returns.tolist()}) > 1  # the genomes behave differently


def test_pendulum_box_actions_scaled_to_the_bounds_equal_each_genome_alone() -> None:
    genomes = population_genomes(3, 1, 6)
    evaluator = GymEvaluator("Pendulum-v1", episodes=1, max_steps=60, seed=2)
    evaluator(genomes)
    seeds = episode_seeds(2, 0, 1)
    for genome in genomes:
        expected = reference_returns("Pendulum-v1", genome, seeds, 60,
                                     lambda out: np.clip(-2.0 + 4.0 * np.clip(out, 0, 1), -2, 2))
        assert genome.fitness == pytest.approx(expected[0], rel=1e-4), f"genome {genome.id}"


def test_fitness_does_not_depend_on_the_batch() -> None:
    genomes = population_genomes(4, 2, 10)
    evaluator = GymEvaluator("CartPole-v1", episodes=3, max_steps=150)
    evaluator(genomes)
    together = [g.fitness for g in genomes]
    alone = []
    for genome in genomes:
        evaluator([genome])
        alone.append(genome.fitness)
    evaluator(genomes[::-1][:4])
    assert together == alone
    assert [g.fitness for g in genomes[::-1][:4]] == together[::-1][:4]


def test_episode_seeds_are_the_generations_own_and_the_same_in_any_process() -> None:
    assert episode_seeds(1, 0, 3) == episode_seeds(1, 0, 3)
    assert episode_seeds(1, 0, 3) != episode_seeds(1, 1, 3) != episode_seeds(2, 1, 3)
    assert len(set(episode_seeds(1, 4, 5))) == 5


def test_action_adapters_map_outputs_into_each_space() -> None:
    box = ActionAdapter.for_space(spaces.Box(np.array([-2.0, 0.0]), np.array([3.0, np.inf]), dtype=np.float64), "env")
    actions = box.actions(np.array([[0.0, 0.5], [0.5, 7.0], [1.7, -1.0]]))
    assert actions.tolist() == [[-2.0, 0.5], [0.5, 7.0], [3.0, 0.0]]  # scaled, clipped; unbounded passes
    tanh_box = ActionAdapter.for_space(spaces.Box(-1.0, 1.0, (1,)), "env", output_range=(-1.0, 1.0))
    assert tanh_box.actions(np.array([[-0.5], [2.0]])).tolist() == [[-0.5], [1.0]]
    discrete = ActionAdapter.for_space(spaces.Discrete(3, start=-1), "env")
    assert discrete.actions(np.array([[0.1, 0.9, 0.3], [0.8, 0.1, 0.2]])).tolist() == [0, -1]
    binary = ActionAdapter.for_space(spaces.MultiBinary(3), "env")
    assert binary.actions(np.array([[0.2, 0.6, 0.5]])).tolist() == [[0, 1, 0]]


@pytest.mark.parametrize("space, where", [
    (spaces.Dict({"a": spaces.Discrete(2)}), "action space Dict"),
    (spaces.Tuple((spaces.Discrete(2), spaces.Discrete(3))), "action space Tuple"),
    (spaces.MultiDiscrete([2, 3]), "action space MultiDiscrete"),
])
def test_actions_a_network_cannot_drive_are_refused_by_name(space, where) -> None:
    evaluator = GymEvaluator(lambda: Corridor(action_space=space))
    with pytest.raises(UnsupportedSpaceError, match=where.split()[-1]):
        evaluator.shape()


@pytest.mark.parametrize("space, name", [
    (spaces.Box(0, 255, (8, 8, 3), np.uint8), r"\(8, 8, 3\)"),
    (spaces.Dict({"x": spaces.Box(-1, 1, (2,))}), "Dict"),
])
def test_observations_a_network_cannot_read_are_refused_by_name(space, name) -> None:
    with pytest.raises(UnsupportedSpaceError, match=name):
        GymEvaluator(lambda: Corridor(observation_space=space)).shape()


def pushing(genome_id: int, push: bool) -> Genome:
    """A genome with 2 inputs, 2 outputs and no connections: output 1's bias decides the action."""
    return make_genome(2, 2, [(2, 0.0, "identity"), (3, 1.0 if push else -1.0, "identity")], [], genome_id)


@pytest.mark.parametrize("factory, what", [(raising_corridor, "RuntimeError: the corridor collapsed"),
                                           (nan_corridor, "non-finite")])
def test_an_environment_failure_fails_only_its_genome_by_name(factory, what) -> None:
    genomes = [pushing(1, False), pushing(2, True), pushing(3, False)]
    fitness, errors = evaluate_batch(GymEvaluator(factory), genomes)
    assert sorted(fitness) == [[1, 20.0], [3, 20.0]]
    assert [genome_id for genome_id, _ in errors] == [2]
    assert "genome 2" in errors[0][1] and what in errors[0][1] and "step 3" in errors[0][1]
    GymEvaluator(factory, error_fitness=-5.0)(genomes)
    assert [g.fitness for g in genomes] == [20.0, -5.0, 20.0]


def test_normalizer_merges_batches_into_the_mean_and_variance_of_all() -> None:
    rng = np.random.default_rng(0)
    batches = [rng.normal(3.0, 2.0, (n, 4)) for n in (5, 17, 1, 40)]
    normalizer = ObservationNormalizer(4)
    for batch in batches:
        normalizer.update(len(batch), batch.sum(axis=0), (batch ** 2).sum(axis=0))
    everything = np.concatenate(batches)
    assert normalizer.mean == pytest.approx(everything.mean(axis=0))
    assert normalizer.m2 / normalizer.count == pytest.approx(everything.var(axis=0))
    again = ObservationNormalizer.from_dict(normalizer.to_dict())
    assert again.normalize(everything[:3]) == pytest.approx(normalizer.normalize(everything[:3]))
    assert np.abs(normalizer.normalize(everything).mean(axis=0)).max() < 1e-6


def test_normalize_learns_as_a_reporter_from_the_fittest_and_hands_the_statistics_on() -> None:
    genomes = [pushing(1, False), pushing(2, True), pushing(3, False)]
    evaluator = GymEvaluator(Corridor, episodes=2, normalize=True, normalize_top=2)
    evaluator(genomes)
    assert evaluator.normalizer is not None and evaluator.normalizer.count == 0  # evaluating alone learns nothing
    generation = SimpleNamespace(genomes=genomes, fitness=np.array([1.0, 3.0, 2.0]), generation=0)
    evaluator.end_generation(generation, None)  # genomes 2 and 3, 2 episodes of 20 steps each
    assert evaluator.normalizer.count == 2 * 2 * 20 and evaluator.normalizer.mean[1] == pytest.approx(1.0)
    copy = GymEvaluator(Corridor, episodes=2, normalize=True)
    copy.set_generation(0)
    with pytest.raises(ValueError, match="Corridor: normalize=True, yet generation 1 came without observation"):
        copy.set_generation(1)
    copy.set_generation(1, evaluator.generation_context())
    assert copy.normalizer.to_dict() == evaluator.normalizer.to_dict()
    assert GymEvaluator(Corridor).generation_context() is None
    with pytest.raises(ValueError, match="normalize_top must be at least 1, got 0"):
        GymEvaluator(Corridor, normalize_top=0)


def test_behaviour_is_set_from_the_episodes() -> None:
    genome = pushing(1, True)
    evaluator = GymEvaluator(Corridor, episodes=2, behaviour=lambda e: [e.final[:, 0].mean(), e.steps.sum()])
    evaluator([genome])
    starts = [Corridor().reset(seed=s)[0][0] for s in episode_seeds(0, 0, 2)]
    assert genome.behaviour == pytest.approx([np.mean(starts) + 20 * 0.1, 40.0])
