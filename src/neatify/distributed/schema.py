"""Schemas of the message payloads, checked on receipt before anything acts on them."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from neatify.checks import is_int as _is_int
from neatify.checks import is_number as _is_float
from neatify.distributed.auth import NONCE_BYTES, PROOF_BYTES

Check = Callable[[Any], bool]


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


def _count(value: Any) -> bool:
    return _is_int(value) and value >= 0


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
                        "genomes": (_list_of(_is_dict), True)},  # each map checked by genome_wire.decode_genomes
    "FITNESS_REPORT": {"batch_id": (_is_int, True), "fitness": (_list_of(_pair(_is_int, _is_float)), True),
                       "errors": (_list_of(_pair(_is_int, _is_str)), True), "elapsed": (_finite_nonneg, True)},
    "HEARTBEAT_REQUEST": {"sent": (_is_float, True)},
    "HEARTBEAT_RESPONSE": {"sent": (_is_float, True)},
    "SHUTDOWN_SIGNAL": {"reason": (_is_str, True)},
    "ERROR_REPORT": {"message": (_is_str, True), "fatal": (_is_bool, True),
                     "code": (lambda v: v in ("auth", "version", "busy", "error"), True)},
    "STATUS_UPDATE": {"state": (lambda v: v in ("leaving",), True)},
    "STATUS_REQUEST": {"nonce": (_bytes_of(NONCE_BYTES), False), "proof": (_bytes_of(PROOF_BYTES), False)},
    "STATUS_REPORT": {"workers": (_count, True), "busy": (_count, True), "idle": (_count, True),
                      "pending": (_count, True), "generation": (_is_int, True), "evaluating": (_is_bool, True),
                      "genomes_per_s": (_finite_nonneg, True), "uptime": (_finite_nonneg, True)},
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
