"""The maze navigation task of Lehman & Stanley (2011), batched over robots in torch.

``MazeEnv`` steps ``num_envs`` robots in one maze together; ``navigate`` drives one robot per
genome of a ``NeatPopulationModule`` through ``rollout`` (one module call per step) and returns
where each ended. The robot and its sensors: ``neatify.envs.maze_geometry``; the one-robot plain
Python model this must equal: ``neatify.envs.maze_reference``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from neatify.envs.maze_geometry import (FITNESS_BIAS, GOAL_RADIUS, MAX_SPEED, MAX_STEPS, NUM_INPUTS, NUM_OUTPUTS,
                                        RADAR_SLICES, RANGEFINDER_ANGLES, RANGEFINDER_RANGE, ROBOT_RADIUS,
                                        WAYPOINT_RADIUS, Maze, get_maze)
from neatify.envs.rollout import rollout
from neatify.nn.population_module import NeatPopulationModule

X, Y, HEADING, SPEED, TURNING = range(5)
"""Columns of ``MazeEnv.pose``."""


class MazeEnv:
    """``num_envs`` robots in one maze: ``reset()`` then ``advance(outputs)`` until ``done.all()``.

    ``state`` is what the robots sense, ``(num_envs, 11)``: bias, six rangefinders, four radars (the
    networks' inputs, so ``rollout`` can drive it); ``pose`` their x, y, heading (degrees), speed and
    angular velocity. A robot is done once it reached the goal (``reached``; it stops there) or ran
    ``max_steps`` steps; done robots stay frozen. ``steps`` counts each robot's steps; ``passed`` how
    many of the maze's waypoints, then the goal, each robot has come near in order (``waypoint_maze``).
    """

    def __init__(self, maze: Maze | str, num_envs: int, max_steps: int = MAX_STEPS,
                 device: torch.device | str | None = None, dtype: torch.dtype = torch.float64) -> None:
        self.maze = get_maze(maze)
        if num_envs < 1 or max_steps < 1:
            raise ValueError(f"MazeEnv needs num_envs and max_steps of at least 1, got {num_envs} and {max_steps}")
        self.num_envs, self.max_steps = num_envs, max_steps
        self.geometry = _Geometry(self.maze, device, dtype)
        self.state = torch.zeros(num_envs, NUM_INPUTS, device=device, dtype=dtype)
        self.pose = torch.zeros(num_envs, 5, device=device, dtype=dtype)
        self.steps = torch.zeros(num_envs, dtype=torch.long, device=device)
        self.done = torch.zeros(num_envs, dtype=torch.bool, device=device)
        self.reached = torch.zeros(num_envs, dtype=torch.bool, device=device)
        self.passed = torch.zeros(num_envs, dtype=torch.long, device=device)

    def reset(self) -> torch.Tensor:
        """Put every robot at the maze's start, at rest; returns a copy of what they sense."""
        self.pose.zero_()
        self.pose[:, X], self.pose[:, Y] = self.maze.start
        self.pose[:, HEADING] = self.maze.heading
        self.steps.zero_()
        self.done.zero_()
        self.reached.zero_()
        self.passed.zero_()
        self._sense()
        return self.state.clone()

    def advance(self, outputs: torch.Tensor) -> None:
        """One step: ``outputs`` ``(num_envs, 2)`` (turn, push), each changing the angular velocity and
        speed by ``output - 0.5``; the robots not done move, turn and sense again."""
        outputs = outputs.reshape(self.num_envs, NUM_OUTPUTS).to(self.pose.dtype)
        running = ~self.done
        pose = self.pose.clone()
        velocities = (pose[:, [TURNING, SPEED]] + outputs - 0.5).clamp_(-MAX_SPEED, MAX_SPEED)
        pose[:, TURNING], pose[:, SPEED] = velocities[:, 0], velocities[:, 1]
        radians = torch.deg2rad(pose[:, HEADING])
        moved = pose[:, [X, Y]] + torch.stack((torch.cos(radians), torch.sin(radians)), 1) * pose[:, SPEED:SPEED + 1]
        heading = pose[:, HEADING] + pose[:, TURNING]
        heading = torch.where(heading > 360.0, heading - 360.0, heading)
        pose[:, HEADING] = torch.where(heading < 0.0, heading + 360.0, heading)
        free = self.geometry.wall_distance(moved).min(dim=1).values >= ROBOT_RADIUS
        pose[:, [X, Y]] = torch.where(free.unsqueeze(1), moved, pose[:, [X, Y]])
        self.pose = torch.where(running.unsqueeze(1), pose, self.pose)
        self.steps += running
        self.reached |= running & (self.distance_to_goal() < GOAL_RADIUS)
        self.done |= self.reached | (self.steps >= self.max_steps)
        self._pass_waypoints(running)
        self._sense()

    def step(self, outputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``advance``, then copies of (what the robots sense, done)."""
        self.advance(outputs)
        return self.state.clone(), self.done.clone()

    def distance_to_goal(self) -> torch.Tensor:
        """Each robot's distance to the goal, ``(num_envs,)``."""
        return torch.linalg.vector_norm(self.pose[:, [X, Y]] - self.geometry.goal, dim=1)

    def fitness(self) -> torch.Tensor:
        """The paper's fitness of where each robot is: ``FITNESS_BIAS`` minus its distance to the goal."""
        return FITNESS_BIAS - self.distance_to_goal()

    def progress(self) -> torch.Tensor:
        """How far along the maze's waypoints each robot got: the targets (waypoints, then the goal)
        passed, plus the fraction of the way to the next one it has closed (0 when farther than the
        leg is long); the number of targets for a robot at the goal."""
        g = self.geometry
        following = self.passed.clamp(max=len(g.targets) - 1)
        left = torch.linalg.vector_norm(self.pose[:, [X, Y]] - g.targets[following], dim=1) / g.legs[following]
        closed = torch.where(self.passed < len(g.targets), (1.0 - left).clamp(min=0.0), 0.0)
        return self.passed.to(self.pose.dtype) + closed

    def positions(self) -> torch.Tensor:
        """Each robot's (x, y), ``(num_envs, 2)``: the behaviour novelty search compares."""
        return self.pose[:, [X, Y]].clone()

    def _pass_waypoints(self, running: torch.Tensor) -> None:
        """Count the next waypoint as passed for the ``running`` robots within ``WAYPOINT_RADIUS`` of it;
        reaching the goal passes them all (and the goal)."""
        g = self.geometry
        if len(g.targets) > 1:
            target = g.targets[self.passed.clamp(max=len(g.targets) - 1)]
            near = torch.linalg.vector_norm(self.pose[:, [X, Y]] - target, dim=1) < WAYPOINT_RADIUS
            self.passed += running & near & (self.passed < len(g.targets) - 1)
        self.passed = torch.where(self.reached, torch.full_like(self.passed, len(g.targets)), self.passed)

    def _sense(self) -> None:
        """Fill ``state`` from the poses: bias, rangefinder fractions of the range, radar slices."""
        g, pose = self.geometry, self.pose
        self.state[:, 0] = 1.0
        self.state[:, 1:1 + len(RANGEFINDER_ANGLES)] = g.beams(pose[:, [X, Y]], pose[:, HEADING])
        self.state[:, 1 + len(RANGEFINDER_ANGLES):] = g.radars(pose[:, [X, Y]], pose[:, HEADING])

    def take(self, index: torch.Tensor) -> MazeEnv:
        """The robots at ``index`` as a new ``MazeEnv`` (copies), for stepping a subset."""
        part = MazeEnv(self.maze, len(index), self.max_steps, device=self.pose.device, dtype=self.pose.dtype)
        for name in _STATE:
            setattr(part, name, getattr(self, name)[index])
        return part

    def put(self, index: torch.Tensor, part: MazeEnv) -> None:
        """Write back the robots ``take(index)`` returned, as ``part`` left them."""
        for name in _STATE:
            getattr(self, name)[index] = getattr(part, name)


_STATE = ("state", "pose", "steps", "done", "reached", "passed")


class _Geometry:
    """A maze's walls and goal as tensors, with the sensor and collision queries on them."""

    def __init__(self, maze: Maze, device: torch.device | str | None, dtype: torch.dtype) -> None:
        walls = torch.tensor(maze.walls, device=device, dtype=dtype)
        self.a, self.b = walls[:, :2], walls[:, 2:]  # (walls, 2)
        self.along = self.b - self.a
        self.goal = torch.tensor(maze.goal, device=device, dtype=dtype)
        self.targets = torch.tensor((*maze.waypoints, maze.goal), device=device, dtype=dtype).reshape(-1, 2)
        starts = torch.cat((torch.tensor([maze.start], device=device, dtype=dtype), self.targets[:-1]))
        self.legs = torch.linalg.vector_norm(self.targets - starts, dim=1)
        self.beam_angles = torch.tensor(RANGEFINDER_ANGLES, device=device, dtype=dtype)
        self.slices = torch.tensor(RADAR_SLICES, device=device, dtype=dtype)

    def wall_distance(self, points: torch.Tensor) -> torch.Tensor:
        """Distance from each point ``(n, 2)`` to each wall segment: ``(n, walls)``."""
        offset = points.unsqueeze(1) - self.a  # (n, walls, 2)
        t = ((offset * self.along).sum(2) / (self.along * self.along).sum(1)).clamp_(0.0, 1.0)
        return torch.linalg.vector_norm(offset - t.unsqueeze(2) * self.along, dim=2)

    def beams(self, points: torch.Tensor, heading: torch.Tensor) -> torch.Tensor:
        """The rangefinders ``(n, 6)``: the nearest wall crossing along each beam as a fraction of the
        range (1 where none), crossings counted strictly inside both segments as in the reference."""
        radians = torch.deg2rad(heading.unsqueeze(1) + self.beam_angles)  # (n, beams)
        beam = torch.stack((torch.cos(radians), torch.sin(radians)), 2) * RANGEFINDER_RANGE  # (n, beams, 2)
        beam = beam.unsqueeze(2)  # (n, beams, 1, 2)
        start = (self.a - points.unsqueeze(1)).unsqueeze(1)  # wall start from the robot: (n, 1, walls, 2)
        along = self.along
        denominator = along[:, 0] * beam[..., 1] - along[:, 1] * beam[..., 0]  # (n, beams, walls)
        along_wall = (start[..., 1] * beam[..., 0] - start[..., 0] * beam[..., 1]) / denominator
        along_beam = (start[..., 1] * along[:, 0] - start[..., 0] * along[:, 1]) / denominator
        hit = (denominator != 0) & (along_wall > 0) & (along_wall < 1) & (along_beam > 0) & (along_beam < 1)
        return torch.where(hit, along_beam, torch.ones_like(along_beam)).amin(dim=2)

    def radars(self, points: torch.Tensor, heading: torch.Tensor) -> torch.Tensor:
        """The radars ``(n, 4)``: 1 for the slice around the heading that holds the goal's bearing."""
        to_goal = self.goal - points
        bearing = torch.remainder(torch.rad2deg(torch.atan2(to_goal[:, 1], to_goal[:, 0])) - heading, 360.0)
        bearing = bearing.unsqueeze(1)
        start, end = self.slices[:, 0], self.slices[:, 1]
        inside = ((start <= bearing) & (bearing < end)) | ((start <= bearing + 360.0) & (bearing + 360.0 < end))
        return inside.to(points.dtype)


def robot_outputs(outputs: torch.Tensor) -> torch.Tensor:
    """``rollout``'s policy for mazes: the module's ``(genomes, 1, 2)`` outputs as ``(robots, 2)``."""
    return outputs.reshape(-1, NUM_OUTPUTS)


@dataclass
class MazeOutcome:
    """Where each genome's robot ended: final (x, y), the paper's fitness, whether it reached the goal,
    its steps, and its ``MazeEnv.progress`` along the maze's waypoints."""

    positions: torch.Tensor
    fitness: torch.Tensor
    reached: torch.Tensor
    steps: torch.Tensor
    progress: torch.Tensor


def navigate(module: NeatPopulationModule, maze: Maze | str, max_steps: int = MAX_STEPS) -> MazeOutcome:
    """Run one robot per genome of ``module`` through ``maze`` for ``max_steps`` steps (one module call
    a step; robots that reach the goal drop out once most have); returns where each ended. The robots
    are simulated on the module's device in its dtype (float64 ones equal the reference to rounding)."""
    if module.num_inputs != NUM_INPUTS or module.num_outputs != NUM_OUTPUTS:
        raise ValueError(f"maze robots need networks of {NUM_INPUTS} inputs and {NUM_OUTPUTS} outputs, "
                         f"got {module.num_inputs} and {module.num_outputs}")
    like = next(b for b in module.buffers() if b.is_floating_point())
    env = MazeEnv(maze, module.num_genomes, max_steps, device=like.device, dtype=like.dtype)
    rollout(module, env, robot_outputs)
    return MazeOutcome(env.positions(), env.fitness(), env.reached.clone(), env.steps.clone(), env.progress())
