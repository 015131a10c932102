"""Substrate networks of a whole population as dense weight tensors, one per pair of connected layers.

HyperNEAT's phenotypes share one layered shape (the substrate's), so they can run as batched matrix
products instead of sparse graphs: what ``HyperNEAT.fitness`` evaluates with. It computes what
``HyperNEAT.decode``'s ``NeatPopulationModule`` computes (unexpressed connections are zero weights,
substrate nodes have bias 0); the tests hold the two equal.
"""

from __future__ import annotations

import torch
from torch import nn

from neatify.nn.activations import torch_activation


class DenseSubstrate(nn.Module):
    """``(genomes, batch, outputs)`` from ``(batch, inputs)`` or ``(genomes, batch, inputs)``, like
    ``NeatPopulationModule``; ``weights[k]`` is ``(genomes, targets, sources)`` of layer pair ``k``."""

    def __init__(self, weights: list[torch.Tensor], activations: list[str]) -> None:
        super().__init__()
        if len(weights) != len(activations):
            raise ValueError(f"{len(weights)} weight tensors but {len(activations)} activations")
        self.weights, self.activations = weights, activations
        self.functions = [torch_activation(name) for name in activations]
        self.num_genomes, self.num_outputs, _ = weights[-1].shape
        self.num_inputs = weights[0].shape[2]

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first = self.weights[0]
        x = x.to(device=first.device, dtype=first.dtype)
        if x.dim() == 2 and x.shape[1] == self.num_inputs:
            values = torch.matmul(first, x.T)  # (genomes, targets, batch)
        elif x.dim() == 3 and x.shape[0] == self.num_genomes and x.shape[2] == self.num_inputs:
            values = torch.bmm(first, x.transpose(1, 2))
        else:
            raise ValueError(f"DenseSubstrate expects input of shape (batch, {self.num_inputs}) or "
                             f"({self.num_genomes}, batch, {self.num_inputs}), got {tuple(x.shape)}")
        values = self.functions[0](values)
        for weight, function in zip(self.weights[1:], self.functions[1:]):
            values = function(torch.bmm(weight, values))
        return values.transpose(1, 2)
