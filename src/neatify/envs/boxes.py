"""The visual discrimination ("boxes") task of the HyperNEAT paper (Stanley, D'Ambrosio & Gauci 2009), batched.

A visual field of ``resolution`` x ``resolution`` cells over [-1, 1]^2 shows a small box and a large box
(3 times as wide); the network must point at the large box's centre. Its inputs are the field's cells
row by row (value 1 where a box is, 0 elsewhere), its outputs a target field of the same cells; the
output with the highest activation is its guess. At resolution 11 the small box is one cell, placed at
25 positions spread evenly over the field, and for each the large box (3x3) is put 5 cells to the
right, 5 down, and 5 diagonally: 75 trials. A large box past an edge wraps around, and is then moved
the least distance that shows it whole. At resolutions 11 * k (k odd: 33, 55 for the paper's scaling
test) the same scenes are drawn k times finer. A cell's coordinates are its centre's, the field's edges
at -1 and 1, so the fine cell at the centre of a coarse cell sits where that coarse cell does: the
scenes, and a CPPN's pattern over them, keep their place at every resolution.
"""

from __future__ import annotations

import numpy as np
import torch

BASE = 11
"""The resolution the task is defined at (the paper's evolution runs)."""
SMALL_CELLS = (0, 2, 5, 8, 10)
"""Rows and columns of the small box's 25 positions at resolution 11."""
OFFSETS = ((5, 0), (0, 5), (5, 5))
"""(columns right, rows down) from the small box to the large box's centre."""


def scenes() -> list[tuple[int, int, int, int]]:
    """The 75 trials at resolution 11: (small row, small column, large centre row, large centre column)."""
    trials = []
    for row in SMALL_CELLS:
        for col in SMALL_CELLS:
            for right, down in OFFSETS:
                centre_row = min(max((row + down) % BASE, 1), BASE - 2)  # wrapped, then shown whole
                centre_col = min(max((col + right) % BASE, 1), BASE - 2)
                trials.append((row, col, centre_row, centre_col))
    return trials


class Boxes:
    """The boxes task at ``resolution`` (11 * k, k odd), for a population: ``task(module)`` is each genome's
    fitness, ``100 / (1 + the summed squared distance error)`` over the trials (distances in field
    coordinates, where the field spans [-1, 1]), so a network that always finds the centre scores 100."""

    def __init__(self, resolution: int = BASE, device: torch.device | str | None = None,
                 dtype: torch.dtype = torch.float32) -> None:
        scale, rest = divmod(resolution, BASE)
        if rest or scale < 1 or scale % 2 == 0:
            raise ValueError(f"boxes resolution must be 11 times an odd number (11, 33, 55, ...), got {resolution}")
        self.resolution, self.num_inputs, self.num_outputs = resolution, resolution ** 2, resolution ** 2
        self.cell_xy = torch.tensor(cell_centres(resolution), dtype=dtype, device=device)
        """(x, y) of each cell's centre, row by row, as ``neatify.hyperneat.grid_coordinates`` orders them."""
        fields, targets, corners = [], [], []
        for row, col, centre_row, centre_col in scenes():
            field = np.zeros((resolution, resolution), dtype=np.float32)
            field[scale * row:scale * (row + 1), scale * col:scale * (col + 1)] = 1.0
            top, left = scale * (centre_row - 1), scale * (centre_col - 1)
            field[top:top + 3 * scale, left:left + 3 * scale] = 1.0
            fields.append(field.reshape(-1))
            corners.append((top, left))
            targets.append((scale * centre_row + scale // 2) * resolution + scale * centre_col + scale // 2)
        self.fields = torch.tensor(np.stack(fields), dtype=dtype, device=device)
        """``(75, resolution ** 2)``: each trial's visual field."""
        self.targets = torch.tensor(targets, device=device)
        """The cell at the centre of each trial's large box."""
        self.large_corner = torch.tensor(corners, device=device)
        """(row, column) of each trial's large box's first cell; it spans ``3 * resolution // 11`` cells a side."""

    @property
    def coordinates(self) -> tuple[tuple[float, float], ...]:
        """The cells' centres as substrate coordinates (visual and target field alike)."""
        return tuple(map(tuple, self.cell_xy.double().cpu().tolist()))

    def guesses(self, module) -> torch.Tensor:
        """``(genomes, 75)``: the target cell each network chooses, its highest output, per trial."""
        return module(self.fields).argmax(dim=2).to(self.targets.device)

    def distances(self, guesses: torch.Tensor) -> torch.Tensor:
        """How far each guess (``guesses``' cells) is from its trial's large box centre, in field units."""
        return torch.linalg.vector_norm(self.cell_xy[guesses] - self.cell_xy[self.targets], dim=-1)

    def inside(self, guesses: torch.Tensor) -> torch.Tensor:
        """Whether each guess lies on its trial's large box."""
        side = 3 * (self.resolution // BASE)
        offset = torch.stack([torch.div(guesses, self.resolution, rounding_mode="floor"),
                             guesses % self.resolution], dim=-1) - self.large_corner
        return ((offset >= 0) & (offset < side)).all(dim=-1)

    def __call__(self, module) -> np.ndarray:
        """Every genome's fitness (see the class docstring)."""
        return fitness(self.distances(self.guesses(module))).cpu().numpy()


def fitness(distances: torch.Tensor) -> torch.Tensor:
    """The fitness of each row of trial distances: ``100 / (1 + their summed squares)``."""
    return 100.0 / (1.0 + distances.double().square().sum(dim=-1))


def cell_centres(resolution: int) -> np.ndarray:
    """``(resolution ** 2, 2)``: the (x, y) centre of every cell of a field spanning [-1, 1], row by row
    from the lowest y."""
    half = 1.0 / resolution
    axis = np.linspace(-1.0 + half, 1.0 - half, resolution)
    return np.stack(np.meshgrid(axis, axis), axis=-1).reshape(-1, 2)
