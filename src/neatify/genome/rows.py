"""What the ``Genome`` views of one ``GenomeBatch`` share, row by row: the fitness array and which rows'
genes were changed by hand."""

from __future__ import annotations

import math
import numbers
from array import array
from typing import Any

import numpy as np


class RowState:
    """Each row's fitness in one float array (NaN: none yet), as a view's ``fitness`` reads and writes it.

    ``fitness`` is a numpy array over the memory of ``values``, a Python ``array`` that a view reads and
    writes a float of without numpy's per-item cost. A value the array cannot hold as it was given (None
    aside: a NaN, a bool, a string, a tensor) is kept in ``other``, for the population to refuse by genome
    when it checks the generation. ``changed`` holds the rows whose genes a fitness function changed by
    hand: those views own their genes from then on. ``behaviours`` holds each row's behaviour as the fitness
    function set it (``Genome.behaviour``), for the population to check and stack when the generation is told;
    ``failed`` the rows whose evaluation failed (``Genome.failed``: given an error fitness, they have no behaviour).
    """

    __slots__ = ("values", "fitness", "other", "changed", "behaviours", "failed")

    def __init__(self, size: int) -> None:
        self.values = array("d", bytes(8 * size))
        self.fitness = np.frombuffer(self.values, dtype=np.float64)
        self.fitness.fill(np.nan)
        self.other: dict[int, Any] = {}
        self.changed: set[int] = set()
        self.behaviours: dict[int, Any] = {}
        self.failed: set[int] = set()

    def clear(self, row: int) -> None:
        """Row ``row`` without a fitness (an odd value kept aside for it dropped too)."""
        self.values[row] = math.nan
        self.other.pop(row, None)

    def set_other(self, row: int, value: Any) -> None:
        """Set row ``row``'s fitness to ``value``, anything but a float that is not NaN or None (a view
        writes or ``clear``s those itself): another real number goes into the array as a float, anything
        else (an int too large for a float too) is kept aside for the fitness check to name."""
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            try:
                as_float = float(value)
            except OverflowError:
                as_float = math.nan
            if as_float == as_float:
                self.values[row] = as_float  # an older odd value of this row stays in ``other``, hidden behind it
                return
        self.values[row] = math.nan
        self.other[row] = value

    def clear_fitness(self) -> None:
        """Every row without a fitness again."""
        self.fitness.fill(np.nan)
        self.other.clear()
        self.behaviours.clear()
        self.failed.clear()
