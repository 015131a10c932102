"""The activation functions of ``neatify.activations``, as elementwise torch operations."""

from __future__ import annotations

from typing import Callable

import torch

TORCH_ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "sigmoid": torch.sigmoid,
    "neat_sigmoid": lambda x: torch.sigmoid(4.9 * x),
    "tanh": torch.tanh,
    "relu": torch.relu,
    "identity": lambda x: x,
    "sin": torch.sin,
    "gauss": lambda x: torch.exp(-5.0 * x.clamp(-3.4, 3.4) ** 2),
    "abs": torch.abs,
    "clamped": lambda x: x.clamp(-1.0, 1.0),
}
