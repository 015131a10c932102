"""``NeatModule``: one genome as a real ``torch.nn.Module``, computed layer by layer."""

from __future__ import annotations

import torch
from torch import nn

from neatify.genome.genome import Genome
from neatify.network.network import NetworkLayout
from neatify.nn.activations import torch_activation


class NeatModule(nn.Module):
    """A genome's network: ``(batch, num_inputs) -> (batch, num_outputs)``.

    Each layer of the network is one dense matrix product over the values computed so far, so a
    forward pass costs a handful of tensor operations however wide the genome is. A recurrent
    genome keeps its node values between calls (one call = one time step); ``reset()`` clears them.
    With ``synchronous=True`` every call advances every node one step from the previous step's
    values, as neat-python's ``RecurrentNetwork`` does (see ``neatify.network.network``).
    With ``trainable=True`` weights and biases are ``nn.Parameter``s and
    ``update_genome_weights()`` writes them back into the genome.
    """

    def __init__(self, genome: Genome, trainable: bool = False, device: torch.device | str | None = None,
                 dtype: torch.dtype = torch.float32, synchronous: bool = False) -> None:
        super().__init__()
        self.genome = genome
        self.trainable = trainable
        layout = self.layout = NetworkLayout.from_genome(genome, synchronous)
        self.num_inputs = genome.num_inputs
        self.num_outputs = genome.num_outputs
        n_in, n_total = layout.num_inputs, layout.num_nodes
        weight = torch.tensor([e.weight for e in layout.edges], dtype=dtype, device=device)
        bias = torch.tensor(layout.biases, dtype=dtype, device=device)
        if trainable:
            self.weight = nn.Parameter(weight)
            self.bias = nn.Parameter(bias)
        else:
            self.register_buffer("weight", weight)
            self.register_buffer("bias", bias)
        # Per layer: where each forward edge lands in that layer's (sources x nodes) matrix.
        self._layers: list[tuple[int, int, list[tuple[str, int, int]]]] = []
        for k, (start, end) in enumerate(layout.layer_bounds):
            segments: list[tuple[str, int, int]] = []
            for pos in range(start, end):
                name = layout.activations[pos - n_in]
                if segments and segments[-1][0] == name:
                    segments[-1] = (name, segments[-1][1], pos - start + 1)
                else:
                    segments.append((name, pos - start, pos - start + 1))
            self._layers.append((start, end, segments))
            idx = [i for i, e in enumerate(layout.edges) if not e.recurrent and start <= e.dst < end]
            self.register_buffer(f"_fw_index_{k}", torch.tensor(
                [[layout.edges[i].src for i in idx], [layout.edges[i].dst - start for i in idx], idx],
                dtype=torch.long, device=device).reshape(3, -1))
        rec = [i for i, e in enumerate(layout.edges) if e.recurrent]
        self.register_buffer("_rec_index", torch.tensor(
            [[layout.edges[i].src for i in rec], [layout.edges[i].dst - n_in for i in rec], rec],
            dtype=torch.long, device=device).reshape(3, -1))
        self.register_buffer("_out_index", torch.tensor(layout.output_positions, dtype=torch.long, device=device))
        self._n_total = n_total
        self._state: torch.Tensor | None = None
        self._cached: tuple[list[torch.Tensor], torch.Tensor | None] | None = None

    @property
    def is_recurrent(self) -> bool:
        return self.layout.is_recurrent

    def reset(self) -> None:
        """Forget the recurrent state (the next call starts from all-zero node values)."""
        self._state = None

    def _apply(self, fn, recurse=True):  # keep cached dense matrices on the module's device/dtype
        self._cached = None
        return super()._apply(fn, recurse)

    def _dense(self) -> tuple[list[torch.Tensor], torch.Tensor | None]:
        """The per-layer forward matrices and the recurrent matrix, built from the weight vector."""
        if self._cached is not None and not self.trainable:
            return self._cached
        weight = self.weight
        n_in = self.layout.num_inputs
        matrices = []
        for k, (start, end, _) in enumerate(self._layers):
            rows, cols, idx = getattr(self, f"_fw_index_{k}")
            m = weight.new_zeros(start, end - start)
            matrices.append(m.index_put((rows, cols), weight[idx], accumulate=True))
        recurrent = None
        if self._rec_index.shape[1]:
            rows, cols, idx = self._rec_index
            m = weight.new_zeros(self._n_total, self._n_total - n_in)
            recurrent = m.index_put((rows, cols), weight[idx], accumulate=True)
        self._cached = (matrices, recurrent)
        return self._cached

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2 or x.shape[1] != self.num_inputs:
            raise ValueError(f"NeatModule expects input of shape (batch, {self.num_inputs}), "
                             f"got {tuple(x.shape)}")
        matrices, recurrent = self._dense()
        n_in = self.layout.num_inputs
        rec_in = None
        if recurrent is not None:
            state = self._state
            if state is None:
                state = x.new_zeros(x.shape[0], self._n_total)
            elif state.shape[0] != x.shape[0]:
                raise ValueError(f"batch size changed from {state.shape[0]} to {x.shape[0]} between steps "
                                 f"of a recurrent NeatModule; call reset() first")
            rec_in = state @ recurrent
        values = x
        for (start, end, segments), matrix in zip(self._layers, matrices):
            pre = values @ matrix + self.bias[start - n_in:end - n_in]
            if rec_in is not None:
                pre = pre + rec_in[:, start - n_in:end - n_in]
            outs = [torch_activation(name)(pre[:, a:b]) for name, a, b in segments]
            values = torch.cat([values, *outs], dim=1)
        if recurrent is not None:
            self._state = values
        return values[:, self._out_index]

    @torch.no_grad()
    def update_genome_weights(self) -> None:
        """Copy the module's current weights and biases back into its genome."""
        genome, layout = self.genome, self.layout
        for edge, w in zip(layout.edges, self.weight.detach().cpu().tolist()):
            genome.connections[edge.innovation].weight = w
        for node_id, b in zip(layout.node_ids[layout.num_inputs:], self.bias.detach().cpu().tolist()):
            genome.nodes[node_id].bias = b
