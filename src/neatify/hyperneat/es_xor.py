"""XOR through ES-HyperNEAT: a small task with fixed inputs, for examples, tests and the PUREPLES benchmark.

The substrate is PUREPLES's XOR one: inputs x1, x2 and a constant 1 at (-1, -1), (0, -1), (1, -1),
the output at (0, 1). A CPPN genome (4 inputs, 1 or more outputs) scores 4 minus its phenotype's
squared error over the four cases: 4.0 solves XOR.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from neatify.genome.genome import Genome
from neatify.hyperneat.es_batched import ESHyperNEAT
from neatify.hyperneat.es_params import ESParams

XOR_INPUT_POINTS = ((-1.0, -1.0), (0.0, -1.0), (1.0, -1.0))
XOR_OUTPUT_POINTS = ((0.0, 1.0),)
XOR_CASES = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 1.0], [1.0, 0.0, 1.0], [1.0, 1.0, 1.0]])
"""x1, x2 and the constant input of each case."""
XOR_TARGETS = np.array([0.0, 1.0, 1.0, 0.0])


class ESXorFitness:
    """A fitness function over CPPN genomes: decodes them all at once and scores each phenotype on XOR.

    Picklable (its state is the substrate and the settings), so ``ParallelEvaluator``, Ray and
    distributed workers run it as they are: the CPPNs travel, the workers decode.
    """

    def __init__(self, params: ESParams | None = None) -> None:
        self.decoder = ESHyperNEAT(XOR_INPUT_POINTS, XOR_OUTPUT_POINTS, params)

    def scores(self, cppns: Sequence[Genome]) -> np.ndarray:
        """4 minus each phenotype's squared error over the four cases: a genome's score does not depend on the
        genomes decoded beside it, bit for bit, so a run over workers (other batches) equals the local one."""
        out = self.decoder.decode(cppns, dtype=torch.float64)(torch.from_numpy(XOR_CASES))[..., 0].numpy()
        return 4.0 - ((out - XOR_TARGETS) ** 2).sum(axis=1)

    def __call__(self, genomes: Sequence[Genome]) -> None:
        """Set every genome's fitness to its score."""
        for genome, score in zip(genomes, self.scores(genomes).tolist()):
            genome.fitness = score
