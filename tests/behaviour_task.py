"""XOR with behaviours, the task the behaviour and novelty tests evolve on: each genome's behaviour is its
outputs on the four cases, written once for the tests and the processes they start
(``neatify worker behaviour_task:xor_behaviour_fitness``)."""

from __future__ import annotations

from neatify.network.network import Network
from xor_task import XOR_CASES


def xor_behaviour_fitness(genomes) -> None:
    """Sets every genome's fitness to 4 minus its squared XOR error, and its behaviour to its four outputs."""
    for genome in genomes:
        net = Network(genome)
        outputs = [net.activate(x)[0] for x, _ in XOR_CASES]
        genome.fitness = 4.0 - sum((out - y) ** 2 for out, (_, y) in zip(outputs, XOR_CASES))
        genome.behaviour = outputs
