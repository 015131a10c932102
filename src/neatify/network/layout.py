"""Every genome of a population laid out as rows of one matrix, computed in numpy array operations.

This is what ``NeatPopulationModule`` runs (torch stays in ``neatify.nn``). The genomes' genes are
read as one ``GenomeBatch``; one compiled loop (``neatify.runtime.compiled``) walks each genome's genes for
what its layout needs:

- each gene's end nodes among the genome's node genes (a binary search in its sorted node ids);
- required nodes (those whose value reaches an output): reverse reachability from the outputs;
- depth levels (longest path from the inputs): relaxation ``depth[dst] = max(depth[dst], depth[src]
  + 1)`` over every live edge, repeated until nothing changes. In a feed-forward genome no depth can
  exceed its count of required nodes, so a genome whose depths pass that count has a cycle. Those
  genomes, and only those, are ordered as ``evaluation_plan`` orders them (as ``NetworkLayout.from_genome``
  does): its ordered depth-first search, compiled too, decides which edges read the previous step,
  and the others give the layers.

Rows are then ordered layer by layer, inside a layer by activation name, then genome, then node id:
the order of laying every genome out with ``NetworkLayout.from_genome`` and stacking their layers.

Synchronous layouts need no depths: every required node is in the one layer and every edge from a
non-input node reads the previous step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from neatify.runtime.compiled import compiled
from neatify.genome.genome import Genome
from neatify.genome.batch import GenomeBatch, row_offsets
from neatify.network.network import NetworkLayout

CSR = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
"""Row pointers, shared-input columns, per-genome-input columns, values."""

@dataclass
class PopulationLayout:
    """Every genome's required nodes as rows of one matrix, its edges as CSR parts (see the module docstring).

    Rows ``layer_rows[k]`` hold layer ``k`` of every genome; ``segments[k]`` lists its runs of one
    activation as ``(name, start, end)``. Columns ``num_nodes + i`` are the shared inputs, or
    ``num_nodes + genome * num_inputs + i`` the per-genome ones.
    """

    num_nodes: int
    layer_rows: list[tuple[int, int]]
    segments: list[list[tuple[str, int, int]]]
    bias: np.ndarray
    outputs: np.ndarray
    """Row of each genome's each output, genome-major."""
    layers: list[CSR]
    """Each layer's incoming forward edges, rows relative to the layer's first row."""
    recurrent: CSR | None
    """Edges reading the previous step's node rows, over all rows; None when there are none."""

    @classmethod
    def from_genomes(cls, genomes: Sequence[Genome], synchronous: bool = False,
                     per_genome: bool = False) -> PopulationLayout:
        """Lay the population out in array operations; ``per_genome=True`` lays every genome out with
        ``NetworkLayout.from_genome`` instead (the reference the array path must equal)."""
        if per_genome:
            names = sorted({n.activation for genome in genomes for n in genome.nodes.values()})
            nodes, edges, outputs = _from_layouts(genomes, synchronous, names)
            return _assemble(nodes, edges, outputs, names, genomes[0].num_inputs)
        return cls.from_batch(GenomeBatch.from_genomes(genomes), synchronous)

    @classmethod
    def from_batch(cls, batch: GenomeBatch, synchronous: bool = False) -> PopulationLayout:
        """Lay out a ``GenomeBatch`` built straight from arrays (a substrate's phenotypes, say), with no
        ``Genome`` objects in between."""
        nodes, edges, outputs = trace_batch(batch, synchronous)
        return _assemble(nodes, edges, outputs, list(batch.activations), batch.num_inputs)

    def equals(self, other: PopulationLayout) -> bool:
        """Whether both have the same rows, segments and edges, array for array (dtypes included)."""
        if (self.num_nodes, self.layer_rows, self.segments) != (other.num_nodes, other.layer_rows, other.segments):
            return False
        if len(self.layers) != len(other.layers) or (self.recurrent is None) != (other.recurrent is None):
            return False
        ours = [self.bias, self.outputs, *(a for csr in self.layers + [self.recurrent or ()] for a in csr)]
        theirs = [other.bias, other.outputs, *(a for csr in other.layers + [other.recurrent or ()] for a in csr)]
        return all(a.dtype == b.dtype and np.array_equal(a, b) for a, b in zip(ours, theirs))


class _Nodes(NamedTuple):
    """One entry per laid-out (required) node of every genome."""

    genome: np.ndarray
    id: np.ndarray
    bias: np.ndarray
    activation: np.ndarray
    layer: np.ndarray
    """0-based."""


class _Edges(NamedTuple):
    """One entry per live edge of every genome: enabled, into a laid-out node."""

    genome: np.ndarray
    src: np.ndarray
    """Entry of the source in the ``_Nodes``, or ``-1 - i`` for input ``i``."""
    dst: np.ndarray
    """Entry of the target in the ``_Nodes``."""
    weight: np.ndarray
    innovation: np.ndarray
    recurrent: np.ndarray


def trace_batch(batch: GenomeBatch, synchronous: bool) -> tuple[_Nodes, _Edges, np.ndarray]:
    """Nodes, edges and output entries of every genome, from one compiled walk over each (``_trace``)."""
    if batch.node_id.min(initial=0) < 0:
        i = int(np.argmin(batch.node_id))
        raise ValueError(f"genome {batch.ids[batch.node_owner()[i]]} has node id {batch.node_id[i]}; "
                         f"node ids are never negative")
    conn_in, num_inputs = batch.conn_in, batch.num_inputs
    src, dst = np.empty(len(conn_in), np.int64), np.empty(len(conn_in), np.int64)
    live, recurrent = np.empty(len(conn_in), np.bool_), np.empty(len(conn_in), np.bool_)
    outputs = np.empty((len(batch), batch.num_outputs), np.int64)
    required, depth = np.empty(len(batch.node_id), np.bool_), np.empty(len(batch.node_id), np.int64)
    problem = np.full(2, -1, np.int64)
    _trace(batch.node_start, batch.node_id, batch.conn_start, conn_in, batch.conn_out, batch.conn_enabled,
           num_inputs, synchronous, src, dst, live, recurrent, outputs, required, depth, problem)
    _refuse(batch, problem)
    from_input = (conn_in >= 0) & (conn_in < num_inputs)
    entry_of = np.cumsum(required) - 1  # node gene entry -> entry among the required nodes
    nodes = _Nodes(batch.node_owner()[required], batch.node_id[required], batch.node_bias[required],
                   batch.node_activation[required].astype(np.int64), depth[required] - 1)
    edges = _Edges(batch.conn_owner()[live], np.where(from_input, -1 - conn_in, entry_of[src])[live],
                   entry_of[dst[live]], batch.conn_weight[live], batch.conn_innovation[live], recurrent[live])
    return nodes, edges, entry_of[outputs]


NO_OUTPUT, UNKNOWN_SOURCE = 0, 1
"""``_trace``'s problems: a genome lacks an output's node gene; a live gene comes from a node it lacks."""


def _refuse(batch: GenomeBatch, problem: np.ndarray) -> None:
    """Raise the error ``_trace`` found: ``problem`` is (kind, node entry or gene), or (-1, -1)."""
    kind, at = problem.tolist()
    if kind == NO_OUTPUT:
        row, output = divmod(at, batch.num_outputs)
        raise ValueError(f"genome {batch.ids[row]} lacks the gene of output node {batch.num_inputs + output}")
    if kind == UNKNOWN_SOURCE:
        raise ValueError(f"genome {batch.ids[batch.conn_owner()[at]]}: connection {batch.conn_innovation[at]} "
                         f"comes from node {batch.conn_in[at]}, which the genome does not have")


@compiled
def _trace(node_start: np.ndarray, node_id: np.ndarray, conn_start: np.ndarray, conn_in: np.ndarray,
           conn_out: np.ndarray, conn_enabled: np.ndarray, num_inputs: int, synchronous: bool, src: np.ndarray,
           dst: np.ndarray, live: np.ndarray, recurrent: np.ndarray, outputs: np.ndarray, required: np.ndarray,
           depth: np.ndarray, problem: np.ndarray) -> None:
    """Per gene: its end nodes' entries (``src``, ``dst``; -1 for an input or a node the genome lacks),
    whether it is ``live`` (enabled, into a required node) and ``recurrent`` (reads the previous step);
    per genome its ``outputs``' entries; per node whether it is ``required`` and its ``depth`` (layer,
    from 1). Stops at the first problem, written to ``problem`` (see ``_refuse``)."""
    for row in range(len(node_start) - 1):
        n0, n1, c0, c1 = node_start[row], node_start[row + 1], conn_start[row], conn_start[row + 1]
        ids = node_id[n0:n1]
        for c in range(c0, c1):
            src[c], dst[c] = _entry(ids, n0, conn_in[c]), _entry(ids, n0, conn_out[c])
        required[n0:n1] = False
        for k in range(outputs.shape[1]):
            outputs[row, k] = _entry(ids, n0, num_inputs + k)
            if outputs[row, k] < 0:
                problem[0], problem[1] = NO_OUTPUT, row * outputs.shape[1] + k
                return
            required[outputs[row, k]] = True
        _require(c0, c1, conn_in, conn_out, conn_enabled, num_inputs, src, dst, required)
        for c in range(c0, c1):
            live[c] = conn_enabled[c] and not 0 <= conn_out[c] < num_inputs and dst[c] >= 0 and required[dst[c]]
            from_node = not 0 <= conn_in[c] < num_inputs
            if live[c] and from_node and src[c] < 0:
                problem[0], problem[1] = UNKNOWN_SOURCE, c
                return
            recurrent[c] = synchronous and live[c] and from_node
        for n in range(n0, n1):
            depth[n] = 1 if required[n] else 0
        if not synchronous and not _longest_paths(n0, n1, c0, c1, conn_in, num_inputs, src, dst, live, depth):
            _order_cycles(n0, n1, c0, c1, conn_in, num_inputs, src, dst, live, required, depth, recurrent)


@compiled
def _entry(ids: np.ndarray, first: int, node: int) -> int:
    """The entry (``first`` + position) of node id ``node`` among a genome's sorted node ``ids``, or -1."""
    at = np.searchsorted(ids, node)
    return first + at if at < len(ids) and ids[at] == node else -1


@compiled
def _require(c0: int, c1: int, conn_in: np.ndarray, conn_out: np.ndarray, conn_enabled: np.ndarray,
             num_inputs: int, src: np.ndarray, dst: np.ndarray, required: np.ndarray) -> None:
    """Mark every node that reaches a required one over genes ``c0 .. c1 - 1`` between node genes (reverse
    reachability, pass after pass until nothing changes)."""
    changed = True
    while changed:
        changed = False
        for c in range(c0, c1):
            if (conn_enabled[c] and src[c] >= 0 and dst[c] >= 0 and required[dst[c]] and not required[src[c]]
                    and not 0 <= conn_in[c] < num_inputs and not 0 <= conn_out[c] < num_inputs):
                required[src[c]] = True
                changed = True


@compiled
def _longest_paths(n0: int, n1: int, c0: int, c1: int, conn_in: np.ndarray, num_inputs: int, src: np.ndarray,
                   dst: np.ndarray, live: np.ndarray, depth: np.ndarray) -> bool:
    """Relax ``depth[dst] = max(depth[dst], depth[src] + 1)`` over the live genes between nodes until
    settled: True, the longest paths. False as soon as a depth passes the count of required nodes,
    which only a cycle can make it do."""
    size = 0
    for n in range(n0, n1):
        size += depth[n]
    changed = True
    while changed:
        changed = False
        for c in range(c0, c1):
            if live[c] and not 0 <= conn_in[c] < num_inputs and depth[src[c]] + 1 > depth[dst[c]]:
                depth[dst[c]] = depth[src[c]] + 1
                changed = True
                if depth[dst[c]] > size:
                    return False
    return True


@compiled
def _order_cycles(n0: int, n1: int, c0: int, c1: int, conn_in: np.ndarray, num_inputs: int, src: np.ndarray,
                  dst: np.ndarray, live: np.ndarray, required: np.ndarray, depth: np.ndarray,
                  recurrent: np.ndarray) -> None:
    """A cyclic genome's layers and recurrent genes, as ``evaluation_plan`` finds them: a depth-first
    search over the live node pairs from the inputs, then from every required node not yet reached, in
    ascending id, successors in ascending id; the pairs it finds pointing back onto its stack read the
    previous step, and the others layer the nodes by longest path. Local nodes: input ``i`` is ``i``,
    node entry ``e`` is ``num_inputs + e - n0``."""
    size = num_inputs + n1 - n0
    keys = np.empty(c1 - c0, np.int64)
    count = 0
    for c in range(c0, c1):
        if live[c]:
            source = conn_in[c] if 0 <= conn_in[c] < num_inputs else num_inputs + src[c] - n0
            keys[count] = source * size + num_inputs + dst[c] - n0
            count += 1
    pairs = np.unique(keys[:count])  # sorted by (source, target)
    first = np.searchsorted(pairs, np.arange(size + 1) * size)  # each node's successors: first[u] .. first[u + 1]
    back = np.zeros(len(pairs), np.bool_)
    state = np.zeros(size, np.int8)  # 1 on the stack, 2 done
    finished = np.empty(size, np.int64)  # post-order
    done = 0
    stack, at = np.empty(size, np.int64), np.empty(size, np.int64)
    for root in range(size):
        if state[root] or (root >= num_inputs and not required[n0 + root - num_inputs]):
            continue
        state[root], stack[0], at[0], top = 1, root, first[root], 0
        while top >= 0:
            node, p = stack[top], at[top]
            if p == first[node + 1]:
                state[node] = 2
                finished[done] = node
                done += 1
                top -= 1
                continue
            at[top] = p + 1
            target = pairs[p] % size
            if state[target] == 1:
                back[p] = True
            elif state[target] == 0:
                top += 1
                state[target], stack[top], at[top] = 1, target, first[target]
    targets = pairs % size
    by_target = np.argsort(targets, kind="mergesort")
    into = np.searchsorted(targets[by_target], np.arange(size + 1))  # pairs into node v: by_target[into[v]:into[v + 1]]
    level = np.zeros(size, np.int64)  # inputs: 0
    for k in range(done - 1, -1, -1):  # reversed post-order: a topological order of the forward pairs
        node = finished[k]
        if node >= num_inputs:
            for q in range(into[node], into[node + 1]):
                p = by_target[q]
                if not back[p]:
                    level[node] = max(level[node], level[pairs[p] // size])
            level[node] += 1
            depth[n0 + node - num_inputs] = level[node]
    for c in range(c0, c1):
        if live[c] and not 0 <= conn_in[c] < num_inputs:
            recurrent[c] = back[np.searchsorted(pairs, (num_inputs + src[c] - n0) * size + num_inputs + dst[c] - n0)]


def _from_layouts(genomes: Sequence[Genome], synchronous: bool, names: list[str]) -> tuple[_Nodes, _Edges, np.ndarray]:
    """Nodes, edges and output entries of every genome, each laid out by ``NetworkLayout.from_genome``."""
    code = {name: i for i, name in enumerate(names)}
    node_rows: list[tuple[int, int, float, int, int]] = []
    edge_rows: list[tuple[int, int, int, float, int, bool]] = []
    outputs: list[list[int]] = []
    for g, genome in enumerate(genomes):
        layout = NetworkLayout.from_genome(genome, synchronous)
        ids, n_in = layout.node_ids, layout.num_inputs
        base = len(node_rows) - n_in  # entry of position p >= n_in: base + p
        node_rows.extend((g, ids[p], layout.biases[p - n_in], code[layout.activations[p - n_in]], k)
                         for k, (start, end) in enumerate(layout.layer_bounds) for p in range(start, end))
        edge_rows.extend((g, e.src + base if e.src >= n_in else -1 - e.src, e.dst + base, e.weight, e.innovation,
                          e.recurrent) for e in layout.edges)
        outputs.append([base + p for p in layout.output_positions])
    nodes = _Nodes(*_columns(node_rows, (np.int64, np.int64, np.float64, np.int64, np.int64)))
    edges = _Edges(*_columns(edge_rows, (np.int64, np.int64, np.int64, np.float64, np.int64, bool)))
    # nodes in (genome, node id) order, edges in (genome, innovation) order, as the array path has them
    # (``_assemble`` and ``_by_row`` rely on it)
    edges = _Edges(*(column[np.lexsort((edges.innovation, edges.genome))] for column in edges))
    order = np.lexsort((nodes.id, nodes.genome))
    entry = np.empty(len(order), dtype=np.int64)
    entry[order] = np.arange(len(order))
    nodes = _Nodes(*(column[order] for column in nodes))
    src = np.where(edges.src < 0, edges.src, entry[np.maximum(edges.src, 0)])
    edges = edges._replace(src=src, dst=entry[edges.dst])
    return nodes, edges, entry[np.array(outputs, dtype=np.int64)]


def _columns(rows: list[tuple], dtypes: Sequence[type]) -> list[np.ndarray]:
    """The columns of ``rows`` as arrays of ``dtypes`` (empty arrays when there are no rows)."""
    columns = zip(*rows) if rows else [()] * len(dtypes)
    return [np.array(column, dtype=t) for column, t in zip(columns, dtypes)]


def _assemble(nodes: _Nodes, edges: _Edges, outputs: np.ndarray, names: list[str],
              num_inputs: int) -> PopulationLayout:
    """Rows ordered by (layer, activation, genome, node id), and the CSR parts of the edges. The nodes
    come in (genome, node id) order, so one stable sort by (layer, activation) orders them."""
    key = nodes.layer * len(names) + nodes.activation
    order = np.argsort(key.astype(np.int16) if key.max(initial=0) < 2**15 else key, kind="stable")  # int16: radix
    n = len(order)
    row = np.empty(n, dtype=np.int64)
    row[order] = np.arange(n)
    layer, activation = nodes.layer[order], nodes.activation[order]
    bounds = row_offsets(np.bincount(layer))
    layer_rows = [(int(s), int(e)) for s, e in zip(bounds[:-1], bounds[1:])]
    starts = np.flatnonzero(np.diff(layer, prepend=-1) | np.diff(activation, prepend=-1))
    segments: list[list[tuple[str, int, int]]] = [[] for _ in layer_rows]
    for s, e in zip(starts.tolist(), np.append(starts[1:], n).tolist()):
        segments[layer[s]].append((names[activation[s]], s, e))
    from_input = edges.src < 0
    src_row = row[np.where(from_input, 0, edges.src)]
    shared = np.where(from_input, n - 1 - edges.src, src_row)
    own = np.where(from_input, n - 1 - edges.src + edges.genome * num_inputs, src_row)
    dst = row[edges.dst]
    columns = (dst, shared, own, edges.weight)
    forward = _by_row([c[~edges.recurrent] for c in columns], n)
    layers = [_rows(forward, s, e) for s, e in layer_rows]
    recurrent = _rows(_by_row([c[edges.recurrent] for c in columns], n), 0, n) if edges.recurrent.any() else None
    return PopulationLayout(n, layer_rows, segments, nodes.bias[order], row[outputs.ravel()], layers, recurrent)


def _by_row(columns: list[np.ndarray], num_rows: int) -> CSR:
    """Edges (dst, shared, own, weight), given in (genome, innovation) order, in CSR order: by row, then
    column (then innovation, for two genes joining the same nodes), with the row pointers over all rows."""
    dst, shared, own, weight = columns
    pointers = row_offsets(np.bincount(dst, minlength=num_rows))
    order = np.empty(len(dst), dtype=np.int64)
    _csr_order(dst, own, pointers, order)
    return pointers, shared[order], own[order], weight[order]


@compiled
def _csr_order(dst: np.ndarray, own: np.ndarray, pointers: np.ndarray, order: np.ndarray) -> None:
    """``order``: the edges by row ``dst``, then by column ``own``, equal pairs in their given order
    (placed by row, then each row sorted stably: by insertion while short, as rows nearly always are)."""
    fill = pointers[:-1].copy()
    for e in range(len(dst)):
        order[fill[dst[e]]] = e
        fill[dst[e]] += 1
    for r in range(len(pointers) - 1):
        lo, hi = pointers[r], pointers[r + 1]
        if hi - lo > 32:
            order[lo:hi] = order[lo:hi][np.argsort(own[order[lo:hi]], kind="mergesort")]
            continue
        for i in range(lo + 1, hi):
            e, j = order[i], i
            while j > lo and own[order[j - 1]] > own[e]:
                order[j] = order[j - 1]
                j -= 1
            order[j] = e


def _rows(edges: CSR, start: int, end: int) -> CSR:
    """The CSR parts of rows [start, end) of edges ordered by ``_by_row``."""
    pointers, shared, own, weight = edges
    lo, hi = pointers[start], pointers[end]
    return pointers[start:end + 1] - lo, shared[lo:hi], own[lo:hi], weight[lo:hi]
