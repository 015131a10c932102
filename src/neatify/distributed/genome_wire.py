"""The genome encoding of TASK_ASSIGNMENT: genes as packed little-endian records, encoded and checked in bulk.

The master encodes a generation's genomes once (``encode_genomes``), filling one numpy record array
per gene kind for the whole generation and slicing each genome's bytes out of it; each genome is a
small msgpack map holding its node and connection records as two bytes fields. A worker decodes a
whole task at once (``decode_genomes``): it joins the bytes fields of the batch into one record array
per gene kind, whose fields are columns over the batch, and checks everything with a few numpy
operations per batch, so what a genome costs is its map and its ``Genome`` objects, not a Python
check per gene. A node's kind is not sent: it follows from its id (outputs are ``num_inputs`` to
``num_inputs + num_outputs - 1``). The fitness is not sent either: a task's genomes have none yet.
"""

from __future__ import annotations

from itertools import accumulate
from typing import Any

import msgpack
import numpy as np

from neatify.activations import ACTIVATIONS
from neatify.checks import is_id, shown
from neatify.distributed.errors import ProtocolError
from neatify.genes import ConnectionGene, NodeGene
from neatify.genome import Genome

NODE_RECORD = np.dtype([("id", "<i8"), ("bias", "<f8"), ("activation", "u1")])
"""A node gene on the wire (17 bytes): its id, bias, and activation as an index into ``activation_names``."""
CONNECTION_RECORD = np.dtype([("innovation", "<i8"), ("in_node", "<i8"), ("out_node", "<i8"),
                              ("weight", "<f8"), ("enabled", "u1")])
"""A connection gene on the wire (33 bytes); ``enabled`` is 0 or 1."""
GENOME_FIELDS = frozenset({"id", "num_inputs", "num_outputs", "activation_names", "nodes", "connections"})
"""The keys of a genome's map on the wire, all required."""


def encode_genomes(genomes: list[Genome]) -> list[bytes]:
    """The msgpack map of each genome on the wire, in order, made in bulk (once per generation)."""
    nodes = [n for g in genomes for n in g.nodes.values()]
    conns = [c for g in genomes for c in g.connections.values()]
    names = sorted({n.activation for n in nodes})
    index = {name: i for i, name in enumerate(names)}
    node_records = np.empty(len(nodes), NODE_RECORD)
    node_records["id"] = [n.id for n in nodes]
    node_records["bias"] = [n.bias for n in nodes]
    node_records["activation"] = [index[n.activation] for n in nodes]
    conn_records = np.empty(len(conns), CONNECTION_RECORD)
    conn_records["innovation"] = [c.innovation for c in conns]
    conn_records["in_node"] = [c.in_node for c in conns]
    conn_records["out_node"] = [c.out_node for c in conns]
    conn_records["weight"] = [c.weight for c in conns]
    conn_records["enabled"] = [c.enabled for c in conns]
    node_bytes, conn_bytes = memoryview(node_records.tobytes()), memoryview(conn_records.tobytes())
    node_ends = accumulate((len(g.nodes) * NODE_RECORD.itemsize for g in genomes), initial=0)
    conn_ends = accumulate((len(g.connections) * CONNECTION_RECORD.itemsize for g in genomes), initial=0)
    packer = msgpack.Packer(use_bin_type=True)
    encoded = []
    node_start, conn_start = next(node_ends), next(conn_ends)
    for genome, node_end, conn_end in zip(genomes, node_ends, conn_ends):
        encoded.append(packer.pack({"id": genome.id, "num_inputs": genome.num_inputs,
                                    "num_outputs": genome.num_outputs, "activation_names": names,
                                    "nodes": node_bytes[node_start:node_end],
                                    "connections": conn_bytes[conn_start:conn_end]}))
        node_start, conn_start = node_end, conn_end
    return encoded


def decode_genomes(maps: list[dict[str, Any]]) -> list[Genome]:
    """The genomes of a TASK_ASSIGNMENT's genome maps, each checked in full before any is built.

    Raises ProtocolError naming the first bad genome and its problem.
    """
    for position, data in enumerate(maps):
        problem = _map_problem(data)
        if problem:
            gid = data.get("id")
            raise _refuse(f"genome {gid}" if is_id(gid) else f"genome #{position} of the batch", problem)
    batch = _Batch(maps)
    batch.check()
    return batch.build()


def _refuse(genome: str, problem: str) -> ProtocolError:
    return ProtocolError(f"TASK_ASSIGNMENT with an invalid genome: {genome}: {problem}")


def _map_problem(data: dict[str, Any]) -> str | None:
    """Why a genome map's keys, integers, activation names or record fields are wrong (None when right)."""
    if data.keys() != GENOME_FIELDS:
        return f"a genome map has the keys {sorted(GENOME_FIELDS)}, got {sorted(map(str, data))}"
    if not (is_id(data["num_inputs"]) and is_id(data["num_outputs"]) and is_id(data["id"])
            and data["num_inputs"] >= 1 and data["num_outputs"] >= 1):
        return "id, num_inputs and num_outputs must be integers (inputs and outputs >= 1)"
    names = data["activation_names"]
    if not (isinstance(names, list) and all(isinstance(n, str) and n in ACTIVATIONS for n in names)):
        return f"activation_names must list known activation functions, got {shown(names)}"
    for field, record in (("nodes", NODE_RECORD), ("connections", CONNECTION_RECORD)):
        value = data[field]
        if not isinstance(value, bytes) or len(value) % record.itemsize:
            return (f"{field} must be bytes holding whole {record.itemsize}-byte records, "
                    f"got {type(value).__name__} of length {len(value) if isinstance(value, bytes) else '-'}")
    return None


def _first(bad: np.ndarray) -> int | None:
    """The first index where ``bad`` holds, or None."""
    hits = np.flatnonzero(bad)
    return int(hits[0]) if hits.size else None


def _pair_keys(groups: np.ndarray, values: np.ndarray) -> np.ndarray:
    """One int64 per (group, value) pair, equal exactly when both are (groups and values non-negative).

    ``group * (max value + 1) + value`` while that fits in 63 bits, else the values' ranks stand in for them.
    """
    top = int(values.max(initial=0)) + 1
    if (int(groups.max(initial=0)) + 1) * top >= 2**63:
        values = np.unique(values, return_inverse=True)[1].reshape(-1)
        top = int(values.max(initial=0)) + 1
    return groups * top + values


def _first_duplicate(keys: np.ndarray) -> int | None:
    """The index of a key that occurs earlier too, or None."""
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    hits = np.flatnonzero(ordered[1:] == ordered[:-1])
    return int(order[hits[0] + 1]) if hits.size else None


class _Batch:
    """A task's genome maps whose records are joined over the batch: one record array per gene kind."""

    def __init__(self, maps: list[dict[str, Any]]) -> None:
        self.maps = maps
        self.nodes = np.frombuffer(b"".join([g["nodes"] for g in maps]), NODE_RECORD)
        self.conns = np.frombuffer(b"".join([g["connections"] for g in maps]), CONNECTION_RECORD)
        self.node_counts = np.array([len(g["nodes"]) for g in maps], dtype=np.int64) // NODE_RECORD.itemsize
        self.conn_counts = np.array([len(g["connections"]) for g in maps], dtype=np.int64) \
            // CONNECTION_RECORD.itemsize
        positions = np.arange(len(maps))
        self.node_genome = np.repeat(positions, self.node_counts)
        """Each node's genome (its position in the batch); ``conn_genome`` likewise."""
        self.conn_genome = np.repeat(positions, self.conn_counts)
        self.num_inputs = np.array([g["num_inputs"] for g in maps], dtype=np.int64)
        self.num_outputs = np.array([g["num_outputs"] for g in maps], dtype=np.int64)
        ids, inputs = self.nodes["id"], self.num_inputs[self.node_genome]
        self.is_output = (ids >= inputs) & (ids - inputs < self.num_outputs[self.node_genome])
        self.names = [name for g in maps for name in g["activation_names"]]
        name_counts = np.array([len(g["activation_names"]) for g in maps], dtype=np.int64)
        self.name_offsets = (np.cumsum(name_counts) - name_counts)[self.node_genome]
        self.name_counts = name_counts[self.node_genome]

    def refuse(self, position: int, problem: str) -> ProtocolError:
        return _refuse(f"genome {self.maps[position]['id']}", problem)

    def check(self) -> None:
        """Raise ProtocolError for the first problem found (node checks before connection checks)."""
        self._check_nodes()
        self._check_connections()

    def _check_nodes(self) -> None:
        ids, biases, activations, g = self.nodes["id"], self.nodes["bias"], self.nodes["activation"], self.node_genome
        if (i := _first(ids < self.num_inputs[g])) is not None:
            raise self.refuse(g[i], f"node id {ids[i]} is an input's or negative")
        if (i := _first_duplicate(_pair_keys(g, ids))) is not None:
            raise self.refuse(g[i], f"node id {ids[i]} occurs twice")
        outputs = np.bincount(g[self.is_output], minlength=len(self.maps))
        if (k := _first(outputs != self.num_outputs)) is not None:
            raise self.refuse(k, f"it has {outputs[k]} of its {self.num_outputs[k]} output nodes")
        if (i := _first(~np.isfinite(biases))) is not None:
            raise self.refuse(g[i], f"node {ids[i]}: bias must be a finite number, got {biases[i]}")
        if (i := _first(activations >= self.name_counts)) is not None:
            raise self.refuse(g[i], f"node {ids[i]}: activation index {activations[i]} is beyond the genome's "
                                    f"{self.name_counts[i]} activation name(s)")

    def _check_connections(self) -> None:
        innovations, ins, outs = self.conns["innovation"], self.conns["in_node"], self.conns["out_node"]
        weights, enabled, g = self.conns["weight"], self.conns["enabled"], self.conn_genome
        if (i := _first((innovations < 0) | (ins < 0) | (outs < 0))) is not None:
            raise self.refuse(g[i], f"connection {innovations[i]}: innovation and node ids must not be negative")
        if (i := _first_duplicate(_pair_keys(g, innovations))) is not None:
            raise self.refuse(g[i], f"duplicate innovation {innovations[i]}")
        keys = _pair_keys(np.concatenate((self.node_genome, g, g)), np.concatenate((self.nodes["id"], ins, outs)))
        known = np.isin(keys[self.nodes.size:], keys[:self.nodes.size])
        joined = ((ins < self.num_inputs[g]) | known[:ins.size]) & known[ins.size:]
        if (i := _first(~joined)) is not None:
            raise self.refuse(g[i], f"connection {innovations[i]} joins a node that does not exist "
                                    f"({ins[i]} -> {outs[i]})")
        if (i := _first(~np.isfinite(weights))) is not None:
            raise self.refuse(g[i], f"connection {innovations[i]}: weight must be a finite number, got {weights[i]}")
        if (i := _first(enabled > 1)) is not None:
            raise self.refuse(g[i], f"connection {innovations[i]}: enabled must be 0 or 1, got {enabled[i]}")

    def build(self) -> list[Genome]:
        """The checked genomes as ``Genome`` objects (fitness None)."""
        node_ids, innovations = self.nodes["id"].tolist(), self.conns["innovation"].tolist()
        kinds = np.where(self.is_output, "output", "hidden").tolist()
        names = [self.names[i] for i in (self.nodes["activation"] + self.name_offsets).tolist()]
        node_genes = list(map(NodeGene, node_ids, kinds, self.nodes["bias"].tolist(), names))
        conn_genes = list(map(ConnectionGene, innovations, self.conns["in_node"].tolist(),
                              self.conns["out_node"].tolist(), self.conns["weight"].tolist(),
                              (self.conns["enabled"] == 1).tolist()))
        genomes = []
        node_start = conn_start = 0
        for data, node_end, conn_end in zip(self.maps, accumulate(self.node_counts.tolist()),
                                            accumulate(self.conn_counts.tolist())):
            genome = Genome(data["id"], data["num_inputs"], data["num_outputs"])
            genome.nodes = dict(zip(node_ids[node_start:node_end], node_genes[node_start:node_end]))
            genome.connections = dict(zip(innovations[conn_start:conn_end], conn_genes[conn_start:conn_end]))
            node_start, conn_start = node_end, conn_end
            genomes.append(genome)
        return genomes
