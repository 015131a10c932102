"""Many ES-HyperNEAT quadtrees in compiled loops (the DivisionAndInitialization and PruneAndExtract of
``es_reference``), with the CPPN queries run inside them.

A "tree" is one fixed point of one genome: its squares hold the expressed weights from that point
(``outgoing``) or into it. Consecutive trees of one genome grow together as a group: each level of
all of them is one batch of queries to that genome's CPPN (``es_cppn.CPPNProgram``, evaluated
here over a batch of points at a time: nothing padded, no other genome's nodes). A tree's squares
are kept breadth first (a square's 4 children consecutive), so one pass in index order finds every
square's same-size neighbours and another walks PruneAndExtract top down.

Queries the result cannot depend on are skipped: a candidate of weight 0, or one that the
feed-forward rule or ``src == dst`` drops, is not checked for a band; a neighbour is queried only
while its pair (left-right, then below-above) can still express the candidate; and neighbours the
tree holds (siblings always, cousins when their parent is divided) are read from it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from neatify.hyperneat.es_params import ESParams
from neatify.runtime.compiled import compiled

if TYPE_CHECKING:
    from neatify.hyperneat.es_cppn import CPPNProgram

Program = tuple[np.ndarray, ...]
"""``CPPNProgram.arrays()``, as the compiled loops take it."""
Group = tuple[int, int, int, int, bool]
"""Trees growing together: (genome, first tree, count, squares per tree, outgoing)."""
Work = tuple[np.ndarray, ...]
"""Scratch of the compiled loops: query points, node values, raw outputs, neighbour weights, slots,
query count."""

ACTIVATION_CODES = {name: code for code, name in enumerate(
    ("sigmoid", "neat_sigmoid", "tanh", "relu", "identity", "sin", "gauss", "abs", "clamped", "cos", "step",
     "square"))}
"""The activations the compiled CPPN evaluator knows (``_activate``), as in ``neatify.activations``."""

_DX = np.array([-1.0, -1.0, 1.0, 1.0])
_DY = np.array([-1.0, 1.0, 1.0, -1.0])
"""Offsets of a square's four children, in units of the children's half-width."""

_STEPS = np.array([[-1.0, 0.0], [1.0, 0.0], [0.0, -1.0], [0.0, 1.0]])
"""A square's neighbours of its own size: left, right, below, above (in units of its width)."""

_SIBLING = np.array([[-1, 3, -1, 1], [-1, 2, 0, -1], [1, -1, 3, -1], [0, -1, -1, 2]])
"""For child j of a square (offsets ``_DX[j], _DY[j]``), which child is its left, right, lower and upper
neighbour (-1: a neighbour outside the parent)."""

_FACING = np.array([[3, 0, 1, 0], [2, 0, 0, 0], [0, 1, 0, 3], [0, 0, 2, 0]])
"""For child j and a direction where its neighbour is not a sibling, which child of the parent's neighbour
square (in that direction) it is: the one facing j across the border (entries under a sibling unused)."""

BATCH = 64
"""Query points a CPPN evaluates together (the columns of its node values)."""
GROUP_SQUARES = 1 << 16
"""Trees of one genome grow together, as many as fit this many squares (at least one): their levels'
queries go to the CPPN in one batch."""

PARENT, FIRST, LEVEL, DIVIDE, DESCEND = range(5)
"""Columns of a tree's integer square table (``FIRST``: entry of the first child, -1 for a leaf)."""
X, Y, HALF, WEIGHT = range(4)
"""Columns of a tree's float square table (``HALF``: half the square's side)."""


@dataclass(frozen=True)
class Trees:
    """The fixed point of each tree, the genome it belongs to, and the direction of its connections."""

    genome: np.ndarray
    fixed: np.ndarray
    """(n, 2) points."""
    outgoing: bool


@dataclass(frozen=True)
class Found:
    """Expressed connections: genome, tree they came from, source and target points (n, 2), weight."""

    genome: np.ndarray
    tree: np.ndarray
    src: np.ndarray
    dst: np.ndarray
    weight: np.ndarray


def explore(program: CPPNProgram, trees: Trees, params: ESParams) -> tuple[Found, int]:
    """The connections every tree expresses, and how many CPPN queries that took."""
    settings = np.array([params.initial_depth, params.max_depth, params.division_threshold,
                         params.variance_threshold, params.band_threshold, params.weight_threshold,
                         params.max_weight, params.feed_forward], dtype=np.float64)
    squares = (4 ** (params.max_depth + 1) - 1) // 3
    widest = int(np.diff(program.node_start).max(initial=0))
    fixed = np.ascontiguousarray(trees.fixed, np.float64)
    tree, found, queries = _explore(program.arrays(), trees.genome.astype(np.int64), fixed, trees.outgoing, settings,
                                    squares, max(1, GROUP_SQUARES // squares), widest)
    points, ends = found[:, :2], fixed[tree]
    src, dst = (ends, points) if trees.outgoing else (points, ends)
    return Found(trees.genome[tree], tree, src, dst, found[:, 2].copy()), int(queries)


@compiled
def _explore(cppn: Program, genome: np.ndarray, fixed: np.ndarray, outgoing: bool, settings: np.ndarray,
             squares: int, group: int, widest: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Grow and prune every tree: (tree of each connection, its other end's x, y and weight, queries).
    Consecutive trees of one genome, up to ``group``, grow together; tree ``u`` of a group keeps its
    squares at entries ``u * squares ..`` (``squares``: the most one tree can hold). ``widest``: the
    most nodes of one CPPN."""
    size = squares * group
    sq, link = np.empty((size, 4)), np.empty((size, 5), dtype=np.int64)
    nb, chosen = np.empty((size, 4), dtype=np.int64), np.empty(size, dtype=np.int64)
    level, stack = np.empty((group, 2), dtype=np.int64), np.empty(4 * int(settings[1]) + 8, dtype=np.int64)
    work = (np.empty((size, 4)), np.empty((max(widest, 1), BATCH)), np.empty(size), np.empty(size),
            np.empty(size, dtype=np.int64), np.zeros(1, dtype=np.int64))
    out_tree, out, count = np.empty(64, dtype=np.int64), np.empty((64, 3)), 0
    t0 = 0
    while t0 < len(genome):
        t1 = t0 + 1
        while t1 < len(genome) and t1 - t0 < group and genome[t1] == genome[t0]:
            t1 += 1
        trees = (genome[t0], t0, t1 - t0, squares, outgoing)
        _divide(cppn, trees, fixed, settings, sq, link, level, work)
        kept = 0
        for u in range(t1 - t0):
            _neighbours(link, nb, u * squares, level[u, 1])
            kept = _pruned(trees, fixed, settings, sq, link, u * squares, level[u, 1], chosen, kept, stack)
        across = _banded(cppn, trees, fixed, settings, sq, nb, chosen, 0, kept, 0, work)
        kept = across + _banded(cppn, trees, fixed, settings, sq, nb, chosen, across, kept, 2, work)
        while count + kept > len(out_tree):
            out_tree, out = np.concatenate((out_tree, out_tree)), np.concatenate((out, out))
        for i in range(kept):
            s = chosen[i]
            out_tree[count], out[count, 0], out[count, 1], out[count, 2] = (t0 + s // squares, sq[s, X], sq[s, Y],
                                                                            sq[s, WEIGHT])
            count += 1
        t0 = t1
    return out_tree[:count].copy(), out[:count].copy(), work[5][0]


@compiled
def _divide(cppn: Program, trees: Group, fixed: np.ndarray, settings: np.ndarray, sq: np.ndarray, link: np.ndarray,
            level: np.ndarray, work: Work) -> None:
    """DivisionAndInitialization of a group's trees, a level at a time (breadth first), each level of all
    of them in one batch of queries. ``level[u]``: the entries of tree ``u``'s last level (its squares
    end at ``level[u, 1]``)."""
    g, t0, count, squares, outgoing = trees
    points, raw, slot = work[0], work[2], work[4]
    for u in range(count):
        base = u * squares
        sq[base, X], sq[base, Y], sq[base, HALF], sq[base, WEIGHT] = 0.0, 0.0, 1.0, 0.0
        link[base, PARENT], link[base, FIRST], link[base, LEVEL], link[base, DIVIDE], link[base, DESCEND] = (
            -1, -1, 1, 1, 1)
        level[u, 0], level[u, 1] = base, base + 1
    while True:
        asked = 0
        for u in range(count):
            n = level[u, 1]
            for s in range(level[u, 0], level[u, 1]):
                if link[s, DIVIDE]:
                    link[s, FIRST] = n
                    half = sq[s, HALF] / 2.0
                    for j in range(4):
                        x, y = sq[s, X] + _DX[j] * half, sq[s, Y] + _DY[j] * half
                        sq[n, X], sq[n, Y], sq[n, HALF] = x, y, half
                        link[n, PARENT], link[n, FIRST], link[n, LEVEL], link[n, DESCEND] = s, -1, link[s, LEVEL] + 1, 0
                        points[asked, 0], points[asked, 1], points[asked, 2], points[asked, 3] = _ends(
                            fixed[t0 + u, 0], fixed[t0 + u, 1], outgoing, x, y)
                        slot[asked] = n
                        asked += 1
                        n += 1
            level[u, 0], level[u, 1] = level[u, 1], n
        if not asked:
            return
        _query(cppn, g, points, asked, work)
        for k in range(asked):
            sq[slot[k], WEIGHT] = _expressed(raw[k], settings[5], settings[6])
        for u in range(count):
            _decide(settings, sq, link, level[u, 0], level[u, 1])


@compiled
def _decide(settings: np.ndarray, sq: np.ndarray, link: np.ndarray, lo: int, hi: int) -> None:
    """Whether each group of 4 new squares ``lo .. hi - 1`` (one parent's children) is divided in turn: below
    the initial depth always, below the maximum depth when their weights' variance passes the threshold."""
    for first in range(lo, hi, 4):
        w0, w1, w2, w3 = sq[first, WEIGHT], sq[first + 1, WEIGHT], sq[first + 2, WEIGHT], sq[first + 3, WEIGHT]
        mean = (((w0 + w1) + w2) + w3) / 4.0
        variance = ((((w0 - mean) ** 2 + (w1 - mean) ** 2) + (w2 - mean) ** 2) + (w3 - mean) ** 2) / 4.0
        depth = link[link[first, PARENT], LEVEL]
        divide = depth < settings[0] or (depth < settings[1] and variance > settings[2])
        link[first:first + 4, DIVIDE] = 1 if divide else 0


@compiled
def _ends(fx: float, fy: float, outgoing: bool, x: float, y: float) -> tuple[float, float, float, float]:
    """The CPPN inputs (x1, y1, x2, y2) between a tree's fixed point and (x, y), in the tree's direction."""
    return (fx, fy, x, y) if outgoing else (x, y, fx, fy)


@compiled
def _expressed(raw: float, threshold: float, max_weight: float) -> float:
    """The connection weight of a raw CPPN output (``es_params.expressed``)."""
    if not abs(raw) > threshold:
        return 0.0
    sign = 1.0 if raw > 0.0 else -1.0
    return sign * (abs(raw) - threshold) / (1.0 - threshold) * max_weight


@compiled
def _neighbours(link: np.ndarray, nb: np.ndarray, base: int, n: int) -> None:
    """Each square (of the tree at entries ``base .. n - 1``) gets its same-size neighbours (left, right,
    below, above) as entries, -1 where the tree has none: a sibling, or the facing child of the parent's
    neighbour when that one is divided."""
    nb[base, :] = -1
    for s in range(base + 1, n):
        p = link[s, PARENT]
        first = link[p, FIRST]
        j = s - first
        for d in range(4):
            if _SIBLING[j, d] >= 0:
                nb[s, d] = first + _SIBLING[j, d]
            else:
                across = nb[p, d]
                nb[s, d] = link[across, FIRST] + _FACING[j, d] if across >= 0 and link[across, FIRST] >= 0 else -1


@compiled
def _pruned(trees: Group, fixed: np.ndarray, settings: np.ndarray, sq: np.ndarray, link: np.ndarray, base: int, n: int,
            chosen: np.ndarray, kept: int, stack: np.ndarray) -> int:
    """PruneAndExtract's walk over the tree at entries ``base .. n - 1``, top down in index order: a root's
    children are examined; an examined square of leaf variance above the threshold is descended into,
    any other is a candidate. Appends to ``chosen[kept:]`` the candidates that could express a connection
    (weight not 0, not from a point to itself, upward if feed-forward); the new count."""
    _, t0, _, squares, outgoing = trees
    fx, fy = fixed[t0 + base // squares, 0], fixed[t0 + base // squares, 1]
    for s in range(base + 1, n):
        if not link[link[s, PARENT], DESCEND]:
            continue
        if link[s, FIRST] >= 0 and _leaf_variance(s, sq, link, stack) > settings[3]:
            link[s, DESCEND] = 1
            continue
        src_x, src_y, dst_x, dst_y = _ends(fx, fy, outgoing, sq[s, X], sq[s, Y])
        if sq[s, WEIGHT] == 0.0 or (src_x == dst_x and src_y == dst_y) or (settings[7] != 0.0 and not src_y < dst_y):
            continue
        chosen[kept] = s
        kept += 1
    return kept


@compiled
def _banded(cppn: Program, trees: Group, fixed: np.ndarray, settings: np.ndarray, sq: np.ndarray, nb: np.ndarray,
            chosen: np.ndarray, lo: int, hi: int, d: int, work: Work) -> int:
    """Band check of squares ``chosen[lo:hi]`` along directions ``d`` and ``d + 1`` (left-right, or
    below-above): those whose weight differs by more than the band threshold from both neighbours are
    moved to the front; their count. The second neighbour is read only where the first differs."""
    first = _differs(cppn, trees, fixed, settings, sq, nb, chosen, lo, hi, d, work)
    return _differs(cppn, trees, fixed, settings, sq, nb, chosen, lo, lo + first, d + 1, work)


@compiled
def _differs(cppn: Program, trees: Group, fixed: np.ndarray, settings: np.ndarray, sq: np.ndarray, nb: np.ndarray,
             chosen: np.ndarray, lo: int, hi: int, d: int, work: Work) -> int:
    """Squares ``chosen[lo:hi]`` whose weight differs by more than the band threshold from their neighbour
    in direction ``d`` moved to the front (a partition); their count. Neighbours the trees lack are
    queried together."""
    g, t0, _, squares, outgoing = trees
    points, raw, other, slot = work[0], work[2], work[3], work[4]
    asked = 0
    for i in range(lo, hi):
        s = chosen[i]
        if nb[s, d] >= 0:
            other[i] = sq[nb[s, d], WEIGHT]
        else:
            step = 2.0 * sq[s, HALF]
            t = t0 + s // squares
            points[asked, 0], points[asked, 1], points[asked, 2], points[asked, 3] = _ends(
                fixed[t, 0], fixed[t, 1], outgoing, sq[s, X] + _STEPS[d, 0] * step, sq[s, Y] + _STEPS[d, 1] * step)
            slot[asked] = i
            asked += 1
    if asked:
        _query(cppn, g, points, asked, work)
    for k in range(asked):
        other[slot[k]] = _expressed(raw[k], settings[5], settings[6])
    front = lo
    for i in range(lo, hi):
        s = chosen[i]
        if abs(sq[s, WEIGHT] - other[i]) > settings[4]:
            chosen[i], chosen[front] = chosen[front], s
            front += 1
    return front - lo


@compiled
def _leaf_variance(s: int, sq: np.ndarray, link: np.ndarray, stack: np.ndarray) -> float:
    """The variance of the leaf weights below square ``s`` (0 for a leaf): their mean, then the mean of
    their squared deviations, leaves in depth-first order."""
    if link[s, FIRST] < 0:
        return 0.0
    total, count, mean, spread = 0.0, 0, 0.0, 0.0
    for second in range(2):
        stack[0], top = s, 1
        while top:
            top -= 1
            q = stack[top]
            if link[q, FIRST] < 0:
                if second:
                    spread += (sq[q, WEIGHT] - mean) ** 2
                else:
                    total += sq[q, WEIGHT]
                    count += 1
                continue
            for j in range(3, -1, -1):
                stack[top] = link[q, FIRST] + j
                top += 1
        mean = total / count
    return spread / count


@compiled
def _query(cppn: Program, g: int, points: np.ndarray, m: int, work: Work) -> None:
    """Genome ``g``'s raw weight output at the first ``m`` rows of ``points`` into ``work[2]``, ``BATCH``
    rows at a time: its nodes in order, each its bias plus its weighted inputs in gene order, then its
    activation (as ``Network.activate`` computes one row)."""
    node_start, bias, activation, in_start, in_src, in_weight, output = cppn
    values, raw = work[1], work[2]
    work[5][0] += m
    first = node_start[g]
    for start in range(0, m, BATCH):
        width = min(BATCH, m - start)
        for k in range(first, node_start[g + 1]):
            row = k - first
            for j in range(width):
                values[row, j] = bias[k]
            for e in range(in_start[k], in_start[k + 1]):
                src, weight = in_src[e], in_weight[e]
                if src >= 0:
                    for j in range(width):
                        values[row, j] += weight * values[src - first, j]
                else:
                    for j in range(width):
                        values[row, j] += weight * points[start + j, -1 - src]
            _activate(activation[k], values, row, width)
        for j in range(width):
            raw[start + j] = values[output[g] - first, j]


@compiled
def _activate(code: int, values: np.ndarray, row: int, width: int) -> None:
    """Activation ``code`` of ``ACTIVATION_CODES`` on ``values[row, :width]`` in place, as
    ``neatify.activations`` computes it."""
    for j in range(width):
        x = values[row, j]
        if code == 0 or code == 1:
            x = max(-60.0, min(60.0, 4.9 * x if code == 1 else x))
            values[row, j] = 1.0 / (1.0 + math.exp(-x))
        elif code == 2:
            values[row, j] = math.tanh(x)
        elif code == 3:
            values[row, j] = x if x > 0.0 else 0.0
        elif code == 5:
            values[row, j] = math.sin(x)
        elif code == 6:
            x = max(-3.4, min(3.4, x))
            values[row, j] = math.exp(-5.0 * x * x)
        elif code == 7:
            values[row, j] = abs(x)
        elif code == 8:
            values[row, j] = max(-1.0, min(1.0, x))
        elif code == 9:
            values[row, j] = math.cos(x)
        elif code == 10:
            values[row, j] = 1.0 if x > 0.0 else 0.0
        elif code == 11:
            values[row, j] = x * x
