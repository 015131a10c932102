"""The one validation layer: plain data (decoded JSON or msgpack) checked against typed schemas before it
becomes objects, by msgspec, for checkpoints and the wire alike.

A schema is a ``msgspec.Struct`` (a map with exactly its fields) or any type msgspec converts to, with
the constrained numbers below; ``checked`` and ``problem`` say what is wrong and where (msgspec's path,
``$`` being the value checked). What types cannot say (ids unique, connections joining existing nodes)
is checked after, in plain code. Workers decode genomes from columns with the same rules as
``genome_dict_problem``, so whatever a checkpoint lets a master load, its workers accept.
"""

from __future__ import annotations

import reprlib
import sys
from typing import Annotated, Any, Literal, TypeVar

import msgspec

from neatify.activations import ACTIVATIONS

_MAX_ID = 2**63
"""Ids and innovation numbers stay below this, so msgpack (64-bit integers) can always send them."""

Id = Annotated[int, msgspec.Meta(ge=0, le=_MAX_ID - 1)]
"""A non-negative integer small enough for msgpack: a genome, node or species id, an innovation, a count."""
Positive = Annotated[int, msgspec.Meta(ge=1)]
PositiveId = Annotated[int, msgspec.Meta(ge=1, le=_MAX_ID - 1)]
Count = Annotated[int, msgspec.Meta(ge=0)]
Finite = Annotated[float, msgspec.Meta(ge=-sys.float_info.max, le=sys.float_info.max)]
"""A finite float (an int is taken as one; NaN and infinities are refused)."""
NonNegative = Annotated[float, msgspec.Meta(ge=0.0, le=sys.float_info.max)]
"""A finite float >= 0."""


class Schema(msgspec.Struct, forbid_unknown_fields=True):
    """Base of the map schemas: exactly these keys (those with a default may be left out)."""


T = TypeVar("T")


class SchemaError(ValueError):
    """Plain data that does not fit its schema; the message says what is wrong and at which path."""


def checked(data: Any, schema: type[T]) -> T:
    """``data`` converted to ``schema`` (a Struct becomes an instance); SchemaError when it does not fit.
    Bytes stay bytes: a string is not taken for base64."""
    try:
        return msgspec.convert(data, schema, builtin_types=(bytes,))
    except msgspec.ValidationError as exc:
        raise SchemaError(str(exc)) from None


def problem(data: Any, schema: Any, where: str | None = None) -> str | None:
    """Why ``data`` does not fit ``schema`` (after ``where`` if given), or None when it does."""
    try:
        checked(data, schema)
    except SchemaError as exc:
        return str(exc) if where is None else f"{where}: {exc}"
    return None


_short = reprlib.Repr()
_short.maxstring = _short.maxother = 40
_short.maxlist = _short.maxdict = 6


def shown(value: Any) -> str:
    """``repr(value)``, shortened: for error messages about values of any size."""
    return _short.repr(value)


def is_int(value: Any) -> bool:
    """An int that is not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_id(value: Any) -> bool:
    """A non-negative integer small enough for msgpack."""
    return is_int(value) and 0 <= value < _MAX_ID


class GenomeSchema(Schema):
    """A ``Genome.to_dict()``: node genes ``[id, kind, bias, activation]``, connection genes
    ``[innovation, in node, out node, weight, enabled]``."""

    id: Id
    num_inputs: PositiveId
    num_outputs: PositiveId
    nodes: list[tuple[Id, Literal["output", "hidden"], Finite, str]]
    connections: list[tuple[Id, Id, Id, Finite, bool]]
    fitness: Finite | None


def genome_dict_problem(data: Any) -> str | None:
    """Why ``data`` is not a valid ``Genome.to_dict()`` (None when it is)."""
    found = problem(data, GenomeSchema)
    if found:
        return found
    num_inputs, num_outputs = data["num_inputs"], data["num_outputs"]
    node_ids: set[int] = set()
    for node_id, kind, _, activation in data["nodes"]:
        is_output = num_inputs <= node_id < num_inputs + num_outputs
        if node_id < num_inputs or node_id in node_ids or is_output != (kind == "output"):
            return f"node id {node_id} is an input, a duplicate, or of the wrong kind"
        if activation not in ACTIVATIONS:
            return f"node {node_id}: unknown activation {shown(activation)}"
        node_ids.add(node_id)
    if sum(node[1] == "output" for node in data["nodes"]) != num_outputs:
        return "genome lacks some of its output nodes"
    innovations: set[int] = set()
    for innovation, in_node, out_node, _, _ in data["connections"]:
        if innovation in innovations:
            return f"duplicate innovation {innovation}"
        if not (in_node < num_inputs or in_node in node_ids) or out_node not in node_ids:
            return f"connection {innovation} joins a node that does not exist ({in_node} -> {out_node})"
        innovations.add(innovation)
    return None
