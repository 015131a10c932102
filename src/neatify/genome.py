"""A NEAT genome: node and connection genes, with mutation, crossover and compatibility distance.

Node ids: inputs are ``0 .. num_inputs-1``, outputs follow, hidden nodes get ids from the
InnovationTracker. Connection genes are keyed by innovation number.
"""

from __future__ import annotations

import math
import random
from typing import TYPE_CHECKING, Any

from neatify.config import EvolutionConfig
from neatify.genes import ConnectionGene, NodeGene
from neatify.graph import closes_cycle, evaluation_plan, successor_map
from neatify.innovation import InnovationTracker

if TYPE_CHECKING:
    from neatify.genome_batch import GenomeBatch


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


class Genome:
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
            genome.nodes[out] = NodeGene(out, "output", _new_value(rng, config.bias_init_stdev,
                                                                   config.bias_min_value, config.bias_max_value),
                                         config.activation_default)
        for inp, out in _initial_pairs(config.initial_connection, genome.input_ids, genome.output_ids, rng):
            genome._add_connection(tracker.connection(inp, out), inp, out, _new_weight(rng, config))
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

    def _add_connection(self, innovation: int, in_node: int, out_node: int, weight: float) -> None:
        self.connections[innovation] = ConnectionGene(innovation, in_node, out_node, weight, True)

    # --- mutation ---
    def mutate(self, config: EvolutionConfig, rng: random.Random, tracker: InnovationTracker) -> None:
        """Apply each kind of mutation with its configured probability, in a fixed order."""
        if rng.random() < config.prob_add_node:
            self.mutate_add_node(config, rng, tracker)
        if rng.random() < config.prob_add_connection:
            self.mutate_add_connection(config, rng, tracker)
        if config.prob_delete_node and rng.random() < config.prob_delete_node:
            self.mutate_delete_node(rng)
        if config.prob_delete_connection and rng.random() < config.prob_delete_connection:
            self.mutate_delete_connection(rng)
        if rng.random() < config.prob_mutate_weight:
            self.mutate_weights(config, rng)
        if rng.random() < config.prob_mutate_bias:
            self.mutate_biases(config, rng)
        if config.prob_mutate_activation:
            self.mutate_activations(config, rng)
        if config.prob_toggle_enable:
            self.mutate_toggle_enable(config, rng)

    def mutate_weights(self, config: EvolutionConfig, rng: random.Random) -> None:
        """Perturb each weight by a Gaussian step, or replace it with a fresh value."""
        conns = list(self.connections.values())
        weights = _mutated([c.weight for c in conns], rng, config.prob_replace_weight, config.weight_mutation_power,
                           config.weight_init_stdev, config.weight_min_value, config.weight_max_value)
        for conn, weight in zip(conns, weights):
            conn.weight = weight

    def mutate_biases(self, config: EvolutionConfig, rng: random.Random) -> None:
        nodes = list(self.nodes.values())
        biases = _mutated([n.bias for n in nodes], rng, config.prob_replace_bias, config.bias_mutation_power,
                          config.bias_init_stdev, config.bias_min_value, config.bias_max_value)
        for node, bias in zip(nodes, biases):
            node.bias = bias

    def mutate_activations(self, config: EvolutionConfig, rng: random.Random) -> None:
        for node in self.nodes.values():
            if node.kind == "hidden" and rng.random() < config.prob_mutate_activation:
                node.activation = rng.choice(config.activation_options)

    def mutate_toggle_enable(self, config: EvolutionConfig, rng: random.Random) -> None:
        """Flip enabled flags. All genes (disabled too) stay acyclic, so enabling is always safe."""
        for conn in self.connections.values():
            if rng.random() < config.prob_toggle_enable:
                conn.enabled = not conn.enabled

    def mutate_add_connection(self, config: EvolutionConfig, rng: random.Random,
                              tracker: InnovationTracker) -> bool:
        """Connect two unconnected nodes (re-enabling a disabled gene counts). False if none found.

        A feed-forward genome refuses any edge that would close a cycle over all its genes,
        disabled ones included, so that a later re-enable or crossover cannot make a cycle.
        """
        targets = sorted(self.nodes)
        sources = self.input_ids + targets
        existing = {(c.in_node, c.out_node): c for c in self.connections.values()}
        successors = None  # built on the first cycle check, once for all tries
        choice = rng.choice
        for _ in range(config.add_connection_attempts):
            src, dst = choice(sources), choice(targets)
            conn = existing.get((src, dst))
            if conn is not None:
                if not conn.enabled:
                    conn.enabled = True
                    return True
                continue
            if not config.allow_recurrent:
                successors = successor_map(existing) if successors is None else successors
                if closes_cycle(successors, (src, dst)):
                    continue
            self._add_connection(tracker.connection(src, dst), src, dst, _new_weight(rng, config))
            return True
        return False

    def mutate_add_node(self, config: EvolutionConfig, rng: random.Random, tracker: InnovationTracker) -> bool:
        """Split an enabled connection a->b into a->new (weight 1) and new->b (old weight)."""
        enabled = [c for c in self.connections.values() if c.enabled]
        if not enabled:
            return False
        conn = rng.choice(enabled)
        conn.enabled = False
        node_id = tracker.split(conn.innovation, self.nodes)
        self.nodes[node_id] = NodeGene(node_id, "hidden", 0.0, config.activation_default)
        self._add_connection(tracker.connection(conn.in_node, node_id), conn.in_node, node_id, 1.0)
        self._add_connection(tracker.connection(node_id, conn.out_node), node_id, conn.out_node, conn.weight)
        return True

    def mutate_delete_node(self, rng: random.Random) -> bool:
        """Remove a hidden node and every connection touching it."""
        hidden = sorted(k for k, n in self.nodes.items() if n.kind == "hidden")
        if not hidden:
            return False
        node_id = rng.choice(hidden)
        del self.nodes[node_id]
        self.connections = {k: c for k, c in self.connections.items()
                            if c.in_node != node_id and c.out_node != node_id}
        return True

    def mutate_delete_connection(self, rng: random.Random) -> bool:
        if not self.connections:
            return False
        del self.connections[rng.choice(list(self.connections))]
        return True

    # --- crossover and distance ---
    @staticmethod
    def crossover(parent1: Genome, parent2: Genome, child_id: int, config: EvolutionConfig,
                  rng: random.Random) -> Genome:
        """Child of two parents, ``parent1`` being the fitter.

        Matching genes (same innovation) come from either parent at random; disjoint and excess
        genes come from parent1, so the child has parent1's structure. A gene disabled in either
        parent stays disabled with probability ``prob_inherit_disabled``.
        """
        child = Genome(child_id, parent1.num_inputs, parent1.num_outputs)
        random, keep_disabled = rng.random, config.prob_inherit_disabled
        other_conns, conns = parent2.connections, child.connections
        for key, c1 in parent1.connections.items():
            c2 = other_conns.get(key)
            if c2 is None:
                conns[key] = ConnectionGene(key, c1.in_node, c1.out_node, c1.weight, c1.enabled)
                continue
            weight = c1.weight if random() < 0.5 else c2.weight
            enabled = True if c1.enabled and c2.enabled else random() >= keep_disabled
            conns[key] = ConnectionGene(key, c1.in_node, c1.out_node, weight, enabled)
        other_nodes, nodes = parent2.nodes, child.nodes
        for key, n1 in parent1.nodes.items():
            n2 = other_nodes.get(key)
            gene = n1 if n2 is None or random() < 0.5 else n2
            nodes[key] = NodeGene(key, n1.kind, gene.bias, gene.activation)
        return child

    def distance(self, other: Genome, config: EvolutionConfig) -> float:
        """Compatibility distance c1*E/N + c2*D/N + c3*W of the paper, over connection genes."""
        a, b = self.connections, other.connections
        if not a and not b:
            return 0.0
        # genes past the other genome's last are excess (all of them when it has none)
        cutoff = min(max(a, default=-math.inf), max(b, default=-math.inf))
        matching = 0
        weight_diff = 0.0
        excess = disjoint = 0
        for key, ca in a.items():
            cb = b.get(key)
            if cb is None:
                if key > cutoff:
                    excess += 1
                else:
                    disjoint += 1
            else:
                matching += 1
                weight_diff += abs(ca.weight - cb.weight)
        for key in b:
            if key not in a:
                if key > cutoff:
                    excess += 1
                else:
                    disjoint += 1
        n = max(len(a), len(b))
        if n < config.normalize_min_genes:
            n = 1
        mean_w = weight_diff / matching if matching else 0.0
        return (config.c1 * excess + config.c2 * disjoint) / n + config.c3 * mean_w

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


def _mutated(values: list[float], rng: random.Random, prob_replace: float, power: float, stdev: float,
             lo: float, hi: float) -> list[float]:
    """Each value replaced by a fresh one (with ``prob_replace``) or perturbed by a Gaussian step, then
    clamped to [lo, hi] exactly as ``min(hi, max(lo, v))``; one ``random()`` and one ``gauss()`` each."""
    random, gauss = rng.random, rng.gauss
    out = []
    for v in values:
        v = gauss(0.0, stdev) if random() < prob_replace else v + gauss(0.0, power)
        v = v if v > lo else lo
        out.append(v if v < hi else hi)
    return out


def _new_value(rng: random.Random, stdev: float, lo: float, hi: float) -> float:
    return min(hi, max(lo, rng.gauss(0.0, stdev)))


def _new_weight(rng: random.Random, config: EvolutionConfig) -> float:
    return _new_value(rng, config.weight_init_stdev, config.weight_min_value, config.weight_max_value)
