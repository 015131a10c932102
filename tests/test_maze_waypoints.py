"""Progress along a maze's waypoints: the non-deceptive fitness of the ES-HyperNEAT maze task."""

from __future__ import annotations

import math

import pytest
import torch

from neatify.envs.maze import HEADING, SPEED, TURNING, X, Y, MazeEnv
from neatify.envs.maze_geometry import FITNESS_BIAS, MAZES, WAYPOINTS, Maze, waypoint_maze


def pilot(env: MazeEnv) -> torch.Tensor:
    """A hand-built controller that reads the pose (not the sensors): turn toward the next waypoint,
    full speed when facing it, creep while turning."""
    x, y, heading, speed, turning = env.pose[0].tolist()
    targets = (*env.maze.waypoints, env.maze.goal)
    tx, ty = targets[min(int(env.passed[0]), len(targets) - 1)]
    error = (math.degrees(math.atan2(ty - y, tx - x)) - heading + 180.0) % 360.0 - 180.0
    turn, push = max(-3.0, min(3.0, error / 3.0)) - turning, (3.0 if abs(error) < 20.0 else 0.5) - speed
    return torch.tensor([[0.5 + max(-0.5, min(0.5, turn)), 0.5 + max(-0.5, min(0.5, push))]])


def test_a_robot_steering_by_the_waypoints_passes_each_in_turn_and_reaches_the_hard_maze_goal() -> None:
    env = MazeEnv(waypoint_maze("hard"), 1)
    env.reset()
    passed = [0]
    while not env.done[0]:
        env.advance(pilot(env))
        if int(env.passed[0]) != passed[-1]:
            passed.append(int(env.passed[0]))
    targets = len(WAYPOINTS["hard"]) + 1
    assert bool(env.reached[0]) and int(env.steps[0]) < env.max_steps
    assert passed == list(range(targets + 1))  # one at a time, in order, the goal last
    assert env.progress().item() == targets


def test_the_deceptive_dead_end_scores_high_on_distance_but_nothing_on_progress() -> None:
    env = MazeEnv(waypoint_maze("hard"), 2)
    env.reset()
    assert env.progress().tolist() == [0.0, 0.0]
    env.pose[:, X], env.pose[:, Y] = torch.tensor([31.0, 85.0]), torch.tensor([59.0, 145.0])  # dead end; 1st waypoint
    env.advance(torch.full((2, 2), 0.5))
    assert env.fitness()[0].item() == pytest.approx(FITNESS_BIAS - 39.0)  # 39 units from the goal
    assert env.progress()[0].item() == 0.0  # farther from the first waypoint than the start is
    assert env.passed.tolist() == [0, 1] and env.progress()[1].item() == pytest.approx(1.0)  # none of the next leg


def test_a_waypoint_counts_only_after_the_ones_before_it() -> None:
    maze = waypoint_maze("hard")
    env = MazeEnv(maze, 1)
    env.reset()
    for point in (maze.waypoints[1], maze.waypoints[0], maze.waypoints[1]):  # second, first, second again
        env.pose[0, X], env.pose[0, Y] = point
        env.advance(torch.tensor([[0.5, 0.5]]))
    assert env.passed.tolist() == [2]
    assert env.progress().item() == pytest.approx(2.0)  # at the second waypoint: none of the third leg closed


def test_a_robot_that_stops_keeps_its_count_and_take_put_carry_it() -> None:
    env = MazeEnv(waypoint_maze("hard"), 3)
    env.reset()
    env.pose[1, X], env.pose[1, Y] = WAYPOINTS["hard"][0]
    env.advance(torch.full((3, 2), 0.5))
    part = env.take(torch.tensor([1, 2]))
    assert part.passed.tolist() == [1, 0]
    part.passed[0] = 5
    env.put(torch.tensor([1, 2]), part)
    assert env.passed.tolist() == [0, 5, 0]


def test_a_maze_without_waypoints_counts_only_the_goal() -> None:
    env = MazeEnv("hard", 1)
    env.reset()
    env.pose[0, X], env.pose[0, Y] = MAZES["hard"].goal
    env.advance(torch.tensor([[0.5, 0.5]]))
    assert bool(env.reached[0]) and env.progress().item() == 1.0


def test_bad_waypoints_are_named() -> None:
    with pytest.raises(KeyError, match="no waypoints for maze 'medium'; mazes with waypoints: hard"):
        waypoint_maze("medium")
    with pytest.raises(ValueError, match="maze 'w': a waypoint needs x y, got \\(1.0,\\)"):
        Maze("w", MAZES["hard"].walls, (36.0, 184.0), 0.0, (31.0, 20.0), waypoints=((1.0,),))
