"""Many ES-HyperNEAT quadtrees at once, level by level in numpy (the batched DivisionAndInitialization
and PruneAndExtract of ``es_reference``).

A "tree" is one fixed point of one genome: its squares hold the expressed weights from that point
(``outgoing``) or into it. All trees grow together: each level is one batch of CPPN queries, its
division decisions a mask. Extraction then reads every square's leaf variance from the finished
trees and checks the band of all candidate squares in one more batch of queries.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from neatify.hyperneat.es_params import ESParams, expressed

Query = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
"""(genome of each query, source points (n, 2), target points (n, 2)) -> raw CPPN weight outputs (n,)."""

_DX = np.array([-1.0, -1.0, 1.0, 1.0])
_DY = np.array([-1.0, 1.0, 1.0, -1.0])
"""Offsets of a square's four children, in units of the children's half-width."""

_STEPS = np.array([[-1.0, 0.0], [1.0, 0.0], [0.0, -1.0], [0.0, 1.0]])
"""A square's neighbours of its own size: left, right, below, above (in units of its width)."""

_SIBLING = np.array([[-1, 3, -1, 1], [-1, 2, 0, -1], [1, -1, 3, -1], [0, -1, -1, 2]])
"""For child j of a square (offsets ``_DX[j], _DY[j]``), which child is its left, right, lower and upper
neighbour (-1: a neighbour outside the parent). Neighbours the tree holds (siblings always, cousins when
their parent is divided) are read from it, not queried: the CPPN would give the same value again."""

_FACING = np.array([[3, 0, 1, 0], [2, 0, 0, 0], [0, 1, 0, 3], [0, 0, 2, 0]])
"""For child j and a direction where its neighbour is not a sibling, which child of the parent's neighbour
square (in that direction) it is: the one facing j across the border (entries under a sibling unused)."""


@dataclass(frozen=True)
class Trees:
    """The fixed point of each tree, the genome it belongs to, and the direction of its connections."""

    genome: np.ndarray
    fixed: np.ndarray
    """(n, 2) points."""
    outgoing: bool


@dataclass
class Level:
    """The squares of one quadtree level of every tree (children of a square are 4 consecutive entries)."""

    tree: np.ndarray
    x: np.ndarray
    y: np.ndarray
    weight: np.ndarray
    parent: np.ndarray
    """Entry of each square's parent in the level above."""


@dataclass(frozen=True)
class Found:
    """Expressed connections: genome, tree they came from, source and target points (n, 2), weight."""

    genome: np.ndarray
    tree: np.ndarray
    src: np.ndarray
    dst: np.ndarray
    weight: np.ndarray


def explore(query: Query, trees: Trees, params: ESParams) -> Found:
    """The connections every tree expresses: grow the quadtrees, then prune and extract."""
    if not len(trees.genome):
        empty = np.zeros(0, dtype=np.int64)
        return Found(empty, empty, np.zeros((0, 2)), np.zeros((0, 2)), np.zeros(0))
    levels = grow(query, trees, params)
    tree, x, y, weight, step, near = _candidates(levels, params)
    points = np.stack([x, y], axis=1)
    around = points[:, None, :] + step[:, None, None] * _STEPS
    unknown = np.isnan(near)
    near[unknown] = _weights(query, trees, np.repeat(tree, 4)[unknown.ravel()], around[unknown], params)
    differ = np.abs(weight[:, None] - near)
    band = np.maximum(np.minimum(differ[:, 2], differ[:, 3]), np.minimum(differ[:, 0], differ[:, 1]))
    fixed = trees.fixed[tree]
    src, dst = (fixed, points) if trees.outgoing else (points, fixed)
    keep = (band > params.band_threshold) & (weight != 0.0) & (src != dst).any(axis=1)
    if params.feed_forward:
        keep &= src[:, 1] < dst[:, 1]
    return Found(trees.genome[tree[keep]], tree[keep], src[keep], dst[keep], weight[keep])


def grow(query: Query, trees: Trees, params: ESParams) -> list[Level]:
    """DivisionAndInitialization for every tree at once, one level (one batch of queries) at a time."""
    n = len(trees.genome)
    levels = [Level(np.arange(n), np.zeros(n), np.zeros(n), np.zeros(n), np.full(n, -1))]
    dividing, half = np.arange(n), 1.0
    while len(dividing):
        last, half = levels[-1], half / 2.0
        parent = np.repeat(dividing, 4)
        x = last.x[parent] + np.tile(_DX, len(dividing)) * half
        y = last.y[parent] + np.tile(_DY, len(dividing)) * half
        tree = last.tree[parent]
        weight = _weights(query, trees, tree, np.stack([x, y], axis=1), params)
        variance = weight.reshape(-1, 4).var(axis=1)
        level = len(levels)  # the paper's level of the squares just divided (the root is 1)
        divide = (level < params.initial_depth) | ((level < params.max_depth)
                                                    & (variance > params.division_threshold))
        levels.append(Level(tree, x, y, weight, parent))
        dividing = np.flatnonzero(np.repeat(divide, 4))
    return levels


def _weights(query: Query, trees: Trees, tree: np.ndarray, points: np.ndarray, params: ESParams) -> np.ndarray:
    """Expressed weights between each tree's fixed point and ``points``, in the tree's direction."""
    fixed = trees.fixed[tree]
    src, dst = (fixed, points) if trees.outgoing else (points, fixed)
    return expressed(query(trees.genome[tree], src, dst), params)


def leaf_variances(levels: list[Level]) -> list[np.ndarray]:
    """The variance of the leaf weights below each square of each level (0 for a leaf), from the mean of
    each square's leaves and then their squared deviations from it."""
    leaves = [np.setdiff1d(np.arange(len(level.x)), below.parent, assume_unique=True)
              for level, below in zip(levels, levels[1:] + [Level(*[np.zeros(0, np.int64)] * 5)])]
    count = [np.zeros(len(level.x)) for level in levels]
    total = [np.zeros(len(level.x)) for level in levels]
    for depth, leaf in enumerate(leaves):
        for ancestor, at in _ancestors(levels, depth, leaf):
            count[at] += np.bincount(ancestor, minlength=len(count[at]))
            total[at] += np.bincount(ancestor, levels[depth].weight[leaf], minlength=len(total[at]))
    mean = [t / np.maximum(c, 1.0) for t, c in zip(total, count)]
    spread = [np.zeros(len(level.x)) for level in levels]
    for depth, leaf in enumerate(leaves):
        weight = levels[depth].weight[leaf]
        for ancestor, at in _ancestors(levels, depth, leaf):
            spread[at] += np.bincount(ancestor, (weight - mean[at][ancestor]) ** 2, minlength=len(spread[at]))
    return [s / np.maximum(c, 1.0) for s, c in zip(spread, count)]


def _ancestors(levels: list[Level], depth: int, entries: np.ndarray):
    """(entry of each of ``entries``' ancestor, level) for the squares themselves and each level above, up
    to the root's children."""
    for at in range(depth, 0, -1):
        yield entries, at
        entries = levels[at].parent[entries]


def _candidates(levels: list[Level], params: ESParams) -> tuple[np.ndarray, ...]:
    """PruneAndExtract's walk: the squares it checks for a band (tree, x, y, weight, neighbour step, the
    neighbours' weights where the tree holds them, NaN elsewhere), top down: a root's children are
    examined; a square of leaf variance above the threshold is descended into, any other examined square
    is a candidate."""
    variance = leaf_variances(levels)
    descended = np.ones(len(levels[0].x), dtype=bool)
    neighbours = np.full((len(levels[0].x), 4), -1)
    parts = []
    for depth in range(1, len(levels)):
        level = levels[depth]
        neighbours = _neighbours(level.parent, neighbours, _first_children(level.parent, len(levels[depth - 1].x)))
        examined = descended[level.parent]
        descended = examined & (variance[depth] > params.variance_threshold)
        chosen = np.flatnonzero(examined & ~descended)
        step = np.full(len(chosen), 2.0 ** (1 - depth))  # the parent's half-width: one square over
        known = neighbours[chosen]
        near = np.where(known >= 0, level.weight[known], np.nan)
        parts.append((level.tree[chosen], level.x[chosen], level.y[chosen], level.weight[chosen], step, near))
    return tuple(np.concatenate(column) for column in zip(*parts))


def _first_children(parent: np.ndarray, above: int) -> np.ndarray:
    """Entry of the first child of each of the ``above`` squares of the level above, -1 for a leaf."""
    first = np.full(above, -1)
    first[parent[::4]] = np.arange(0, len(parent), 4)
    return first


def _neighbours(parent: np.ndarray, parents_neighbours: np.ndarray, parents_first_child: np.ndarray) -> np.ndarray:
    """Each square's same-size neighbour (left, right, below, above) as an entry of its level, -1 where the
    tree has none: a sibling, or the facing child of the parent's neighbour when that one is divided."""
    entry = np.arange(len(parent))
    child = entry % 4
    sibling = _SIBLING[child]
    across = parents_neighbours[parent]
    across_first = np.where(across >= 0, parents_first_child[across.clip(min=0)], -1)
    cousin = np.where(across_first >= 0, across_first + _FACING[child], -1)
    return np.where(sibling >= 0, (entry - child)[:, None] + sibling, cousin)
