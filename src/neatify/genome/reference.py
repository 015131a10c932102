"""The per-genome NEAT operators (mutation, crossover, compatibility distance): the executable specification.

They follow Stanley & Miikkulainen (2002) one genome at a time, readable rather than fast. The run
loop breeds with the batched operators of ``neatify.breeding`` and measures distances in
``neatify.speciation``; tests hold those to these, draw for draw.
"""

from __future__ import annotations

import math
import random
from typing import TYPE_CHECKING

from neatify.config import EvolutionConfig
from neatify.genome.genes import ConnectionGene, NodeGene
from neatify.genome.graph import closes_cycle, successor_map
from neatify.genome.innovation import InnovationTracker

if TYPE_CHECKING:
    from neatify.genome.genome import Genome


class ReferenceOperators:
    """Mixed into ``Genome``: the operators read and write its ``nodes`` and ``connections``."""

    nodes: dict[int, NodeGene]
    connections: dict[int, ConnectionGene]
    num_inputs: int
    num_outputs: int

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
            self._add_connection(tracker.connection(src, dst), src, dst, new_weight(rng, config))
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
        child = type(parent1)(child_id, parent1.num_inputs, parent1.num_outputs)
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


def new_value(rng: random.Random, stdev: float, lo: float, hi: float) -> float:
    return min(hi, max(lo, rng.gauss(0.0, stdev)))


def new_weight(rng: random.Random, config: EvolutionConfig) -> float:
    return new_value(rng, config.weight_init_stdev, config.weight_min_value, config.weight_max_value)
