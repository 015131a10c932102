"""The mean distance from each of many points to its k nearest others, exact, with a k-d tree.

The tree halves the points at the median of their widest coordinate, again and again, down to leaves of
``LEAF`` points; each point's neighbours are then searched nearest leaf first, and a half is skipped once the
k-th nearest found is closer than the plane that bounds it. The tree follows the points wherever they crowd
(a population clustered in one corner of the archive's space), and for the low-dimensional behaviours of most
tasks (a position, a few sensor readings) each point looks at a few dozen others instead of all of them. The
points are searched in the tree's order (neighbours one after another share leaves in cache), split among
threads, one per CPU (figures: docs/benchmarks.md, "Novelty: k nearest").
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from neatify.runtime.compiled import compiled

LEAF = 32
"""Most points in a leaf of the tree."""
PER_THREAD = 1024
"""Fewest queries worth a thread of their own (the search runs on up to one thread per CPU)."""


def mean_knn_distance(points: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """For each row index in ``queries``, the mean Euclidean distance from ``points[q]`` to its ``k``
    nearest other rows of ``points`` (all of them when there are fewer than ``k``; 0 when there are none)."""
    points = np.ascontiguousarray(points, dtype=np.float64)
    queries = np.asarray(queries, dtype=np.int64)
    out = np.zeros(len(queries))
    if len(points) < 2 or k < 1 or not len(queries) or points.shape[1] == 0:
        return out
    order, *tree = _build(points, LEAF)
    ordered = np.ascontiguousarray(points[order])  # the points in the tree's order: a leaf's are side by side
    position = np.empty(len(points), dtype=np.int64)
    position[order] = np.arange(len(points))
    by_leaf = np.argsort(position[queries], kind="stable")  # neighbours searched one after another share leaves
    wanted, found = position[queries][by_leaf], np.empty(len(queries))
    parts = np.array_split(np.arange(len(queries)), max(1, min(os.cpu_count() or 1, len(queries) // PER_THREAD)))
    if len(parts) == 1:
        _search(ordered, *tree, wanted, min(k, len(points) - 1), found)
    else:  # the compiled search releases the GIL: threads share the tree and each fill their own slice
        _search.compile_once()  # type: ignore[attr-defined]  # once, here, not in every thread at its first call
        with ThreadPoolExecutor(len(parts)) as pool:
            list(pool.map(lambda rows: _search(ordered, *tree, wanted[rows], min(k, len(points) - 1),
                                               found[rows[0]:rows[-1] + 1]), parts))
    out[by_leaf] = found
    return out


@compiled
def _build(points: np.ndarray, leaf: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                                                   np.ndarray, np.ndarray]:
    """The k-d tree of ``points``: ``order`` (point indices, each node's a contiguous range ``start..end``), and
    per node its split axis (-1: a leaf), the box bounding its points (lowest and highest coordinates) and its
    two children."""
    n, dims = points.shape
    order = np.arange(n)
    most = 2 * (n // leaf + 1) * 2
    start, end = np.zeros(most, np.int64), np.zeros(most, np.int64)
    axis, box = np.full(most, -1, np.int64), np.zeros((most, 2, dims))
    low, high = np.zeros(most, np.int64), np.zeros(most, np.int64)
    start[0], end[0] = 0, n
    nodes, stack = 1, [0]
    while stack:
        node = stack.pop()
        a, b = start[node], end[node]
        widest, spread = 0, -1.0
        for c in range(dims):
            smallest, largest = np.inf, -np.inf
            for s in range(a, b):
                smallest, largest = min(smallest, points[order[s], c]), max(largest, points[order[s], c])
            box[node, 0, c], box[node, 1, c] = smallest, largest
            if largest - smallest > spread:
                widest, spread = c, largest - smallest
        if b - a <= leaf or spread <= 0.0:  # few points, or all equal: a leaf
            continue
        middle = (a + b) // 2
        _select(points[:, widest], order, a, b - 1, middle)
        axis[node] = widest
        low[node], high[node] = nodes, nodes + 1
        start[nodes], end[nodes], start[nodes + 1], end[nodes + 1] = a, middle, middle, b
        stack.append(nodes)
        stack.append(nodes + 1)
        nodes += 2
    return order, start, end, axis, box, low, high


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
def _search(points: np.ndarray, start: np.ndarray, end: np.ndarray, axis: np.ndarray, box: np.ndarray,
            low: np.ndarray, high: np.ndarray, queries: np.ndarray, k: int, out: np.ndarray) -> None:
    """``out[i]``: the mean distance from ``points[queries[i]]`` to its ``k`` nearest other points (``points`` in
    the tree's order), searched through the tree nearer half first, a node skipped when its box lies beyond the
    k-th nearest found."""
    dims = points.shape[1]
    best = np.empty(k)
    nodes = np.empty(128, np.int64)
    for i in range(len(queries)):
        p = queries[i]
        best[:] = np.inf  # none found yet: no node is skipped until k are
        depth = 1
        nodes[0] = 0
        while depth:
            depth -= 1
            node = nodes[depth]
            gap = 0.0
            for c in range(dims):
                outside = max(box[node, 0, c] - points[p, c], points[p, c] - box[node, 1, c], 0.0)
                gap += outside * outside
            if gap >= best[k - 1]:
                continue
            split = axis[node]
            if split >= 0:
                if points[p, split] < box[high[node], 0, split]:
                    nodes[depth], nodes[depth + 1] = high[node], low[node]
                else:
                    nodes[depth], nodes[depth + 1] = low[node], high[node]
                depth += 2
                continue
            for j in range(start[node], end[node]):
                d = 0.0
                for c in range(dims):
                    diff = points[j, c] - points[p, c]
                    d += diff * diff
                if d < best[k - 1] and j != p:
                    for m in range(k - 1, 0, -1):  # insert d, keeping best ascending: min and max, no branches
                        best[m] = max(min(best[m], d), best[m - 1])
                    best[0] = min(best[0], d)
        total = 0.0
        for m in range(k):  # there are k others at least (the caller's k is at most the others' number)
            total += np.sqrt(best[m])
        out[i] = total / k
