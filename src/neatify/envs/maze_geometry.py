"""The medium and hard mazes of Lehman & Stanley's novelty search paper (2011), as plain data.

Walls, start, start heading and goal are the published maze files (``medium_maze.txt`` and
``hard_maze.txt``, distributed with the paper's maze simulator and its ports): a maze is a list of
wall segments ``(x1, y1, x2, y2)``, the robot's start point and heading in degrees, and the goal
point. ``parse_maze`` reads that file format, so other mazes can be loaded the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

Point = tuple[float, float]
Wall = tuple[float, float, float, float]

# The robot of the paper's simulator: a disc that senses walls with six rangefinders and the goal
# with four pie-slice radars, and changes its angular and linear velocity by its two outputs.
ROBOT_RADIUS = 8.0
RANGEFINDER_RANGE = 100.0
RANGEFINDER_ANGLES = (-90.0, -45.0, 0.0, 45.0, 90.0, -180.0)
"""Beam directions in degrees from the heading: right, front-right, front, front-left, left, back."""
RADAR_SLICES = ((315.0, 405.0), (45.0, 135.0), (135.0, 225.0), (225.0, 315.0))
"""Goal bearing ranges in degrees from the heading (front, left, back, right); a radar reads 1 when
the goal's bearing lies in its ``[start, end)``, or 360 degrees further."""
MAX_SPEED = 3.0
"""Bound of both the linear speed (units a step) and the angular velocity (degrees a step)."""
GOAL_RADIUS = 5.0
"""A robot closer than this to the goal has reached it; it stops there."""
FITNESS_BIAS = 300.0
"""The paper's fitness is this bias minus the final distance to the goal."""
MAX_STEPS = 400
WAYPOINT_RADIUS = 20.0
"""A robot closer than this to its next waypoint has passed it (``waypoint_maze``)."""
NUM_INPUTS = 1 + len(RANGEFINDER_ANGLES) + len(RADAR_SLICES)
"""Bias, rangefinders (reading / range) and radars: the controller's 11 inputs."""
NUM_OUTPUTS = 2
"""Angular and linear velocity changes, each ``output - 0.5`` a step."""


@dataclass(frozen=True)
class Maze:
    """One maze: wall segments, the robot's start point and heading (degrees), the goal point, and
    optional waypoints marking the way to the goal, in order (for a progress fitness, ``MazeEnv.progress``)."""

    name: str
    walls: tuple[Wall, ...]
    start: Point
    heading: float
    goal: Point
    waypoints: tuple[Point, ...] = ()

    def __post_init__(self) -> None:
        if not self.walls:
            raise ValueError(f"maze {self.name!r} has no walls")
        for wall in self.walls:
            if len(wall) != 4:
                raise ValueError(f"maze {self.name!r}: a wall needs x1 y1 x2 y2, got {wall!r}")
        for point in self.waypoints:
            if len(point) != 2:
                raise ValueError(f"maze {self.name!r}: a waypoint needs x y, got {point!r}")


_PUBLISHED = {  # the paper's maze files: wall count, start x y, start heading, goal x y, walls (boundary first)
    "medium": """11
30 22
0
270 100
5 5 295 5
295 5 295 135
295 135 5 135
5 135 5 5
241 135 58 65
114 5 73 42
130 91 107 46
196 5 139 51
219 125 182 63
267 5 214 63
271 135 237 88""",
    "hard": """11
36 184
0
31 20
5 5 5 200
5 200 200 200
200 200 200 5
200 5 5 5
5 49 57 53
56 54 56 157
57 106 158 162
77 200 108 164
5 80 33 121
200 146 87 91
56 55 133 30""",
}


def parse_maze(text: str, name: str = "maze") -> Maze:
    """A ``Maze`` from the paper's maze file format: the number of walls, the start ``x y``, the
    start heading, the goal ``x y``, then one wall ``x1 y1 x2 y2`` a line ('#' lines and blanks skipped)."""
    rows = [line.split() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    expected_widths = [1, 2, 1, 2]
    if len(rows) < len(expected_widths):
        raise ValueError(f"maze {name!r}: needs a wall count, start, heading and goal before the walls")
    try:
        numbers = [tuple(float(v) for v in row) for row in rows]
    except ValueError as exc:
        raise ValueError(f"maze {name!r}: {exc}") from None
    for line, (row, width) in enumerate(zip(numbers, expected_widths + [4] * len(numbers)), start=1):
        if len(row) != width:
            raise ValueError(f"maze {name!r}: entry {line} has {len(row)} numbers, expected {width}")
    count, start, heading, goal, walls = numbers[0][0], numbers[1], numbers[2][0], numbers[3], numbers[4:]
    if count != len(walls):
        raise ValueError(f"maze {name!r}: says {count:g} walls but lists {len(walls)}")
    return Maze(name, tuple(walls), (start[0], start[1]), heading, (goal[0], goal[1]))


def get_maze(name: str | Maze) -> Maze:
    """The maze called ``name`` ("medium" or "hard"); a ``Maze`` is returned as it is."""
    if isinstance(name, Maze):
        return name
    if name not in MAZES:
        raise KeyError(f"unknown maze {name!r}; known mazes: {', '.join(sorted(MAZES))}")
    return MAZES[name]


MAZES = {name: parse_maze(text, name) for name, text in _PUBLISHED.items()}
"""The paper's mazes by name: "medium" and "hard"."""

WAYPOINTS = {"hard": ((85.0, 145.0), (115.0, 150.0), (140.0, 172.0), (178.0, 182.0), (182.0, 150.0),
                      (120.0, 125.0), (72.0, 100.0), (80.0, 72.0), (115.0, 62.0), (168.0, 62.0), (168.0, 16.0),
                      (100.0, 16.0))}
"""Waypoints along the one way through a maze, start to goal: over the top, back down the middle
corridor, round the right end of the lowest wall and along the bottom to the goal (the hard maze's
deceptive dead end, straight down from the start, passes none of them)."""


def waypoint_maze(name: str) -> Maze:
    """The maze called ``name`` with its ``WAYPOINTS``, for a fitness of progress along them."""
    if name not in WAYPOINTS:
        raise KeyError(f"no waypoints for maze {name!r}; mazes with waypoints: {', '.join(sorted(WAYPOINTS))}")
    return replace(get_maze(name), waypoints=WAYPOINTS[name])
