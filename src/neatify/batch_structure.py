"""Structural mutations (add a node, add a connection) of many genomes of a ``GenomeBatch`` at once.

They mean exactly what ``Genome.mutate_add_node`` and ``Genome.mutate_add_connection`` mean, but the
random tries, the existence and cycle checks and the gene insertions are array operations over all
mutated rows; only the ``InnovationTracker`` is asked genome by genome (in row order, so its numbers
are deterministic). Random numbers come from a ``numpy.random.Generator`` in a fixed order.

Inside a row, nodes are addressed by a dense local index: inputs ``0 .. num_inputs - 1`` by their
id, the row's node genes by ``num_inputs`` + their position (ids are sorted), so nothing is sized by
the largest node id.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from neatify.config import EvolutionConfig
from neatify.genome_batch import GenomeBatch, ragged_index, row_offsets, row_owner
from neatify.innovation import InnovationTracker


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
    if not len(rows):
        return batch
    graph = _RowGraphs(batch, rows)
    gene, ok = graph.tries(sources, targets, config.allow_recurrent)
    won = ok.any(1)
    first = ok.argmax(1)[won]
    picked = np.flatnonzero(won)
    gene = gene[picked, first]
    enabled = batch.conn_enabled.copy()
    enabled[gene[gene >= 0]] = True
    new = picked[gene < 0]
    src = graph.node_ids(new, sources[new, first[gene < 0]])
    dst = graph.node_ids(new, targets[new, first[gene < 0]])
    innovations = np.fromiter(map(tracker.connection, src.tolist(), dst.tolist()), np.int64, len(new))
    return _inserted(batch, enabled, None, (rows[new], innovations, src, dst, weights[new]))


class _RowGraphs:
    """The connection genes (all of them, disabled too) of some rows as edges between global node
    indices: row ``k``'s local index ``i`` is global ``base[k] + i``."""

    def __init__(self, batch: GenomeBatch, rows: np.ndarray) -> None:
        self.batch, self.rows = batch, rows
        self.node_entries, node_start = ragged_index(batch.node_start, rows)
        self.node_start = node_start
        self.size = batch.num_inputs + np.diff(node_start)
        self.base = row_offsets(self.size)
        self.gene_entries, gene_start = ragged_index(batch.conn_start, rows)
        self.gene_owner = row_owner(gene_start)
        ends = self._local(np.tile(self.gene_owner, 2), np.concatenate((batch.conn_in[self.gene_entries],
                                                                        batch.conn_out[self.gene_entries])))
        self.local_from, self.local_to = np.split(ends, 2)
        self.edge_from = self.base[self.gene_owner] + self.local_from
        self.edge_to = self.base[self.gene_owner] + self.local_to

    def _local(self, owner: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """Local indices of node ids ``ids`` of rows ``owner``; a clear error for an id the row lacks."""
        batch, inputs = self.batch, self.batch.num_inputs
        node_ids = batch.node_id[self.node_entries]
        top = int(max(node_ids.max(initial=0), ids.max(initial=0))) + 1
        if len(self.rows) * top >= 2**62:
            raise ValueError(f"node ids up to {top - 1} in {len(self.rows)} genomes overflow 64-bit keys")
        node_keys = row_owner(self.node_start) * top + node_ids
        at = np.searchsorted(node_keys, owner * top + ids)
        found = node_keys[np.minimum(at, len(node_keys) - 1)] == owner * top + ids if len(node_keys) else at < 0
        missing = (ids >= inputs) & ~found
        if missing.any():
            k = int(np.flatnonzero(missing)[0])
            raise ValueError(f"genome {batch.ids[self.rows[owner[k]]]} has a connection gene from or to node "
                             f"{ids[k]}, which is neither an input nor one of its node genes")
        return np.where(ids < inputs, ids, inputs + at - self.node_start[owner])

    def node_ids(self, picked: np.ndarray, local: np.ndarray) -> np.ndarray:
        """Node ids of local indices ``local`` of the rows at positions ``picked``."""
        inputs = self.batch.num_inputs
        nodes = self.node_entries[self.node_start[picked] + np.maximum(local - inputs, 0)]
        return np.where(local < inputs, local, self.batch.node_id[nodes])

    def tries(self, sources: np.ndarray, targets: np.ndarray, recurrent: bool) -> tuple[np.ndarray, np.ndarray]:
        """For every try: the gene index of an existing pair (-1 if new) and whether the try succeeds."""
        pair_base = row_offsets(self.size * self.size)
        gene_keys = pair_base[self.gene_owner] + self.local_from * self.size[self.gene_owner] + self.local_to
        order = np.argsort(gene_keys, kind="stable")  # equal pairs: the last in innovation order wins
        # A sentinel after the sorted genes: a try before every gene looks at key -1, gene -1.
        sorted_keys, sorted_genes = np.append(gene_keys[order], -1), np.append(self.gene_entries[order], -1)
        keys = pair_base[:-1, None] + sources * self.size[:, None] + targets
        at = np.searchsorted(sorted_keys[:-1], keys, side="right")
        at -= 1
        gene = sorted_genes[at]
        gene[sorted_keys[at] != keys] = -1
        exists = gene >= 0
        ok = np.zeros_like(exists)
        ok[exists] = ~self.batch.conn_enabled[gene[exists]]
        if recurrent:
            return gene, ok | ~exists
        loop = sources == targets
        src, dst = self.base[:-1, None] + sources, self.base[:-1, None] + targets
        total = int(self.base[-1])
        # A new edge src->dst closes a cycle iff dst reaches src. It cannot when src has no incoming
        # gene or dst no outgoing one: those tries are decided here; the rest by an exact search.
        no_in = np.bincount(self.edge_to, minlength=total) == 0
        no_out = np.bincount(self.edge_from, minlength=total) == 0
        safe = (no_in[src] | no_out[dst]) & ~exists & ~loop
        ok |= safe
        decided = exists | loop | safe
        first_sure = np.where(ok.any(1), ok.argmax(1), ok.shape[1])
        ask = ~decided & (np.arange(ok.shape[1]) < first_sure[:, None])
        ok[ask] = ~self.reaches(dst[ask], src[ask])
        return gene, ok

    def reaches(self, starts: np.ndarray, goals: np.ndarray) -> np.ndarray:
        """Whether global node ``starts[k]`` reaches ``goals[k]`` along the genes: a breadth-first
        frontier of (query, node) pairs, deduplicated each step, at most the largest row's size steps."""
        total = int(self.base[-1])
        order = np.argsort(self.edge_from, kind="stable")
        successors = self.edge_to[order]
        first = row_offsets(np.bincount(self.edge_from, minlength=total))
        hit = np.zeros(len(starts), bool)
        query, node = np.arange(len(starts)), starts
        for _ in range(int(self.size.max())):
            edges, step_start = ragged_index(first, node)
            query = np.repeat(query, np.diff(step_start))
            node = successors[edges]
            hit[query[node == goals[query]]] = True
            pairs = np.unique(query[~hit[query]] * total + node[~hit[query]])
            if not len(pairs):
                break
            query, node = np.divmod(pairs, total)
        return hit


# --- helpers ---
def _checked_rows(batch: GenomeBatch, rows: np.ndarray) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.int64)
    if rows.ndim != 1 or (np.diff(rows) <= 0).any() or (len(rows) and (rows[0] < 0 or rows[-1] >= len(batch))):
        raise ValueError(f"rows must be increasing row indices below {len(batch)}, got {rows!r}")
    return rows


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
