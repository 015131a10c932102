"""Checks of plain data (decoded JSON or msgpack) before it becomes objects.

Checkpoints run ``genome_dict_problem`` on every genome they hold; the wire's message classes and genome
columns (``neatify.distributed.wire``) use the same scalar checks (``is_id``, ``is_int``, ``shown``...).
"""

from __future__ import annotations

import math
import reprlib
from typing import Any

from neatify.activations import ACTIVATIONS

_MAX_ID = 2**63
"""Ids and innovation numbers stay below this, so msgpack (64-bit integers) can always send them."""

_short = reprlib.Repr()
_short.maxstring = _short.maxother = 40
_short.maxlist = _short.maxdict = 6


def shown(value: Any) -> str:
    """``repr(value)``, shortened: for error messages about values of any size."""
    return _short.repr(value)


def is_int(value: Any) -> bool:
    """An int that is not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """An int or float that is not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_finite(value: Any) -> bool:
    """A number that converts to a finite float."""
    try:
        return is_number(value) and math.isfinite(value)
    except OverflowError:  # an int beyond the float range
        return False


def is_id(value: Any) -> bool:
    """A non-negative integer small enough for msgpack."""
    return is_int(value) and 0 <= value < _MAX_ID


_GENOME_KEYS = {"id", "num_inputs", "num_outputs", "nodes", "connections", "fitness"}


def genome_dict_problem(data: Any) -> str | None:
    """Why ``data`` is not a valid ``Genome.to_dict()`` (None when it is)."""
    if not isinstance(data, dict):
        return f"genome must be a map, got {type(data).__name__}"
    if set(data) != _GENOME_KEYS:
        return f"genome keys must be {sorted(_GENOME_KEYS)}, got {sorted(map(str, data))}"
    if not (is_id(data["id"]) and is_id(data["num_inputs"]) and is_id(data["num_outputs"])
            and data["num_inputs"] >= 1 and data["num_outputs"] >= 1):
        return "genome id, num_inputs and num_outputs must be integers (inputs and outputs >= 1)"
    if data["fitness"] is not None and not is_finite(data["fitness"]):
        return f"genome fitness must be a finite number or null, got {shown(data['fitness'])}"
    nodes, connections = data["nodes"], data["connections"]
    if not isinstance(nodes, list) or not isinstance(connections, list):
        return "genome nodes and connections must be lists"
    node_ids: set[int] = set()
    for node in nodes:
        problem = _node_problem(node, data["num_inputs"], data["num_outputs"], node_ids)
        if problem:
            return problem
        node_ids.add(node[0])
    if sum(node[1] == "output" for node in nodes) != data["num_outputs"]:
        return "genome lacks some of its output nodes"
    innovations: set[int] = set()
    for conn in connections:
        problem = _connection_problem(conn, data["num_inputs"], node_ids, innovations)
        if problem:
            return problem
        innovations.add(conn[0])
    return None


def _node_problem(node: Any, num_inputs: int, num_outputs: int, seen: set[int]) -> str | None:
    if not (isinstance(node, list) and len(node) == 4 and is_id(node[0]) and node[1] in ("output", "hidden")):
        return f"bad node gene {shown(node)}: expected [id, 'output'|'hidden', bias, activation name]"
    node_id, kind, bias, activation = node
    is_output = num_inputs <= node_id < num_inputs + num_outputs
    if node_id < num_inputs or node_id in seen or is_output != (kind == "output"):
        return f"node id {node_id} is an input, a duplicate, or of the wrong kind"
    if not is_finite(bias):
        return f"node {node_id}: bias must be a finite number, got {shown(bias)}"
    if not isinstance(activation, str) or activation not in ACTIVATIONS:
        return f"node {node_id}: unknown activation {shown(activation)}"
    return None


def _connection_problem(conn: Any, num_inputs: int, node_ids: set[int], seen: set[int]) -> str | None:
    if not (isinstance(conn, list) and len(conn) == 5 and all(is_id(v) for v in conn[:3])
            and isinstance(conn[4], bool)):
        return f"bad connection gene {shown(conn)}: expected [innovation, in, out, weight, enabled]"
    innovation, in_node, out_node, weight, _ = conn
    if innovation in seen:
        return f"duplicate innovation {innovation}"
    if not (in_node < num_inputs or in_node in node_ids) or out_node not in node_ids:
        return f"connection {innovation} joins a node that does not exist ({in_node} -> {out_node})"
    if not is_finite(weight):
        return f"connection {innovation}: weight must be a finite number, got {shown(weight)}"
    return None
