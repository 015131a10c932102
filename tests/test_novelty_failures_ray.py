"""A genome failing in a Ray actor, given the evaluator's error_fitness in a run with behaviours: the run goes on as
the serial run whose fitness function marks the same genomes failed (the other backends: test_novelty_failures.py)."""

from __future__ import annotations

import pytest

from behaviour_task import xor_behaviour_failing, xor_behaviour_raising
from test_novelty_failures import failing_run

pytest.importorskip("ray")
from neatify.backends.ray import RayEvaluator  # noqa: E402
from test_ray import cluster, local_ray  # noqa: E402, F401 (the Ray fixtures: one local cluster on 127.0.0.1)


@pytest.mark.slow
def test_ray_actors_with_error_fitness_run_on_as_the_serial_run_marking_them_failed(local_ray):
    with RayEvaluator(xor_behaviour_raising, num_actors=2, timeout=60, error_fitness=-1.0) as evaluator:
        assert failing_run(evaluator).state_dict() == failing_run(xor_behaviour_failing).state_dict()
