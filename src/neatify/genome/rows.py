"""What the ``Genome`` views of one ``GenomeBatch`` share, row by row: the fitness array and which rows'
genes were changed by hand."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np


class RowState:
    """Each row's fitness in one float array (NaN: none yet), as a view's ``fitness`` reads and writes it.

    A value the array cannot hold as it was given (None aside: a NaN, a bool, a string, a tensor) is kept
    in ``other``, for the population to refuse by genome when it checks the generation. ``changed`` holds
    the rows whose genes a fitness function changed by hand: those views own their genes from then on.
    """

    __slots__ = ("fitness", "other", "changed")

    def __init__(self, size: int) -> None:
        self.fitness = np.full(size, np.nan)
        self.other: dict[int, Any] = {}
        self.changed: set[int] = set()

    def get(self, row: int) -> Any:
        """Row ``row``'s fitness: a float, None when unset, or the odd value it was given."""
        value = self.fitness.item(row)
        return value if value == value else self.other.get(row)

    def set(self, row: int, value: Any) -> None:
        """Set row ``row``'s fitness: real numbers go into the array as floats; anything else is kept aside."""
        if type(value) is not float and isinstance(value, numbers.Real) and not isinstance(value, bool):
            value = float(value)
        if type(value) is float and value == value:
            self.fitness[row] = value  # an older odd value of this row stays in ``other``, unread behind it
            return
        self.fitness[row] = np.nan
        if value is None:
            self.other.pop(row, None)
        else:
            self.other[row] = value

    def clear_fitness(self) -> None:
        """Every row without a fitness again."""
        self.fitness.fill(np.nan)
        self.other.clear()
