"""Where a HyperNEAT network's nodes sit: input, hidden and output coordinates in 2D or 3D.

Node ids follow ``GenomeBatch``'s convention, so a substrate network is an ordinary genome: the
inputs are 0 .. n_in - 1 in the order of ``inputs``, the outputs n_in .. n_in + n_out - 1 in the order
of ``outputs``, then the hidden layers' nodes in order. Connections run layer to layer: inputs to the
first hidden layer, ..., the last hidden layer to the outputs (inputs straight to outputs when there
is no hidden layer).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

Coordinates = tuple[tuple[float, ...], ...]


def grid_coordinates(rows: int, cols: int, z: float | None = None, x_range: tuple[float, float] = (-1.0, 1.0),
                     y_range: tuple[float, float] = (-1.0, 1.0)) -> Coordinates:
    """``rows`` x ``cols`` points evenly spread over the ranges (inclusive), row by row from the lowest y;
    a single row or column sits at the range's middle. With ``z``, 3D points at that depth."""
    if rows < 1 or cols < 1:
        raise ValueError(f"a grid needs at least one row and one column, got {rows} x {cols}")
    xs, ys = (_spread(n, low, high) for n, (low, high) in ((cols, x_range), (rows, y_range)))
    return tuple((x, y) if z is None else (x, y, z) for y in ys for x in xs)


def _spread(n: int, low: float, high: float) -> list[float]:
    """``n`` evenly spaced values from ``low`` to ``high``; one value is their middle."""
    return [(low + high) / 2.0] if n == 1 else np.linspace(low, high, n).tolist()


@dataclass(frozen=True)
class Substrate:
    """Node coordinates of a HyperNEAT network (see the module docstring for ids and connections)."""

    inputs: Coordinates
    outputs: Coordinates
    hidden: tuple[Coordinates, ...] = ()
    """Hidden layers, each a tuple of coordinates (``Substrate(..., hidden=[[...]])`` takes lists)."""

    def __post_init__(self) -> None:
        """Store tuples of floats; refuse empty layers, mixed dimensions and a coordinate twice in one layer, by
        name (layers may share coordinates: the paper's visual and target fields lie on the same grid)."""
        object.__setattr__(self, "inputs", _points("inputs", self.inputs))
        object.__setattr__(self, "outputs", _points("outputs", self.outputs))
        hidden = self.hidden
        if hidden and len(hidden[0]) and not isinstance(hidden[0][0], (list, tuple)):
            hidden = (hidden,)  # a plain list of points: one layer
        object.__setattr__(self, "hidden", tuple(_points(f"hidden[{k}]", layer) for k, layer in enumerate(hidden)))
        dims = {len(p) for layer in self.layers() for p in layer}
        if len(dims) != 1 or dims.pop() not in (2, 3):
            raise ValueError(f"substrate coordinates must all be 2D or all 3D, got dimensions "
                             f"{sorted({len(p) for layer in self.layers() for p in layer})}")
        for name, layer in zip(self.layer_names(), self.layers()):
            if len(set(layer)) != len(layer):
                point = next(p for p in layer if layer.count(p) > 1)
                raise ValueError(f"duplicate substrate coordinate {point} in {name}: the CPPN could not tell "
                                 f"its nodes apart")

    @classmethod
    def grid(cls, input_shape: tuple[int, int], output_shape: tuple[int, int],
             hidden_shapes: Sequence[tuple[int, int]] = ()) -> Substrate:
        """A layered 3D grid substrate: inputs at z=-1, outputs at z=1, hidden layers evenly between, each
        a (rows, cols) grid over [-1, 1]^2."""
        depth = _spread(len(hidden_shapes) + 2, -1.0, 1.0)
        return cls(grid_coordinates(*input_shape, z=depth[0]), grid_coordinates(*output_shape, z=depth[-1]),
                   tuple(grid_coordinates(*shape, z=z) for shape, z in zip(hidden_shapes, depth[1:-1])))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Substrate:
        """A substrate from a run file's table: ``inputs``, ``outputs`` and optional ``hidden`` lists of
        coordinates, or ``grid = {inputs = [r, c], outputs = [r, c], hidden = [[r, c], ...]}``."""
        if not isinstance(data, dict):
            raise ValueError(f"a substrate table must be a mapping, got {type(data).__name__}")
        known = {"inputs", "outputs", "hidden"} if "grid" not in data else {"grid"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown substrate key(s) {', '.join(unknown)}; expected {', '.join(sorted(known))}")
        if "grid" in data:
            grid = data["grid"]
            if not isinstance(grid, dict) or not {"inputs", "outputs"} <= set(grid) or set(grid) - {"inputs", "outputs",
                                                                                                  "hidden"}:
                raise ValueError(f"a substrate grid table needs inputs = [rows, cols], outputs = [rows, cols] and may "
                                 f"have hidden = [[rows, cols], ...]; got {grid!r}")
            return cls.grid(tuple(grid["inputs"]), tuple(grid["outputs"]), [tuple(s) for s in grid.get("hidden", [])])
        missing = [key for key in ("inputs", "outputs") if key not in data]
        if missing:
            raise ValueError(f"a substrate table needs {' and '.join(missing)}")
        return cls(data["inputs"], data["outputs"], data.get("hidden", ()))

    def to_dict(self) -> dict[str, Any]:
        """Plain lists, as ``from_dict`` reads them (JSON and TOML)."""
        return {"inputs": [list(p) for p in self.inputs], "outputs": [list(p) for p in self.outputs],
                "hidden": [[list(p) for p in layer] for layer in self.hidden]}

    @property
    def dimensions(self) -> int:
        """2 or 3."""
        return len(self.inputs[0])

    @property
    def num_hidden(self) -> int:
        return sum(len(layer) for layer in self.hidden)

    def layers(self) -> list[Coordinates]:
        """Inputs, hidden layers, outputs: the order connections run in."""
        return [self.inputs, *self.hidden, self.outputs]

    def layer_names(self) -> list[str]:
        return ["inputs", *(f"hidden[{k}]" for k in range(len(self.hidden))), "outputs"]

    def layer_ids(self) -> list[np.ndarray]:
        """Node ids of each of ``layers()`` (see the module docstring)."""
        n_in, n_out = len(self.inputs), len(self.outputs)
        first_hidden = np.cumsum([n_in + n_out] + [len(layer) for layer in self.hidden])
        hidden = [np.arange(start, start + len(layer)) for start, layer in zip(first_hidden, self.hidden)]
        return [np.arange(n_in), *hidden, np.arange(n_in, n_in + n_out)]

    def check_task(self, num_inputs: int, num_outputs: int, task: str = "the task") -> None:
        """ValueError naming the mismatch when this substrate's inputs or outputs are not ``task``'s."""
        for kind, ours, theirs in (("input", len(self.inputs), num_inputs), ("output", len(self.outputs), num_outputs)):
            if ours != theirs:
                raise ValueError(f"the substrate has {ours} {kind} coordinates but {task} has {theirs} {kind}s")


def _points(name: str, points: Any) -> Coordinates:
    """``points`` as a non-empty tuple of float tuples; ValueError naming the layer otherwise."""
    try:
        result = tuple(tuple(float(v) for v in p) for p in points)
    except (TypeError, ValueError):
        raise ValueError(f"substrate {name} must be a list of coordinate lists, got {points!r}") from None
    if not result:
        raise ValueError(f"substrate {name} has no coordinates")
    if not all(np.isfinite(p).all() for p in result):
        raise ValueError(f"substrate {name} has a coordinate that is not finite")
    return result
