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


def fails_on(genome_id: int) -> bool:
    """The genomes the failing tasks fail on: one id in seven."""
    return genome_id % 7 == 3


def xor_behaviour_raising(genomes) -> None:
    """``xor_behaviour_fitness``, raising on the genomes ``fails_on`` picks (a backend's error_fitness saves them)."""
    for genome in genomes:
        if fails_on(genome.id):
            raise RuntimeError(f"genome {genome.id} breaks the simulator")
    xor_behaviour_fitness(genomes)


def xor_behaviour_failing(genomes) -> None:
    """``xor_behaviour_fitness``, giving the genomes ``fails_on`` picks fitness -1 and marking them failed itself,
    as an evaluator with its own error_fitness does: what ``xor_behaviour_raising`` becomes under a backend."""
    xor_behaviour_fitness([genome for genome in genomes if not fails_on(genome.id)])
    for genome in genomes:
        if fails_on(genome.id):
            genome.fitness, genome.failed = -1.0, True
