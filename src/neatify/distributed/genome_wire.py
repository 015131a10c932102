"""The columnar genome encoding of TASK_ASSIGNMENT: gene fields as little-endian arrays, checked in bulk.

The master encodes each genome once per generation (``encode_genome``) as a small msgpack map whose
gene columns are bytes fields; a worker decodes a whole task at once (``decode_genomes``): it joins
each column over the batch and checks everything with a few numpy operations per batch, so what a
genome costs is its map and its ``Genome`` objects, not a Python check per gene. A node's kind is not
sent: it follows from its id (outputs are ``num_inputs .. num_inputs + num_outputs - 1``).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

import msgpack
import numpy as np

from neatify.activations import ACTIVATIONS
from neatify.checks import is_id, shown
from neatify.distributed.errors import ProtocolError
from neatify.genes import ConnectionGene, NodeGene
from neatify.genome import Genome

NODE_COLUMNS: dict[str, np.dtype] = {"node_ids": np.dtype("<i8"), "biases": np.dtype("<f8"),
                                     "activations": np.dtype("u1")}
"""One value per node gene, in the genome's node order: id, bias, index into ``activation_names``."""
CONNECTION_COLUMNS: dict[str, np.dtype] = {"innovations": np.dtype("<i8"), "in_nodes": np.dtype("<i8"),
                                           "out_nodes": np.dtype("<i8"), "weights": np.dtype("<f8"),
                                           "enabled": np.dtype("u1")}
"""One value per connection gene, in the genome's connection order (``enabled`` is 0 or 1)."""
GENOME_FIELDS = ("id", "num_inputs", "num_outputs", "activation_names", *NODE_COLUMNS, *CONNECTION_COLUMNS)
"""The keys of a genome's map on the wire, all required."""
_CODES = {"<i8": "q", "<f8": "d", "|u1": "B"}
"""struct codes of the column dtypes (``dtype.str``)."""


def _column(dtype: np.dtype, values: Sequence[Any]) -> bytes:
    return struct.pack(f"<{len(values)}{_CODES[dtype.str]}", *values)


def encode_genome(genome: Genome) -> bytes:
    """The msgpack map of ``genome`` on the wire (its fitness is not sent)."""
    nodes, conns = list(genome.nodes.values()), list(genome.connections.values())
    names = list(dict.fromkeys(n.activation for n in nodes))
    index = {name: i for i, name in enumerate(names)}
    values = {
        "node_ids": [n.id for n in nodes], "biases": [n.bias for n in nodes],
        "activations": [index[n.activation] for n in nodes],
        "innovations": [c.innovation for c in conns], "in_nodes": [c.in_node for c in conns],
        "out_nodes": [c.out_node for c in conns], "weights": [c.weight for c in conns],
        "enabled": [c.enabled for c in conns],
    }
    columns = {name: _column(dtype, values[name]) for name, dtype in {**NODE_COLUMNS, **CONNECTION_COLUMNS}.items()}
    return msgpack.packb({"id": genome.id, "num_inputs": genome.num_inputs, "num_outputs": genome.num_outputs,
                          "activation_names": names, **columns}, use_bin_type=True)


def decode_genomes(payload: dict[str, Any]) -> list[Genome]:
    """The genomes of a (schema-checked) TASK_ASSIGNMENT payload, each checked in full before it is built.

    Raises ProtocolError naming the first bad genome and its problem.
    """
    maps = payload["genomes"]
    counts = [_header_counts(i, g) for i, g in enumerate(maps)]
    batch = _Batch(maps, counts)
    batch.check()
    return batch.build()


def _name(position: int, data: Any) -> str:
    """How an error names a genome: its id when it has one, else its place in the batch."""
    gid = data.get("id") if isinstance(data, dict) else None
    return f"genome {gid}" if is_id(gid) else f"genome #{position} of the batch"


def _refuse(genome: str, problem: str) -> ProtocolError:
    return ProtocolError(f"TASK_ASSIGNMENT with an invalid genome: {genome}: {problem}")


def _header_counts(position: int, data: Any) -> tuple[int, int]:
    """(nodes, connections) of a genome map after checking its keys, integers and column lengths."""
    name = _name(position, data)
    if not isinstance(data, dict) or set(data) != set(GENOME_FIELDS):
        got = sorted(map(str, data)) if isinstance(data, dict) else type(data).__name__
        raise _refuse(name, f"a genome map has the keys {sorted(GENOME_FIELDS)}, got {got}")
    if not all(is_id(data[k]) for k in ("id", "num_inputs", "num_outputs")) \
            or data["num_inputs"] < 1 or data["num_outputs"] < 1:
        raise _refuse(name, "id, num_inputs and num_outputs must be integers (inputs and outputs >= 1)")
    names = data["activation_names"]
    if not (isinstance(names, list) and all(isinstance(n, str) and n in ACTIVATIONS for n in names)):
        raise _refuse(name, f"unknown activation in activation_names {shown(names)}")
    return _column_length(name, data, NODE_COLUMNS), _column_length(name, data, CONNECTION_COLUMNS)


def _column_length(name: str, data: dict[str, Any], columns: dict[str, np.dtype]) -> int:
    """The common length of ``columns`` in ``data``: each a bytes field holding whole items, all as long."""
    lengths = set()
    for column, dtype in columns.items():
        value = data[column]
        if not isinstance(value, bytes) or len(value) % dtype.itemsize:
            raise _refuse(name, f"{column} must be bytes holding {dtype.itemsize}-byte items, got {shown(value)}")
        lengths.add(len(value) // dtype.itemsize)
    if len(lengths) > 1:
        raise _refuse(name, f"columns {', '.join(columns)} differ in length ({sorted(lengths)} items)")
    return lengths.pop()


def _first_duplicate(values: np.ndarray, groups: np.ndarray) -> int | None:
    """The index of a value that occurs twice within its group, or None."""
    order = np.lexsort((values, groups))
    same = (values[order][1:] == values[order][:-1]) & (groups[order][1:] == groups[order][:-1])
    hits = np.flatnonzero(same)
    return int(order[hits[0] + 1]) if hits.size else None


def _first(bad: np.ndarray) -> int | None:
    """The first index where ``bad`` holds, or None."""
    hits = np.flatnonzero(bad)
    return int(hits[0]) if hits.size else None


def _members(values: np.ndarray, groups: np.ndarray, sets: np.ndarray, set_groups: np.ndarray) -> np.ndarray:
    """Whether each ``values[i]`` is among the ``sets`` entries of group ``groups[i]``."""
    universe = np.unique(sets)
    ranks = np.minimum(np.searchsorted(universe, values), max(universe.size - 1, 0))
    known = universe[ranks] == values if universe.size else np.zeros(values.shape, bool)
    width = universe.size + 1
    return known & np.isin(groups * width + ranks, set_groups * width + np.searchsorted(universe, sets))


class _Batch:
    """A task's genome maps with each column joined over the batch (numpy views of the received bytes)."""

    def __init__(self, maps: list[dict[str, Any]], counts: list[tuple[int, int]]) -> None:
        self.maps = maps
        self.ids = [g["id"] for g in maps]
        self.num_inputs = np.array([g["num_inputs"] for g in maps], dtype=np.int64)
        self.num_outputs = np.array([g["num_outputs"] for g in maps], dtype=np.int64)
        self.node_counts = np.array([c[0] for c in counts], dtype=np.int64)
        self.conn_counts = np.array([c[1] for c in counts], dtype=np.int64)
        self.col = {name: np.frombuffer(b"".join(g[name] for g in maps), dtype)
                    for name, dtype in {**NODE_COLUMNS, **CONNECTION_COLUMNS}.items()}
        genomes = np.arange(len(maps))
        self.node_genome = np.repeat(genomes, self.node_counts)
        self.conn_genome = np.repeat(genomes, self.conn_counts)
        self.names = [name for g in maps for name in g["activation_names"]]
        name_counts = np.array([len(g["activation_names"]) for g in maps], dtype=np.int64)
        self.name_offsets = (np.cumsum(name_counts) - name_counts)[self.node_genome]
        self.name_counts = name_counts[self.node_genome]
        past_inputs = self.col["node_ids"] - self.num_inputs[self.node_genome]  # (no overflow where it is used)
        self.is_output = (self.col["node_ids"] >= self.num_inputs[self.node_genome]) \
            & (past_inputs < self.num_outputs[self.node_genome])

    def refuse(self, genome: int, problem: str) -> ProtocolError:
        return _refuse(f"genome {self.ids[genome]}", problem)

    def check(self) -> None:
        """Raise ProtocolError for the first problem of any genome (node checks before connection checks)."""
        self._check_nodes()
        self._check_connections()

    def _check_nodes(self) -> None:
        ids, g = self.col["node_ids"], self.node_genome
        if (i := _first(ids < self.num_inputs[g])) is not None:
            raise self.refuse(g[i], f"node id {ids[i]} is an input's or negative")
        if (i := _first_duplicate(ids, g)) is not None:
            raise self.refuse(g[i], f"node id {ids[i]} occurs twice")
        outputs = np.bincount(g[self.is_output], minlength=len(self.ids))
        if (k := _first(outputs != self.num_outputs)) is not None:
            raise self.refuse(k, f"has {outputs[k]} of its {self.num_outputs[k]} output nodes")
        if (i := _first(~np.isfinite(self.col["biases"]))) is not None:
            raise self.refuse(g[i], f"node {ids[i]}: bias must be a finite number, got {self.col['biases'][i]}")
        if (i := _first(self.col["activations"] >= self.name_counts)) is not None:
            raise self.refuse(g[i], f"node {ids[i]}: activation index {self.col['activations'][i]} is beyond "
                                    f"the genome's {self.name_counts[i]} activation name(s)")

    def _check_connections(self) -> None:
        c = self.col
        g, innovations = self.conn_genome, c["innovations"]
        if (i := _first((innovations < 0) | (c["in_nodes"] < 0) | (c["out_nodes"] < 0))) is not None:
            raise self.refuse(g[i], f"connection {innovations[i]}: innovation and node ids must not be negative")
        if (i := _first_duplicate(innovations, g)) is not None:
            raise self.refuse(g[i], f"duplicate innovation {innovations[i]}")
        nodes, node_genome = c["node_ids"], self.node_genome
        joined = ((c["in_nodes"] < self.num_inputs[g]) | _members(c["in_nodes"], g, nodes, node_genome)) \
            & _members(c["out_nodes"], g, nodes, node_genome)
        if (i := _first(~joined)) is not None:
            raise self.refuse(g[i], f"connection {innovations[i]} joins a node that does not exist "
                                    f"({c['in_nodes'][i]} -> {c['out_nodes'][i]})")
        if (i := _first(~np.isfinite(c["weights"]))) is not None:
            raise self.refuse(g[i], f"connection {innovations[i]}: weight must be a finite number, "
                                    f"got {c['weights'][i]}")
        if (i := _first(c["enabled"] > 1)) is not None:
            raise self.refuse(g[i], f"connection {innovations[i]}: enabled must be 0 or 1, got {c['enabled'][i]}")

    def build(self) -> list[Genome]:
        """The checked genomes as ``Genome`` objects (fitness None)."""
        c = self.col
        kinds = np.where(self.is_output, "output", "hidden").tolist()
        names = [self.names[i] for i in (c["activations"] + self.name_offsets).tolist()]
        node_genes = list(map(NodeGene, c["node_ids"].tolist(), kinds, c["biases"].tolist(), names))
        conn_genes = list(map(ConnectionGene, c["innovations"].tolist(), c["in_nodes"].tolist(),
                              c["out_nodes"].tolist(), c["weights"].tolist(), (c["enabled"] == 1).tolist()))
        node_ends = np.cumsum(self.node_counts).tolist()
        conn_ends = np.cumsum(self.conn_counts).tolist()
        genomes = []
        node_start = conn_start = 0
        for k, data in enumerate(self.maps):
            genome = Genome(data["id"], data["num_inputs"], data["num_outputs"])
            genome.nodes = {n.id: n for n in node_genes[node_start:node_ends[k]]}
            genome.connections = {cg.innovation: cg for cg in conn_genes[conn_start:conn_ends[k]]}
            node_start, conn_start = node_ends[k], conn_ends[k]
            genomes.append(genome)
        return genomes
