"""One maze robot in plain Python, step by step as the paper describes it: the reference ``MazeEnv`` must equal."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from neatify.envs.maze_geometry import (GOAL_RADIUS, MAX_SPEED, RADAR_SLICES, RANGEFINDER_ANGLES,
                                        RANGEFINDER_RANGE, ROBOT_RADIUS, Maze, Point, Wall)


class ReferenceRobot:
    """A robot in ``maze``: ``sense()`` gives the network's 11 inputs, ``step(turn, push)`` applies its outputs.

    Each step the outputs change the angular velocity and speed by ``output - 0.5`` (both kept within
    +-``MAX_SPEED``), the robot moves along its old heading by its speed (unless the new point is
    within ``ROBOT_RADIUS`` of a wall: then it stays), then turns by its angular velocity. Once it is
    within ``GOAL_RADIUS`` of the goal it has ``reached`` it and no longer moves.
    """

    def __init__(self, maze: Maze) -> None:
        self.maze = maze
        self.x, self.y = maze.start
        self.heading = maze.heading
        self.speed = self.angular_velocity = 0.0
        self.reached = False

    def sense(self) -> list[float]:
        """Bias 1, the six rangefinders (distance to the nearest wall along the beam / range, 1 if none
        within range) and the four radars (1 for the slice the goal lies in)."""
        ranges = [self._beam(self.heading + angle) for angle in RANGEFINDER_ANGLES]
        return [1.0, *ranges, *self._radars()]

    def step(self, turn: float, push: float) -> None:
        """Apply the network's two outputs and move one step."""
        if self.reached:
            return
        self.angular_velocity = _clamp(self.angular_velocity + turn - 0.5)
        self.speed = _clamp(self.speed + push - 0.5)
        radians = math.radians(self.heading)
        x, y = self.x + math.cos(radians) * self.speed, self.y + math.sin(radians) * self.speed
        self.heading += self.angular_velocity
        if self.heading > 360.0:
            self.heading -= 360.0
        if self.heading < 0.0:
            self.heading += 360.0
        if all(_wall_distance(x, y, wall) >= ROBOT_RADIUS for wall in self.maze.walls):
            self.x, self.y = x, y
        self.reached = self.distance_to_goal() < GOAL_RADIUS

    def distance_to_goal(self) -> float:
        """Euclidean distance from the robot's centre to the goal."""
        return math.hypot(self.maze.goal[0] - self.x, self.maze.goal[1] - self.y)

    def _beam(self, degrees: float) -> float:
        """The nearest wall along a beam in direction ``degrees``, as a fraction of the range (1: none)."""
        radians = math.radians(degrees)
        beam = (math.cos(radians) * RANGEFINDER_RANGE, math.sin(radians) * RANGEFINDER_RANGE)
        hits = [_crossing((self.x, self.y), beam, wall) for wall in self.maze.walls]
        return min([1.0] + [s for s in hits if s is not None])

    def _radars(self) -> list[float]:
        """Which of the four pie slices around the heading the goal's bearing falls in."""
        bearing = math.degrees(math.atan2(self.maze.goal[1] - self.y, self.maze.goal[0] - self.x)) - self.heading
        bearing %= 360.0
        return [1.0 if start <= bearing < end or start <= bearing + 360.0 < end else 0.0
                for start, end in RADAR_SLICES]


def _clamp(value: float) -> float:
    return max(-MAX_SPEED, min(MAX_SPEED, value))


def _crossing(origin: Point, beam: Point, wall: Wall) -> float | None:
    """Where the beam from ``origin`` along vector ``beam`` crosses ``wall``, as a fraction of the beam;
    None if it does not (parallel, or crossing outside either segment's open interior)."""
    ax, ay, bx, by = wall
    (cx, cy), (dx, dy) = origin, beam
    denominator = (bx - ax) * dy - (by - ay) * dx
    if denominator == 0.0:
        return None
    along_wall = ((ay - cy) * dx - (ax - cx) * dy) / denominator
    along_beam = ((ay - cy) * (bx - ax) - (ax - cx) * (by - ay)) / denominator
    return along_beam if 0.0 < along_wall < 1.0 and 0.0 < along_beam < 1.0 else None


def _wall_distance(x: float, y: float, wall: Wall) -> float:
    """Distance from point ``(x, y)`` to the wall segment."""
    ax, ay, bx, by = wall
    wx, wy = bx - ax, by - ay
    t = min(1.0, max(0.0, ((x - ax) * wx + (y - ay) * wy) / (wx * wx + wy * wy)))
    return math.hypot(x - (ax + t * wx), y - (ay + t * wy))


def reference_run(maze: Maze, controller: Callable[[list[float]], Sequence[float]], steps: int) -> ReferenceRobot:
    """Drive one robot ``steps`` steps (or until it reaches the goal) by ``controller(inputs) -> (turn, push)``."""
    robot = ReferenceRobot(maze)
    for _ in range(steps):
        if robot.reached:
            break
        turn, push = controller(robot.sense())
        robot.step(turn, push)
    return robot
