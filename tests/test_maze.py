"""The maze task: the batched ``MazeEnv`` against the one-robot reference, sensors, collisions, goal, bad input."""

from __future__ import annotations

import random

import pytest
import torch

from helpers import doc_snippet, make_genome
from neatify import Population
from neatify.envs.maze import MazeEnv, navigate
from neatify.envs.maze_geometry import (GOAL_RADIUS, MAZES, NUM_INPUTS, NUM_OUTPUTS, ROBOT_RADIUS, Maze, get_maze,
                                        parse_maze)
from neatify.envs.maze_reference import ReferenceRobot, reference_run
from neatify.network.network import Network
from neatify.nn import NeatPopulationModule

BOX = Maze("box", walls=((0, 0, 100, 0), (100, 0, 100, 100), (100, 100, 0, 100), (0, 100, 0, 0)),
           start=(20, 50), heading=0.0, goal=(60, 50))
"""A square room with the goal straight ahead of the start: robots pushing forward reach it."""


def assert_same(env: MazeEnv, robots: list[ReferenceRobot]) -> None:
    for i, robot in enumerate(robots):
        pose = env.pose[i].tolist()
        assert pose[:3] == pytest.approx([robot.x, robot.y, robot.heading], abs=1e-9)
        assert pose[3:] == pytest.approx([robot.speed, robot.angular_velocity], abs=1e-12)
        assert env.state[i].tolist() == pytest.approx(robot.sense(), abs=1e-9)
        assert bool(env.reached[i]) == robot.reached


@pytest.mark.parametrize("maze", ["medium", "hard", BOX])
def test_batched_robots_equal_the_reference_under_random_outputs(maze) -> None:
    env, rng = MazeEnv(maze, 5), random.Random(7)
    env.reset()
    robots = [ReferenceRobot(get_maze(maze)) for _ in range(5)]
    assert_same(env, robots)
    for _ in range(50):
        outputs = [[rng.random(), rng.random()] for _ in robots]
        for robot, (turn, push) in zip(robots, outputs):
            robot.step(turn, push)
        env.advance(torch.tensor(outputs, dtype=torch.float64))
        assert_same(env, robots)
    moved = [((r.x, r.y) != get_maze(maze).start) for r in robots]
    assert all(moved)


def test_robot_pushing_into_a_wall_stops_short_of_it() -> None:
    env = MazeEnv(Maze("west", BOX.walls, BOX.start, 180.0, BOX.goal), 1)  # facing the wall x = 0, 20 away
    env.reset()
    for _ in range(30):
        state, done = env.step(torch.tensor([[0.5, 1.0]]))  # no turning, full push
    x = env.pose[0, 0].item()
    assert ROBOT_RADIUS <= x < ROBOT_RADIUS + 3.0  # stopped within one step's length of touching
    assert state[0, 3].item() == pytest.approx(x / 100.0)  # the front rangefinder sees the wall
    assert not done.item() and env.steps.item() == 30


def test_start_sensors_of_the_medium_maze() -> None:
    """At (30, 22) facing +x the right-hand beam meets the wall y = 5 after 17 units; the goal (270, 100)
    lies to the front-left, at a bearing under 45 degrees: the front radar."""
    env = MazeEnv("medium", 2)
    state = env.reset()
    assert state[0, 0].item() == 1.0
    assert state[0, 1].item() == pytest.approx(0.17)
    assert state[0, 7:].tolist() == [1.0, 0.0, 0.0, 0.0]


def test_goal_reached_robots_stop_and_the_rest_run_to_max_steps() -> None:
    env = MazeEnv(BOX, 2, max_steps=60)
    env.reset()
    for _ in range(70):
        env.advance(torch.tensor([[0.5, 1.0], [0.5, 0.5]]))  # one pushes toward the goal, one stays
    assert env.reached.tolist() == [True, False]
    assert env.done.all()
    assert env.distance_to_goal()[0].item() < GOAL_RADIUS
    assert env.steps[1].item() == 60 and env.steps[0].item() < 60
    assert (env.fitness()[0] > env.fitness()[1]).item()


def random_controllers(count: int, seed: int = 3) -> list:
    """Genomes of 11 inputs and 2 outputs with up to four hidden nodes and random links, recurrent
    ones (cycles, self-loops) in every other genome."""
    rng = random.Random(seed)
    outputs, genomes = [NUM_INPUTS, NUM_INPUTS + 1], []
    for genome_id in range(count):
        hidden = list(range(NUM_INPUTS + 2, NUM_INPUTS + 2 + rng.randint(1, 4)))
        order = list(range(NUM_INPUTS)) + rng.sample(outputs + hidden, len(outputs) + len(hidden))
        nodes = [(node, rng.gauss(0.0, 1.0), "neat_sigmoid") for node in outputs + hidden]
        links = [(rng.choice(order), rng.choice(order[NUM_INPUTS:])) for _ in range(25)]
        cyclic = genome_id % 2 == 1
        connections = [(k, src, dst, rng.gauss(0.0, 1.5), True) for k, (src, dst) in enumerate(links)
                       if cyclic or order.index(src) < order.index(dst)]
        genomes.append(make_genome(NUM_INPUTS, NUM_OUTPUTS, nodes, connections, genome_id))
    return genomes


@pytest.mark.parametrize("maze", ["hard", BOX])
def test_navigate_equals_reference_runs_of_the_same_networks(maze) -> None:
    genomes = random_controllers(6)
    assert any(g.is_recurrent() for g in genomes)
    module = NeatPopulationModule(genomes, dtype=torch.float64)
    outcome = navigate(module, maze, max_steps=40)
    for i, genome in enumerate(genomes):
        robot = reference_run(get_maze(maze), Network(genome).activate, steps=40)
        assert outcome.positions[i].tolist() == pytest.approx([robot.x, robot.y], abs=1e-9)
        assert bool(outcome.reached[i]) == robot.reached
        assert outcome.fitness[i].item() == pytest.approx(300.0 - robot.distance_to_goal(), abs=1e-9)


def test_dropping_finished_robots_changes_nothing() -> None:
    """Robots pushing forward in the box reach the goal early and drop out; the others end as if all ran."""
    near = Maze("near", BOX.walls, BOX.start, BOX.heading, goal=(27, 50))
    genomes = random_controllers(6)
    module = NeatPopulationModule(genomes, dtype=torch.float64)
    outcome = navigate(module, near, max_steps=50)
    assert len(genomes) / 2 <= outcome.reached.sum() < len(genomes)  # rollout drops them (its shrink 0.5)
    env = MazeEnv(near, len(genomes), max_steps=50)
    state = env.reset()
    module.reset()
    for _ in range(50):
        env.advance(module(state.unsqueeze(1)).reshape(-1, 2))
        state = env.state
    assert torch.equal(outcome.positions, env.positions())
    assert torch.equal(outcome.steps, env.steps)


def test_take_and_put_round_trip() -> None:
    env = MazeEnv("hard", 4)
    env.reset()
    env.advance(torch.rand(4, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0)))
    before = env.pose.clone()
    part = env.take(torch.tensor([1, 3]))
    part.advance(torch.full((2, 2), 0.9))
    env.put(torch.tensor([1, 3]), part)
    assert torch.equal(env.pose[[0, 2]], before[[0, 2]])
    assert torch.equal(env.pose[[1, 3]], part.pose)
    assert env.steps.tolist() == [1, 2, 1, 2]


def test_parse_maze_reads_the_paper_format() -> None:
    text = "# walls\n2\n10 20\n90\n# goal\n50 60\n\n0 0 100 0\n0 0 0 100\n"
    maze = parse_maze(text, "mine")
    assert maze == Maze("mine", ((0, 0, 100, 0), (0, 0, 0, 100)), (10, 20), 90.0, (50, 60))


@pytest.mark.parametrize("text, message", [
    ("3\n10 20\n90\n50 60\n0 0 100 0\n", "says 3 walls but lists 1"),
    ("1\n10 20\n90\n50\n0 0 100 0\n", "entry 4 has 1 numbers, expected 2"),
    ("1\n10 20\n90\n50 60\n0 0 100\n", "entry 5 has 3 numbers, expected 4"),
    ("1\n10 twenty\n90\n50 60\n0 0 100 0\n", "twenty"),
    ("1\n10 20\n", "needs a wall count"),
])
def test_parse_maze_rejects_bad_files_by_entry(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=f"maze 'bad'.*{message}"):
        parse_maze(text, "bad")


def test_bad_names_and_shapes_are_rejected_by_name() -> None:
    with pytest.raises(KeyError, match="unknown maze 'easy'; known mazes: hard, medium"):
        MazeEnv("easy", 3)
    with pytest.raises(ValueError, match="num_envs and max_steps of at least 1, got 0 and 400"):
        MazeEnv("hard", 0)
    with pytest.raises(ValueError, match="maze 'empty' has no walls"):
        Maze("empty", (), (0, 0), 0.0, (1, 1))
    genomes = Population(2, 4, 2, seed=0).genomes
    with pytest.raises(ValueError, match="11 inputs and 2 outputs, got 4 and 2"):
        navigate(NeatPopulationModule(genomes), "medium")


def test_the_paper_mazes_keep_robot_start_and_goal_clear_of_walls() -> None:
    for maze in MAZES.values():
        env = MazeEnv(maze, 1)
        env.reset()
        start_clear = env.geometry.wall_distance(env.pose[:, :2]).min().item()
        goal_clear = env.geometry.wall_distance(env.geometry.goal.unsqueeze(0)).min().item()
        assert start_clear > ROBOT_RADIUS and goal_clear > ROBOT_RADIUS


@pytest.mark.slow
def test_mazes_doc_novelty_snippet_runs(capsys) -> None:
    exec(doc_snippet("docs/mazes.md", "def maze_fitness(genomes):"), {})
    generation, species, best = capsys.readouterr().out.split()
    assert generation in ("1", "2") and int(species) >= 1 and 0.0 < float(best) < 300.0
