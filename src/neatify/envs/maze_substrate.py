"""Where the maze robot's sensors and effectors sit on a 2D substrate, for HyperNEAT and ES-HyperNEAT.

The CPPN sees geometry, so the layout follows the robot: the bias at (-1, -1), the rangefinders on the
line y = -1 and the goal radars on y = -0.5, each at x = -(its direction from the heading) / 180
degrees (what lies to the robot's left sits left, straight behind at x = 1); the two outputs (angular
and linear velocity changes) at y = 1. Points are listed in the robot's input and output order.
"""

from __future__ import annotations

from neatify.envs.maze_geometry import RADAR_SLICES, RANGEFINDER_ANGLES

Point = tuple[float, float]


def robot_points() -> tuple[list[Point], list[Point]]:
    """(input points, output points) of the maze robot (see the module docstring)."""
    radars = [(start + end) / 2 for start, end in RADAR_SLICES]
    inputs = [(-1.0, -1.0)] + [(_x(angle), -1.0) for angle in RANGEFINDER_ANGLES] + [(_x(a), -0.5) for a in radars]
    return inputs, [(-0.5, 1.0), (0.5, 1.0)]


def _x(angle: float) -> float:
    """Where a sensor looking ``angle`` degrees from the heading (counter-clockwise) sits on its line."""
    return 0.0 - ((angle + 180.0) % 360.0 - 180.0) / 180.0
