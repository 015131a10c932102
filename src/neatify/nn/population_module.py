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
(``neatify.network.layout``).

Why not padded dense per depth level (each genome's layer ``k`` padded to the widest layer ``k``
and one batched matrix product ``(genomes, batch, columns) @ (genomes, columns, width)`` per
level): depth and width vary a lot across a NEAT population, so padding every genome to the deepest
and widest one multiplies the work, and tiny per-genome matrices run far below BLAS speed; the two
forms were measured side by side (``docs/batched.md``, "The representation, and why").
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from operator import attrgetter

import torch
from torch import nn

from neatify.genome.batch import GenomeBatch
from neatify.genome.genome import Genome
from neatify.nn.activations import torch_activation
from neatify.network.layout import PopulationLayout

Part = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]
"""One CSR matrix's row pointers, shared-input columns, per-genome-input columns and weights."""
_shape = attrgetter("num_inputs", "num_outputs")


class NeatPopulationModule(nn.Module):
    """Many genomes' networks at once: ``(batch, in)`` or ``(genomes, batch, in)`` -> ``(genomes, batch, out)``.

    Genome ``i``'s slice of the output equals ``NeatModule(genomes[i])`` on its inputs (to float
    tolerance). Recurrent genomes keep their node values between calls (one call = one time step),
    as ``NeatModule`` does; ``reset()`` clears them. ``synchronous=True`` updates every node from
    the previous step's values, as neat-python's ``RecurrentNetwork`` does (see ``neatify.network.network``).
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
        if len(set(map(_shape, genomes))) > 1:  # one pass in C; the loop only to name the odd one
            for g in genomes:
                if (g.num_inputs, g.num_outputs) != (self.num_inputs, self.num_outputs):
                    raise ValueError(f"genome {g.id} has {g.num_inputs} inputs and {g.num_outputs} outputs; "
                                     f"expected {self.num_inputs} and {self.num_outputs} like the first genome")
        self._build(len(genomes), PopulationLayout.from_genomes(genomes, synchronous), device, dtype)

    @classmethod
    def from_batch(cls, batch: GenomeBatch, device: torch.device | str | None = None,
                   dtype: torch.dtype = torch.float32, synchronous: bool = False) -> NeatPopulationModule:
        """The module of a ``GenomeBatch``'s rows, laid out from its arrays: phenotypes built as arrays
        (HyperNEAT's substrates) never become ``Genome`` objects. Equals ``NeatPopulationModule(batch.views())``."""
        if len(batch) == 0:
            raise ValueError("NeatPopulationModule needs at least one genome")
        module = cls.__new__(cls)
        nn.Module.__init__(module)
        module.num_inputs, module.num_outputs = batch.num_inputs, batch.num_outputs
        module._build(len(batch), PopulationLayout.from_batch(batch, synchronous), device, dtype)
        return module

    def _build(self, num_genomes: int, rows: PopulationLayout, device: torch.device | str | None,
               dtype: torch.dtype) -> None:
        """Move a layout's arrays to ``device`` and install them."""
        parts = [tuple(torch.as_tensor(a, device=device) for a in csr) for csr in rows.layers]
        recurrent = None if rows.recurrent is None else tuple(torch.as_tensor(a, device=device)
                                                              for a in rows.recurrent)
        self._install(num_genomes, rows.num_nodes, rows.layer_rows, rows.segments,
                      torch.as_tensor(rows.bias, device=device), torch.as_tensor(rows.outputs, device=device),
                      parts, recurrent, dtype)

    def _install(self, num_genomes: int, num_nodes: int, layer_rows: list[tuple[int, int]],
                 segments: list[list[tuple[str, int, int]]], bias: torch.Tensor, outputs: torch.Tensor,
                 layers: list[Part], recurrent: Part | None, dtype: torch.dtype) -> None:
        """Keep the rows and register the CSR parts as buffers (weights and bias in ``dtype``)."""
        self.num_genomes, self._num_nodes = num_genomes, num_nodes
        self._layer_rows, self._segments = layer_rows, segments
        self.register_buffer("_bias", bias.to(dtype).unsqueeze(1))
        self.register_buffer("_outputs", outputs)
        parts = {f"_layer_{k}": csr for k, csr in enumerate(layers)}
        if recurrent is not None:
            parts["_recurrent"] = recurrent
        for name, (crow, shared, own, weight) in parts.items():
            self.register_buffer(f"{name}_crow", crow)
            self.register_buffer(f"{name}_shared", shared)
            self.register_buffer(f"{name}_own", own)
            self.register_buffer(f"{name}_weight", weight.to(dtype))
        self._has_recurrent = recurrent is not None
        self.register_buffer("_state", None, persistent=False)
        self._matrices: dict[str, tuple[list[torch.Tensor], torch.Tensor | None]] = {}
        self._row_genome: torch.Tensor | None = None

    def _part(self, name: str) -> Part:
        """The CSR parts (row pointers, shared columns, own columns, weights) registered as ``name``."""
        return tuple(getattr(self, f"{name}_{field}") for field in ("crow", "shared", "own", "weight"))

    @property
    def is_recurrent(self) -> bool:
        """Whether any genome reads the previous step (a recurrent edge, or in synchronous mode any edge
        from a non-input node): then calls are time steps."""
        return self._has_recurrent

    def reset(self) -> None:
        """Forget the recurrent state (the next call starts from all-zero node values)."""
        self._state = None

    def select(self, index: Sequence[int] | torch.Tensor) -> NeatPopulationModule:
        """The genomes at ``index`` (increasing) as a module of their own, cut from this one's tensors
        without laying anything out again, with their recurrent state: a rollout drops finished genomes
        this way. It equals ``NeatPopulationModule([genomes[i] for i in index])`` tensor for tensor."""
        keep = torch.as_tensor(index, dtype=torch.long, device=self._bias.device).reshape(-1)
        if len(keep) == 0 or keep[0] < 0 or keep[-1] >= self.num_genomes or (keep.diff() <= 0).any():
            raise ValueError(f"select() needs increasing genome indices in 0..{self.num_genomes - 1}, "
                             f"at least one; got {keep.tolist()}")
        member = torch.zeros(self.num_genomes, dtype=torch.bool, device=keep.device)
        member[keep] = True
        rank = member.cumsum(0) - 1  # a kept genome's new index
        row_genome = self._row_genomes()
        kept = member[row_genome]
        before = torch.cat([kept.new_zeros(1, dtype=torch.long), kept.cumsum(0)])  # kept rows before each row
        renumber = _Renumbering(before, rank * self.num_inputs, self._num_nodes, self.num_inputs)
        bounds = before[[b for start, end in self._layer_rows for b in (start, end)]].tolist()
        layer_rows, segments, layers = [], [], []
        for k, (start, end) in enumerate(self._layer_rows):
            new_start, new_end = bounds[2 * k], bounds[2 * k + 1]
            if new_start == new_end:
                continue
            layer_rows.append((new_start, new_end))
            segments.append(self._kept_segments(self._segments[k], before))
            layers.append(renumber.part(self._part(f"_layer_{k}"), kept[start:end]))
        recurrent = renumber.part(self._part("_recurrent"), kept) if self._has_recurrent else None
        if recurrent is not None and len(recurrent[1]) == 0:
            recurrent = None
        selected = NeatPopulationModule.__new__(NeatPopulationModule)
        nn.Module.__init__(selected)
        selected.num_inputs, selected.num_outputs = self.num_inputs, self.num_outputs
        outputs = before[self._outputs.view(self.num_genomes, self.num_outputs)[keep]].reshape(-1)
        selected._install(len(keep), bounds[-1], layer_rows, segments, self._bias[kept, 0],
                          outputs, layers, recurrent, self._bias.dtype)
        selected._row_genome = rank[row_genome[kept]]
        if recurrent is not None and self._state is not None:
            selected._state = self._state[kept]
        return selected

    @staticmethod
    def _kept_segments(segments: list[tuple[str, int, int]], before: torch.Tensor) -> list[tuple[str, int, int]]:
        """One layer's activation runs renumbered to the kept rows; runs left empty are dropped."""
        bounds = before[[b for _, a, e in segments for b in (a, e)]].tolist()
        runs = [(name, bounds[2 * i], bounds[2 * i + 1]) for i, (name, _, _) in enumerate(segments)]
        return [run for run in runs if run[1] < run[2]]

    def _row_genomes(self) -> torch.Tensor:
        """Which genome each node row belongs to (computed once): labels spread from the output rows
        back along the edges, every layer top-down and then the recurrent edges, until all rows have one."""
        if self._row_genome is None:
            genome = torch.full((self._num_nodes,), -1, dtype=torch.long, device=self._bias.device)
            genome[self._outputs] = torch.arange(self.num_genomes, device=genome.device).repeat_interleave(
                self.num_outputs)
            names = [f"_layer_{k}" for k in reversed(range(len(self._layer_rows)))]
            starts = [start for start, _ in reversed(self._layer_rows)]
            if self._has_recurrent:
                names, starts = names + ["_recurrent"], starts + [0]
            edges = [_node_edges(self._part(name), start, self._num_nodes) for name, start in zip(names, starts)]
            labelled = int((genome >= 0).sum())
            while labelled < self._num_nodes:
                for rows, columns in edges:
                    genome.scatter_reduce_(0, columns, genome[rows], reduce="amax")
                labelled, before = int((genome >= 0).sum()), labelled
                if labelled == before:
                    raise RuntimeError(f"{self._num_nodes - labelled} node rows reach no output")
            self._row_genome = genome
        return self._row_genome

    def _apply(self, fn, recurse=True):  # rebuild the cached CSR matrices on the new device/dtype
        self._matrices, self._row_genome = {}, None
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


def _node_edges(part: Part, start: int, num_nodes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(row, column) of a CSR part's edges between node rows; ``start`` is the part's first row."""
    crow, shared = part[0], part[1]
    rows = torch.repeat_interleave(torch.arange(start, start + len(crow) - 1, device=crow.device), crow.diff())
    node = shared < num_nodes
    return rows[node], shared[node]


class _Renumbering:
    """Columns and rows of a module renumbered to a subset of its genomes (``NeatPopulationModule.select``)."""

    def __init__(self, before: torch.Tensor, input_base: torch.Tensor, num_nodes: int, num_inputs: int) -> None:
        self.before, self.input_base = before, input_base
        self.num_nodes, self.num_inputs = num_nodes, num_inputs

    def part(self, part: Part, kept: torch.Tensor) -> Part:
        """The kept rows' edges of one CSR part (``kept``: a mask over its rows), with columns renumbered."""
        crow, shared, own, weight = part
        counts = crow.diff()
        edges = torch.repeat_interleave(kept, counts)
        new_crow = torch.cat([crow.new_zeros(1), counts[kept].cumsum(0)])
        return new_crow, self.columns(shared[edges], False), self.columns(own[edges], True), weight[edges]

    def columns(self, columns: torch.Tensor, own: bool) -> torch.Tensor:
        """Node columns to their kept rows, input columns after the kept nodes (per genome: its new block)."""
        kept_nodes = self.before[-1]
        node = columns < self.num_nodes
        offset = columns - self.num_nodes
        if own:
            genome, i = offset.div(self.num_inputs, rounding_mode="floor"), offset.remainder(self.num_inputs)
            offset = self.input_base[genome.clamp(min=0)] + i
        return torch.where(node, self.before[columns.clamp(max=self.num_nodes)], kept_nodes + offset)
