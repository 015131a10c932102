"""An archive of elites (MAP-Elites, Mouret & Clune 2015) kept beside a run: the behaviour space cut into a
grid, and the fittest genome ever seen in each cell."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Elite:
    """The fittest genome seen in one cell: its fitness, its behaviour and its genes (``Genome.to_dict()``)."""

    fitness: float
    behaviour: list[float]
    genome: dict[str, Any]


@dataclass
class EliteArchive:
    """A grid of ``cells`` per behaviour dimension over ``bounds`` (one ``(low, high)`` pair per dimension;
    behaviours outside fall in the border cells), each cell holding its ``Elite``."""

    bounds: list[tuple[float, float]]
    cells: int
    elites: dict[tuple[int, ...], Elite] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.cells < 1:
            raise ValueError(f"an archive of elites needs at least 1 cell per dimension, got {self.cells}")
        for dim, (low, high) in enumerate(self.bounds):
            if not low < high:
                raise ValueError(f"elite_bounds of behaviour dimension {dim}: low {low} must be below high {high}")

    def cell_of(self, behaviours: np.ndarray) -> np.ndarray:
        """Each behaviour's cell, one row of grid coordinates per behaviour."""
        low, high = np.array(self.bounds, dtype=np.float64).T
        scaled = (np.asarray(behaviours, dtype=np.float64) - low) / (high - low) * self.cells
        return np.clip(np.floor(scaled), 0, self.cells - 1).astype(np.int64)

    def update(self, fitness: np.ndarray, behaviours: np.ndarray, ids: np.ndarray, genome_at: Any) -> int:
        """Put a generation into the grid (``genome_at(row)``: that row's genome as plain data, asked only for
        new elites); a cell's elite changes only for a strictly fitter genome (the lowest id among equals).
        Returns the number of cells changed."""
        cells = self.cell_of(behaviours)
        order = np.lexsort((ids, -fitness))  # fittest first, lowest id on a tie
        _, first = np.unique(cells[order], axis=0, return_index=True)
        changed = 0
        for row in order[np.sort(first)].tolist():
            key = tuple(cells[row].tolist())
            held = self.elites.get(key)
            if held is None or fitness[row] > held.fitness:
                self.elites[key] = Elite(float(fitness[row]), behaviours[row].tolist(), genome_at(row))
                changed += 1
        return changed

    def coverage(self) -> float:
        """The fraction of the grid's cells holding an elite."""
        return len(self.elites) / self.cells ** len(self.bounds)

    def to_dict(self) -> dict[str, Any]:
        """Plain data, cells in grid order: the checkpoint's and the export's form."""
        return {"bounds": [list(pair) for pair in self.bounds], "cells": self.cells,
                "elites": [{"cell": list(key), "fitness": e.fitness, "behaviour": e.behaviour, "genome": e.genome}
                           for key, e in sorted(self.elites.items())]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EliteArchive:
        archive = cls([(float(low), float(high)) for low, high in data["bounds"]], int(data["cells"]))
        for item in data["elites"]:
            archive.elites[tuple(int(c) for c in item["cell"])] = Elite(
                float(item["fitness"]), [float(v) for v in item["behaviour"]], item["genome"])
        return archive
