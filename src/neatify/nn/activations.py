"""The activation functions of ``neatify.activations``, as elementwise torch operations."""

from __future__ import annotations

from typing import Callable

import torch

from neatify.activations import ACTIVATIONS, TORCH_REGISTERED


def _sigmoid(x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """The logistic function of ``scale * x`` from ``torch.exp``: on CPU ``torch.sigmoid`` rounds an element
    differently by its place in the tensor (vectorised body or scalar tail), so a genome's outputs would depend
    on the genomes batched beside it; ``exp`` does not. The exponent is held to [-60, 60] as in
    ``neatify.activations`` (so ``exp`` never overflows to inf, whose gradient would be NaN)."""
    # out of place: autograd needs exp's output (NeatModule trains)
    return 1.0 / (1.0 + torch.exp((x * -scale).clamp(-60.0, 60.0)))


TORCH_ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "sigmoid": _sigmoid,
    "neat_sigmoid": lambda x: _sigmoid(x, 4.9),
    "tanh": torch.tanh,
    "relu": torch.relu,
    "identity": lambda x: x,
    "sin": torch.sin,
    "gauss": lambda x: torch.exp(-5.0 * x.clamp(-3.4, 3.4) ** 2),
    "abs": torch.abs,
    "clamped": lambda x: x.clamp(-1.0, 1.0),
    "cos": torch.cos,
    "step": lambda x: (x > 0.0).to(x.dtype),
    "square": torch.square,
}


def torch_activation(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The torch function of a built-in or registered activation; a clear error when there is none."""
    function = TORCH_ACTIVATIONS.get(name) or TORCH_REGISTERED.get(name)
    if function is not None:
        return function
    if name in ACTIVATIONS:
        raise ValueError(f"activation {name!r} was registered without a torch_function, which torch modules "
                         f"need: register_activation({name!r}, function, torch_function=...)")
    raise ValueError(f"unknown activation {name!r}; known: {', '.join(sorted(ACTIVATIONS))}")
