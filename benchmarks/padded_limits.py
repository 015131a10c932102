"""Fitting a padded peer's genome limits to a run, so a comparison does not time padding no genome uses.

A library that stores genomes in fixed-size arrays (TensorNEAT: ``max_nodes`` x ``max_conns``) pays
for every padded slot, and refuses a mutation once a genome has no room left. The fitted limits are
the smallest that refuse nothing: the largest genome of the run plus the room one generation's
mutations ask for (``headroom``). ``fit_limits`` finds them from a first run at generous limits and
checks them on the fitted run itself, refitting while that run came too close.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

Result = TypeVar("Result")


@dataclass(frozen=True)
class Limits:
    """A genome size, or a padded library's room for one: node genes and connection genes."""

    nodes: int
    conns: int

    def __str__(self) -> str:
        return f"{self.nodes} nodes x {self.conns} connections"


def fitted(largest: Limits, headroom: Limits) -> Limits:
    """The smallest limits under which a genome as large as ``largest`` still gets every mutation."""
    return Limits(largest.nodes + headroom.nodes, largest.conns + headroom.conns)


def binds(largest: Limits, limits: Limits, headroom: Limits) -> bool:
    """Whether a run whose largest genome was ``largest`` may have had a mutation refused under ``limits``."""
    room = fitted(largest, headroom)
    return room.nodes > limits.nodes or room.conns > limits.conns


@dataclass
class Fit(Generic[Result]):
    """The first run (at the starting limits), the fitted limits and the run under them, and how many
    runs the fitting took."""

    first: Result
    first_limits: Limits
    limits: Limits
    result: Result
    runs: int

    def describe(self, headroom: Limits) -> str:
        """One line saying which limits were used and how they were found."""
        return (f"fitted limits {self.limits} = largest genome + {headroom} of headroom (room for one "
                f"generation's mutations), from a first run at {self.first_limits}; checked on the fitted "
                f"run itself ({self.runs} runs)")


def fit_limits(run: Callable[[Limits], tuple[Result, Limits]], start: Limits, headroom: Limits,
               max_runs: int = 6) -> Fit[Result]:
    """Run at ``start`` (doubled while it binds), then at the fitted limits until a run does not bind.

    ``run(limits)`` returns its result and the largest genome it held (in any generation, the first
    included). Raises RuntimeError naming the last limits when ``max_runs`` runs do not settle."""
    first, largest = run(start)
    runs = 1
    while binds(largest, start, headroom):
        if runs >= max_runs:
            raise RuntimeError(f"the first run still binds at {start} after {runs} runs")
        start = Limits(2 * start.nodes, 2 * start.conns)
        (first, largest), runs = run(start), runs + 1
    limits = fitted(largest, headroom)
    while runs < max_runs:
        (result, largest), runs = run(limits), runs + 1
        if not binds(largest, limits, headroom):
            return Fit(first, start, limits, result, runs)
        room = fitted(largest, headroom)
        limits = Limits(max(room.nodes, limits.nodes), max(room.conns, limits.conns))
    raise RuntimeError(f"fitted limits {limits} still bind after {runs} runs")
