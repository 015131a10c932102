"""Genomes as packed columns: one genome transport for the process pool, Ray actors and TCP workers.

The sending side reads a generation's genomes once into a ``GenomeBatch`` (one array gather when they
are unread views of one batch) and fills, once per generation, one numpy record array per gene kind from
its columns (``ColumnEncoder``). A batch of genomes travels as ``GenomeColumns``: their ids, their gene
counts, and their node and connection records back to back, so a batch of consecutive rows is a few
slices of those arrays (no Python per genome); any other rows (a re-sent batch, a species) are gathered
in one numpy index. The evaluating side decodes the columns into one ``GenomeBatch``
(``decode_columns``): it checks everything with a few numpy operations per batch, sorts each genome's
genes (node id, innovation) as a batch keeps them, and hands out ``Genome`` views of its rows, whose
gene objects are built only if the fitness function reads them. A node's kind is not sent: it follows
from its id (outputs are ``num_inputs`` to ``num_inputs + num_outputs - 1``). The fitness is not sent
either: genomes to evaluate have none yet. The TCP wire sends the same columns as a TASK_ASSIGNMENT
(``neatify.distributed.wire.columns``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from neatify.activations import ACTIVATIONS
from neatify.genome.batch import GenomeBatch, ragged_index, row_offsets
from neatify.genome.genome import Genome
from neatify.io.schema import is_id, shown

NODE_RECORD = np.dtype([("id", "<i8"), ("bias", "<f8"), ("activation", "u1")])
"""A node gene packed (17 bytes): its id, bias, and activation as an index into ``activation_names``."""
CONNECTION_RECORD = np.dtype([("innovation", "<i8"), ("in_node", "<i8"), ("out_node", "<i8"),
                              ("weight", "<f8"), ("enabled", "u1")])
"""A connection gene packed (33 bytes); ``enabled`` is 0 or 1."""
GENE_COUNT = np.dtype("<u4")
"""A genome's number of node (or connection) genes packed."""
GENOME_ID = np.dtype("<i8")
"""A genome id in a bytes column."""

Bytes = bytes | memoryview


class ColumnsError(ValueError):
    """Genome columns that do not fit together, or hold an invalid genome (named by its id)."""


@dataclass(frozen=True)
class GenomeColumns:
    """A batch of genomes as packed columns: plain bytes and numbers, cheap to pickle or to send."""

    num_inputs: int
    num_outputs: int
    activation_names: list[str]
    """The activation functions' names; a node record holds an index into this list."""
    ids: Bytes
    """The genomes' ids, ``GENOME_ID`` each."""
    node_counts: Bytes
    """Each genome's number of node records, ``GENE_COUNT`` each; ``conn_counts`` likewise."""
    conn_counts: Bytes
    nodes: Bytes
    """Every genome's node records (``NODE_RECORD``), genome after genome."""
    connections: Bytes
    """Every genome's connection records (``CONNECTION_RECORD``), genome after genome."""

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        """Pickled (for a pool process or a Ray actor) with its memoryviews copied to bytes."""
        return GenomeColumns, (self.num_inputs, self.num_outputs, self.activation_names,
                               *(bytes(column) for column in (self.ids, self.node_counts, self.conn_counts,
                                                              self.nodes, self.connections)))


class ColumnEncoder:
    """A generation's genomes in their packed form, built once: every batch's columns are cut from it."""

    def __init__(self, batch: GenomeBatch) -> None:
        if len(batch.activations) > 256:
            raise ValueError(f"the columns code activations in one byte: {len(batch.activations)} names are too many")
        self.batch = batch
        self.nodes = np.empty(len(batch.node_id), NODE_RECORD)
        self.nodes["id"], self.nodes["bias"], self.nodes["activation"] = \
            batch.node_id, batch.node_bias, batch.node_activation
        self.conns = np.empty(len(batch.conn_innovation), CONNECTION_RECORD)
        self.conns["innovation"], self.conns["in_node"], self.conns["out_node"] = \
            batch.conn_innovation, batch.conn_in, batch.conn_out
        self.conns["weight"], self.conns["enabled"] = batch.conn_weight, batch.conn_enabled
        self.ids = batch.ids.astype(GENOME_ID)
        self.node_counts = np.diff(batch.node_start).astype(GENE_COUNT)
        self.conn_counts = np.diff(batch.conn_start).astype(GENE_COUNT)
        # the records' own memory as bytes: consecutive rows are sliced out of it, nothing copied
        self._node_bytes, self._conn_bytes = (memoryview(r.view(np.uint8)) for r in (self.nodes, self.conns))
        self._rows = np.arange(len(batch))
        """Every row in order: consecutive rows are a slice of it."""
        self._node_ends = (batch.node_start * NODE_RECORD.itemsize).tolist()
        self._conn_ends = (batch.conn_start * CONNECTION_RECORD.itemsize).tolist()

    @classmethod
    def of(cls, genomes: list[Genome]) -> ColumnEncoder:
        """The packed form of ``genomes`` (at least one), in order."""
        return cls(GenomeBatch.from_genomes(genomes))

    def __len__(self) -> int:
        return len(self.ids)

    def columns(self, rows: np.ndarray | None = None) -> GenomeColumns:
        """The columns of ``rows`` (default: every row), in their order. Consecutive rows' records are
        memoryviews of the generation's (sliced, not copied); others are gathered."""
        rows = self._rows if rows is None else rows
        if not rows.size:
            raise ValueError("a batch of columns holds at least one genome")
        lo, hi = int(rows[0]), int(rows[-1]) + 1
        if hi - lo == rows.size and rows.tobytes() == self._rows[lo:hi].tobytes():  # consecutive: slices
            ids, node_counts, conn_counts = self.ids[lo:hi], self.node_counts[lo:hi], self.conn_counts[lo:hi]
            nodes = self._node_bytes[self._node_ends[lo]:self._node_ends[hi]]
            conns = self._conn_bytes[self._conn_ends[lo]:self._conn_ends[hi]]
        else:
            ids, node_counts, conn_counts = self.ids[rows], self.node_counts[rows], self.conn_counts[rows]
            nodes = self.nodes[ragged_index(self.batch.node_start, rows)[0]].tobytes()
            conns = self.conns[ragged_index(self.batch.conn_start, rows)[0]].tobytes()
        return GenomeColumns(self.batch.num_inputs, self.batch.num_outputs, list(self.batch.activations),
                             ids.tobytes(), node_counts.tobytes(), conn_counts.tobytes(), nodes, conns)


def decode_columns(columns: GenomeColumns) -> GenomeBatch:
    """The genes of ``columns`` as one ``GenomeBatch``, all checked first (its ``views()`` are the genomes,
    whose gene objects are built only when read).

    Raises ColumnsError naming the bad column, or the first bad genome and its problem.
    """
    problem = _columns_problem(columns)
    if problem:
        raise ColumnsError(f"invalid genome columns: {problem}")
    batch = _Batch(columns)
    batch.check()
    return batch.genome_batch()


def _columns_problem(columns: GenomeColumns) -> str | None:
    """Why the shape, activation names or columns of a batch do not fit together (None when they do)."""
    num_inputs, num_outputs = columns.num_inputs, columns.num_outputs
    if not (is_id(num_inputs) and is_id(num_outputs)):
        return f"num_inputs and num_outputs must be integers below 2^63, got {num_inputs}, {num_outputs}"
    if not columns.ids or len(columns.ids) % GENOME_ID.itemsize:
        return f"ids must hold one or more {GENOME_ID.itemsize}-byte genome ids, got {len(columns.ids)} bytes"
    count = len(columns.ids) // GENOME_ID.itemsize
    kinds = (("node_counts", columns.node_counts, NODE_RECORD, columns.nodes),
             ("conn_counts", columns.conn_counts, CONNECTION_RECORD, columns.connections))
    for name, counts, record, genes in kinds:
        if len(counts) != count * GENE_COUNT.itemsize:
            return f"{name} must hold {count} {GENE_COUNT.itemsize}-byte counts (one per id), got {len(counts)} bytes"
        total = int(np.frombuffer(counts, GENE_COUNT).sum(dtype=np.int64))
        if len(genes) != total * record.itemsize:
            return f"{name} add up to {total} records of {record.itemsize} bytes, the records hold {len(genes)} bytes"
    return None


def _first(bad: np.ndarray) -> int | None:
    """The first index where ``bad`` holds, or None."""
    hits = np.flatnonzero(bad)
    return int(hits[0]) if hits.size else None


def _pair_keys(groups: np.ndarray, values: np.ndarray) -> np.ndarray:
    """One int64 per (group, value) pair, ordered as the pairs (groups and values non-negative).

    ``group * (max value + 1) + value`` while that fits in 63 bits, else the values' ranks stand in for them.
    """
    top = int(values.max(initial=0)) + 1
    if (int(groups.max(initial=0)) + 1) * top >= 2**63:
        values = np.unique(values, return_inverse=True)[1].reshape(-1)
        top = int(values.max(initial=0)) + 1
    return groups * top + values


def _sort_pairs(groups: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, int | None]:
    """The order sorting the (group, value) pairs, and the index of a pair that occurs earlier too (or None)."""
    keys = _pair_keys(groups, values)
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    hits = np.flatnonzero(ordered[1:] == ordered[:-1])
    return order, (int(order[hits[0] + 1]) if hits.size else None)


class _Batch:
    """A batch's columns as numpy arrays, with each gene's genome (its position in the batch)."""

    def __init__(self, columns: GenomeColumns) -> None:
        self.ids = np.frombuffer(columns.ids, GENOME_ID)
        self.nodes = np.frombuffer(columns.nodes, NODE_RECORD)
        self.conns = np.frombuffer(columns.connections, CONNECTION_RECORD)
        self.node_counts = np.frombuffer(columns.node_counts, GENE_COUNT).astype(np.int64)
        self.conn_counts = np.frombuffer(columns.conn_counts, GENE_COUNT).astype(np.int64)
        self.num_inputs, self.num_outputs = columns.num_inputs, columns.num_outputs
        self.names = columns.activation_names
        positions = np.arange(len(self.ids))
        self.node_genome = np.repeat(positions, self.node_counts)
        """Each node's genome (its position in the columns); ``conn_genome`` likewise."""
        self.conn_genome = np.repeat(positions, self.conn_counts)
        ids = self.nodes["id"]
        self.is_output = (ids >= self.num_inputs) & (ids - self.num_inputs < self.num_outputs)
        self.node_order = self.conn_order = np.zeros(0, dtype=np.int64)
        """The order sorting the nodes by (genome, id), the connections by (genome, innovation): set by ``check``."""

    def refuse(self, position: int, problem: str) -> ColumnsError:
        return ColumnsError(f"an invalid genome: genome {self.ids[position]}: {problem}")

    def check(self) -> None:
        """Raise ColumnsError for the first problem found (ids, then nodes, then connections)."""
        if (k := _first(self.ids < 0)) is not None:
            raise ColumnsError(f"an invalid genome: genome #{k} of the batch: its id "
                                f"{self.ids[k]} is negative")
        self._check_nodes()
        self._check_connections()

    def _check_nodes(self) -> None:
        ids, biases, activations, g = self.nodes["id"], self.nodes["bias"], self.nodes["activation"], self.node_genome
        if (i := _first(ids < self.num_inputs)) is not None:
            raise self.refuse(g[i], f"node id {ids[i]} is an input's or negative")
        self.node_order, i = _sort_pairs(g, ids)
        if i is not None:
            raise self.refuse(g[i], f"node id {ids[i]} occurs twice")
        outputs = np.bincount(g[self.is_output], minlength=len(self.ids))
        if (k := _first(outputs != self.num_outputs)) is not None:
            raise self.refuse(k, f"it has {outputs[k]} of its {self.num_outputs} output nodes")
        if (i := _first(~np.isfinite(biases))) is not None:
            raise self.refuse(g[i], f"node {ids[i]}: bias must be a finite number, got {biases[i]}")
        self._check_known(activations)
        if (i := _first(activations >= len(self.names))) is not None:
            raise self.refuse(g[i], f"node {ids[i]}: activation index {activations[i]} is beyond the batch's "
                                    f"{len(self.names)} activation name(s)")

    def _check_known(self, activations: np.ndarray) -> None:
        """Every activation a node uses must be known here; the table may list others (a batch cut from a
        generation's columns lists the generation's), so a batch without the odd genome is accepted."""
        known = np.array([name in ACTIVATIONS for name in self.names] + [True], dtype=bool)  # beyond: checked next
        if (i := _first(~known[np.minimum(activations, len(self.names))])) is not None:
            raise ColumnsError(f"invalid genome columns: activation_names must list known activation functions, got "
                               f"{shown(self.names)}: genome {self.ids[self.node_genome[i]]} node "
                               f"{self.nodes['id'][i]} uses {self.names[activations[i]]!r}")

    def _check_connections(self) -> None:
        innovations, ins, outs = self.conns["innovation"], self.conns["in_node"], self.conns["out_node"]
        weights, enabled, g = self.conns["weight"], self.conns["enabled"], self.conn_genome
        if (i := _first((innovations < 0) | (ins < 0) | (outs < 0))) is not None:
            raise self.refuse(g[i], f"connection {innovations[i]}: innovation and node ids must not be negative")
        self.conn_order, i = _sort_pairs(g, innovations)
        if i is not None:
            raise self.refuse(g[i], f"duplicate innovation {innovations[i]}")
        keys = _pair_keys(np.concatenate((self.node_genome, g, g)), np.concatenate((self.nodes["id"], ins, outs)))
        known = np.isin(keys[self.nodes.size:], keys[:self.nodes.size])
        joined = ((ins < self.num_inputs) | known[:ins.size]) & known[ins.size:]
        if (i := _first(~joined)) is not None:
            raise self.refuse(g[i], f"connection {innovations[i]} joins a node that does not exist "
                                    f"({ins[i]} -> {outs[i]})")
        if (i := _first(~np.isfinite(weights))) is not None:
            raise self.refuse(g[i], f"connection {innovations[i]}: weight must be a finite number, got {weights[i]}")
        if (i := _first(enabled > 1)) is not None:
            raise self.refuse(g[i], f"connection {innovations[i]}: enabled must be 0 or 1, got {enabled[i]}")

    def genome_batch(self) -> GenomeBatch:
        """The checked genomes as one ``GenomeBatch``, each row's genes sorted (by node id, by innovation)."""
        used = np.zeros(len(self.names), dtype=bool)
        used[self.nodes["activation"]] = True
        names = tuple(sorted({name for name, use in zip(self.names, used.tolist()) if use}))
        code = np.array([names.index(name) if use else -1 for name, use in zip(self.names, used.tolist())],
                        dtype=np.int16)
        nodes, conns = self.node_order, self.conn_order
        return GenomeBatch(
            num_inputs=self.num_inputs, num_outputs=self.num_outputs, ids=self.ids.astype(np.int64),
            node_start=row_offsets(self.node_counts), node_id=self.nodes["id"][nodes],
            node_bias=self.nodes["bias"][nodes], node_activation=code[self.nodes["activation"][nodes]],
            conn_start=row_offsets(self.conn_counts), conn_innovation=self.conns["innovation"][conns],
            conn_in=self.conns["in_node"][conns], conn_out=self.conns["out_node"][conns],
            conn_weight=self.conns["weight"][conns], conn_enabled=self.conns["enabled"][conns] == 1,
            activations=names)
