"""Activation functions by name, in plain Python (torch versions live in ``neatify.nn.activations``).

``register_activation`` adds your own: every place that accepts an activation name (configs,
``Network``, ``NeatModule``, ``NeatPopulationModule``, export, distributed workers) consults these
tables, so a registered name works everywhere in the process that registered it.
"""

from __future__ import annotations

import math
from typing import Any, Callable


def _sigmoid(x: float) -> float:
    x = max(-60.0, min(60.0, x))
    return 1.0 / (1.0 + math.exp(-x))


def _gauss(x: float) -> float:
    x = max(-3.4, min(3.4, x))
    return math.exp(-5.0 * x * x)


ACTIVATIONS: dict[str, Callable[[float], float]] = {
    "sigmoid": _sigmoid,
    "neat_sigmoid": lambda x: _sigmoid(4.9 * x),
    "tanh": math.tanh,
    "relu": lambda x: x if x > 0.0 else 0.0,
    "identity": lambda x: x,
    "sin": math.sin,
    "gauss": _gauss,
    "abs": abs,
    "clamped": lambda x: max(-1.0, min(1.0, x)),
    "cos": math.cos,
    "step": lambda x: 1.0 if x > 0.0 else 0.0,
    "square": lambda x: x * x,
}
"""Name -> scalar function. ``neat_sigmoid`` is the paper's steepened 1/(1+e^(-4.9x)); ``cos``, ``step``
and ``square`` complete the CPPN set (``neatify.hyperneat.cppn``)."""

BUILT_IN = frozenset(ACTIVATIONS)

TORCH_REGISTERED: dict[str, Callable[[Any], Any]] = {}
"""Name -> elementwise torch function of the activations added by ``register_activation``."""


def register_activation(name: str, function: Callable[[float], float],
                        torch_function: Callable[[Any], Any] | None = None) -> None:
    """Make ``name`` an activation everywhere: ``function`` maps a float to a float; ``torch_function``
    (a tensor to a tensor, elementwise) is what ``NeatModule``, ``NeatPopulationModule`` and export
    use. Register at the top level of the module that defines your fitness function, so worker
    processes that import it (``ParallelEvaluator``, Ray, ``neatify worker``) know the name too."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"an activation name must be a non-empty string, got {name!r}")
    if name in BUILT_IN:
        raise ValueError(f"{name!r} is a built-in activation; choose another name")
    if not callable(function) or (torch_function is not None and not callable(torch_function)):
        raise TypeError(f"activation {name!r}: function and torch_function must be callables")
    ACTIVATIONS[name] = function
    if torch_function is None:
        TORCH_REGISTERED.pop(name, None)
    else:
        TORCH_REGISTERED[name] = torch_function
