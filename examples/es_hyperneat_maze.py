"""Evolve maze-robot controllers with ES-HyperNEAT: the CPPN decides where hidden nodes go, and how many.

    python examples/es_hyperneat_maze.py [--population 300] [--generations 200] [--seed 0]

The robot of the novelty search paper's hard maze (six rangefinders, four goal radars, two velocity
outputs) laid out on a 2D substrate by direction (``neatify.envs.maze_substrate``). Every generation
``ESHyperNEAT`` decodes all the CPPNs at once (quadtrees of at most 4 x 4 squares) and ``navigate``
drives all their robots together, for ``STEPS`` steps each. Fitness is progress along waypoints on
the way through the maze (``waypoint_maze``), which, unlike the distance to the goal, does not lead
into the maze's dead end. Stops when a robot reaches the goal.
"""

from __future__ import annotations

import argparse

import torch

from neatify import Population
from neatify.envs.maze import navigate
from neatify.envs.maze_geometry import FITNESS_BIAS, waypoint_maze
from neatify.envs.maze_substrate import robot_points
from neatify.hyperneat import ESHyperNEAT, ESParams, cppn_config

STEPS = 800
"""Twice the novelty paper's 400: in 400, the robots evolved here ran out of time a few waypoints short."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--population", type=int, default=300)
    parser.add_argument("--generations", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    es, maze = ESHyperNEAT(*robot_points(), ESParams(max_depth=2)), waypoint_maze("hard")
    reached, best = [], {}

    def fitness(genomes) -> None:
        """Decode every CPPN, run every robot; fitness is its progress along the waypoints."""
        outcome = navigate(es.decode(genomes), maze, STEPS)
        distances = (FITNESS_BIAS - outcome.fitness).tolist()
        for genome, value, distance in zip(genomes, outcome.progress.tolist(), distances):
            genome.fitness = value
            if value > best.get("progress", -1.0):
                best.update(progress=value, distance=distance)
        reached.append(bool(outcome.reached.any()))

    pop = Population(num_inputs=4, num_outputs=1, config=cppn_config(population_size=args.population),
                     seed=args.seed)
    while len(pop.history) < args.generations and not any(reached):
        pop.run_generation(fitness)
    hidden, connections = (int(n[0]) for n in es.phenotypes([pop.best_genome]).sizes())
    print(f"{'reached the goal' if reached[-1] else 'no robot reached the goal'} after {len(pop.history)} "
          f"generations ({pop.evaluations} evaluations)")
    print(f"best robot ended {best['distance']:.1f} units from the goal; its network: {hidden} hidden nodes "
          f"placed by the CPPN, {connections} connections; progress {best['progress']:.2f} of "
          f"{len(maze.waypoints) + 1} (waypoints, then the goal)")


if __name__ == "__main__":
    main()
