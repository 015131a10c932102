"""The genome encoding of TASK_ASSIGNMENT: genes as packed little-endian records, encoded and checked in bulk.

The master reads a generation's genomes once into a ``GenomeBatch`` (one array gather when they are
unread views of one batch) and fills one numpy record array per gene kind from its columns, slicing
each genome's bytes out of it; each genome is a small msgpack map holding its node and connection
records as two bytes fields. A worker decodes a whole task into one ``GenomeBatch``: it joins the
bytes fields into one record array per gene kind, checks everything with a few numpy operations per
task, sorts each genome's genes (node id, innovation) as a batch keeps them, and hands out ``Genome``
views of its rows, whose gene objects are built only if the fitness function reads them. A node's
kind is not sent: it follows from its id (outputs are ``num_inputs`` to ``num_inputs + num_outputs - 1``).
The fitness is not sent either: a task's genomes have none yet.
"""

from __future__ import annotations

from typing import Any

import msgpack
import numpy as np

from neatify.activations import ACTIVATIONS
from neatify.checks import is_id, shown
from neatify.distributed.errors import ProtocolError
from neatify.genome import Genome
from neatify.genome_batch import GenomeBatch, row_offsets

NODE_RECORD = np.dtype([("id", "<i8"), ("bias", "<f8"), ("activation", "u1")])
"""A node gene on the wire (17 bytes): its id, bias, and activation as an index into ``activation_names``."""
CONNECTION_RECORD = np.dtype([("innovation", "<i8"), ("in_node", "<i8"), ("out_node", "<i8"),
                              ("weight", "<f8"), ("enabled", "u1")])
"""A connection gene on the wire (33 bytes); ``enabled`` is 0 or 1."""
GENOME_FIELDS = frozenset({"id", "num_inputs", "num_outputs", "activation_names", "nodes", "connections"})
"""The keys of a genome's map on the wire, all required."""


def encode_genomes(genomes: list[Genome]) -> list[bytes]:
    """The msgpack map of each genome on the wire, in order, made in bulk (once per generation)."""
    return encode_batch(GenomeBatch.from_genomes(genomes)) if genomes else []


def encode_batch(batch: GenomeBatch) -> list[bytes]:
    """The msgpack map of each row of ``batch`` on the wire, in order: its records sliced out of the columns."""
    nodes = np.empty(len(batch.node_id), NODE_RECORD)
    nodes["id"], nodes["bias"], nodes["activation"] = batch.node_id, batch.node_bias, batch.node_activation
    conns = np.empty(len(batch.conn_innovation), CONNECTION_RECORD)
    conns["innovation"], conns["in_node"], conns["out_node"] = batch.conn_innovation, batch.conn_in, batch.conn_out
    conns["weight"], conns["enabled"] = batch.conn_weight, batch.conn_enabled
    node_bytes, conn_bytes = memoryview(nodes.tobytes()), memoryview(conns.tobytes())
    node_ends = (batch.node_start * NODE_RECORD.itemsize).tolist()
    conn_ends = (batch.conn_start * CONNECTION_RECORD.itemsize).tolist()
    names = list(batch.activations)
    if len(names) > 256:
        raise ValueError(f"the wire codes activations in one byte: {len(names)} names are too many")
    packer = msgpack.Packer(use_bin_type=True)
    return [packer.pack({"id": genome_id, "num_inputs": batch.num_inputs, "num_outputs": batch.num_outputs,
                         "activation_names": names, "nodes": node_bytes[node_ends[row]:node_ends[row + 1]],
                         "connections": conn_bytes[conn_ends[row]:conn_ends[row + 1]]})
            for row, genome_id in enumerate(batch.ids.tolist())]


def decode_genomes(maps: list[dict[str, Any]]) -> list[Genome]:
    """The genomes of a TASK_ASSIGNMENT's genome maps as views of one checked ``GenomeBatch``
    (``decode_batch``); their gene objects are built only when read."""
    return decode_batch(maps).views()


def decode_batch(maps: list[dict[str, Any]]) -> GenomeBatch:
    """The genes of a TASK_ASSIGNMENT's genome maps as one ``GenomeBatch``, all checked first.

    Raises ProtocolError naming the first bad genome and its problem.
    """
    if not maps:
        raise ProtocolError("TASK_ASSIGNMENT with no genomes")
    for position, data in enumerate(maps):
        problem = _map_problem(data)
        if problem:
            gid = data.get("id")
            raise _refuse(f"genome {gid}" if is_id(gid) else f"genome #{position} of the batch", problem)
    batch = _Batch(maps)
    batch.check()
    return batch.genome_batch()


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
    """A task's genome maps whose records are joined over the task: one record array per gene kind."""

    def __init__(self, maps: list[dict[str, Any]]) -> None:
        self.maps = maps
        self.nodes = np.frombuffer(b"".join([g["nodes"] for g in maps]), NODE_RECORD)
        self.conns = np.frombuffer(b"".join([g["connections"] for g in maps]), CONNECTION_RECORD)
        self.node_counts = np.array([len(g["nodes"]) for g in maps], dtype=np.int64) // NODE_RECORD.itemsize
        self.conn_counts = np.array([len(g["connections"]) for g in maps], dtype=np.int64) \
            // CONNECTION_RECORD.itemsize
        positions = np.arange(len(maps))
        self.node_genome = np.repeat(positions, self.node_counts)
        """Each node's genome (its position in the task); ``conn_genome`` likewise."""
        self.conn_genome = np.repeat(positions, self.conn_counts)
        self.num_inputs = np.array([g["num_inputs"] for g in maps], dtype=np.int64)
        self.num_outputs = np.array([g["num_outputs"] for g in maps], dtype=np.int64)
        ids, inputs = self.nodes["id"], self.num_inputs[self.node_genome]
        self.is_output = (ids >= inputs) & (ids - inputs < self.num_outputs[self.node_genome])
        self.names = [name for g in maps for name in g["activation_names"]]
        name_counts = np.array([len(g["activation_names"]) for g in maps], dtype=np.int64)
        self.name_offsets = (np.cumsum(name_counts) - name_counts)[self.node_genome]
        self.name_counts = name_counts[self.node_genome]
        self.node_order = self.conn_order = np.zeros(0, dtype=np.int64)
        """The order sorting the nodes by (genome, id), the connections by (genome, innovation): set by ``check``."""

    def refuse(self, position: int, problem: str) -> ProtocolError:
        return _refuse(f"genome {self.maps[position]['id']}", problem)

    def check(self) -> None:
        """Raise ProtocolError for the first problem found (shapes, then nodes, then connections)."""
        self._check_shapes()
        self._check_nodes()
        self._check_connections()

    def _check_shapes(self) -> None:
        differs = (self.num_inputs != self.num_inputs[0]) | (self.num_outputs != self.num_outputs[0])
        if (k := _first(differs)) is not None:
            raise self.refuse(k, f"it has {self.num_inputs[k]} inputs and {self.num_outputs[k]} outputs, genome "
                                 f"{self.maps[0]['id']} {self.num_inputs[0]} and {self.num_outputs[0]} (a task's "
                                 f"genomes share them)")

    def _check_nodes(self) -> None:
        ids, biases, activations, g = self.nodes["id"], self.nodes["bias"], self.nodes["activation"], self.node_genome
        if (i := _first(ids < self.num_inputs[g])) is not None:
            raise self.refuse(g[i], f"node id {ids[i]} is an input's or negative")
        self.node_order, i = _sort_pairs(g, ids)
        if i is not None:
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
        self.conn_order, i = _sort_pairs(g, innovations)
        if i is not None:
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

    def genome_batch(self) -> GenomeBatch:
        """The checked genomes as one ``GenomeBatch``, each row's genes sorted (by node id, by innovation)."""
        names = tuple(sorted(set(self.names)))
        code = {name: i for i, name in enumerate(names)}
        activation = np.array([code[name] for name in self.names], dtype=np.int16)
        nodes, conns = self.node_order, self.conn_order
        return GenomeBatch(
            num_inputs=int(self.num_inputs[0]), num_outputs=int(self.num_outputs[0]),
            ids=np.array([g["id"] for g in self.maps], dtype=np.int64),
            node_start=row_offsets(self.node_counts), node_id=self.nodes["id"][nodes],
            node_bias=self.nodes["bias"][nodes],
            node_activation=activation[(self.nodes["activation"] + self.name_offsets)[nodes]],
            conn_start=row_offsets(self.conn_counts), conn_innovation=self.conns["innovation"][conns],
            conn_in=self.conns["in_node"][conns], conn_out=self.conns["out_node"][conns],
            conn_weight=self.conns["weight"][conns], conn_enabled=self.conns["enabled"][conns] == 1,
            activations=names)

