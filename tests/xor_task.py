"""XOR, the task the tests evolve on: its four cases and a deterministic fitness in plain Python, written once for
every test file and for the processes they start (``neatify worker xor_task:xor_fitness``)."""

from __future__ import annotations

from neatify.network.network import Network

XOR_CASES = (([0.0, 0.0], 0.0), ([0.0, 1.0], 1.0), ([1.0, 0.0], 1.0), ([1.0, 1.0], 0.0))
"""(inputs, target) for each of the four cases."""


def xor_score(genome) -> float:
    """4 minus the genome's squared error over the four cases: 4.0 solves XOR."""
    net = Network(genome)
    return 4.0 - sum((net.activate(x)[0] - y) ** 2 for x, y in XOR_CASES)


def xor_fitness(genomes) -> None:
    """Sets every genome's fitness to its ``xor_score``."""
    for genome in genomes:
        genome.fitness = xor_score(genome)
