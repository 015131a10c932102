"""The mean distance from each of many points to its k nearest others, exact, over a grid.

The points are binned into a grid of square cells over the two axes where they spread most (about two
points a cell); each point's neighbours are searched ring of cells by ring of cells outward from its own,
and the search stops once the k-th nearest found is closer than any point of the next ring can be (the
distance over those two axes bounds the whole distance from below). For the low-dimensional behaviours of
most tasks (a position, a few sensor readings) each point looks at a few dozen others instead of all
(figures: docs/benchmarks.md, "Novelty: k nearest").
"""

from __future__ import annotations

import numpy as np

from neatify.runtime.compiled import compiled

PER_CELL = 2.0
"""Points per grid cell on average."""


def mean_knn_distance(points: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """For each row index in ``queries``, the mean Euclidean distance from ``points[q]`` to its ``k``
    nearest other rows of ``points`` (all of them when there are fewer than ``k``; 0 when there are none)."""
    points = np.ascontiguousarray(points, dtype=np.float64)
    queries = np.asarray(queries, dtype=np.int64)
    out = np.zeros(len(queries))
    if len(points) < 2 or k < 1 or not len(queries):
        return out
    plane = _plane(points)
    low, span = plane.min(axis=0), np.ptp(plane, axis=0)
    side = max(float(np.sqrt(span[0] * max(span[1], span[0] / len(points)) * PER_CELL / len(points))), 1e-300)
    shape = np.minimum(np.floor(span / side).astype(np.int64) + 1, len(points))
    cell = np.minimum(((plane - low) / side).astype(np.int64), shape - 1)
    flat = cell[:, 0] * shape[1] + cell[:, 1]
    order = np.argsort(flat, kind="stable")
    start = np.searchsorted(flat[order], np.arange(shape[0] * shape[1] + 1))
    _search(points, order, start, cell, shape[0], shape[1], side, queries, min(k, len(points) - 1), out)
    return out


def _plane(points: np.ndarray) -> np.ndarray:
    """The points' coordinates along their two widest axes (a zero column for one-dimensional points)."""
    if points.shape[1] == 0:
        return np.zeros((len(points), 2))
    widest = np.argsort(-np.ptp(points, axis=0), kind="stable")[:2]
    plane = points[:, widest]
    return plane if plane.shape[1] == 2 else np.column_stack([plane, np.zeros(len(points))])


@compiled
def _search(points: np.ndarray, order: np.ndarray, start: np.ndarray, cell: np.ndarray, rows: int, cols: int,
            side: float, queries: np.ndarray, k: int, out: np.ndarray) -> None:
    """``out[i]``: the mean distance from ``points[queries[i]]`` to its ``k`` nearest other points, searched
    ring by ring over the grid (``order[start[c]:start[c + 1]]``: the points of flat cell ``c``)."""
    dims = points.shape[1]
    best = np.empty(k)
    for i in range(len(queries)):
        p = queries[i]
        cx, cy = cell[p, 0], cell[p, 1]
        found = 0
        ring = 0
        while True:
            for x in range(max(cx - ring, 0), min(cx + ring, rows - 1) + 1):
                step = 1 if abs(x - cx) == ring else 2 * ring  # inside the ring only its two ends
                for y in range(cy - ring, cy + ring + 1, max(step, 1)):
                    if y < 0 or y >= cols:
                        continue
                    c = x * cols + y
                    for s in range(start[c], start[c + 1]):
                        j = order[s]
                        if j == p:
                            continue
                        d = 0.0
                        for a in range(dims):
                            diff = points[j, a] - points[p, a]
                            d += diff * diff
                        if found < k:
                            found += 1
                        elif d >= best[k - 1]:
                            continue
                        m = found - 1  # insert d, keeping best[:found] ascending
                        while m > 0 and best[m - 1] > d:
                            best[m] = best[m - 1]
                            m -= 1
                        best[m] = d
            reach = ring * side  # no point beyond this ring is closer than this
            if (found == k and best[k - 1] <= reach * reach) or (ring >= max(cx, rows - 1 - cx)
                                                                 and ring >= max(cy, cols - 1 - cy)):
                break
            ring += 1
        total = 0.0
        for m in range(found):
            total += np.sqrt(best[m])
        out[i] = total / found if found else 0.0
