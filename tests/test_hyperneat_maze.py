"""The maze robot on an ES-HyperNEAT substrate: its sensors laid out by direction, and phenotypes that drive it."""

from __future__ import annotations

import pytest
import torch

from helpers import doc_snippet
from neatify import Population
from neatify.envs.maze import navigate
from neatify.envs.maze_geometry import NUM_INPUTS, NUM_OUTPUTS, RANGEFINDER_ANGLES
from neatify.envs.maze_substrate import robot_points
from neatify.hyperneat import ESHyperNEAT, cppn_config


def test_sensors_sit_by_the_direction_they_look_left_to_the_left_and_behind_at_the_right_edge():
    inputs, outputs = robot_points()
    assert len(inputs) == NUM_INPUTS and len(outputs) == NUM_OUTPUTS
    assert len(set(inputs + outputs)) == NUM_INPUTS + NUM_OUTPUTS
    rangefinders = dict(zip(RANGEFINDER_ANGLES, inputs[1:7]))
    assert rangefinders == {-90.0: (0.5, -1.0), -45.0: (0.25, -1.0), 0.0: (0.0, -1.0), 45.0: (-0.25, -1.0),
                            90.0: (-0.5, -1.0), -180.0: (1.0, -1.0)}
    assert inputs[7:] == [(0.0, -0.5), (-0.5, -0.5), (1.0, -0.5), (0.5, -0.5)]  # radars: front, left, back, right
    assert all(y == 1.0 for _, y in outputs) and inputs[0] == (-1.0, -1.0)


@pytest.mark.slow  # the ES decoder's first call compiles its loops
def test_es_hyperneat_phenotypes_of_the_robot_substrate_drive_one_robot_each():
    pop = Population(num_inputs=4, num_outputs=1, config=cppn_config(population_size=6), seed=2)
    module = ESHyperNEAT(*robot_points()).decode(pop.ask())
    outcome = navigate(module, "medium", max_steps=20)
    assert outcome.positions.shape == (6, 2) and torch.isfinite(outcome.fitness).all()
    assert len({tuple(p) for p in outcome.positions.tolist()}) > 1  # different CPPNs, different robots


@pytest.mark.slow
def test_the_guide_s_maze_snippet_sets_fitness_and_behaviour_on_every_cppn():
    scope: dict = {}
    exec(doc_snippet("docs/es_hyperneat.md", "def maze_fitness(genomes)"), scope)
    assert scope["pop"].evaluations == 20
    genomes = scope["pop"].ask()
    scope["maze_fitness"](genomes)
    targets = len(scope["maze"].waypoints) + 1
    assert all(0.0 <= g.fitness <= targets and len(g.behaviour) == 2 for g in genomes)
    assert len({g.fitness for g in genomes}) > 1  # different CPPNs, different progress
