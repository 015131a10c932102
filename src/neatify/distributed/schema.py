"""Schemas of the message payloads, checked on receipt before anything acts on them."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from neatify.activations import ACTIVATIONS
from neatify.distributed.auth import NONCE_BYTES, PROOF_BYTES

Check = Callable[[Any], bool]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_float(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_str(value: Any) -> bool:
    return isinstance(value, str)


def _bytes_of(size: int) -> Check:
    return lambda value: isinstance(value, bytes) and len(value) == size


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def _list_of(item: Check) -> Check:
    return lambda value: isinstance(value, list) and all(item(v) for v in value)


def _pair(first: Check, second: Check) -> Check:
    return lambda value: isinstance(value, list) and len(value) == 2 and first(value[0]) and second(value[1])


def _positive_int(value: Any) -> bool:
    return _is_int(value) and value >= 1


def _finite_nonneg(value: Any) -> bool:
    return _is_float(value) and math.isfinite(value) and value >= 0


def _worker_id(value: Any) -> bool:
    return (_is_int(value) or _is_str(value)) and len(str(value)) <= 200


def _is_dict(value: Any) -> bool:
    return isinstance(value, dict)


# message type name -> field -> (check, required); a payload must be a map with exactly these keys
# (optional ones may be absent)
SCHEMAS: dict[str, dict[str, tuple[Check, bool]]] = {
    "WORKER_REGISTRATION": {"protocol_version": (_is_int, True), "worker_id": (_worker_id, True),
                            "capacity": (_positive_int, True), "nonce": (_bytes_of(NONCE_BYTES), False),
                            "proof": (_bytes_of(PROOF_BYTES), False)},
    "REGISTRATION_ACK": {"status": (lambda v: v in ("challenge", "accepted"), True),
                         "nonce": (_bytes_of(NONCE_BYTES), False), "proof": (_bytes_of(PROOF_BYTES), False),
                         "heartbeat_interval": (_finite_nonneg, False)},
    "TASK_ASSIGNMENT": {"batch_id": (_is_int, True), "generation": (_is_int, True),
                        "genomes": (_list_of(_is_dict), True)},
    "FITNESS_REPORT": {"batch_id": (_is_int, True), "fitness": (_list_of(_pair(_is_int, _is_float)), True),
                       "errors": (_list_of(_pair(_is_int, _is_str)), True), "elapsed": (_finite_nonneg, True)},
    "HEARTBEAT_REQUEST": {"sent": (_is_float, True)},
    "HEARTBEAT_RESPONSE": {"sent": (_is_float, True)},
    "SHUTDOWN_SIGNAL": {"reason": (_is_str, True)},
    "ERROR_REPORT": {"message": (_is_str, True), "fatal": (_is_bool, True),
                     "code": (lambda v: v in ("auth", "version", "busy", "error"), True)},
    "STATUS_UPDATE": {"state": (lambda v: v in ("leaving",), True)},
}


def payload_problem(message: str, payload: Any) -> str | None:
    """Why ``payload`` does not fit the schema of message type ``message`` (None when it does)."""
    if not isinstance(payload, dict):
        return f"{message} payload must be a map, got {type(payload).__name__}"
    fields = SCHEMAS[message]
    unknown = sorted(str(k) for k in payload if k not in fields)
    if unknown:
        return f"{message} payload has unknown field(s) {', '.join(unknown)}"
    for name, (check, required) in fields.items():
        if name not in payload:
            if required:
                return f"{message} payload lacks field {name!r}"
        elif not check(payload[name]):
            return f"{message} field {name!r} has an invalid value"
    return None


_GENOME_KEYS = {"id", "num_inputs", "num_outputs", "nodes", "connections", "fitness"}


def genome_dict_problem(data: dict[str, Any]) -> str | None:
    """Why ``data`` is not a valid ``Genome.to_dict()`` (None when it is)."""
    if set(data) != _GENOME_KEYS:
        return f"genome keys must be {sorted(_GENOME_KEYS)}, got {sorted(map(str, data))}"
    if not (_is_int(data["id"]) and _positive_int(data["num_inputs"]) and _positive_int(data["num_outputs"])):
        return "genome id, num_inputs and num_outputs must be integers (inputs and outputs >= 1)"
    if data["fitness"] is not None and not _is_float(data["fitness"]):
        return "genome fitness must be a number or nil"
    num_inputs, num_outputs = data["num_inputs"], data["num_outputs"]
    nodes, connections = data["nodes"], data["connections"]
    if not isinstance(nodes, list) or not isinstance(connections, list):
        return "genome nodes and connections must be lists"
    node_ids: set[int] = set()
    for node in nodes:
        if not (isinstance(node, list) and len(node) == 4 and _is_int(node[0]) and node[1] in ("output", "hidden")
                and _is_float(node[2]) and node[3] in ACTIVATIONS):
            return f"bad node gene {node!r}: expected [id, 'output'|'hidden', bias, activation name]"
        is_output = num_inputs <= node[0] < num_inputs + num_outputs
        if node[0] < num_inputs or node[0] in node_ids or is_output != (node[1] == "output"):
            return f"node id {node[0]} is an input, a duplicate, or of the wrong kind"
        node_ids.add(node[0])
    if len(node_ids & set(range(num_inputs, num_inputs + num_outputs))) != num_outputs:
        return "genome lacks some of its output nodes"
    innovations: set[int] = set()
    for conn in connections:
        if not (isinstance(conn, list) and len(conn) == 5 and all(_is_int(v) for v in conn[:3])
                and _is_float(conn[3]) and _is_bool(conn[4])):
            return f"bad connection gene {conn!r}: expected [innovation, in, out, weight, enabled]"
        if conn[0] in innovations:
            return f"duplicate innovation {conn[0]}"
        innovations.add(conn[0])
        if not (0 <= conn[1] < num_inputs or conn[1] in node_ids) or conn[2] not in node_ids:
            return f"connection {conn[0]} joins a node that does not exist ({conn[1]} -> {conn[2]})"
    return None
