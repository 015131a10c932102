"""CPPNs as ordinary NEAT genomes: a configuration choice, not a new genome type.

A CPPN (compositional pattern-producing network) is a NEAT genome whose nodes draw their activation
from functions with geometric character (periodic, symmetric, step-like). Speciation, breeding,
checkpoints and the wire treat it as any genome; only its inputs mean coordinates (``HyperNEAT``).
"""

from __future__ import annotations

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


def cppn_inputs(dimensions: int) -> int:
    """Inputs a CPPN needs for a substrate of ``dimensions`` (2 or 3): the source's and the target's
    coordinates, ``(x1, y1[, z1], x2, y2[, z2])``; the bias is each node's own."""
    return 2 * dimensions


def cppn_outputs(leo: bool) -> int:
    """Outputs a CPPN needs: the weight, and with link-expression output (LEO) the expression gate."""
    return 2 if leo else 1
