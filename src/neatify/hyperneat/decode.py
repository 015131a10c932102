"""HyperNEAT decoding, batched: every CPPN of a population queried for every substrate connection in one
forward pass, the phenotypes built straight as a ``GenomeBatch`` (Stanley, D'Ambrosio & Gauci 2009).

A CPPN's first output ``o`` is the connection's weight. Without LEO the connection is expressed when
``|o| > threshold`` and its weight is ``sign(o) * (min(|o|, 1) - threshold) / (1 - threshold) * max_weight``:
the magnitudes above the threshold scaled to ``(0, max_weight]``. With LEO (link-expression output,
Verbancsics & Stanley 2011) the second output decides: expressed when it is above 0, weight
``clip(o, -1, 1) * max_weight``. Substrate nodes have bias 0. ``neatify.hyperneat.reference`` decodes
one genome at a time the plain way, and the tests hold the two equal.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import torch

from neatify.activations import ACTIVATIONS
from neatify.genome.batch import GenomeBatch, row_offsets
from neatify.genome.genome import Genome
from neatify.hyperneat.cppn import cppn_input_names, cppn_outputs
from neatify.hyperneat.dense import DenseSubstrate
from neatify.hyperneat.substrate import Substrate
from neatify.nn.population_module import NeatPopulationModule

QUERY_CHUNK = 1 << 40
"""``NeatPopulationModule.chunk_elements`` of a CPPN query: all pairs in one step (each chunk costs far
more than its share of work on CPU, measured 13x slower at the module's default); the memory it takes
is bounded by decoding fewer genomes at once (``SubstrateFitness.max_genomes``)."""


@dataclass
class CapCount:
    """Phenotypes that had more expressed connections than ``HyperNEAT.max_connections``, and the
    connections dropped from them (the weakest), since this ``HyperNEAT`` was made."""

    phenotypes: int = 0
    connections: int = 0


@dataclass(frozen=True)
class Pairs:
    """Every (source, target) connection a substrate allows, layer pair by layer pair, each source with
    each target, sources outermost (the order ``reference`` loops in): node ids, and the CPPN's inputs
    (with the deltas and the distance when asked for, as ``cppn_query`` gives them)."""

    src: np.ndarray
    dst: np.ndarray
    layers: list[tuple[np.ndarray, np.ndarray]]
    """(source coordinates, target coordinates) of each layer pair, in order."""
    deltas: bool = False
    distance: bool = False

    @classmethod
    def of(cls, substrate: Substrate, deltas: bool = False, distance: bool = False) -> Pairs:
        layers, ids = substrate.layers(), substrate.layer_ids()
        src = [np.repeat(a, len(b)) for a, b in zip(ids, ids[1:])]
        dst = [np.tile(b, len(a)) for a, b in zip(ids, ids[1:])]
        return cls(np.concatenate(src), np.concatenate(dst),
                   [(np.asarray(a), np.asarray(b)) for a, b in zip(layers, layers[1:])], deltas, distance)

    @property
    def sizes(self) -> list[tuple[int, int]]:
        """(sources, targets) of each layer pair."""
        return [(len(a), len(b)) for a, b in self.layers]

    @property
    def inputs(self) -> np.ndarray:
        """``(pairs, 2 * dimensions)``: each pair's source coordinates, then its target's."""
        return np.concatenate([self._block(a, b) for a, b in self.layers])

    @cached_property
    def distinct(self) -> tuple[np.ndarray, np.ndarray]:
        """(the CPPN input rows to query, each pair's row among them): layer pairs with the same
        coordinates (sheets on one grid) are queried once."""
        first: dict[tuple, int] = {}
        blocks, rows, start = [], [], 0
        for a, b in self.layers:
            key = (a.shape, a.tobytes(), b.shape, b.tobytes())
            if key not in first:
                first[key] = start
                blocks.append(self._block(a, b))
                start += len(a) * len(b)
            rows.append(first[key] + np.arange(len(a) * len(b)))
        return np.concatenate(blocks), np.concatenate(rows)

    def _block(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """The CPPN inputs of every source in ``a`` with every target in ``b``, sources outermost."""
        source, target = np.repeat(a, len(b), axis=0), np.tile(b, (len(a), 1))
        difference = target - source
        columns = [source, target] + [difference] * self.deltas
        if self.distance:
            columns.append(np.sqrt((difference * difference).sum(axis=1, keepdims=True)))
        return np.hstack(columns)


@dataclass(frozen=True)
class HyperNEAT:
    """Decodes CPPN genomes into substrate networks: ``HyperNEAT(substrate).decode(genomes)`` is a
    ``NeatPopulationModule`` of their phenotypes (see the module docstring for the rules)."""

    substrate: Substrate
    threshold: float = 0.2
    """Without LEO, |CPPN output| must exceed this for a connection to be expressed (paper: 0.2)."""
    max_weight: float = 5.0
    """Largest connection weight magnitude of a phenotype."""
    leo: bool = False
    """Whether the CPPN's second output gates expression (link-expression output)."""
    deltas: bool = False
    """Whether the CPPN also reads the target's coordinates minus the source's (``cppn_input_names``)."""
    distance: bool = False
    """Whether the CPPN also reads the distance between source and target."""
    hidden_activation: str = "sigmoid"
    output_activation: str = "sigmoid"
    max_connections: int | None = None
    """A phenotype with more expressed connections keeps only its strongest this many (``capped`` counts)."""
    dtype: torch.dtype = torch.float32
    """Precision of the CPPN queries and of the decoded module."""
    device: str | None = None
    capped: CapCount = field(default_factory=CapCount, compare=False)

    def __post_init__(self) -> None:
        """Refuse settings out of range, naming them."""
        if not 0.0 <= self.threshold < 1.0:
            raise ValueError(f"HyperNEAT threshold must be in [0, 1), got {self.threshold!r}")
        if not self.max_weight > 0.0:
            raise ValueError(f"HyperNEAT max_weight must be positive, got {self.max_weight!r}")
        if self.max_connections is not None and self.max_connections < 0:
            raise ValueError(f"HyperNEAT max_connections must be at least 0, got {self.max_connections!r}")
        for kind in ("hidden_activation", "output_activation"):
            if getattr(self, kind) not in ACTIVATIONS:
                raise ValueError(f"HyperNEAT {kind}: unknown activation {getattr(self, kind)!r}; "
                                 f"known: {', '.join(sorted(ACTIVATIONS))}")

    @property
    def cppn_input_names(self) -> list[str]:
        """What the CPPN reads, in order."""
        return cppn_input_names(self.substrate.dimensions, self.deltas, self.distance)

    @property
    def cppn_inputs(self) -> int:
        return len(self.cppn_input_names)

    @property
    def cppn_outputs(self) -> int:
        return cppn_outputs(self.leo)

    @cached_property
    def pairs(self) -> Pairs:
        return Pairs.of(self.substrate, self.deltas, self.distance)

    def check_cppn(self, batch: GenomeBatch) -> None:
        """ValueError naming the first genome when the CPPNs do not have the inputs and outputs this
        substrate needs."""
        want = (self.cppn_inputs, self.cppn_outputs)
        if (batch.num_inputs, batch.num_outputs) != want:
            raise ValueError(
                f"CPPN genome {int(batch.ids[0])} has {batch.num_inputs} inputs and {batch.num_outputs} outputs; "
                f"a {self.substrate.dimensions}D substrate{' with LEO' if self.leo else ''} needs {want[0]} inputs "
                f"({', '.join(self.cppn_input_names)}) and {want[1]} output(s)")

    def query(self, genomes: Sequence[Genome] | GenomeBatch) -> torch.Tensor:
        """Every CPPN's outputs for every substrate pair, ``(genomes, pairs, outputs)``: one forward pass."""
        batch = genomes if isinstance(genomes, GenomeBatch) else GenomeBatch.from_genomes(genomes)
        self.check_cppn(batch)
        cppns = NeatPopulationModule.from_batch(batch, device=self.device, dtype=self.dtype)
        cppns.chunk_elements = QUERY_CHUNK
        rows, pair_row = self.pairs.distinct
        outputs = cppns(torch.as_tensor(rows, dtype=self.dtype, device=self.device))
        if len(rows) == len(pair_row):  # nothing shared: the rows are the pairs, in order
            return outputs
        return outputs[:, torch.as_tensor(pair_row, device=outputs.device)]

    def weights(self, outputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(expressed, weight) of every queried pair, from ``query``'s outputs."""
        o = outputs[..., 0]
        if self.leo:
            return outputs[..., 1] > 0.0, o.clamp(-1.0, 1.0) * self.max_weight
        magnitude = o.abs()
        scaled = (magnitude.clamp(max=1.0) - self.threshold) * (self.max_weight / (1.0 - self.threshold))
        return magnitude > self.threshold, torch.copysign(scaled, o)

    def expressed(self, batch: GenomeBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """(expressed, weight) of every pair of every genome of ``batch``, capped (see ``max_connections``)."""
        expressed, weight = self.weights(self.query(batch))
        if self.max_connections is not None:
            expressed = self._cap(expressed, weight)
        return expressed, weight

    def phenotypes(self, genomes: Sequence[Genome] | GenomeBatch) -> GenomeBatch:
        """The substrate networks of ``genomes`` as a ``GenomeBatch`` (row i: genome i's id), built from
        arrays; ``batch.views()[i]`` is one as a ``Genome`` (for ``NeatModule`` and export)."""
        batch = genomes if isinstance(genomes, GenomeBatch) else GenomeBatch.from_genomes(genomes)
        expressed, weight = self.expressed(batch)
        rows, pair = (t.cpu().numpy() for t in torch.nonzero(expressed, as_tuple=True))  # row-major: sorted
        conn_start = row_offsets(np.bincount(rows, minlength=len(batch)))
        return self._batch(batch.ids, conn_start, pair, weight[expressed].cpu().numpy().astype(np.float64))

    def decode(self, genomes: Sequence[Genome] | GenomeBatch) -> NeatPopulationModule:
        """The phenotypes of ``genomes`` as one batched module, ready to run a task."""
        return NeatPopulationModule.from_batch(self.phenotypes(genomes), device=self.device, dtype=self.dtype)

    def networks(self, genomes: Sequence[Genome] | GenomeBatch) -> DenseSubstrate:
        """The phenotypes as dense layer-to-layer weight tensors: what ``decode`` computes, faster for
        dense substrates (no per-connection arrays), and what ``fitness`` runs."""
        batch = genomes if isinstance(genomes, GenomeBatch) else GenomeBatch.from_genomes(genomes)
        expressed, weight = self.expressed(batch)
        weight = torch.where(expressed, weight, 0.0)
        blocks, start = [], 0
        for sources, targets in self.pairs.sizes:
            block = weight[:, start:start + sources * targets].view(len(batch), sources, targets)
            blocks.append(block.transpose(1, 2).contiguous())
            start += sources * targets
        names = [self.hidden_activation] * (len(blocks) - 1) + [self.output_activation]
        return DenseSubstrate(blocks, names)

    def fitness(self, task: Callable[[NeatPopulationModule], Any], max_genomes: int | None = None) -> SubstrateFitness:
        """A fitness function for ``Population.run_generation`` (or any backend): it decodes the CPPNs
        (``networks``) and sets each genome's fitness to ``task(module)``'s entry, ``max_genomes`` at a time
        (all by default). ``task`` gets a module called like ``NeatPopulationModule``."""
        return SubstrateFitness(self, task, max_genomes)

    def _cap(self, expressed: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """``expressed`` with each row past ``max_connections`` cut to its strongest connections (ties: the
        earlier pair), counting what was dropped."""
        limit = int(self.max_connections)
        counts = expressed.sum(dim=1)
        over = torch.nonzero(counts > limit).flatten()
        if len(over) == 0:
            return expressed
        self.capped.phenotypes += len(over)
        self.capped.connections += int((counts[over] - limit).sum())
        strength = torch.where(expressed[over], weight[over].abs(), -1.0)
        keep = torch.sort(strength, dim=1, descending=True, stable=True).indices[:, :limit]
        cut = torch.zeros_like(expressed[over]).scatter_(1, keep, True)
        expressed = expressed.clone()
        expressed[over] = cut
        return expressed

    def _batch(self, ids: np.ndarray, conn_start: np.ndarray, pair: np.ndarray, weight: np.ndarray) -> GenomeBatch:
        """The phenotypes' ``GenomeBatch``: every row the substrate's nodes (bias 0), its expressed pairs as
        connections (innovation = pair index)."""
        sub = self.substrate
        n_in, n_out, n = len(sub.inputs), len(sub.outputs), len(ids)
        node_ids = np.arange(n_in, n_in + n_out + sub.num_hidden, dtype=np.int64)
        names = tuple(sorted({self.hidden_activation, self.output_activation}))
        codes = np.where(node_ids < n_in + n_out, names.index(self.output_activation),
                         names.index(self.hidden_activation)).astype(np.int16)
        return GenomeBatch(
            n_in, n_out, ids.copy(), row_offsets(np.full(n, len(node_ids))), np.tile(node_ids, n),
            np.zeros(n * len(node_ids)), np.tile(codes, n), conn_start, pair.astype(np.int64),
            self.pairs.src[pair], self.pairs.dst[pair], weight, np.ones(len(pair), dtype=bool), names)


@dataclass(frozen=True)
class SubstrateFitness:
    """``HyperNEAT.fitness(task)``: decode the genomes, run ``task`` on the module, set the fitness.
    Picklable when the task is, so process pools, Ray and TCP workers run it unchanged."""

    hyperneat: HyperNEAT
    task: Callable[[NeatPopulationModule], Any]
    max_genomes: int | None = None
    """Decode and evaluate at most this many genomes at once (bounds memory: a phenotype can hold every
    pair of the substrate); None: the whole list in one go."""

    def __post_init__(self) -> None:
        """A task that says its inputs and outputs (``num_inputs``, ``num_outputs``) must match the substrate."""
        if hasattr(self.task, "num_inputs") and hasattr(self.task, "num_outputs"):
            self.hyperneat.substrate.check_task(self.task.num_inputs, self.task.num_outputs, type(self.task).__name__)
        if self.max_genomes is not None and self.max_genomes < 1:
            raise ValueError(f"max_genomes must be at least 1, got {self.max_genomes!r}")

    def __call__(self, genomes: Sequence[Genome]) -> None:
        step = self.max_genomes or max(1, len(genomes))
        for lo in range(0, len(genomes), step):
            part = genomes[lo:lo + step]
            values = np.asarray(self.task(self.hyperneat.networks(part)), dtype=np.float64).reshape(-1)
            if len(values) != len(part):
                raise ValueError(f"the task returned {len(values)} fitness values for {len(part)} genomes")
            for genome, value in zip(part, values.tolist()):
                genome.fitness = value
