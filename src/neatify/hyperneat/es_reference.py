"""ES-HyperNEAT (Risi & Stanley 2012) for one CPPN at a time, as the paper's pseudocode reads.

Written to be read and to check the batched decoder (``es_batched``) against, not for speed. The
substrate is the square [-1, 1] x [-1, 1]. For a fixed point ``a``, a quadtree over the square is
divided by the variance of the CPPN's weights from ``a`` (DivisionAndInitialization); then the
squares of low variance whose weight stands out from its neighbours' on both sides of a band are
expressed as connections (PruneAndExtract). Hidden nodes are found from the inputs outward, then
``iteration_level`` rounds outward from the new hidden nodes, then back from the outputs; only the
nodes on a path from an input to an output are kept.

Conventions shared with the batched decoder (both must build the same network): a found point equal
to an input is never a target and one equal to an output never a source; the hidden nodes of a
stage are admitted in (y, x) order up to ``max_hidden``; the phenotype's hidden node ids follow
the outputs in (y, x) order; its connections are sorted by (source id, target id), their
innovations 0, 1, ...; the first ``max_connections`` are kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from neatify.genome.genes import ConnectionGene, NodeGene
from neatify.genome.genome import Genome
from neatify.hyperneat.es_params import ESParams, check_cppn, expressed, substrate_points
from neatify.network.network import Network

Point = tuple[float, float]


@dataclass
class Quad:
    """A square of the quadtree: centre, half-width, level (the root is 1), weight at its centre."""

    x: float
    y: float
    width: float
    level: int
    weight: float = 0.0
    children: list[Quad] = field(default_factory=list)

    def leaf_weights(self) -> list[float]:
        """The weights of the leaves below this square (itself when it is a leaf)."""
        if not self.children:
            return [self.weight]
        return [w for child in self.children for w in child.leaf_weights()]

    def variance(self) -> float:
        """The variance of the leaf weights below this square (0 for a leaf)."""
        return float(np.var(self.leaf_weights()))


@dataclass
class ESNetwork:
    """One decoded phenotype: hidden node points (in id order), (source id, target id, weight) connections."""

    num_inputs: int
    num_outputs: int
    hidden: list[Point]
    connections: list[tuple[int, int, float]]
    capped: bool
    activation: str

    def genome(self, genome_id: int) -> Genome:
        """The phenotype as a NEATify genome (inputs 0.., outputs next, hidden after; bias 0)."""
        genome = Genome(genome_id, self.num_inputs, self.num_outputs)
        first_hidden = self.num_inputs + self.num_outputs
        for node in range(self.num_inputs, first_hidden + len(self.hidden)):
            kind = "output" if node < first_hidden else "hidden"
            genome.nodes[node] = NodeGene(node, kind, 0.0, self.activation)
        for innovation, (src, dst, weight) in enumerate(self.connections):
            genome.connections[innovation] = ConnectionGene(innovation, src, dst, weight, True)
        return genome


class ReferenceES:
    """Decodes CPPN genomes one at a time into ES-HyperNEAT networks over fixed input and output points."""

    def __init__(self, inputs: Sequence[Sequence[float]], outputs: Sequence[Sequence[float]],
                 params: ESParams | None = None) -> None:
        in_array, out_array = substrate_points(inputs, outputs)
        self.inputs: list[Point] = list(map(tuple, in_array.tolist()))
        self.outputs: list[Point] = list(map(tuple, out_array.tolist()))
        self.params = params if params is not None else ESParams()

    def decode(self, cppn: Genome) -> ESNetwork:
        """The phenotype of ``cppn`` (a feed-forward genome of 4 inputs)."""
        check_cppn(cppn, self.params)
        if cppn.is_recurrent():
            raise ValueError(f"CPPN genome {cppn.id} is recurrent; ES-HyperNEAT queries feed-forward CPPNs")
        net = Network(cppn)
        found: dict[tuple[Point, Point], float] = {}
        hidden: list[Point] = []
        capped = self._admit(hidden, self._explore(net, self.inputs, True, found))
        unexplored = list(hidden)
        for _ in range(self.params.iteration_level):
            known = len(hidden)
            capped |= self._admit(hidden, self._explore(net, unexplored, True, found))
            unexplored = hidden[known:]
        self._explore(net, self.outputs, False, found)
        return self._network(found, set(hidden), capped)

    def _admit(self, hidden: list[Point], targets: set[Point]) -> bool:
        """Add the new hidden points among ``targets`` in (y, x) order up to the cap; whether any was dropped."""
        ends = set(self.inputs) | set(self.outputs) | set(hidden)
        new = sorted((p for p in targets if p not in ends), key=lambda p: (p[1], p[0]))
        room = max(0, self.params.max_hidden - len(hidden))
        hidden.extend(new[:room])
        return len(new) > room

    def _explore(self, net: Network, points: list[Point], outgoing: bool,
                 found: dict[tuple[Point, Point], float]) -> set[Point]:
        """Connections out of (or into) each of ``points`` added to ``found``; the points they reach."""
        reached = set()
        for point in points:
            root = self._divide(net, point, outgoing)
            connections: dict[tuple[Point, Point], float] = {}
            self._extract(net, point, root, outgoing, connections)
            found.update(connections)
            reached.update(dst if outgoing else src for src, dst in connections)
        return reached

    def _weight(self, net: Network, fixed: Point, point: Point, outgoing: bool) -> float:
        """The expressed weight from ``fixed`` to ``point`` (or from ``point`` to ``fixed``)."""
        src, dst = (fixed, point) if outgoing else (point, fixed)
        net.reset()
        raw = net.activate([src[0], src[1], dst[0], dst[1]])[self.params.cppn_output]
        return float(expressed(raw, self.params))

    def _divide(self, net: Network, fixed: Point, outgoing: bool) -> Quad:
        """DivisionAndInitialization: the quadtree from ``fixed``, breadth first."""
        params = self.params
        root = Quad(0.0, 0.0, 1.0, 1)
        queue = [root]
        while queue:
            quad = queue.pop(0)
            half = quad.width / 2.0
            quad.children = [Quad(quad.x + dx * half, quad.y + dy * half, half, quad.level + 1)
                             for dx, dy in ((-1, -1), (-1, 1), (1, 1), (1, -1))]
            for child in quad.children:
                child.weight = self._weight(net, fixed, (child.x, child.y), outgoing)
            if quad.level < params.initial_depth or (quad.level < params.max_depth
                                                     and quad.variance() > params.division_threshold):
                queue.extend(quad.children)
        return root

    def _extract(self, net: Network, fixed: Point, quad: Quad, outgoing: bool,
                 connections: dict[tuple[Point, Point], float]) -> None:
        """PruneAndExtract: descend into varied squares; express the others that lie in a band."""
        params = self.params
        for child in quad.children:
            if child.variance() > params.variance_threshold:
                self._extract(net, fixed, child, outgoing, connections)
                continue
            step = quad.width
            left, right, below, above = (
                abs(child.weight - self._weight(net, fixed, (child.x + dx, child.y + dy), outgoing))
                for dx, dy in ((-step, 0.0), (step, 0.0), (0.0, -step), (0.0, step)))
            if max(min(below, above), min(left, right)) <= params.band_threshold or child.weight == 0.0:
                continue
            point = (child.x, child.y)
            src, dst = (fixed, point) if outgoing else (point, fixed)
            if src != dst and (src[1] < dst[1] or not params.feed_forward):
                connections[src, dst] = child.weight

    def _network(self, found: dict[tuple[Point, Point], float], hidden: set[Point], capped: bool) -> ESNetwork:
        """Keep the connections and hidden nodes on a path from an input to an output; number them."""
        sources, targets = set(self.inputs) | hidden, hidden | set(self.outputs)
        edges = {pair: w for pair, w in found.items() if pair[0] in sources and pair[1] in targets}
        on_path = _reachable(edges, set(self.inputs), forward=True) & _reachable(edges, set(self.outputs), False)
        kept = sorted(hidden & on_path, key=lambda p: (p[1], p[0]))
        ids = {p: i for i, p in enumerate(self.inputs + self.outputs + kept)}
        connections = sorted((ids[s], ids[d], w) for (s, d), w in edges.items() if s in on_path and d in on_path)
        limit = self.params.max_connections
        return ESNetwork(len(self.inputs), len(self.outputs), kept, connections[:limit],
                         capped or len(connections) > limit, self.params.activation)


def _reachable(edges: dict[tuple[Point, Point], float], start: set[Point], forward: bool) -> set[Point]:
    """The points reached from ``start`` along ``edges`` (against them when not ``forward``)."""
    step: dict[Point, list[Point]] = {}
    for src, dst in edges:
        a, b = (src, dst) if forward else (dst, src)
        step.setdefault(a, []).append(b)
    reached, stack = set(start), list(start)
    while stack:
        for nxt in step.get(stack.pop(), ()):
            if nxt not in reached:
                reached.add(nxt)
                stack.append(nxt)
    return reached
