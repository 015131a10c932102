"""Many genomes' genes in flat numpy arrays: the form a population is bred, speciated, laid out and sent in.

Genome ``i``'s node genes are entries ``node_start[i]:node_start[i + 1]`` of the ``node_*`` arrays,
sorted by node id; its connection genes are ``conn_start[i]:conn_start[i + 1]`` of the ``conn_*``
arrays, sorted by innovation. Nothing is padded: memory follows the genes, not the largest genome.
A node's kind is not stored: ids ``num_inputs .. num_inputs + num_outputs - 1`` are the outputs,
every other node gene is hidden. Activations are indices into ``activations``, a sorted tuple of
names (so sorting by index sorts by name).

A batch is never changed in place once built (operators build new arrays), so ``Genome`` objects
can be light views of one of its rows (``Genome.view``): their gene dictionaries are built only
when something reads them, and reading them leaves the view a view. The views of one batch share a
``RowState``: the fitness array, and which rows' genes were changed by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from operator import attrgetter

import numpy as np

from neatify.genome.genes import ConnectionGene, NodeGene
from neatify.genome.genome import Genome
from neatify.genome.rows import RowState


def ragged_index(start: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Entries of ``rows``' slices of a ragged array (``start`` its n + 1 offsets), concatenated in
    the order of ``rows``; and each new slice's offsets."""
    counts = start[rows + 1] - start[rows]
    new_start = row_offsets(counts)
    entries = np.arange(new_start[-1], dtype=np.int64) + np.repeat(start[rows] - new_start[:-1], counts)
    return entries, new_start


def plain_genomes(genomes: Sequence[Genome]) -> list[dict]:
    """``[g.to_dict() for g in genomes]``, from the batch's columns when they are views of one batch."""
    batch = _one_batch(genomes)
    if batch is None:
        return [g.to_dict() for g in genomes]
    rows = batch.plain_rows()
    return [{"id": g.id, "num_inputs": g.num_inputs, "num_outputs": g.num_outputs, "nodes": rows[_row_of(g)][0],
             "connections": rows[_row_of(g)][1], "fitness": g.fitness} for g in genomes]


def connection_genes(genome: Genome) -> tuple[np.ndarray, np.ndarray]:
    """(innovations sorted, their weights) of a genome: a slice of its batch for a view, so measuring a
    distance to it builds no gene objects."""
    batch, row = genome.batch_row()
    if batch is not None:
        lo, hi = int(batch.conn_start[row]), int(batch.conn_start[row + 1])
        return batch.conn_innovation[lo:hi], batch.conn_weight[lo:hi]
    conns = genome.connections
    keys = sorted(conns)
    return np.array(keys, dtype=np.int64), np.array([conns[k].weight for k in keys], dtype=np.float64)


@dataclass(frozen=True, eq=False)
class GenomeBatch:
    """The genes of ``len(ids)`` genomes with the same inputs and outputs (see the module docstring)."""

    num_inputs: int
    num_outputs: int
    ids: np.ndarray
    node_start: np.ndarray
    node_id: np.ndarray
    node_bias: np.ndarray
    node_activation: np.ndarray
    conn_start: np.ndarray
    conn_innovation: np.ndarray
    conn_in: np.ndarray
    conn_out: np.ndarray
    conn_weight: np.ndarray
    conn_enabled: np.ndarray
    activations: tuple[str, ...]

    def __post_init__(self) -> None:
        """Refuse offsets that do not fit the gene arrays (compiled loops index by them unchecked) and
        activation codes without a name. Rows' sorting is the builder's promise, not checked (it would
        cost a pass over every gene of every batch an operator makes)."""
        for kind, start, columns in (("node", self.node_start, (self.node_id, self.node_bias, self.node_activation)),
                                     ("conn", self.conn_start, (self.conn_innovation, self.conn_in, self.conn_out,
                                                                self.conn_weight, self.conn_enabled))):
            lengths = {len(column) for column in columns}
            if (len(start) != len(self.ids) + 1 or start[0] != 0 or len(lengths) != 1 or start[-1] != lengths.pop()
                    or (len(start) > 1 and (np.diff(start) < 0).any())):
                raise ValueError(f"GenomeBatch: {kind}_start must be {len(self.ids) + 1} non-decreasing offsets from 0 "
                                 f"to the length of every {kind}_* array")
        codes = self.node_activation
        if len(codes) and not 0 <= int(codes.min()) <= int(codes.max()) < len(self.activations):
            raise ValueError(f"GenomeBatch: node_activation must index the {len(self.activations)} activation "
                             f"name(s), got codes {int(codes.min())} .. {int(codes.max())}")

    def __len__(self) -> int:
        return len(self.ids)

    def node_owner(self) -> np.ndarray:
        """The row of each node gene."""
        return row_owner(self.node_start)

    def conn_owner(self) -> np.ndarray:
        """The row of each connection gene."""
        return row_owner(self.conn_start)

    def hidden(self) -> np.ndarray:
        """Whether each node gene is hidden: every id but the outputs' (see the module docstring)."""
        return (self.node_id < self.num_inputs) | (self.node_id >= self.num_inputs + self.num_outputs)

    # --- to and from Genome objects ---
    @classmethod
    def from_genomes(cls, genomes: Sequence[Genome]) -> GenomeBatch:
        """The genes of ``genomes``, in order. Views are taken from their batches in array operations;
        only the genes of genomes that own them (built by hand, or views whose genes were changed) are read
        one by one."""
        if not genomes:
            raise ValueError("a GenomeBatch needs at least one genome")
        ids = np.fromiter(map(_genome_id, genomes), np.int64, len(genomes))
        batch = _one_batch(genomes)
        if batch is not None:  # views of one batch: the usual case
            rows = np.fromiter(map(_row_of, genomes), np.int64, len(genomes))
            if len(rows) == len(batch) and (rows == np.arange(len(rows))).all() and (ids == batch.ids).all():
                return batch
            return batch.take(rows, ids)
        places = list(zip(map(_batch_of, genomes), map(_row_of, genomes)))
        first = genomes[0]
        shape = (first.num_inputs, first.num_outputs)
        if any((g.num_inputs, g.num_outputs) != shape for g in genomes):
            genome = next(g for g in genomes if (g.num_inputs, g.num_outputs) != shape)
            raise ValueError(f"genome {genome.id} has {genome.num_inputs} inputs and {genome.num_outputs} "
                             f"outputs, genome {first.id} {shape[0]} and {shape[1]}")
        parts, order = [], np.empty(len(genomes), dtype=np.int64)
        by_batch: dict[GenomeBatch, list[int]] = {}
        owned: list[int] = []
        for i, (batch, _) in enumerate(places):
            if batch is None:
                owned.append(i)
            else:
                by_batch.setdefault(batch, []).append(i)
        placed = 0
        for batch, where in by_batch.items():
            parts.append(batch.take(np.array([places[i][1] for i in where], dtype=np.int64), ids[where]))
            order[where] = np.arange(placed, placed + len(where))
            placed += len(where)
        if owned:
            parts.append(cls._read([genomes[i] for i in owned]))
            order[owned] = np.arange(placed, placed + len(owned))
        if len(parts) == 1 and (order == np.arange(len(order))).all():
            return parts[0]
        return cls.concat(parts).take(order)

    @classmethod
    def _read(cls, genomes: Sequence[Genome]) -> GenomeBatch:
        """Read every genome's genes (the general path of ``from_genomes``): one pass per field over all
        genes in the genomes' own order, then each row sorted in one numpy sort."""
        nodes = [n for g in genomes for n in g.nodes.values()]
        conns = [c for g in genomes for c in g.connections.values()]
        names = tuple(sorted(set(map(attrgetter("activation"), nodes))))
        code = {name: i for i, name in enumerate(names)}
        node_start = row_offsets([len(g.nodes) for g in genomes])
        conn_start = row_offsets([len(g.connections) for g in genomes])
        node_id = _column(nodes, "id", np.int64)
        node = _row_order(node_start, node_id)
        innovation = _column(conns, "innovation", np.int64)
        conn = _row_order(conn_start, innovation)
        return cls(
            num_inputs=genomes[0].num_inputs, num_outputs=genomes[0].num_outputs,
            ids=np.fromiter((g.id for g in genomes), np.int64, len(genomes)),
            node_start=node_start, node_id=node_id[node], node_bias=_column(nodes, "bias", np.float64)[node],
            node_activation=np.fromiter((code[n.activation] for n in nodes), np.int16, len(nodes))[node],
            conn_start=conn_start, conn_innovation=innovation[conn], conn_in=_column(conns, "in_node", np.int64)[conn],
            conn_out=_column(conns, "out_node", np.int64)[conn], conn_weight=_column(conns, "weight", np.float64)[conn],
            conn_enabled=_column(conns, "enabled", bool)[conn],
            activations=names)

    def plain_rows(self) -> list[tuple[list[list], list[list]]]:
        """Every row's (node lists, connection lists) as ``Genome.to_dict`` writes them, from whole
        columns (no gene objects)."""
        names = self.activations
        kinds = np.where(self.hidden(), "hidden", "output")
        nodes = list(map(list, zip(self.node_id.tolist(), kinds.tolist(), self.node_bias.tolist(),
                                   [names[a] for a in self.node_activation.tolist()])))
        conns = list(map(list, zip(self.conn_innovation.tolist(), self.conn_in.tolist(), self.conn_out.tolist(),
                                   self.conn_weight.tolist(), self.conn_enabled.tolist())))
        node_start, conn_start = self.node_start.tolist(), self.conn_start.tolist()
        return [(nodes[node_start[i]:node_start[i + 1]], conns[conn_start[i]:conn_start[i + 1]])
                for i in range(len(self.ids))]

    def views(self, state: RowState | None = None) -> list[Genome]:
        """One light ``Genome`` per row, its genes read from this batch when first asked for, its fitness
        that row's in ``state`` (default: a new one, no fitness yet)."""
        state = state if state is not None else RowState(len(self))
        return [Genome.view(self, row, genome_id, state) for row, genome_id in enumerate(self.ids.tolist())]

    def genes(self, row: int) -> tuple[dict[int, NodeGene], dict[int, ConnectionGene]]:
        """Row ``row``'s genes as fresh gene objects, keyed as ``Genome.nodes`` and ``Genome.connections``."""
        lo, hi = int(self.node_start[row]), int(self.node_start[row + 1])
        first_hidden = self.num_inputs + self.num_outputs
        names = self.activations
        nodes = {}
        for node_id, bias, activation in zip(self.node_id[lo:hi].tolist(), self.node_bias[lo:hi].tolist(),
                                             self.node_activation[lo:hi].tolist()):
            kind = "hidden" if node_id >= first_hidden or node_id < self.num_inputs else "output"
            nodes[node_id] = NodeGene(node_id, kind, bias, names[activation])
        lo, hi = int(self.conn_start[row]), int(self.conn_start[row + 1])
        conns = {k: ConnectionGene(k, a, b, w, e) for k, a, b, w, e in zip(
            self.conn_innovation[lo:hi].tolist(), self.conn_in[lo:hi].tolist(), self.conn_out[lo:hi].tolist(),
            self.conn_weight[lo:hi].tolist(), self.conn_enabled[lo:hi].tolist())}
        return nodes, conns

    # --- whole-batch operations ---
    def take(self, rows: np.ndarray, ids: np.ndarray | None = None) -> GenomeBatch:
        """Rows ``rows`` (repeats allowed) as a new batch; ``ids`` renames them (default: their ids)."""
        rows = np.asarray(rows, dtype=np.int64)
        node, node_start = ragged_index(self.node_start, rows)
        conn, conn_start = ragged_index(self.conn_start, rows)
        return GenomeBatch(
            self.num_inputs, self.num_outputs, self.ids[rows] if ids is None else np.asarray(ids, np.int64),
            node_start, self.node_id[node], self.node_bias[node], self.node_activation[node],
            conn_start, self.conn_innovation[conn], self.conn_in[conn], self.conn_out[conn],
            self.conn_weight[conn], self.conn_enabled[conn], self.activations)

    def replaced(self, rows: np.ndarray, genomes: Sequence[Genome]) -> GenomeBatch:
        """This batch with rows ``rows`` holding the genes of ``genomes`` (one each) instead."""
        order = np.arange(len(self))
        order[rows] = len(self) + np.arange(len(rows))
        return GenomeBatch.concat([self, GenomeBatch.from_genomes(genomes)]).take(order)

    def with_activations(self, names: tuple[str, ...]) -> GenomeBatch:
        """The same genes with activations coded as indices into ``names`` (sorted, holding all of ours)."""
        if names == self.activations:
            return self
        if list(names) != sorted(set(names)):
            raise ValueError(f"activation names must be sorted and distinct, got {names!r}")
        code = np.array([names.index(name) for name in self.activations], dtype=np.int16)
        return replace(self, node_activation=code[self.node_activation] if len(code) else self.node_activation,
                       activations=names)

    @staticmethod
    def concat(batches: Sequence[GenomeBatch]) -> GenomeBatch:
        """The rows of ``batches`` one after another."""
        names = tuple(sorted({name for b in batches for name in b.activations}))
        batches = [b.with_activations(names) for b in batches]
        first = batches[0]

        def joined(field: str) -> np.ndarray:
            return np.concatenate([getattr(b, field) for b in batches])

        return GenomeBatch(
            first.num_inputs, first.num_outputs, joined("ids"),
            _joined_offsets([b.node_start for b in batches]), joined("node_id"), joined("node_bias"),
            joined("node_activation"), _joined_offsets([b.conn_start for b in batches]), joined("conn_innovation"),
            joined("conn_in"), joined("conn_out"), joined("conn_weight"), joined("conn_enabled"), names)

    def sizes(self) -> tuple[np.ndarray, np.ndarray]:
        """(hidden nodes, enabled connections) of every row, as ``Genome.size`` counts them."""
        n = len(self.ids)
        hidden = np.bincount(self.node_owner(), weights=self.hidden(), minlength=n).astype(np.int64)
        return hidden, np.bincount(self.conn_owner(), weights=self.conn_enabled, minlength=n).astype(np.int64)


_genome_id = attrgetter("id")
_batch_of, _row_of, _state_of = attrgetter("_batch"), attrgetter("_row"), attrgetter("_state")
"""A view's parts without a Python call per genome (this module is the batch's own)."""


def rows_of(genomes: Sequence[Genome], state: RowState) -> np.ndarray:
    """The rows of ``genomes``, each a view sharing ``state`` (one generation's); ValueError naming the
    first genome that is not."""
    states = list(map(_state_of, genomes))
    if states.count(state) != len(states):
        stranger = next(g for g, s in zip(genomes, states) if s is not state)
        raise ValueError(f"genome {stranger.id} is not one of this generation's genomes")
    return np.fromiter(map(_row_of, genomes), np.int64, len(genomes))


def _one_batch(genomes: Sequence[Genome]) -> GenomeBatch | None:
    """The batch when every genome is a view of that same batch, genes unchanged, else None (one attribute
    pass; ``list.count`` compares by identity first)."""
    sources = list(map(_batch_of, genomes))
    batch = sources[0] if sources else None
    return batch if batch is not None and sources.count(batch) == len(sources) else None


def _column(genes: list, field: str, dtype: type) -> np.ndarray:
    """Attribute ``field`` of every gene as an array."""
    return np.fromiter(map(attrgetter(field), genes), dtype, len(genes))


def _row_order(start: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """The order sorting each row of a ragged array (``start`` its offsets) by ``keys``, rows kept in place."""
    return np.lexsort((keys, row_owner(start)))


def row_offsets(counts: Sequence[int] | np.ndarray) -> np.ndarray:
    """The n + 1 offsets (``node_start``, ``conn_start``) of ragged rows of ``counts`` entries; of a
    boolean mask, how many entries are marked before each position (and in all, last)."""
    start = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=start[1:])
    return start


def row_owner(start: np.ndarray) -> np.ndarray:
    """The row of each entry of a ragged array with offsets ``start``."""
    return np.repeat(np.arange(len(start) - 1), np.diff(start))


def _joined_offsets(starts: list[np.ndarray]) -> np.ndarray:
    """Offsets of ragged arrays laid one after another."""
    shifts = np.cumsum([0] + [int(s[-1]) for s in starts[:-1]])
    return np.concatenate([starts[0][:1]] + [s[1:] + shift for s, shift in zip(starts, shifts)])
