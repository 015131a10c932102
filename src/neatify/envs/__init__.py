"""Batched control tasks in torch, stepped for a whole population at once (see ``NeatPopulationModule``)."""

from neatify.envs.cartpole import CartPole
from neatify.envs.double_pole import DoublePole
from neatify.envs.maze import MazeEnv, MazeOutcome, navigate
from neatify.envs.maze_geometry import MAZES, Maze, get_maze, parse_maze
from neatify.envs.rollout import first_output_above_half, rollout

__all__ = ["CartPole", "DoublePole", "MAZES", "Maze", "MazeEnv", "MazeOutcome", "first_output_above_half", "get_maze",
           "navigate", "parse_maze", "rollout"]
