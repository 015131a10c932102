"""Evolve maze-robot controllers with ES-HyperNEAT: the CPPN decides where hidden nodes go, and how many.

    python examples/es_hyperneat_maze.py [--population 100] [--generations 30] [--maze medium] [--seed 0]

The robot of the novelty search paper's mazes (six rangefinders, four goal radars, two velocity
outputs) laid out on a 2D substrate by direction (``neatify.envs.maze_substrate``). Every generation
``ESHyperNEAT`` decodes all the CPPNs at once, and ``navigate`` drives all their robots together;
selection is on the novelty of where the robots end (Lehman & Stanley's set-up). Stops when a robot
reaches the goal.
"""

from __future__ import annotations

import argparse

import torch

from neatify import Population
from neatify.envs.maze import navigate
from neatify.envs.maze_geometry import get_maze
from neatify.envs.maze_substrate import robot_points
from neatify.hyperneat import ESHyperNEAT, cppn_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--population", type=int, default=100)
    parser.add_argument("--generations", type=int, default=30)
    parser.add_argument("--maze", choices=["medium", "hard"], default="medium")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    es, maze = ESHyperNEAT(*robot_points()), get_maze(args.maze)
    reached = []

    def fitness(genomes) -> None:
        """Decode every CPPN, run every robot; fitness 300 minus the final distance to the goal."""
        outcome = navigate(es.decode(genomes), maze)
        for genome, value, position in zip(genomes, outcome.fitness.tolist(), outcome.positions.tolist()):
            genome.fitness, genome.behaviour = value, position
        reached.append(bool(outcome.reached.any()))

    config = cppn_config(population_size=args.population, selection="novelty", behaviour_size=2,
                         novelty_threshold=6.0)
    pop = Population(num_inputs=4, num_outputs=1, config=config, seed=args.seed)
    while len(pop.history) < args.generations and not any(reached):
        pop.run_generation(fitness)
    best = pop.best_genome
    hidden, connections = (int(n[0]) for n in es.phenotypes([best]).sizes())
    print(f"{'reached the goal' if reached[-1] else 'no robot reached the goal'} after {len(pop.history)} "
          f"generations ({pop.evaluations} evaluations)")
    print(f"best robot ended {300.0 - best.fitness:.1f} units from the goal; its network: {hidden} hidden nodes "
          f"placed by the CPPN, {connections} connections")


if __name__ == "__main__":
    main()
