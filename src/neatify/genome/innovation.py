"""Global innovation numbers, so that the same structural change gets the same number."""

from __future__ import annotations

from typing import Any


class InnovationTracker:
    """Hands out innovation numbers for connections and ids for new nodes.

    A connection between the same two nodes always gets the same innovation number in a run.
    Splitting the same connection in the same generation gives the same new node id (the paper's
    rule); ``new_generation()`` forgets the splits of the last one.
    """

    def __init__(self, next_innovation: int, next_node_id: int) -> None:
        self.next_innovation = next_innovation
        self.next_node_id = next_node_id
        self._connections: dict[tuple[int, int], int] = {}
        self._splits: dict[int, int] = {}

    def connection(self, in_node: int, out_node: int) -> int:
        key = (in_node, out_node)
        innovation = self._connections.get(key)
        if innovation is None:
            innovation = self._connections[key] = self.next_innovation
            self.next_innovation += 1
        return innovation

    def split(self, innovation: int, taken: set[int] | dict[int, Any]) -> int:
        """Node id for splitting connection ``innovation``; fresh if the genome already has it."""
        node_id = self._splits.get(innovation)
        if node_id is None or node_id in taken:
            node_id = self.next_node_id
            self.next_node_id += 1
            self._splits.setdefault(innovation, node_id)
        return node_id

    def new_generation(self) -> None:
        self._splits.clear()

    def to_dict(self) -> dict[str, Any]:
        return {
            "next_innovation": self.next_innovation,
            "next_node_id": self.next_node_id,
            "connections": [[a, b, n] for (a, b), n in self._connections.items()],
            "splits": [[k, v] for k, v in self._splits.items()],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InnovationTracker:
        tracker = cls(int(data["next_innovation"]), int(data["next_node_id"]))
        tracker._connections = {(int(a), int(b)): int(n) for a, b, n in data["connections"]}
        tracker._splits = {int(k): int(v) for k, v in data["splits"]}
        return tracker
