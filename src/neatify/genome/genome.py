"""A NEAT genome: node and connection genes, either its own or a light view of one row of a ``GenomeBatch``.

Its per-genome mutation, crossover and distance are the reference operators of ``reference``.

Node ids: inputs are ``0 .. num_inputs-1``, outputs follow, hidden nodes get ids from the
InnovationTracker. Connection genes are keyed by innovation number.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from neatify.config import EvolutionConfig
from neatify.genome.genes import ConnectionGene, NodeGene
from neatify.genome.graph import evaluation_plan
from neatify.genome.innovation import InnovationTracker
from neatify.genome.reference import ReferenceOperators, new_value, new_weight

if TYPE_CHECKING:
    from neatify.genome.batch import GenomeBatch


def _initial_pairs(mode: str, inputs: list[int], outputs: list[int], rng: random.Random) -> list[tuple[int, int]]:
    """The (input, output) connections of a new genome: ``full`` all of them, ``partial P`` a random
    fraction P of them, ``fs_neat`` one random input to every output (FS-NEAT), ``none`` none."""
    name, _, fraction = mode.partition(" ")
    pairs = [(inp, out) for out in outputs for inp in inputs]
    if name == "partial":
        return [pairs[i] for i in sorted(rng.sample(range(len(pairs)), round(float(fraction) * len(pairs))))]
    if name == "fs_neat":
        chosen = rng.choice(inputs)
        return [(chosen, out) for out in outputs]
    return pairs if name == "full" else []


class Genome(ReferenceOperators):
    """One individual: its genes, its unique ``id`` within a run, and its ``fitness`` once evaluated."""

    __slots__ = ("id", "num_inputs", "num_outputs", "_nodes", "_connections", "fitness", "_batch", "_row")

    def __init__(self, genome_id: int, num_inputs: int, num_outputs: int) -> None:
        self.id = genome_id
        self.num_inputs = num_inputs
        self.num_outputs = num_outputs
        self._nodes: dict[int, NodeGene] | None = {}
        self._connections: dict[int, ConnectionGene] | None = {}
        self.fitness: float | None = None
        self._batch: GenomeBatch | None = None
        self._row = -1

    @classmethod
    def view(cls, batch: GenomeBatch, row: int, genome_id: int) -> Genome:
        """Genome ``genome_id`` whose genes are row ``row`` of ``batch``, read into gene objects only
        when ``nodes`` or ``connections`` is first asked for (breeding and layouts read the batch)."""
        genome = cls.__new__(cls)
        genome.id, genome.num_inputs, genome.num_outputs, genome.fitness = genome_id, batch.num_inputs, \
            batch.num_outputs, None
        genome._nodes = genome._connections = None
        genome._batch, genome._row = batch, row
        return genome

    def batch_row(self) -> tuple[GenomeBatch | None, int]:
        """(batch, row) holding this genome's genes while nobody has read them as objects; (None, -1)
        once they are objects, which are then the genes (they may have been changed)."""
        return self._batch, self._row

    def _read_genes(self) -> None:
        assert self._batch is not None
        self._nodes, self._connections = self._batch.genes(self._row)
        self._batch, self._row = None, -1

    @property
    def nodes(self) -> dict[int, NodeGene]:
        """Node genes (outputs and hidden) by node id."""
        if self._nodes is None:
            self._read_genes()
        return self._nodes  # type: ignore[return-value]

    @nodes.setter
    def nodes(self, value: dict[int, NodeGene]) -> None:
        if self._nodes is None:
            self._read_genes()
        self._nodes = value

    @property
    def connections(self) -> dict[int, ConnectionGene]:
        """Connection genes by innovation number."""
        if self._connections is None:
            self._read_genes()
        return self._connections  # type: ignore[return-value]

    @connections.setter
    def connections(self, value: dict[int, ConnectionGene]) -> None:
        if self._connections is None:
            self._read_genes()
        self._connections = value

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled (and deep-copied) as its plain data, never with the batch a view reads from."""
        return Genome.from_dict, (self.to_dict(),)

    def __repr__(self) -> str:
        hidden, enabled = self.size()
        return f"Genome(id={self.id}, hidden={hidden}, connections={enabled}, fitness={self.fitness})"

    # --- structure queries ---
    @property
    def input_ids(self) -> list[int]:
        return list(range(self.num_inputs))

    @property
    def output_ids(self) -> list[int]:
        return list(range(self.num_inputs, self.num_inputs + self.num_outputs))

    def size(self) -> tuple[int, int]:
        """(hidden nodes, enabled connections): the complexity figure reporters print."""
        hidden = sum(1 for n in self.nodes.values() if n.kind == "hidden")
        return hidden, sum(1 for c in self.connections.values() if c.enabled)

    def enabled_edges(self) -> list[tuple[int, int]]:
        return [(c.in_node, c.out_node) for c in self.connections.values() if c.enabled]

    def is_recurrent(self) -> bool:
        """Whether the enabled connections that matter for the outputs contain a cycle."""
        return evaluation_plan(self.enabled_edges(), self.input_ids, self.output_ids).is_recurrent

    # --- construction ---
    @classmethod
    def initial(cls, genome_id: int, num_inputs: int, num_outputs: int, config: EvolutionConfig,
                rng: random.Random, tracker: InnovationTracker) -> Genome:
        """A minimal genome: outputs only, connected to the inputs as ``config.initial_connection`` says."""
        genome = cls(genome_id, num_inputs, num_outputs)
        for out in genome.output_ids:
            genome.nodes[out] = NodeGene(out, "output", new_value(rng, config.bias_init_stdev,
                                                                   config.bias_min_value, config.bias_max_value),
                                         config.activation_default)
        for inp, out in _initial_pairs(config.initial_connection, genome.input_ids, genome.output_ids, rng):
            genome._add_connection(tracker.connection(inp, out), inp, out, new_weight(rng, config))
        return genome

    def copy(self, genome_id: int) -> Genome:
        """A genome with equal genes of its own (a view's genes are read for it, the view stays one)."""
        clone = Genome(genome_id, self.num_inputs, self.num_outputs)
        if self._batch is not None:
            clone._nodes, clone._connections = self._batch.genes(self._row)
            return clone
        clone.nodes = {k: NodeGene(n.id, n.kind, n.bias, n.activation) for k, n in self.nodes.items()}
        clone.connections = {k: ConnectionGene(c.innovation, c.in_node, c.out_node, c.weight, c.enabled)
                             for k, c in self.connections.items()}
        return clone

    # --- plain data ---
    def to_dict(self) -> dict[str, Any]:
        """Plain lists and numbers (JSON- and msgpack-safe); ``from_dict`` restores it exactly. A view
        stays a view (its genes are read for this, not kept)."""
        nodes, connections = (self.nodes, self.connections) if self._batch is None else self._batch.genes(self._row)
        return {
            "id": self.id,
            "num_inputs": self.num_inputs,
            "num_outputs": self.num_outputs,
            "nodes": [n.to_list() for n in nodes.values()],
            "connections": [c.to_list() for c in connections.values()],
            "fitness": self.fitness,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Genome:
        genome = cls(int(data["id"]), int(data["num_inputs"]), int(data["num_outputs"]))
        for item in data["nodes"]:
            node = NodeGene.from_list(item)
            genome.nodes[node.id] = node
        for item in data["connections"]:
            conn = ConnectionGene.from_list(item)
            genome.connections[conn.innovation] = conn
        fitness = data.get("fitness")
        genome.fitness = None if fitness is None else float(fitness)
        return genome
