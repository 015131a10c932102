"""``NeatPopulationModule``: every genome of a population evaluated at once, in batched tensors.

Representation: one sparse matrix product per depth level, over one value matrix with a row per
node of every genome and a column per input row of the batch. Node rows are ordered layer by layer
(all genomes' layer-1 nodes, then layer 2, ...) and, inside a layer, grouped by activation, so
a layer is ``values[layer] = act(bias + W_layer @ values)`` with ``W_layer`` a CSR matrix holding
that layer's incoming edges of all genomes, and each activation runs once on a contiguous block of
rows. Inputs sit below the node rows: ``num_inputs`` rows shared by all genomes, or one block per
genome. Recurrent edges form one more CSR matrix applied to the previous step's node values,
exactly as ``NeatModule`` does for one genome. Nothing is padded: the work is proportional to the
population's real nodes and edges. On CPU the batch is processed in column chunks that stay in
cache (``chunk_elements``). The rows and CSR parts are laid out for all genomes at once in numpy
(``neatify.population_layout``).

Why not padded dense per depth level (each genome's layer ``k`` padded to the widest layer ``k``
and one batched matrix product ``(genomes, batch, columns) @ (genomes, columns, width)`` per
level): measured on a 2-core CPU, one thread, for 1,000 genomes with 5-10 hidden nodes (11 depth
levels, 36 padded columns against 9.5 real nodes per genome) on 1,000 input rows, the padded dense
form took 533-614 ms per forward pass (by chunk size), the sparse form 18.4 ms. Depth varies a
lot across a NEAT population, so padding every genome to the deepest and widest one multiplies the
work, and tiny per-genome matrices run far below BLAS speed. See ``docs/batched.md``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch
from torch import nn

from neatify.genome import Genome
from neatify.nn.activations import torch_activation
from neatify.population_layout import PopulationLayout


class NeatPopulationModule(nn.Module):
    """Many genomes' networks at once: ``(batch, in)`` or ``(genomes, batch, in)`` -> ``(genomes, batch, out)``.

    Genome ``i``'s slice of the output equals ``NeatModule(genomes[i])`` on its inputs (to float
    tolerance). Recurrent genomes keep their node values between calls (one call = one time step),
    as ``NeatModule`` does; ``reset()`` clears them. ``synchronous=True`` updates every node from
    the previous step's values, as neat-python's ``RecurrentNetwork`` does (see ``neatify.network``).
    For evaluation only: no gradients flow.
    """

    chunk_elements = 1 << 20
    """On CPU, batch columns are processed in chunks of about this many values (cache-sized)."""

    def __init__(self, genomes: Sequence[Genome], device: torch.device | str | None = None,
                 dtype: torch.dtype = torch.float32, synchronous: bool = False) -> None:
        super().__init__()
        if not genomes:
            raise ValueError("NeatPopulationModule needs at least one genome")
        self.num_inputs, self.num_outputs = genomes[0].num_inputs, genomes[0].num_outputs
        for g in genomes:
            if (g.num_inputs, g.num_outputs) != (self.num_inputs, self.num_outputs):
                raise ValueError(f"genome {g.id} has {g.num_inputs} inputs and {g.num_outputs} outputs; "
                                 f"expected {self.num_inputs} and {self.num_outputs} like the first genome")
        self.num_genomes = len(genomes)
        rows = PopulationLayout.from_genomes(genomes, synchronous)
        self._num_nodes = rows.num_nodes
        self._layer_rows = rows.layer_rows
        self._segments = rows.segments
        self.register_buffer("_bias", torch.as_tensor(rows.bias, dtype=dtype, device=device).unsqueeze(1))
        self.register_buffer("_outputs", torch.as_tensor(rows.outputs, device=device))
        parts = {f"_layer_{k}": csr for k, csr in enumerate(rows.layers)}
        if rows.recurrent is not None:
            parts["_recurrent"] = rows.recurrent
        for name, (crow, shared, own, weight) in parts.items():
            self.register_buffer(f"{name}_crow", torch.as_tensor(crow, device=device))
            self.register_buffer(f"{name}_shared", torch.as_tensor(shared, device=device))
            self.register_buffer(f"{name}_own", torch.as_tensor(own, device=device))
            self.register_buffer(f"{name}_weight", torch.as_tensor(weight, dtype=dtype, device=device))
        self._has_recurrent = rows.recurrent is not None
        self.register_buffer("_state", None, persistent=False)
        self._matrices: dict[str, tuple[list[torch.Tensor], torch.Tensor | None]] = {}

    @property
    def is_recurrent(self) -> bool:
        """Whether any genome reads the previous step (a recurrent edge, or in synchronous mode any edge
        from a non-input node): then calls are time steps."""
        return self._has_recurrent

    def reset(self) -> None:
        """Forget the recurrent state (the next call starts from all-zero node values)."""
        self._state = None

    def _apply(self, fn, recurse=True):  # rebuild the cached CSR matrices on the new device/dtype
        self._matrices = {}
        return super()._apply(fn, recurse)

    def _csr_matrices(self, columns: str, n_rows: int) -> tuple[list[torch.Tensor], torch.Tensor | None]:
        """The layers' CSR matrices and the recurrent one, for 'shared' or 'own' input columns."""
        if columns not in self._matrices:
            def matrix(name: str, n_columns: int, numbering: str) -> torch.Tensor:
                crow = getattr(self, f"{name}_crow")
                return torch.sparse_csr_tensor(crow, getattr(self, f"{name}_{numbering}"),
                                               getattr(self, f"{name}_weight"), (crow.shape[0] - 1, n_columns),
                                               check_invariants=False)

            with warnings.catch_warnings():  # "Sparse CSR tensor support is in beta state"
                warnings.simplefilter("ignore", UserWarning)
                layers = [matrix(f"_layer_{k}", n_rows, columns) for k in range(len(self._layer_rows))]
                recurrent = matrix("_recurrent", self._num_nodes, "shared") if self._has_recurrent else None
            self._matrices[columns] = (layers, recurrent)
        return self._matrices[columns]

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Every genome's outputs ``(genomes, batch, num_outputs)``; one call is one step for recurrent ones."""
        n_gen, n_in = self.num_genomes, self.num_inputs
        if x.dim() == 2 and x.shape[1] == n_in:
            columns, inputs = "shared", x.T
        elif x.dim() == 3 and x.shape[0] == n_gen and x.shape[2] == n_in:
            columns, inputs = "own", x.permute(0, 2, 1).reshape(n_gen * n_in, x.shape[1])
        else:
            raise ValueError(f"NeatPopulationModule expects input of shape (batch, {n_in}) or "
                             f"({n_gen}, batch, {n_in}), got {tuple(x.shape)}")
        inputs = inputs.to(device=self._bias.device, dtype=self._bias.dtype)
        batch = inputs.shape[1]
        n_rows = self._num_nodes + inputs.shape[0]
        layers, recurrent = self._csr_matrices(columns, n_rows)
        if recurrent is not None and self._state is not None and self._state.shape[1] != batch:
            raise ValueError(f"batch size changed from {self._state.shape[1]} to {batch} between steps "
                             f"of a recurrent NeatPopulationModule; call reset() first")
        chunk = batch if inputs.device.type != "cpu" else max(1, self.chunk_elements // n_rows)
        outputs, states = [], []
        for lo in range(0, batch, chunk):
            state = None if self._state is None else self._state[:, lo:lo + chunk]
            nodes = self._run(layers, recurrent, inputs[:, lo:lo + chunk], state)
            outputs.append(nodes[self._outputs])
            if recurrent is not None:
                states.append(nodes)
        if recurrent is not None:
            self._state = torch.cat(states, dim=1)
        out = torch.cat(outputs, dim=1)
        return out.view(n_gen, self.num_outputs, batch).permute(0, 2, 1).contiguous()

    def _run(self, layers: list[torch.Tensor], recurrent: torch.Tensor | None, inputs: torch.Tensor,
             state: torch.Tensor | None) -> torch.Tensor:
        """One chunk of columns: every node's value, given the inputs and the last step's node values."""
        n_nodes = self._num_nodes
        values = inputs.new_empty(n_nodes + inputs.shape[0], inputs.shape[1])
        values[n_nodes:] = inputs
        rec_in = None if recurrent is None or state is None else recurrent @ state
        for (start, end), matrix, segments in zip(self._layer_rows, layers, self._segments):
            pre = torch.addmm(self._bias[start:end], matrix, values)
            if rec_in is not None:
                pre += rec_in[start:end]
            for name, a, b in segments:
                values[a:b] = torch_activation(name)(pre[a - start:b - start])
        return values[:n_nodes]
