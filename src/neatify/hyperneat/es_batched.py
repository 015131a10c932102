"""ES-HyperNEAT for a whole population at once: every genome's quadtrees of a stage explored in one
compiled call (``es_quadtree``), then hidden nodes admitted, paths kept and phenotypes laid out as
one ``GenomeBatch`` in numpy.

The CPPNs run as flat programs (``es_cppn``), each query on its own genome's nodes only. It builds
the same networks as ``es_reference`` (same conventions, see there), which the differential tests
check.

Nodes are coded per genome: inputs ``0 ..``, outputs next, then a hidden point at quadtree grid
cell ``c`` is ``num_inputs + num_outputs + c`` (cells numbered in (y, x) order, so codes sort as
the reference numbers hidden nodes). Every quadtree centre lies on the grid of spacing
``2 ** -max_depth``; input and output points may lie anywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from neatify.genome.batch import GenomeBatch, ragged_index, row_offsets
from neatify.genome.genome import Genome
from neatify.hyperneat.es_cppn import CPPNProgram
from neatify.hyperneat.es_params import ESParams, substrate_points
from neatify.hyperneat.es_quadtree import Trees, explore
from neatify.nn.population_module import NeatPopulationModule


@dataclass(frozen=True)
class ESPhenotypes:
    """The decoded networks of a population: their genes, hidden node points, and which were capped."""

    batch: GenomeBatch
    """Row i: the phenotype of CPPN i (inputs 0.., outputs next, hidden after; bias 0; innovations 0..)."""
    hidden_start: np.ndarray
    """Offsets: row i's hidden node points are ``hidden_points[hidden_start[i]:hidden_start[i + 1]]``, in id order."""
    hidden_points: np.ndarray
    capped: np.ndarray
    """Whether row i lost hidden nodes or connections to ``max_hidden`` / ``max_connections``."""
    queries: int
    """CPPN queries the decoding took, all genomes together."""

    def sizes(self) -> tuple[np.ndarray, np.ndarray]:
        """(hidden nodes, connections) of every phenotype."""
        return self.batch.sizes()


class _Codes:
    """Node codes of one substrate and grid (see the module docstring)."""

    def __init__(self, inputs: np.ndarray, outputs: np.ndarray, params: ESParams) -> None:
        self.num_inputs, self.num_outputs = len(inputs), len(outputs)
        self.ends = self.num_inputs + self.num_outputs
        self.scale = float(2 ** params.max_depth)
        self.side = 2 * int(self.scale) + 1
        self.span = self.ends + self.side * self.side
        """Codes per genome: keys ``genome * span + code`` are unique over the population."""
        points = np.concatenate([inputs, outputs])
        cells = self.cell(points)
        on_grid = cells >= 0
        order = np.argsort(cells[on_grid])
        self._grid_cells = cells[on_grid][order]
        self._grid_codes = np.flatnonzero(on_grid)[order]

    def cell(self, points: np.ndarray) -> np.ndarray:
        """The grid cell of each point, -1 for a point off the grid."""
        scaled = (points + 1.0) * self.scale
        whole = np.round(scaled)
        on = (whole == scaled).all(axis=1)
        return np.where(on, whole[:, 1] * self.side + whole[:, 0], -1).astype(np.int64)

    def code(self, points: np.ndarray) -> np.ndarray:
        """The code of each quadtree point: an input's or output's when it is one, else its cell's."""
        cells = self.cell(points)
        codes = self.ends + cells
        if len(self._grid_cells):
            at = np.searchsorted(self._grid_cells, cells).clip(max=len(self._grid_cells) - 1)
            known = self._grid_cells[at] == cells
            codes[known] = self._grid_codes[at[known]]
        return codes

    def point(self, codes: np.ndarray) -> np.ndarray:
        """The point of each hidden code."""
        row, column = np.divmod(codes - self.ends, self.side)
        return np.stack([column, row], axis=1) / self.scale - 1.0


@dataclass
class _Edges:
    """Connections of all genomes as keys (``genome * span + code``) and weights."""

    src: np.ndarray
    dst: np.ndarray
    weight: np.ndarray


def decode(cppns: Sequence[Genome], inputs: np.ndarray, outputs: np.ndarray, params: ESParams) -> ESPhenotypes:
    """The ES-HyperNEAT phenotype of every CPPN genome (``inputs``/``outputs``: checked ``(n, 2)`` points)."""
    stage = _Stage(CPPNProgram.from_genomes(cppns, params), _Codes(inputs, outputs, params), params)
    codes, num_genomes = stage.codes, len(cppns)
    every = np.arange(num_genomes)
    capped = np.zeros(num_genomes, dtype=bool)
    found = [stage(np.repeat(every, len(inputs)), np.tile(inputs, (num_genomes, 1)),
                   np.tile(np.arange(len(inputs)), num_genomes), True)]
    hidden, unexplored = _admit(np.zeros(0, dtype=np.int64), found[-1].dst, codes, params, capped)
    for _ in range(params.iteration_level):
        owner, code = np.divmod(unexplored, codes.span)
        found.append(stage(owner, codes.point(code), code, True))
        hidden, unexplored = _admit(hidden, found[-1].dst, codes, params, capped)
    found.append(stage(np.repeat(every, len(outputs)), np.tile(outputs, (num_genomes, 1)),
                       np.tile(np.arange(len(outputs)) + len(inputs), num_genomes), False))
    return _phenotypes(cppns, _on_paths(_joined(found, hidden, codes), codes), hidden, codes, params, capped,
                       stage.queries)


@dataclass
class _Stage:
    """Explores trees of the population's CPPNs and counts the queries."""

    program: CPPNProgram
    codes: _Codes
    params: ESParams
    queries: int = 0

    def __call__(self, genome: np.ndarray, points: np.ndarray, fixed: np.ndarray, outgoing: bool) -> _Edges:
        """The connections out of (or into) each of ``points`` (of ``genome``, with codes ``fixed``) as node
        keys: the other end, a quadtree point, is looked up."""
        found, asked = explore(self.program, Trees(genome, points, outgoing), self.params)
        self.queries += asked
        base = found.genome * self.codes.span
        if outgoing:
            return _Edges(base + fixed[found.tree], base + self.codes.code(found.dst), found.weight)
        return _Edges(base + self.codes.code(found.src), base + fixed[found.tree], found.weight)


def _admit(hidden: np.ndarray, targets: np.ndarray, codes: _Codes, params: ESParams,
           capped: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Admit the new hidden keys among ``targets`` (each genome's in (y, x) order, up to ``max_hidden``);
    the hidden keys sorted, and the ones just admitted."""
    new = _distinct(targets[targets % codes.span >= codes.ends])
    new = new[~_member(new, hidden)]
    owner = new // codes.span
    have = np.bincount(hidden // codes.span, minlength=len(capped))
    rank = np.arange(len(new)) - row_offsets(np.bincount(owner, minlength=len(capped)))[owner]
    admitted = rank < np.maximum(params.max_hidden - have[owner], 0)
    capped[owner[~admitted]] = True
    return np.sort(np.concatenate([hidden, new[admitted]])), new[admitted]


def _distinct(keys: np.ndarray) -> np.ndarray:
    """The distinct values of ``keys``, sorted (one sort: ``np.unique`` hashes, and is far slower on these)."""
    ordered = np.sort(keys)
    first = np.ones(len(ordered), dtype=bool)
    first[1:] = ordered[1:] != ordered[:-1]
    return ordered[first]


def _member(keys: np.ndarray, sorted_keys: np.ndarray) -> np.ndarray:
    """Whether each of ``keys`` is in ``sorted_keys``."""
    if not len(sorted_keys):
        return np.zeros(len(keys), dtype=bool)
    at = np.searchsorted(sorted_keys, keys).clip(max=len(sorted_keys) - 1)
    return sorted_keys[at] == keys


def _joined(found: list[_Edges], hidden: np.ndarray, codes: _Codes) -> _Edges:
    """All stages' connections, each (source, target) once, from an input or hidden node to a hidden node or
    output, sorted by (genome, source code, target code)."""
    src, dst, weight = (np.concatenate([getattr(e, name) for e in found]) for name in ("src", "dst", "weight"))
    src_code, dst_code = src % codes.span, dst % codes.span
    keep = ((src_code < codes.num_inputs) | ((src_code >= codes.ends) & _member(src, hidden))) & (
        ((dst_code >= codes.num_inputs) & (dst_code < codes.ends)) | ((dst_code >= codes.ends) & _member(dst, hidden)))
    pair = src[keep] * codes.span + dst_code[keep]  # both ends are of one genome: orders as (source, target)
    order = np.argsort(pair, kind="stable")
    pair = pair[order]
    first = np.ones(len(pair), dtype=bool)
    first[1:] = pair[1:] != pair[:-1]
    order = np.flatnonzero(keep)[order[first]]
    return _Edges(src[order], dst[order], weight[order])


def _on_paths(edges: _Edges, codes: _Codes) -> _Edges:
    """The connections between nodes that lie on a path from an input to an output of their genome."""
    ends = np.concatenate([edges.src, edges.dst])
    nodes = _distinct(ends)
    index = np.searchsorted(nodes, ends)
    src, dst = index[:len(edges.src)], index[len(edges.src):]
    node_code = nodes % codes.span
    forward = _reached(src, dst, node_code < codes.num_inputs)
    backward = _reached(dst, src, (node_code >= codes.num_inputs) & (node_code < codes.ends))
    on = forward & backward
    keep = on[src] & on[dst]
    return _Edges(edges.src[keep], edges.dst[keep], edges.weight[keep])


def _reached(src: np.ndarray, dst: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Which nodes are reached from the ``start`` nodes along the (``src``, ``dst``) edges, breadth first."""
    order = np.argsort(src, kind="stable")
    offsets = row_offsets(np.bincount(src, minlength=len(start)))
    reached = start.copy()
    frontier = np.flatnonzero(start)
    while len(frontier):
        entries, _ = ragged_index(offsets, frontier)
        step = _distinct(dst[order[entries]])
        frontier = step[~reached[step]]
        reached[frontier] = True
    return reached


def _phenotypes(cppns: Sequence[Genome], edges: _Edges, hidden: np.ndarray, codes: _Codes, params: ESParams,
                capped: np.ndarray, queries: int) -> ESPhenotypes:
    """Number the kept hidden nodes per genome and lay the phenotypes out as a ``GenomeBatch``."""
    n = len(cppns)
    kept = hidden[_member(hidden, _distinct(np.concatenate([edges.src, edges.dst])))]
    kept_owner = kept // codes.span
    hidden_start = row_offsets(np.bincount(kept_owner, minlength=n))
    new_id = codes.ends + np.arange(len(kept)) - hidden_start[kept_owner]

    def node_id(keys: np.ndarray) -> np.ndarray:
        ids = keys % codes.span
        hidden_end = ids >= codes.ends
        ids[hidden_end] = new_id[np.searchsorted(kept, keys[hidden_end])]
        return ids

    owner = edges.src // codes.span
    rank = np.arange(len(owner)) - row_offsets(np.bincount(owner, minlength=n))[owner]
    keep = rank < params.max_connections
    capped[owner[~keep]] = True
    owner, rank = owner[keep], rank[keep]
    conn_start = row_offsets(np.bincount(owner, minlength=n))
    node_counts = codes.num_outputs + np.diff(hidden_start)
    node_start = row_offsets(node_counts)
    nodes = int(node_start[-1])
    batch = GenomeBatch(
        num_inputs=codes.num_inputs, num_outputs=codes.num_outputs,
        ids=np.array([g.id for g in cppns], dtype=np.int64),
        node_start=node_start, node_id=np.arange(nodes) - np.repeat(node_start[:-1], node_counts) + codes.num_inputs,
        node_bias=np.zeros(nodes), node_activation=np.zeros(nodes, dtype=np.int16),
        conn_start=conn_start, conn_innovation=rank, conn_in=node_id(edges.src[keep]),
        conn_out=node_id(edges.dst[keep]), conn_weight=edges.weight[keep],
        conn_enabled=np.ones(len(rank), dtype=bool), activations=(params.activation,))
    return ESPhenotypes(batch, hidden_start, codes.point(kept % codes.span), capped, queries)


class ESHyperNEAT:
    """ES-HyperNEAT over fixed input and output points: CPPN genomes in, runnable phenotypes out.

    Use it inside a fitness function (``decode`` the genomes it is given, run the module, set the
    fitness): the CPPNs are what travels to workers, and every backend decodes the same networks.
    """

    def __init__(self, inputs: Sequence[Sequence[float]], outputs: Sequence[Sequence[float]],
                 params: ESParams | None = None) -> None:
        self.inputs, self.outputs = substrate_points(inputs, outputs)
        self.params = params if params is not None else ESParams()

    def phenotypes(self, cppns: Sequence[Genome]) -> ESPhenotypes:
        """Every CPPN's phenotype, as a ``GenomeBatch`` row (``batch.views()[i]`` is a ``Genome`` for
        ``NeatModule`` and export), with its hidden points and cap flag."""
        if not cppns:
            raise ValueError("ES-HyperNEAT needs at least one CPPN genome to decode")
        return decode(cppns, self.inputs, self.outputs, self.params)

    def decode(self, cppns: Sequence[Genome], device: torch.device | str | None = None,
               dtype: torch.dtype = torch.float32) -> NeatPopulationModule:
        """One module running every CPPN's phenotype: ``(batch, inputs)`` -> ``(genomes, batch, outputs)``."""
        return NeatPopulationModule.from_batch(self.phenotypes(cppns).batch, device=device, dtype=dtype)
