"""A population's CPPNs as flat arrays that a compiled loop runs one query at a time (``es_quadtree``).

Each genome's required nodes (those whose value reaches an output) lie in one run of "slots" in
evaluation order (by depth from the inputs); each slot's incoming connections are a run of edges
in gene order, reading an earlier slot or a CPPN input. A query costs only its own genome's nodes:
nothing is padded to the population's largest genome.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from neatify.genome.batch import GenomeBatch, row_offsets
from neatify.genome.genome import Genome
from neatify.hyperneat.es_params import ESParams, check_cppn
from neatify.hyperneat.es_quadtree import ACTIVATION_CODES
from neatify.network.layout import trace_batch


@dataclass(frozen=True)
class CPPNProgram:
    """Slots ``node_start[g]:node_start[g + 1]`` are genome ``g``'s nodes; slot ``k`` reads edges
    ``in_start[k]:in_start[k + 1]`` (``in_src``: a slot, or ``-1 - i`` for CPPN input ``i``)."""

    node_start: np.ndarray
    bias: np.ndarray
    activation: np.ndarray
    """Each slot's code in ``ACTIVATION_CODES``."""
    in_start: np.ndarray
    in_src: np.ndarray
    in_weight: np.ndarray
    output: np.ndarray
    """Slot of each genome's weight output."""

    def arrays(self) -> tuple[np.ndarray, ...]:
        """The fields in order: what ``es_quadtree``'s compiled loops take."""
        return (self.node_start, self.bias, self.activation, self.in_start, self.in_src, self.in_weight, self.output)

    @classmethod
    def from_genomes(cls, cppns: Sequence[Genome], params: ESParams) -> CPPNProgram:
        """The program of every CPPN; ValueError naming a genome of the wrong shape, a recurrent one, or one
        whose activation the compiled evaluator does not know."""
        for genome in cppns:
            check_cppn(genome, params)
        batch = GenomeBatch.from_genomes(cppns)
        nodes, edges, outputs = trace_batch(batch, False)
        if edges.recurrent.any():
            raise ValueError(f"CPPN genome {batch.ids[edges.genome[edges.recurrent][0]]} is recurrent; "
                             f"ES-HyperNEAT queries feed-forward CPPNs")
        codes = _activation_codes(batch, nodes.genome, nodes.activation)
        order = np.lexsort((nodes.layer, nodes.genome))
        slot = np.empty(len(order), dtype=np.int64)
        slot[order] = np.arange(len(order))
        by_target = np.argsort(slot[edges.dst], kind="stable")
        src = edges.src[by_target]
        return cls(node_start=row_offsets(np.bincount(nodes.genome, minlength=len(batch))),
                   bias=nodes.bias[order].astype(np.float64), activation=codes[order],
                   in_start=row_offsets(np.bincount(slot[edges.dst], minlength=len(order))),
                   in_src=np.where(src >= 0, slot[src.clip(min=0)], src),
                   in_weight=edges.weight[by_target].astype(np.float64),
                   output=slot[outputs[:, params.cppn_output]])


def _activation_codes(batch: GenomeBatch, owner: np.ndarray, activation: np.ndarray) -> np.ndarray:
    """Each node's code in ``ACTIVATION_CODES``; ValueError naming a genome with an activation outside it."""
    table = np.array([ACTIVATION_CODES.get(name, -1) for name in batch.activations], dtype=np.int64)
    codes = table[activation]
    if (codes < 0).any():
        at = int(np.flatnonzero(codes < 0)[0])
        raise ValueError(f"CPPN genome {batch.ids[owner[at]]} uses activation {batch.activations[activation[at]]!r}, "
                         f"which ES-HyperNEAT's compiled CPPN evaluator does not know; it knows "
                         f"{', '.join(ACTIVATION_CODES)}")
    return codes
