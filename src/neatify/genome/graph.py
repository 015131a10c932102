"""Graph questions about a genome's connections: cycles, required nodes, evaluation order.

Pure Python on (in_node, out_node) pairs, shared by the genome (to keep feed-forward genomes
acyclic) and by every network builder (to order the computation).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass


def successor_map(edges: Iterable[tuple[int, int]]) -> dict[int, list[int]]:
    """Each node's direct successors along ``edges``."""
    successors: dict[int, list[int]] = {}
    for a, b in edges:
        successors.setdefault(a, []).append(b)
    return successors


def closes_cycle(successors: Mapping[int, list[int]], new_edge: tuple[int, int]) -> bool:
    """Whether adding ``new_edge`` to the acyclic graph given by its ``successor_map`` would close a
    cycle (self-loops included). Build the map once to ask about many candidate edges."""
    src, dst = new_edge
    if src == dst:
        return True
    stack, seen = [dst], {dst}
    while stack:
        node = stack.pop()
        for nxt in successors.get(node, ()):
            if nxt == src:
                return True
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return False


def creates_cycle(edges: Iterable[tuple[int, int]], new_edge: tuple[int, int]) -> bool:
    """Whether adding ``new_edge`` to the acyclic ``edges`` would close a cycle (self-loops included)."""
    return closes_cycle(successor_map(edges), new_edge)


def required_nodes(edges: Iterable[tuple[int, int]], inputs: Iterable[int], outputs: Iterable[int]) -> set[int]:
    """Non-input nodes whose value can reach an output: the only ones worth computing."""
    predecessors: dict[int, list[int]] = {}
    for a, b in edges:
        predecessors.setdefault(b, []).append(a)
    input_set = set(inputs)
    required = set(outputs)
    stack = list(required)
    while stack:
        node = stack.pop()
        for prev in predecessors.get(node, ()):
            if prev not in required and prev not in input_set:
                required.add(prev)
                stack.append(prev)
    return required


@dataclass
class EvaluationPlan:
    """How to compute a network: nodes grouped into layers, and which edges read the last step.

    ``layers[k]`` holds nodes whose forward inputs all lie in earlier layers (inputs are layer 0,
    not listed). ``recurrent_edges`` are the edges that point backwards in that order (cycles,
    self-loops): they carry the source's value from the previous time step.
    """

    layers: list[list[int]]
    forward_edges: list[tuple[int, int]]
    recurrent_edges: list[tuple[int, int]]

    @property
    def is_recurrent(self) -> bool:
        return bool(self.recurrent_edges)


def evaluation_plan(edges: list[tuple[int, int]], inputs: list[int], outputs: list[int]) -> EvaluationPlan:
    """Order the required nodes for evaluation, finding back edges by a depth-first search.

    The search starts from the inputs, then from any required node not yet reached, always in
    ascending node id, so the plan depends only on the structure, never on gene order.
    """
    needed = required_nodes(edges, inputs, outputs)
    input_set = set(inputs)
    live = sorted({(a, b) for a, b in edges if b in needed and (a in needed or a in input_set)})
    successors: dict[int, list[int]] = {}
    for a, b in live:
        successors.setdefault(a, []).append(b)
    state: dict[int, int] = {}  # 1 = on stack, 2 = done
    back: set[tuple[int, int]] = set()
    finished: list[int] = []  # post-order; reversed, a topological order of the forward edges
    for root in list(inputs) + sorted(needed):
        if root in state:
            continue
        state[root] = 1
        stack = [(root, iter(successors.get(root, ())))]
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                state[node] = 2
                finished.append(node)
                stack.pop()
            elif state.get(nxt) == 1:
                back.add((node, nxt))
            elif nxt not in state:
                state[nxt] = 1
                stack.append((nxt, iter(successors.get(nxt, ()))))
    forward = [e for e in live if e not in back]
    recurrent = [e for e in live if e in back]
    # Longest-path layering of the forward DAG, in topological order.
    preds: dict[int, list[int]] = {}
    for a, b in forward:
        preds.setdefault(b, []).append(a)
    depth: dict[int, int] = {i: 0 for i in inputs}
    for node in reversed(finished):
        if node in needed:
            depth[node] = 1 + max((depth[s] for s in preds.get(node, ())), default=0)
    n_layers = max((depth[n] for n in needed), default=0)
    layers: list[list[int]] = [[] for _ in range(n_layers)]
    for node in sorted(needed):
        layers[depth[node] - 1].append(node)
    return EvaluationPlan([layer for layer in layers if layer], forward, recurrent)
