"""GymEvaluator on Ray actors: each actor vectorises its own batch, and the run equals the serial one."""

from __future__ import annotations

import pytest

pytest.importorskip("gymnasium")
pytest.importorskip("ray")

from neatify import EvolutionConfig, Population  # noqa: E402
from neatify.backends.ray import RayEvaluator  # noqa: E402
from neatify.gym import GymEvaluator  # noqa: E402
from test_ray import cluster, local_ray  # noqa: E402,F401  (the module's local Ray cluster)


def history(fitness_fn, task: GymEvaluator) -> list[list[float]]:
    """Every genome's fitness in each of 3 CartPole generations, ``task`` a reporter (learning the statistics)."""
    population = Population(num_inputs=4, num_outputs=2, config=EvolutionConfig(population_size=30), seed=4)
    population.add_reporter(task)
    fitness = []
    for _ in range(3):
        population.run_generation(fitness_fn)
        fitness.append([g.fitness for g in population.genomes])
    return fitness


@pytest.mark.slow
@pytest.mark.parametrize("resample, normalize", [(False, False), (True, False), (True, True)])
def test_cartpole_on_ray_actors_equals_serial(local_ray, resample, normalize):
    """Resampled and normalised too: each actor is told the generation and the statistics before its batch."""
    serial, on_ray = (GymEvaluator("CartPole-v1", episodes=2, max_steps=100, seed=3, resample=resample,
                                   normalize=normalize) for _ in range(2))
    with RayEvaluator(on_ray, num_actors=2, timeout=120) as evaluator:
        assert history(evaluator, on_ray) == history(serial, serial)
