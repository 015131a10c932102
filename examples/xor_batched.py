"""Solve XOR with a fitness function that evaluates the whole population in one tensor pass.

    python examples/xor_batched.py [--seed 0] [--generations 300]

``NeatPopulationModule(genomes)`` runs every genome on the four XOR rows at once and returns
``(genomes, 4, 1)``; fitness is 4 minus the squared error, as in the NEAT paper.
"""

from __future__ import annotations

import argparse

import torch

from neatify import EvolutionConfig, Genome, Population
from neatify.nn import NeatPopulationModule

XOR_INPUTS = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
XOR_TARGETS = torch.tensor([0.0, 1.0, 1.0, 0.0])


def xor_fitness(genomes: list[Genome]) -> None:
    """Set ``fitness = 4 - sum of squared errors`` on every genome, all evaluated together."""
    outputs = NeatPopulationModule(genomes)(XOR_INPUTS)[:, :, 0]  # (genomes, 4)
    errors = ((outputs - XOR_TARGETS) ** 2).sum(dim=1)
    for genome, fitness in zip(genomes, (4.0 - errors).tolist()):
        genome.fitness = fitness


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--generations", type=int, default=300)
    args = parser.parse_args()
    population = Population(150, 2, 1, config=EvolutionConfig(), seed=args.seed)
    best = population.run(xor_fitness, args.generations, fitness_threshold=3.9)
    print(f"generations {population.generation + 1}, evaluations {population.evaluations}, "
          f"best fitness {best.fitness:.4f}, {best}")
    outputs = NeatPopulationModule([best])(XOR_INPUTS)[0, :, 0]
    for row, out in zip(XOR_INPUTS.tolist(), outputs.tolist()):
        print(f"  {row} -> {out:.3f}")
    if best.fitness < 3.9:
        raise SystemExit("not solved")


if __name__ == "__main__":
    main()
