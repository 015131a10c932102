"""Evolve a cart-pole controller with the whole population stepping a vectorised torch environment.

    python examples/cartpole_batched.py [--seed 0] [--episodes 5] [--generations 50] [--population 150]
                                        [--device cuda]

Every generation, one ``CartPole`` holds ``genomes x episodes`` carts and one
``NeatPopulationModule`` maps their observations, shaped ``(genomes, episodes, 4)``, to actions
for all of them in a single call per time step; ``neatify.envs.rollout`` runs that loop and drops
the genomes whose episodes have all ended. Fitness is the mean number of steps balanced (at most
500, as in gymnasium's CartPole-v1); the run stops when a genome balances every episode.
"""

from __future__ import annotations

import argparse

import torch

from neatify import EvolutionConfig, Genome, Population
from neatify.envs import CartPole, rollout
from neatify.nn import NeatPopulationModule


class CartPoleFitness:
    """Fitness function: mean steps balanced over ``episodes`` seeded episodes, all genomes at once."""

    def __init__(self, episodes: int, max_steps: int = 500, seed: int = 0,
                 device: torch.device | str | None = None) -> None:
        self.episodes, self.max_steps, self.seed, self.device = episodes, max_steps, seed, device

    def __call__(self, genomes: list[Genome]) -> None:
        module = NeatPopulationModule(genomes, device=self.device)
        env = CartPole(len(genomes) * self.episodes, self.max_steps, device=self.device, seed=self.seed)
        mean_steps = rollout(module, env).double().mean(dim=1)  # pushes right where the output exceeds 0.5
        for genome, fitness in zip(genomes, mean_steps.tolist()):
            genome.fitness = fitness


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--episodes", type=int, default=5)
    parser.add_argument("--generations", type=int, default=50)
    parser.add_argument("--population", type=int, default=150)
    parser.add_argument("--device", default=None, help="torch device for the networks and carts (default: CPU)")
    args = parser.parse_args()
    fitness = CartPoleFitness(args.episodes, seed=args.seed, device=args.device)
    population = Population(args.population, 4, 1, config=EvolutionConfig(), seed=args.seed)
    for _ in range(args.generations):
        population.run_generation(fitness)
        stats = population.history[-1]
        print(f"generation {stats.generation:3d}: best {stats.best_fitness:6.1f} mean {stats.mean_fitness:6.1f} "
              f"species {stats.num_species}")
        if stats.best_fitness >= fitness.max_steps:
            break
    best = population.best_genome
    print(f"best genome: {best}; evaluations {population.evaluations}")
    check = best.copy(best.id)
    CartPoleFitness(episodes=20, seed=args.seed + 1, device=args.device)([check])  # unseen starting states
    print(f"on 20 unseen episodes it balances {check.fitness:.1f} steps on average")


if __name__ == "__main__":
    main()
