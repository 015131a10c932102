"""A genome laid out for computation: node positions, layers and edges, with a plain-Python runner.

The layout is what every executor shares (``NeatModule``, the batched population module, this
file's ``Network``). Positions: the inputs first, then the required nodes layer by layer, each
layer's nodes grouped by activation. An edge whose source does not come before its target in that
order is recurrent: it reads the source's value from the previous time step.

Synchronous layouts (``synchronous=True``) update every node from the previous step's values, as
neat-python's ``RecurrentNetwork`` and the NEAT paper's C++ source do: all non-input nodes form one
layer and every edge from a non-input node is recurrent, so a signal crosses one connection per
step and each hidden node adds a step of delay (what lets a network read velocities from positions).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from neatify.activations import ACTIVATIONS
from neatify.genome.genome import Genome
from neatify.genome.graph import evaluation_plan


class Edge(NamedTuple):
    """One enabled connection between positions (a tuple: layouts hold many and build often)."""

    src: int
    """Position of the source node."""
    dst: int
    """Position of the target node."""
    weight: float
    innovation: int
    recurrent: bool


@dataclass
class NetworkLayout:
    num_inputs: int
    node_ids: list[int]
    """Node id at each position (inputs included)."""
    layer_bounds: list[tuple[int, int]]
    """[start, end) positions of each layer after the inputs."""
    biases: list[float]
    """Bias of each non-input position (index = position - num_inputs)."""
    activations: list[str]
    """Activation of each non-input position."""
    edges: list[Edge]
    output_positions: list[int]

    @property
    def is_recurrent(self) -> bool:
        return any(e.recurrent for e in self.edges)

    @property
    def num_nodes(self) -> int:
        return len(self.node_ids)

    @classmethod
    def from_genome(cls, genome: Genome, synchronous: bool = False) -> NetworkLayout:
        """Lay ``genome`` out layer by layer, or as one synchronous layer (see the module docstring)."""
        inputs, outputs = genome.input_ids, genome.output_ids
        plan = evaluation_plan(genome.enabled_edges(), inputs, outputs)
        node_ids = list(inputs)
        bounds = []
        layers = [[n for layer in plan.layers for n in layer]] if synchronous else plan.layers
        for layer in layers:
            start = len(node_ids)
            node_ids.extend(sorted(layer, key=lambda n: (genome.nodes[n].activation, n)))
            bounds.append((start, len(node_ids)))
        position = {n: i for i, n in enumerate(node_ids)}
        hidden_and_out = node_ids[len(inputs):]
        recurrent = set(plan.recurrent_edges)
        n_in = len(inputs)
        edges = [Edge(position[c.in_node], position[c.out_node], c.weight, c.innovation,
                      (c.in_node, c.out_node) in recurrent or (synchronous and position[c.in_node] >= n_in))
                 for c in sorted(genome.connections.values(), key=lambda c: c.innovation)
                 if c.enabled and c.in_node in position and position.get(c.out_node, -1) >= n_in]
        return cls(
            num_inputs=len(inputs),
            node_ids=node_ids,
            layer_bounds=bounds,
            biases=[genome.nodes[n].bias for n in hidden_and_out],
            activations=[genome.nodes[n].activation for n in hidden_and_out],
            edges=edges,
            output_positions=[position[o] for o in outputs],
        )


class Network:
    """Runs a genome in plain Python, one input row at a time (no torch needed).

    For a recurrent genome, or any genome with ``synchronous=True``, each ``activate`` is one time
    step; ``reset`` clears the state.
    """

    def __init__(self, genome: Genome, synchronous: bool = False) -> None:
        self.layout = layout = NetworkLayout.from_genome(genome, synchronous)
        self._incoming: list[list[Edge]] = [[] for _ in range(layout.num_nodes)]
        for e in layout.edges:
            self._incoming[e.dst].append(e)
        self._functions = [ACTIVATIONS[name] for name in layout.activations]
        self._state = [0.0] * layout.num_nodes

    def reset(self) -> None:
        self._state = [0.0] * self.layout.num_nodes

    def activate(self, inputs: list[float]) -> list[float]:
        layout = self.layout
        if len(inputs) != layout.num_inputs:
            raise ValueError(f"expected {layout.num_inputs} inputs, got {len(inputs)}")
        previous = self._state
        values = list(inputs) + [0.0] * (layout.num_nodes - layout.num_inputs)
        for pos in range(layout.num_inputs, layout.num_nodes):
            k = pos - layout.num_inputs
            total = layout.biases[k]
            for e in self._incoming[pos]:
                total += e.weight * (previous[e.src] if e.recurrent else values[e.src])
            values[pos] = self._functions[k](total)
        self._state = values
        return [values[p] for p in layout.output_positions]
