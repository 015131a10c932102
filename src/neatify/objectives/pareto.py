"""NSGA-II's ranking of solutions on several objectives (Deb et al. 2002): non-dominated fronts and
crowding distance, every objective maximised, and the two folded into one selection score."""

from __future__ import annotations

import numpy as np

from neatify.runtime.compiled import compiled


def pareto_ranks(objectives: np.ndarray) -> np.ndarray:
    """Each row's front (0: dominated by none; 1: only by front 0; ...) for ``objectives`` (rows:
    solutions, columns: objectives, all maximised): one more than the highest front of its dominators."""
    values = np.asarray(objectives, dtype=np.float64)
    if values.ndim != 2 or not np.isfinite(values).all():
        raise ValueError(f"objectives must be a finite 2-D array (one row per solution), got shape {values.shape}")
    if values.shape[1] == 1:
        values = np.column_stack([values, np.zeros(len(values))])
    order = np.lexsort(-values.T[::-1]) if values.shape[1] else np.arange(len(values))
    ordered = np.ascontiguousarray(values[order])
    ranks = np.empty(len(values), dtype=np.int64)
    ranks[order] = _two_ranks(ordered) if values.shape[1] == 2 else _chain_ranks(ordered)
    return ranks


@compiled
def _two_ranks(values: np.ndarray) -> np.ndarray:
    """Fronts of two objectives sorted best first lexicographically, in n log n: a front's last member so far
    has its largest second objective, so whether a front dominates a row is one comparison, and it does for
    every front below the row's own (Jensen 2003), so the row's front is found by bisection."""
    n = len(values)
    ranks = np.zeros(n, dtype=np.int64)
    last = np.empty(n, dtype=np.int64)
    fronts = 0
    for i in range(n):
        lo, hi = 0, fronts
        while lo < hi:
            mid = (lo + hi) // 2
            j = last[mid]
            if values[j, 1] > values[i, 1] or (values[j, 1] == values[i, 1] and values[j, 0] > values[i, 0]):
                lo = mid + 1
            else:
                hi = mid
        ranks[i] = lo
        last[lo] = i
        fronts = max(fronts, lo + 1)
    return ranks


@compiled
def _chain_ranks(values: np.ndarray) -> np.ndarray:
    """Fronts of ``values`` sorted best first lexicographically, so that a row's dominators all come before it."""
    n, m = values.shape
    ranks = np.zeros(n, dtype=np.int64)
    for i in range(n):
        for j in range(i):
            if ranks[j] + 1 <= ranks[i]:
                continue
            better = False
            dominates = True
            for c in range(m):
                if values[j, c] < values[i, c]:
                    dominates = False
                    break
                if values[j, c] > values[i, c]:
                    better = True
            if dominates and better:
                ranks[i] = ranks[j] + 1
    return ranks


def crowding_distances(objectives: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    """Each row's crowding distance within its front: per objective, the gap between its two neighbours
    in the front sorted on that objective, over the front's range, summed; a front's ends get infinity."""
    values = np.asarray(objectives, dtype=np.float64)
    distance = np.zeros(len(values))
    for rank in np.unique(ranks).tolist():
        front = np.flatnonzero(ranks == rank)
        for column in values[front].T:
            order = np.argsort(column, kind="stable")
            ordered, members = column[order], front[order]
            span = ordered[-1] - ordered[0]
            distance[members[[0, -1]]] = np.inf
            if len(front) > 2 and span > 0:
                distance[members[1:-1]] += (ordered[2:] - ordered[:-2]) / span
    return distance


def pareto_scores(objectives: np.ndarray) -> np.ndarray:
    """One number per row that orders rows as NSGA-II's crowded comparison does: ``fronts - 1 - rank`` plus
    ``0.5 * c / (1 + c)`` for crowding distance ``c`` (0.5 at the front's ends), so every row of a better
    front scores higher than every row of a worse one, and within a front the less crowded score higher."""
    ranks = pareto_ranks(objectives)
    if not len(ranks):
        return np.zeros(0)
    crowding = crowding_distances(objectives, ranks)
    spread = 0.5 * np.where(np.isinf(crowding), 1.0, crowding / (1.0 + np.where(np.isinf(crowding), 0.0, crowding)))
    return (ranks.max() - ranks).astype(np.float64) + spread
