"""Every genome of a population laid out as rows of one matrix, computed in numpy array operations.

This is what ``NeatPopulationModule`` runs (torch stays in ``neatify.nn``). Each genome's genes are
read once into flat arrays (one entry per node gene or enabled connection gene of every genome);
required nodes, depth levels and the row order are then found for all genomes at once:

- required nodes (those whose value reaches an output): reverse reachability from the outputs, one
  array pass per step back;
- depth levels (longest path from the inputs): relaxation ``depth[dst] = max(depth[dst], depth[src]
  + 1)`` over every live edge, repeated until nothing changes. In a feed-forward genome no depth can
  exceed its count of required nodes, so a genome whose depths pass that count has a cycle. Those
  genomes, and only those, are planned one by one by ``evaluation_plan`` (as ``NetworkLayout.from_genome``
  does), whose ordered depth-first search decides which edges are recurrent; its layers and recurrent
  edges are written back into the arrays;
- rows: layer by layer, inside a layer by activation name, then genome, then node id: the order of
  laying every genome out with ``NetworkLayout.from_genome`` and stacking their layers.

Synchronous layouts need no depths: every required node is in the one layer and every edge from a
non-input node reads the previous step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from neatify.genome import Genome
from neatify.genome_batch import GenomeBatch, row_offsets
from neatify.graph import evaluation_plan
from neatify.network import NetworkLayout

CSR = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
"""Row pointers, shared-input columns, per-genome-input columns, values."""

_Lookup = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""(genome indices, node ids) -> entries in the gathered node genes, -1 where the genome has no such node."""

_CONNECTION = np.dtype([("in_node", np.int64), ("out_node", np.int64), ("weight", np.float64),
                        ("innovation", np.int64), ("enabled", bool)])
_NODE = np.dtype([("id", np.int64), ("bias", np.float64)])


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
        else:
            genes, names = _gather(genomes)
            nodes, edges, outputs = _from_arrays(genomes, genes, synchronous)
        return _assemble(nodes, edges, outputs, names, genomes[0].num_inputs)

    def equals(self, other: PopulationLayout) -> bool:
        """Whether both have the same rows, segments and edges, array for array (dtypes included)."""
        if (self.num_nodes, self.layer_rows, self.segments) != (other.num_nodes, other.layer_rows, other.segments):
            return False
        if len(self.layers) != len(other.layers) or (self.recurrent is None) != (other.recurrent is None):
            return False
        ours = [self.bias, self.outputs, *(a for csr in self.layers + [self.recurrent or ()] for a in csr)]
        theirs = [other.bias, other.outputs, *(a for csr in other.layers + [other.recurrent or ()] for a in csr)]
        return all(a.dtype == b.dtype and np.array_equal(a, b) for a, b in zip(ours, theirs))


class _Genes(NamedTuple):
    """Every node gene and enabled connection gene of a population, in flat arrays."""

    node_genome: np.ndarray
    nodes: np.ndarray
    """``_NODE`` records."""
    activation: np.ndarray
    """Code into the sorted activation names: sorting by code sorts by name."""
    conn_genome: np.ndarray
    connections: np.ndarray
    """``_CONNECTION`` records, enabled ones only."""


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


def _gather(genomes: Sequence[Genome]) -> tuple[_Genes, list[str]]:
    """Every genome's genes as flat arrays (a gather from their batch for unread views); also the
    sorted activation names."""
    batch = GenomeBatch.from_genomes(genomes)
    nodes = np.empty(len(batch.node_id), _NODE)
    nodes["id"], nodes["bias"] = batch.node_id, batch.node_bias
    enabled = batch.conn_enabled
    connections = np.empty(int(enabled.sum()), _CONNECTION)
    for name, column in (("in_node", batch.conn_in), ("out_node", batch.conn_out), ("weight", batch.conn_weight),
                         ("innovation", batch.conn_innovation)):
        connections[name] = column[enabled]
    connections["enabled"] = True
    genes = _Genes(batch.node_owner(), nodes, batch.node_activation.astype(np.int64), batch.conn_owner()[enabled],
                   connections)
    return genes, list(batch.activations)


def _from_arrays(genomes: Sequence[Genome], genes: _Genes, synchronous: bool) -> tuple[_Nodes, _Edges, np.ndarray]:
    """Nodes, edges and output entries of every genome in array operations; the layers and recurrent
    edges of cyclic genomes (asynchronous mode only) come from ``evaluation_plan``."""
    num_inputs, num_outputs = genomes[0].num_inputs, genomes[0].num_outputs
    conns, node_genome = genes.connections, genes.node_genome
    entry = _entries(genes, genomes)
    src, dst = entry(genes.conn_genome, conns["in_node"]), entry(genes.conn_genome, conns["out_node"])
    from_input = (conns["in_node"] >= 0) & (conns["in_node"] < num_inputs)
    into_input = (conns["out_node"] >= 0) & (conns["out_node"] < num_inputs)
    out_genome = np.repeat(np.arange(len(genomes)), num_outputs)
    out_id = np.tile(np.arange(num_inputs, num_inputs + num_outputs), len(genomes))
    outputs = entry(out_genome, out_id)
    if (outputs < 0).any():
        i = int(np.flatnonzero(outputs < 0)[0])
        raise ValueError(f"genome {genomes[out_genome[i]].id} lacks the gene of output node {out_id[i]}")
    between = ~from_input & ~into_input & (src >= 0) & (dst >= 0)
    required = _required(len(node_genome), outputs, src[between], dst[between])
    live = ~into_input & (dst >= 0)
    live[live] = required[dst[live]]
    unknown = live & ~from_input & (src < 0)
    if unknown.any():
        e = int(np.flatnonzero(unknown)[0])
        raise ValueError(f"genome {genomes[genes.conn_genome[e]].id}: connection {conns['innovation'][e]} comes "
                         f"from node {conns['in_node'][e]}, which the genome does not have")
    inner = live & ~from_input
    if synchronous:
        depth, recurrent = required.astype(np.int64), inner
    else:
        depth, cyclic = _depths(node_genome, required, src[inner], dst[inner], len(genomes))
        recurrent = np.zeros(len(conns), dtype=bool)
        if cyclic.any():
            pairs = _plan_cyclic(genomes, np.flatnonzero(cyclic).tolist(), entry, depth)
            recurrent[inner] = np.isin(src[inner] * len(depth) + dst[inner], pairs)
    entry_of = np.cumsum(required) - 1  # gene entry -> entry among the required nodes
    nodes = _Nodes(node_genome[required], genes.nodes["id"][required], genes.nodes["bias"][required],
                   genes.activation[required], depth[required] - 1)
    edges = _Edges(genes.conn_genome[live], np.where(from_input, -1 - conns["in_node"], entry_of[src])[live],
                   entry_of[dst[live]], conns["weight"][live], conns["innovation"][live], recurrent[live])
    return nodes, edges, entry_of[outputs].reshape(len(genomes), num_outputs)


def _plan_cyclic(genomes: Sequence[Genome], which: list[int], entry: _Lookup, depth: np.ndarray) -> np.ndarray:
    """Lay out genomes ``which`` by ``evaluation_plan``, genome by genome: their nodes' ``depth`` is set to
    the plan's layer; returns their recurrent edges as ``src entry * len(depth) + dst entry``."""
    node_genome, node_id, layer, edge_genome, edge_src, edge_dst = [], [], [], [], [], []
    for g in which:
        genome = genomes[g]
        plan = evaluation_plan(genome.enabled_edges(), genome.input_ids, genome.output_ids)
        for k, nodes in enumerate(plan.layers, 1):
            node_id.extend(nodes)
            node_genome.extend([g] * len(nodes))
            layer.extend([k] * len(nodes))
        edge_genome.extend([g] * len(plan.recurrent_edges))
        edge_src.extend(a for a, _ in plan.recurrent_edges)
        edge_dst.extend(b for _, b in plan.recurrent_edges)
    depth[entry(np.array(node_genome, dtype=np.int64), np.array(node_id, dtype=np.int64))] = layer
    edge_genome_a = np.array(edge_genome, dtype=np.int64)
    src, dst = (entry(edge_genome_a, np.array(ids, dtype=np.int64)) for ids in (edge_src, edge_dst))
    return src * len(depth) + dst


def _entries(genes: _Genes, genomes: Sequence[Genome]) -> _Lookup:
    """A function mapping (genome, node id) pairs to their entries in ``genes``' nodes, -1 where none,
    through one sorted key ``genome * stride + id``."""
    ids, conns = genes.nodes["id"], genes.connections
    if ids.min(initial=0) < 0:
        i = int(np.argmin(ids))
        raise ValueError(f"genome {genomes[genes.node_genome[i]].id} has node id {ids[i]}; node ids are never negative")
    stride = 1 + int(max(ids.max(initial=0), conns["in_node"].max(initial=0), conns["out_node"].max(initial=0)))
    if stride > np.iinfo(np.int64).max // len(genomes):
        raise ValueError(f"node id {stride - 1} is too large to lay out {len(genomes)} genomes at once "
                         f"(genomes * (largest id + 1) must fit in 64 bits)")
    keys = genes.node_genome * stride + ids
    order = np.argsort(keys)
    keys = keys[order]

    def entry(genome: np.ndarray, node_id: np.ndarray) -> np.ndarray:
        wanted = genome * stride + node_id
        if not len(keys):
            return np.full(len(wanted), -1)
        at = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
        return np.where((keys[at] == wanted) & (node_id >= 0), order[at], -1)

    return entry


def _required(num_nodes: int, outputs: np.ndarray, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Whether each node reaches an output over the node-to-node edges (reverse reachability)."""
    required = np.zeros(num_nodes, dtype=bool)
    required[outputs] = True
    while True:
        reached = required[dst] & ~required[src]
        if not reached.any():
            return required
        required[src[reached]] = True


def _depths(node_genome: np.ndarray, required: np.ndarray, src: np.ndarray, dst: np.ndarray,
            num_genomes: int) -> tuple[np.ndarray, np.ndarray]:
    """Longest-path depth of each node (1 = nothing but inputs before it) by relaxation over the live
    node-to-node edges, and which genomes have a cycle: their depths grow past their required count.
    A genome leaves the relaxation once a pass changes none of its depths, or once found cyclic."""
    size = np.bincount(node_genome[required], minlength=num_genomes)
    depth = required.astype(np.int64)
    cyclic = np.zeros(num_genomes, dtype=bool)
    genome = node_genome[dst]
    while len(src):
        before = depth[dst]
        np.maximum.at(depth, dst, depth[src] + 1)
        after = depth[dst]
        moving = np.zeros(num_genomes, dtype=bool)
        moving[genome[after != before]] = True
        grown = genome[after > size[genome]]
        cyclic[grown] = True
        moving[grown] = False
        active = moving[genome]
        src, dst, genome = src[active], dst[active], genome[active]
    return depth, cyclic


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
    return nodes, edges, np.array(outputs, dtype=np.int64)


def _columns(rows: list[tuple], dtypes: Sequence[type]) -> list[np.ndarray]:
    """The columns of ``rows`` as arrays of ``dtypes`` (empty arrays when there are no rows)."""
    columns = zip(*rows) if rows else [()] * len(dtypes)
    return [np.array(column, dtype=t) for column, t in zip(columns, dtypes)]


def _assemble(nodes: _Nodes, edges: _Edges, outputs: np.ndarray, names: list[str],
              num_inputs: int) -> PopulationLayout:
    """Rows ordered by (layer, activation, genome, node id), and the CSR parts of the edges."""
    order = np.lexsort((nodes.id, nodes.genome, nodes.activation, nodes.layer))
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
    columns = (dst, shared, own, edges.weight, edges.innovation)
    forward = _by_row([c[~edges.recurrent] for c in columns], n)
    layers = [_rows(forward, s, e) for s, e in layer_rows]
    recurrent = _rows(_by_row([c[edges.recurrent] for c in columns], n), 0, n) if edges.recurrent.any() else None
    return PopulationLayout(n, layer_rows, segments, nodes.bias[order], row[outputs.ravel()], layers, recurrent)


def _by_row(columns: list[np.ndarray], num_rows: int) -> CSR:
    """Edges (dst, shared, own, weight, innovation) in CSR order: by row, then column (then innovation, for
    two genes joining the same nodes), with the row pointers over all rows."""
    dst, shared, own, weight, innovation = columns
    key = dst * (int(own.max(initial=0)) + 1) + own
    order = np.argsort(key)
    if (np.diff(key[order]) == 0).any():
        order = np.lexsort((innovation, key))
    pointers = row_offsets(np.bincount(dst, minlength=num_rows))
    return pointers, shared[order], own[order], weight[order]


def _rows(edges: CSR, start: int, end: int) -> CSR:
    """The CSR parts of rows [start, end) of edges ordered by ``_by_row``."""
    pointers, shared, own, weight = edges
    lo, hi = pointers[start], pointers[end]
    return pointers[start:end + 1] - lo, shared[lo:hi], own[lo:hi], weight[lo:hi]
