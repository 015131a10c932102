"""Benchmark populations: feed-forward genomes of 5-10 hidden nodes, 4 inputs, 2 outputs.

Activations are relu/identity/clamped, which neat-python does not rescale, so the same genomes can
be run by neat-python with identical results.
"""

from __future__ import annotations

import random

from neatify import EvolutionConfig, Genome
from neatify.genome.innovation import InnovationTracker

NUM_INPUTS, NUM_OUTPUTS = 4, 2
ACTIVATIONS = ["relu", "identity", "clamped"]


def make_genomes(count: int, seed: int) -> list[Genome]:
    """Feed-forward genomes grown by add-node/add-connection mutations to 5-10 hidden nodes."""
    config = EvolutionConfig(activation_default="identity", activation_options=ACTIVATIONS,
                             prob_mutate_activation=1.0, prob_replace_bias=1.0)
    rng = random.Random(seed)
    tracker = InnovationTracker(0, NUM_INPUTS + NUM_OUTPUTS)
    genomes = []
    for i in range(count):
        genome = Genome.initial(i, NUM_INPUTS, NUM_OUTPUTS, config, rng, tracker)
        target = rng.randint(5, 10)
        while genome.size()[0] < target:
            genome.mutate_add_node(config, rng, tracker)
            genome.mutate_add_connection(config, rng, tracker)
        genome.mutate_activations(config, rng)
        genome.mutate_biases(config, rng)
        genomes.append(genome)
    return genomes
