"""The mean distance from each of many points to its k nearest others, exact, with a k-d tree.

The tree halves the points at the median of their widest coordinate, again and again, down to leaves of
``LEAF`` points; each point's neighbours are then searched nearest leaf first, and a half is skipped once the
k-th nearest found is closer than the plane that bounds it. The tree follows the points wherever they crowd
(a population clustered in one corner of the archive's space), and for the low-dimensional behaviours of most
tasks (a position, a few sensor readings) each point looks at a few dozen others instead of all of them
(figures: docs/benchmarks.md, "Novelty: k nearest").
"""

from __future__ import annotations

import numpy as np

from neatify.runtime.compiled import compiled

LEAF = 32
"""Most points in a leaf of the tree."""


def mean_knn_distance(points: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """For each row index in ``queries``, the mean Euclidean distance from ``points[q]`` to its ``k``
    nearest other rows of ``points`` (all of them when there are fewer than ``k``; 0 when there are none)."""
    points = np.ascontiguousarray(points, dtype=np.float64)
    queries = np.asarray(queries, dtype=np.int64)
    out = np.zeros(len(queries))
    if len(points) < 2 or k < 1 or not len(queries) or points.shape[1] == 0:
        return out
    tree = _build(points, LEAF)
    rank = np.empty(len(points), dtype=np.int64)
    rank[tree[0]] = np.arange(len(points))
    by_leaf = np.argsort(rank[queries], kind="stable")  # neighbours searched one after another share leaves in cache
    found = np.empty(len(queries))
    _search(points, *tree, queries[by_leaf], min(k, len(points) - 1), found)
    out[by_leaf] = found
    return out


@compiled
def _build(points: np.ndarray, leaf: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                                                   np.ndarray, np.ndarray]:
    """The k-d tree of ``points``: ``order`` (point indices, each node's a contiguous range ``start..end``), and
    per node its split axis (-1: a leaf), split value and two children."""
    n, dims = points.shape
    order = np.arange(n)
    most = 2 * (n // leaf + 1) * 2
    start, end = np.zeros(most, np.int64), np.zeros(most, np.int64)
    axis, split = np.full(most, -1, np.int64), np.zeros(most)
    low, high = np.zeros(most, np.int64), np.zeros(most, np.int64)
    start[0], end[0] = 0, n
    nodes, stack = 1, [0]
    while stack:
        node = stack.pop()
        a, b = start[node], end[node]
        if b - a <= leaf:
            continue
        widest, spread = 0, -1.0
        for c in range(dims):
            smallest, largest = np.inf, -np.inf
            for s in range(a, b):
                smallest, largest = min(smallest, points[order[s], c]), max(largest, points[order[s], c])
            if largest - smallest > spread:
                widest, spread = c, largest - smallest
        if spread <= 0.0:  # all equal: a leaf however many
            continue
        middle = (a + b) // 2
        _select(points[:, widest], order, a, b - 1, middle)
        axis[node], split[node] = widest, points[order[middle], widest]
        low[node], high[node] = nodes, nodes + 1
        start[nodes], end[nodes], start[nodes + 1], end[nodes + 1] = a, middle, middle, b
        stack.append(nodes)
        stack.append(nodes + 1)
        nodes += 2
    return order, start, end, axis, split, low, high


@compiled
def _select(values: np.ndarray, order: np.ndarray, first: int, last: int, nth: int) -> None:
    """Reorder ``order[first:last + 1]`` so that ``order[nth]`` holds the point of that rank by ``values``, the
    smaller-or-equal before it and the larger-or-equal after (Hoare's selection, middle pivots)."""
    while first < last:
        pivot = values[order[(first + last) // 2]]
        i, j = first, last
        while i <= j:
            while values[order[i]] < pivot:
                i += 1
            while values[order[j]] > pivot:
                j -= 1
            if i <= j:
                order[i], order[j] = order[j], order[i]
                i += 1
                j -= 1
        if nth <= j:
            last = j
        elif nth >= i:
            first = i
        else:
            return


@compiled
def _search(points: np.ndarray, order: np.ndarray, start: np.ndarray, end: np.ndarray, axis: np.ndarray,
            split: np.ndarray, low: np.ndarray, high: np.ndarray, queries: np.ndarray, k: int,
            out: np.ndarray) -> None:
    """``out[i]``: the mean distance from ``points[queries[i]]`` to its ``k`` nearest other points, searched
    through the tree nearer half first, a half skipped when its plane lies beyond the k-th nearest found."""
    dims = points.shape[1]
    best = np.empty(k)
    nodes = np.empty(128, np.int64)
    gaps = np.empty(128)
    for i in range(len(queries)):
        p = queries[i]
        found, depth = 0, 1
        nodes[0], gaps[0] = 0, 0.0
        while depth:
            depth -= 1
            node, gap = nodes[depth], gaps[depth]
            if found == k and gap >= best[k - 1]:
                continue
            if axis[node] >= 0:
                offset = points[p, axis[node]] - split[node]
                near, far = (low[node], high[node]) if offset < 0 else (high[node], low[node])
                nodes[depth], gaps[depth] = far, max(gap, offset * offset)
                nodes[depth + 1], gaps[depth + 1] = near, gap
                depth += 2
                continue
            for s in range(start[node], end[node]):
                j = order[s]
                if j == p:
                    continue
                d = 0.0
                for c in range(dims):
                    diff = points[j, c] - points[p, c]
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
        total = 0.0
        for m in range(found):
            total += np.sqrt(best[m])
        out[i] = total / found if found else 0.0
