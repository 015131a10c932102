"""Structural mutations (add a node, add a connection) of many genomes of a ``GenomeBatch`` at once.

They mean exactly what the reference operators ``Genome.mutate_add_node`` and ``Genome.mutate_add_connection``
(``neatify.genome.reference``) mean. Node splits and gene insertions are array operations over all mutated
rows; the add-connection tries (does the pair exist, would it close a cycle) are walked row by row in one
compiled loop (``neatify.runtime.compiled``), as each row's tries stop at its first success. Only the
``InnovationTracker`` is asked genome by genome (in row order, so its numbers are deterministic). Random
numbers come from a ``numpy.random.Generator`` in a fixed order.

Inside a row, nodes are addressed by a dense local index: inputs ``0 .. num_inputs - 1`` by their
id, the row's node genes by ``num_inputs`` + their position (ids are sorted), so nothing is sized by
the largest node id.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from neatify.runtime.compiled import compiled
from neatify.config import EvolutionConfig
from neatify.genome.batch import GenomeBatch, ragged_index, row_offsets, row_owner
from neatify.genome.innovation import InnovationTracker


def add_nodes(batch: GenomeBatch, rows: np.ndarray, config: EvolutionConfig, rng: np.random.Generator,
              tracker: InnovationTracker) -> GenomeBatch:
    """A new batch in which each of ``rows`` (sorted) with an enabled connection has split a uniformly
    chosen one, as ``Genome.mutate_add_node`` does; other rows are unchanged. Draws one uniform
    [0, 1) number per row that has an enabled connection, in row order."""
    rows = _checked_rows(batch, rows)
    counts = _enabled_counts(batch, rows)
    rows, counts = rows[counts > 0], counts[counts > 0]
    picks = _uniform_below(rng.random(len(rows)), counts)
    return split_connections(batch, rows, picks, config, tracker)


def add_connections(batch: GenomeBatch, rows: np.ndarray, config: EvolutionConfig, rng: np.random.Generator,
                    tracker: InnovationTracker) -> GenomeBatch:
    """A new batch in which each of ``rows`` (sorted) has gained a connection (or re-enabled one) as
    ``Genome.mutate_add_connection`` does, from up to ``config.add_connection_attempts`` random tries.

    Draws, in order: a uniform [0, 1) number for every try's source, then for every try's target
    (rows x attempts matrices, scaled to local indices), then one new weight per row (used only if
    the row gains a new gene)."""
    rows = _checked_rows(batch, rows)
    nodes = batch.node_start[rows + 1] - batch.node_start[rows]
    rows, nodes = rows[nodes > 0], nodes[nodes > 0]
    shape = (len(rows), config.add_connection_attempts)
    sources = _uniform_below(rng.random(shape), (nodes + batch.num_inputs)[:, None])
    targets = batch.num_inputs + _uniform_below(rng.random(shape), nodes[:, None])
    weights = np.clip(rng.normal(0.0, config.weight_init_stdev, len(rows)),
                      config.weight_min_value, config.weight_max_value)
    return connect(batch, rows, sources, targets, weights, config, tracker)


# --- the deterministic cores (the random choices given) ---
def split_connections(batch: GenomeBatch, rows: np.ndarray, picks: np.ndarray, config: EvolutionConfig,
                      tracker: InnovationTracker) -> GenomeBatch:
    """Row ``rows[k]`` splits its ``picks[k]``-th enabled connection gene (innovation order)."""
    if not len(rows):
        return batch
    if config.activation_default not in batch.activations:
        batch = batch.with_activations(tuple(sorted(batch.activations + (config.activation_default,))))
    enabled_before = row_offsets(batch.conn_enabled)
    genes = np.searchsorted(enabled_before, enabled_before[batch.conn_start[rows]] + picks + 1) - 1
    new_ids, first_innovations, second_innovations = _split_numbers(batch, rows, genes, tracker)
    enabled = batch.conn_enabled.copy()
    enabled[genes] = False
    first_in, old_out = batch.conn_in[genes], batch.conn_out[genes]
    # Each row gains a->new (weight 1) and new->b (the old weight), put in innovation order.
    swap = first_innovations > second_innovations
    pair = np.stack([first_innovations, second_innovations], 1)
    pair[swap] = pair[swap][:, ::-1]
    ins = np.stack([first_in, new_ids], 1)
    outs = np.stack([new_ids, old_out], 1)
    weights = np.stack([np.ones(len(rows)), batch.conn_weight[genes]], 1)
    for column in (ins, outs, weights):
        column[swap] = column[swap][:, ::-1]
    activation = batch.activations.index(config.activation_default)
    return _inserted(batch, enabled,
                     (rows, new_ids, np.zeros(len(rows)), np.full(len(rows), activation, np.int16)),
                     (np.repeat(rows, 2), pair.ravel(), ins.ravel(), outs.ravel(), weights.ravel()))


def connect(batch: GenomeBatch, rows: np.ndarray, sources: np.ndarray, targets: np.ndarray,
            weights: np.ndarray, config: EvolutionConfig, tracker: InnovationTracker) -> GenomeBatch:
    """Row ``rows[k]`` walks the tries ``(sources[k, j], targets[k, j])`` (local indices) in order and
    takes the first that succeeds; a new gene gets weight ``weights[k]``."""
    rows = _checked_rows(batch, rows)
    if not len(rows):
        return batch
    sources, targets = _checked_tries(batch, rows, sources, targets)
    _refuse_input_nodes(batch, rows)
    gene, src, dst = (np.empty(len(rows), np.int64) for _ in range(3))
    dangling = _first_tries(batch.node_start, batch.node_id, batch.conn_start, batch.conn_in, batch.conn_out,
                            batch.conn_enabled, batch.num_inputs, rows, sources, targets, config.allow_recurrent,
                            gene, src, dst)
    if dangling >= 0:
        raise ValueError(f"genome {batch.ids[rows[dangling]]} has a connection gene from or to node "
                         f"{src[dangling]}, which is neither an input nor one of its node genes")
    enabled = batch.conn_enabled.copy()
    enabled[gene[gene >= 0]] = True
    new = np.flatnonzero(gene == NEW)
    innovations = np.fromiter(map(tracker.connection, src[new].tolist(), dst[new].tolist()), np.int64, len(new))
    return _inserted(batch, enabled, None, (rows[new], innovations, src[new], dst[new], weights[new]))


NEW, NONE = -1, -2
"""``_first_tries``' outcome of a row other than an existing gene re-enabled: a new gene, or no try succeeded."""


@compiled
def _first_tries(node_start: np.ndarray, node_id: np.ndarray, conn_start: np.ndarray, conn_in: np.ndarray,
                 conn_out: np.ndarray, conn_enabled: np.ndarray, num_inputs: int, rows: np.ndarray,
                 sources: np.ndarray, targets: np.ndarray, recurrent: bool, gene: np.ndarray, src: np.ndarray,
                 dst: np.ndarray) -> int:
    """Each row's first successful try: ``gene[k]`` the disabled gene it re-enables, or NEW (a gene
    ``src[k]`` -> ``dst[k]``, node ids), or NONE. A try fails on an enabled existing pair and, without
    ``recurrent``, on an edge closing a cycle over all the row's genes. Returns -1, or the position of
    a row with a gene joining a node it lacks (the node id in ``src`` there)."""
    for k in range(len(rows)):
        row = rows[k]
        ids = node_id[node_start[row]:node_start[row + 1]]
        lo, hi = conn_start[row], conn_start[row + 1]
        local = np.empty(2 * (hi - lo), np.int64)  # each gene's in and out node as local indices
        for g in range(lo, hi):
            for side in range(2):
                node = conn_in[g] if side == 0 else conn_out[g]
                at = np.searchsorted(ids, node)
                if 0 <= node < num_inputs:
                    local[2 * (g - lo) + side] = node
                elif at < len(ids) and ids[at] == node:
                    local[2 * (g - lo) + side] = num_inputs + at
                else:
                    src[k] = node
                    return k
        gene[k] = NONE
        for j in range(sources.shape[1]):
            a, b = sources[k, j], targets[k, j]
            existing = -1
            for g in range(hi - lo):  # the last gene of the pair in innovation order, as a dict of pairs keeps
                if local[2 * g] == a and local[2 * g + 1] == b:
                    existing = lo + g
            if existing >= 0:
                if conn_enabled[existing]:
                    continue
                gene[k] = existing
            elif recurrent or not _reaches(local, b, a, num_inputs + len(ids)):  # a -> b closes a cycle iff b reaches a
                gene[k] = NEW
            else:
                continue
            src[k] = a if a < num_inputs else ids[a - num_inputs]
            dst[k] = ids[b - num_inputs]
            break
    return -1


@compiled
def _reaches(edges: np.ndarray, start: int, goal: int, size: int) -> bool:
    """Whether local node ``start`` is ``goal`` or reaches it along ``edges`` (pairs in, out; ``size`` nodes)."""
    if start == goal:
        return True
    seen = np.zeros(size, np.bool_)
    seen[start] = True
    stack = [start]
    while stack:
        node = stack.pop()
        for e in range(0, len(edges), 2):
            if edges[e] == node and not seen[edges[e + 1]]:
                if edges[e + 1] == goal:
                    return True
                seen[edges[e + 1]] = True
                stack.append(edges[e + 1])
    return False


# --- helpers ---
def _checked_rows(batch: GenomeBatch, rows: np.ndarray) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.int64)
    if rows.ndim != 1 or (np.diff(rows) <= 0).any() or (len(rows) and (rows[0] < 0 or rows[-1] >= len(batch))):
        raise ValueError(f"rows must be increasing row indices below {len(batch)}, got {rows!r}")
    return rows


def _checked_tries(batch: GenomeBatch, rows: np.ndarray, sources: np.ndarray,
                   targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``sources`` and ``targets`` as int64 rows x tries matrices, refused unless every source is a local
    index of a row's input or node and every target one of its nodes (the compiled walk trusts them)."""
    sources, targets = np.asarray(sources, dtype=np.int64), np.asarray(targets, dtype=np.int64)
    if sources.ndim != 2 or sources.shape != targets.shape or len(sources) != len(rows):
        raise ValueError(f"sources and targets must both be {len(rows)} x tries matrices, got shapes "
                         f"{sources.shape} and {targets.shape}")
    top = (batch.num_inputs + batch.node_start[rows + 1] - batch.node_start[rows])[:, None]
    bad = (sources < 0) | (sources >= top) | (targets < batch.num_inputs) | (targets >= top)
    if bad.any():
        k, j = np.argwhere(bad)[0]
        raise ValueError(f"try {j} of genome {batch.ids[rows[k]]}: source {sources[k, j]} or target "
                         f"{targets[k, j]} is not a local index of its inputs and nodes (targets "
                         f"{batch.num_inputs} .. {top[k, 0] - 1})")
    return np.ascontiguousarray(sources), np.ascontiguousarray(targets)


def _refuse_input_nodes(batch: GenomeBatch, rows: np.ndarray) -> None:
    """ValueError naming a row with a node gene whose id is an input's (or negative): the walk reads a gene's
    end there as the input, a try's target as the node gene, so the two would not be the same node."""
    rows = rows[batch.node_start[rows + 1] > batch.node_start[rows]]
    lowest = batch.node_id[batch.node_start[rows]]  # a row's node ids are sorted
    if (lowest < batch.num_inputs).any():
        k = int(np.argmax(lowest < batch.num_inputs))
        raise ValueError(f"genome {batch.ids[rows[k]]} has a node gene with id {lowest[k]}, an input's or "
                         f"negative (node genes are numbered from {batch.num_inputs})")


def _uniform_below(uniform: np.ndarray, bound: np.ndarray) -> np.ndarray:
    """Integers uniform in ``0 .. bound - 1`` (elementwise) from numbers uniform in [0, 1)."""
    return np.minimum((uniform * bound).astype(np.int64), bound - 1)


def _enabled_counts(batch: GenomeBatch, rows: np.ndarray) -> np.ndarray:
    """Enabled connection genes of each of ``rows``."""
    before = row_offsets(batch.conn_enabled)
    return before[batch.conn_start[rows + 1]] - before[batch.conn_start[rows]]


def _split_numbers(batch: GenomeBatch, rows: np.ndarray, genes: np.ndarray,
                   tracker: InnovationTracker) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The tracker's new node id and two innovations for each row's split gene, asked in row order."""
    new_ids, first, second = (np.zeros(len(rows), np.int64) for _ in range(3))
    starts, ends = batch.node_start[rows].tolist(), batch.node_start[rows + 1].tolist()
    rows_genes = zip(batch.conn_innovation[genes].tolist(), batch.conn_in[genes].tolist(),
                     batch.conn_out[genes].tolist(), starts, ends)
    for k, (innovation, a, b, lo, hi) in enumerate(rows_genes):
        node_id = tracker.split(innovation, set(batch.node_id[lo:hi].tolist()))
        new_ids[k], first[k], second[k] = node_id, tracker.connection(a, node_id), tracker.connection(node_id, b)
    return new_ids, first, second


def _inserted(batch: GenomeBatch, conn_enabled: np.ndarray, nodes: tuple | None, conns: tuple) -> GenomeBatch:
    """``batch`` with ``conn_enabled`` and new genes inserted at their sorted places. ``nodes``: (rows,
    ids, biases, activations); ``conns``: (rows, innovations, ins, outs, weights), new ones enabled;
    each sorted by row, then by id or innovation."""
    fields = {"conn_enabled": conn_enabled}
    if nodes is not None:
        owners, ids, *values = nodes
        at = _positions(batch.node_start, batch.node_id, owners, ids)
        fields.update(node_start=_grown(batch.node_start, owners), node_id=np.insert(batch.node_id, at, ids),
                      node_bias=np.insert(batch.node_bias, at, values[0]),
                      node_activation=np.insert(batch.node_activation, at, values[1]))
    owners, innovations, ins, outs, weights = conns
    at = _positions(batch.conn_start, batch.conn_innovation, owners, innovations)
    fields.update(conn_start=_grown(batch.conn_start, owners),
                  conn_innovation=np.insert(batch.conn_innovation, at, innovations),
                  conn_in=np.insert(batch.conn_in, at, ins), conn_out=np.insert(batch.conn_out, at, outs),
                  conn_weight=np.insert(batch.conn_weight, at, weights),
                  conn_enabled=np.insert(conn_enabled, at, True))
    return replace(batch, **fields)


def _positions(start: np.ndarray, values: np.ndarray, owners: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Where ``new[k]`` goes among row ``owners[k]``'s sorted slice of ``values``: the row's start plus
    how many of its values are smaller."""
    entries, sub_start = ragged_index(start, owners)
    counts = np.diff(sub_start)
    smaller = values[entries] < np.repeat(new, counts)
    below = np.bincount(row_owner(sub_start), weights=smaller, minlength=len(owners))
    return start[owners] + below.astype(np.int64)


def _grown(start: np.ndarray, owners: np.ndarray) -> np.ndarray:
    """Offsets after adding one entry per element of ``owners`` (row indices) to a ragged array."""
    return start + row_offsets(np.bincount(owners, minlength=len(start) - 1))
