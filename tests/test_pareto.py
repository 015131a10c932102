"""NSGA-II ranking: the compiled front search against a plain O(n^2) peeling of non-dominated sets, crowding
distance by hand, and the score that folds both into one number."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra.numpy import arrays

from neatify.objectives import crowding_distances, pareto_ranks, pareto_scores


def reference_ranks(values: np.ndarray) -> list[int]:
    """Front by front: the rows no remaining row dominates."""
    def dominates(a: int, b: int) -> bool:
        return bool((values[a] >= values[b]).all() and (values[a] > values[b]).any())

    ranks, left, rank = [-1] * len(values), set(range(len(values))), 0
    while left:
        front = [i for i in left if not any(dominates(j, i) for j in left)]
        for i in front:
            ranks[i] = rank
        left -= set(front)
        rank += 1
    return ranks


@st.composite
def objective_tables(draw: st.DrawFn) -> np.ndarray:
    """Up to 40 rows of 1 to 4 objectives, small integers so that ties and equal rows are common."""
    shape = (draw(st.integers(0, 40)), draw(st.integers(1, 4)))
    return draw(arrays(np.float64, shape, elements=st.integers(-3, 3).map(float)))


@given(objective_tables())
def test_fronts_equal_the_plain_peeling(values):
    assert pareto_ranks(values).tolist() == reference_ranks(values)


@given(objective_tables())
def test_scores_order_fronts_first_then_crowding(values):
    ranks, crowding, scores = pareto_ranks(values), crowding_distances(values, pareto_ranks(values)), pareto_scores(values)
    for a in range(len(values)):
        for b in range(len(values)):
            if ranks[a] < ranks[b] or (ranks[a] == ranks[b] and crowding[a] > crowding[b] + 1e-9):
                assert scores[a] > scores[b]
            elif ranks[a] == ranks[b] and crowding[a] >= crowding[b]:  # equal but for rounding
                assert scores[a] >= scores[b] - 1e-12


def test_crowding_distance_by_hand():
    values = np.array([[0.0, 4.0], [1.0, 3.0], [3.0, 1.0], [4.0, 0.0], [0.0, 0.0]])
    ranks = pareto_ranks(values)
    assert ranks.tolist() == [0, 0, 0, 0, 1]
    crowding = crowding_distances(values, ranks)
    assert crowding[[0, 3, 4]].tolist() == [np.inf] * 3
    assert crowding[1] == pytest.approx(3 / 4 + 3 / 4) and crowding[2] == pytest.approx(3 / 4 + 3 / 4)


def test_ranks_refuse_non_finite_objectives():
    with pytest.raises(ValueError, match="finite 2-D"):
        pareto_ranks(np.array([[0.0, np.inf]]))
