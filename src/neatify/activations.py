"""Activation functions by name, in plain Python (torch versions live in ``neatify.torch_ops``)."""

from __future__ import annotations

import math
from typing import Callable


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
}
"""Name -> scalar function. ``neat_sigmoid`` is the paper's steepened 1/(1+e^(-4.9x))."""
