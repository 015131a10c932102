"""A ``NeatPopulationModule``'s feed-forward networks as flat arrays, genome by genome, for compiled loops
that run one network at a time (a rollout stepping each cart to its end: ``neatify.envs.cartpole_compiled``).

Rows and weights are the module's own (same numbering, same dtype): row ``r`` reads
``bias[r] + sum(weight[k] * value[column[k]])`` over ``k`` in ``crow[r] .. crow[r + 1] - 1``, a column
below ``num_nodes`` being a node row and ``num_nodes + i`` input ``i``, then applies activation
``ACTIVATION_CODES[activation[r]]``. Rows ``rows[genome_start[g]:genome_start[g + 1]]`` are genome ``g``'s,
in the module's layer order, so each reads only rows computed before it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from neatify.nn.population_module import NeatPopulationModule

ACTIVATION_CODES = ("identity", "sigmoid", "neat_sigmoid", "tanh", "relu", "clamped", "abs", "square", "step",
                    "gauss", "sin", "cos")
"""The activations a compiled loop computes (``neatify.nn.activations``' formulas), by code."""


@dataclass
class FlatNetworks:
    """Every genome's nodes in evaluation order with their incoming edges as one CSR (see the module docstring)."""

    num_nodes: int
    genome_start: np.ndarray
    rows: np.ndarray
    crow: np.ndarray
    column: np.ndarray
    weight: np.ndarray
    bias: np.ndarray
    activation: np.ndarray
    outputs: np.ndarray
    """Row of each genome's each output, ``(genomes, num_outputs)``."""

    @classmethod
    def of(cls, module: NeatPopulationModule) -> FlatNetworks | None:
        """``module``'s networks flattened, or None when a compiled loop cannot run them: recurrent, off the
        CPU, or an activation outside ``ACTIVATION_CODES``."""
        if module.is_recurrent or module._bias.device.type != "cpu":
            return None
        names = {name for runs in module._segments for name, _, _ in runs}
        if not names <= set(ACTIVATION_CODES):
            return None
        activation = np.zeros(module._num_nodes, np.int8)
        for runs in module._segments:
            for name, start, end in runs:
                activation[start:end] = ACTIVATION_CODES.index(name)
        crows, columns, weights, offset = [np.zeros(1, np.int64)], [], [], 0
        for k in range(len(module._layer_rows)):
            crow, shared, _, weight = (part.numpy() for part in module._part(f"_layer_{k}"))
            crows.append(crow[1:] + offset)
            columns.append(shared)
            weights.append(weight)
            offset += int(crow[-1])
        genome = module._row_genomes().numpy()
        rows = np.argsort(genome, kind="stable")
        genome_start = np.searchsorted(genome[rows], np.arange(module.num_genomes + 1))
        dtype = module._bias.dtype
        return cls(module._num_nodes, genome_start.astype(np.int64), rows.astype(np.int64), np.concatenate(crows),
                   np.concatenate(columns).astype(np.int64), np.concatenate(weights).astype(_numpy(dtype)),
                   module._bias[:, 0].numpy(), activation,
                   module._outputs.numpy().reshape(module.num_genomes, module.num_outputs))


def _numpy(dtype: torch.dtype) -> np.dtype:
    """The numpy dtype of a torch floating dtype."""
    return torch.empty(0, dtype=dtype).numpy().dtype
