"""ES-HyperNEAT's settings and the checks on what it is given: parameters, substrate points, CPPN genomes.

Shared by the one-genome reference (``es_reference``) and the batched decoder (``es_batched``), so
both refuse the same bad input with the same message naming it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np

from neatify.activations import ACTIVATIONS
from neatify.genome.genome import Genome

CPPN_INPUTS = 4
"""A CPPN reads (x1, y1, x2, y2): the source point, then the target point."""

MAX_DEPTH_LIMIT = 10
"""``max_depth`` above this is refused: one quadtree could reach 4**max_depth squares."""


@dataclass(frozen=True)
class ESParams:
    """The settings of Risi & Stanley's ES-HyperNEAT (2012), and this library's caps."""

    initial_depth: int = 1
    """Every square is divided at least down to this quadtree level (the root is level 1)."""
    max_depth: int = 3
    """No square is divided below this level: at most 2**max_depth squares a side."""
    division_threshold: float = 0.5
    """A square is divided (between the two depths) when its children's weights vary more than this."""
    variance_threshold: float = 0.03
    """Extraction descends into a square whose leaves' weights vary more than this."""
    band_threshold: float = 0.3
    """A point is expressed when it differs from its neighbours on both sides (up-down or left-right) by more."""
    iteration_level: int = 1
    """Rounds of exploring outward from newly found hidden nodes (0: inputs to hidden to outputs only)."""
    max_weight: float = 5.0
    """Expressed weights are scaled into [-max_weight, max_weight]."""
    weight_threshold: float = 0.2
    """A CPPN output with magnitude at or below this expresses no connection (weight 0)."""
    activation: str = "sigmoid"
    """Activation of every hidden and output node of the phenotype (bias 0)."""
    feed_forward: bool = True
    """Keep only connections going up (source y < target y), so phenotypes never have cycles."""
    max_hidden: int = 256
    """Hidden nodes found past this many are dropped and the phenotype counted as capped."""
    max_connections: int = 4096
    """Connections past this many are dropped and the phenotype counted as capped."""
    cppn_output: int = 0
    """Which CPPN output is the connection weight."""

    def __post_init__(self) -> None:
        """Refuse values out of range, naming the parameter."""
        for field in fields(self):
            value = getattr(self, field.name)
            expected = {"int": int, "float": (int, float), "str": str, "bool": bool}[field.type]
            if not isinstance(value, expected) or (field.type != "bool" and isinstance(value, bool)):
                raise TypeError(f"ESParams.{field.name} must be of type {field.type}, got {value!r}")
        _at_least("initial_depth", self.initial_depth, 0)
        _at_least("max_depth", self.max_depth, 1)
        if self.max_depth > MAX_DEPTH_LIMIT:
            raise ValueError(f"ESParams.max_depth must be at most {MAX_DEPTH_LIMIT}, got {self.max_depth}")
        if self.initial_depth > self.max_depth:
            raise ValueError(f"ESParams.initial_depth ({self.initial_depth}) must not exceed max_depth "
                             f"({self.max_depth})")
        for name in ("division_threshold", "variance_threshold", "band_threshold"):
            _at_least(name, getattr(self, name), 0.0)
        _at_least("iteration_level", self.iteration_level, 0)
        if not (math.isfinite(self.max_weight) and self.max_weight > 0.0):
            raise ValueError(f"ESParams.max_weight must be a positive number, got {self.max_weight!r}")
        if not 0.0 <= self.weight_threshold < 1.0:
            raise ValueError(f"ESParams.weight_threshold must be in [0, 1), got {self.weight_threshold!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"ESParams.activation {self.activation!r} is unknown; known: "
                             f"{', '.join(sorted(ACTIVATIONS))}")
        _at_least("max_hidden", self.max_hidden, 0)
        _at_least("max_connections", self.max_connections, 0)
        _at_least("cppn_output", self.cppn_output, 0)


def _at_least(name: str, value: float, low: float) -> None:
    """ValueError naming ``ESParams.name`` unless ``value`` is a finite number >= ``low``."""
    if not (math.isfinite(value) and value >= low):
        raise ValueError(f"ESParams.{name} must be at least {low}, got {value!r}")


def expressed(raw: np.ndarray | float, params: ESParams) -> np.ndarray:
    """Connection weights from raw CPPN outputs: 0 at or below the threshold in magnitude, else the excess
    rescaled to (0, 1] and times ``max_weight``, sign kept."""
    raw = np.asarray(raw, dtype=np.float64)
    threshold = params.weight_threshold
    scaled = np.sign(raw) * (np.abs(raw) - threshold) / (1.0 - threshold) * params.max_weight
    return np.where(np.abs(raw) > threshold, scaled, 0.0)


def substrate_points(inputs: Sequence[Sequence[float]], outputs: Sequence[Sequence[float]]
                     ) -> tuple[np.ndarray, np.ndarray]:
    """The input and output points as ``(n, 2)`` float arrays; ValueError naming the first point that is not
    a finite 2D point in the square [-1, 1] x [-1, 1], or that repeats another."""
    arrays = []
    for name, points in (("inputs", inputs), ("outputs", outputs)):
        rows = list(points)
        if not rows:
            raise ValueError(f"ES-HyperNEAT needs at least one point in {name}")
        for i, point in enumerate(rows):
            if len(point) != 2 or not all(isinstance(v, (int, float, np.floating, np.integer)) for v in point):
                raise ValueError(f"{name}[{i}] must be an (x, y) pair of numbers, got {point!r}")
            if not all(math.isfinite(v) and -1.0 <= v <= 1.0 for v in point):
                raise ValueError(f"{name}[{i}] = {tuple(point)!r} lies outside the square [-1, 1] x [-1, 1]")
        arrays.append(np.array(rows, dtype=np.float64).reshape(len(rows), 2))
    seen: dict[tuple[float, float], str] = {}
    for name, array in zip(("inputs", "outputs"), arrays):
        for i, point in enumerate(map(tuple, array.tolist())):
            if point in seen:
                raise ValueError(f"{name}[{i}] = {point!r} repeats {seen[point]}: substrate points must be distinct")
            seen[point] = f"{name}[{i}]"
    return arrays[0], arrays[1]


def check_cppn(genome: Genome, params: ESParams) -> None:
    """ValueError naming ``genome`` unless it has the CPPN's 4 inputs and the weight output."""
    if genome.num_inputs != CPPN_INPUTS:
        raise ValueError(f"CPPN genome {genome.id} has {genome.num_inputs} inputs; ES-HyperNEAT queries "
                         f"{CPPN_INPUTS} (x1, y1, x2, y2)")
    if genome.num_outputs <= params.cppn_output:
        raise ValueError(f"CPPN genome {genome.id} has {genome.num_outputs} outputs; ESParams.cppn_output "
                         f"is {params.cppn_output}")
