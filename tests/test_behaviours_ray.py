"""Behaviours through Ray actors: a novelty run on a local Ray cluster equals the serial run."""

from __future__ import annotations

import pytest

from behaviour_task import xor_behaviour_fitness
from test_behaviours_backends import novelty_run

pytest.importorskip("ray")
from neatify.backends.ray import RayEvaluator  # noqa: E402
from test_ray import cluster, local_ray  # noqa: E402, F401 (the Ray fixtures: one local cluster on 127.0.0.1)


@pytest.mark.slow
def test_ray_actors_carry_behaviours_as_the_serial_run(local_ray):
    with RayEvaluator(xor_behaviour_fitness, num_actors=2, timeout=60) as evaluator:
        assert novelty_run(evaluator) == novelty_run(xor_behaviour_fitness)
