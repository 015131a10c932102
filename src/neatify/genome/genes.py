"""Node and connection genes: the plain data a genome is made of."""

from __future__ import annotations

from dataclasses import dataclass


class _Gene:
    """A slot a genome view's genes fill with a reference to the view (``neatify.genome.genome``), so a
    change can tell it; a plain gene leaves it unset."""

    __slots__ = ("_watch",)


@dataclass(slots=True)
class NodeGene(_Gene):
    """A non-input node. Its id doubles as its innovation number for alignment."""

    id: int
    kind: str  # "output" or "hidden"
    bias: float = 0.0
    activation: str = "neat_sigmoid"

    def to_list(self) -> list:
        return [self.id, self.kind, self.bias, self.activation]

    @classmethod
    def from_list(cls, data: list) -> NodeGene:
        node_id, kind, bias, activation = data
        return cls(int(node_id), str(kind), float(bias), str(activation))


@dataclass(slots=True)
class ConnectionGene(_Gene):
    """A weighted edge from ``in_node`` to ``out_node``, aligned across genomes by ``innovation``."""

    innovation: int
    in_node: int
    out_node: int
    weight: float
    enabled: bool = True

    def to_list(self) -> list:
        return [self.innovation, self.in_node, self.out_node, self.weight, self.enabled]

    @classmethod
    def from_list(cls, data: list) -> ConnectionGene:
        innovation, in_node, out_node, weight, enabled = data
        return cls(int(innovation), int(in_node), int(out_node), float(weight), bool(enabled))
