"""Evolve a network that computes XOR, each genome run as a PyTorch module.

    python examples/xor_solve.py [--seed 7]

Prints one line per generation and the champion, then checks its answers.
"""

import argparse
import logging

import torch

from neatify import Checkpoint, EvolutionConfig, NeatModule, Population

X = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
Y = torch.tensor([[0.0], [1.0], [1.0], [0.0]])


def xor_fitness(genomes):
    """Fitness 4 - sum of squared errors over the four XOR cases (4.0 is perfect)."""
    for genome in genomes:
        out = NeatModule(genome)(X)
        genome.fitness = 4.0 - torch.sum((out - Y) ** 2).item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--generations", type=int, default=300)
    parser.add_argument("--save", help="write the champion to this JSON file")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    pop = Population(pop_size=150, num_inputs=2, num_outputs=1, config=EvolutionConfig(), seed=args.seed)
    for _ in range(args.generations):
        pop.run_generation(xor_fitness)
        stats = pop.history[-1]
        print(f"Gen {pop.generation:3d}: best {stats.best_fitness:.4f}  mean {stats.mean_fitness:.4f}  "
              f"species {stats.num_species:2d}  hidden {stats.mean_hidden:.2f}  evaluations {stats.evaluations}")
        if stats.best_fitness > 3.9:
            break
    champion = pop.best_genome
    hidden, connections = champion.size()
    print(f"\nChampion: genome {champion.id}, fitness {champion.fitness:.4f}, "
          f"{hidden} hidden nodes, {connections} enabled connections")
    with torch.no_grad():
        for row, out in zip(X.tolist(), NeatModule(champion)(X)[:, 0].tolist()):
            print(f"  {row[0]:.0f} XOR {row[1]:.0f} -> {out:.3f}")
    if args.save:
        Checkpoint.export_genome_json(champion, args.save)
        print(f"saved champion to {args.save}")
    if champion.fitness <= 3.9:
        raise SystemExit("not solved within the generation limit")


if __name__ == "__main__":
    main()
