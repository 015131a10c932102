"""CPPNs as ordinary NEAT genomes: a configuration choice, not a new genome type.

A CPPN (compositional pattern-producing network) is a NEAT genome whose nodes draw their activation
from functions with geometric character (periodic, symmetric, step-like). Speciation, breeding,
checkpoints and the wire treat it as any genome; only its inputs mean coordinates (``HyperNEAT``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from neatify.config.evolution import EvolutionConfig

CPPN_ACTIVATIONS = ("sin", "cos", "gauss", "sigmoid", "tanh", "abs", "identity", "step", "square")
"""The activation set a CPPN's hidden nodes mutate among (Stanley 2007's set, plus ``cos`` and ``square``)."""

_CPPN_DEFAULTS: dict[str, Any] = {
    "activation_options": list(CPPN_ACTIVATIONS),
    "activation_default": "tanh",  # outputs and new nodes: a signed value in [-1, 1], as the weight needs
    "prob_mutate_activation": 0.2,
    "prob_add_node": 0.1,
    "prob_add_connection": 0.3,
    "weight_max_value": 8.0,
    "weight_min_value": -8.0,
    "bias_max_value": 8.0,
    "bias_min_value": -8.0,
}


def cppn_config(**overrides: Any) -> EvolutionConfig:
    """An ``EvolutionConfig`` that evolves CPPNs: the CPPN activation set with activation mutation on,
    ``tanh`` outputs; any field can be overridden (``cppn_config(population_size=1000)``)."""
    return EvolutionConfig(**{**_CPPN_DEFAULTS, **overrides})


def cppn_input_names(dimensions: int, deltas: bool = False, distance: bool = False) -> list[str]:
    """What a CPPN reads, in order, for a substrate of ``dimensions`` (2 or 3): the source's coordinates,
    the target's, then with ``deltas`` the target's minus the source's and with ``distance`` the length
    between them (the bias is each node's own)."""
    axes = "xyz"[:dimensions]
    names = [f"{a}1" for a in axes] + [f"{a}2" for a in axes]
    return names + [f"d{a}" for a in axes] * deltas + ["distance"] * distance


def cppn_inputs(dimensions: int, deltas: bool = False, distance: bool = False) -> int:
    """How many inputs a CPPN needs (see ``cppn_input_names``)."""
    return len(cppn_input_names(dimensions, deltas, distance))


def cppn_query(source: Sequence[float], target: Sequence[float], deltas: bool = False,
               distance: bool = False) -> list[float]:
    """The CPPN's inputs for one connection, the plain way (``cppn_input_names`` says the order)."""
    difference = [b - a for a, b in zip(source, target)]
    length = [math.sqrt(sum(d * d for d in difference))] if distance else []
    return [*source, *target, *(difference if deltas else []), *length]


def cppn_outputs(leo: bool) -> int:
    """Outputs a CPPN needs: the weight, and with link-expression output (LEO) the expression gate."""
    return 2 if leo else 1
