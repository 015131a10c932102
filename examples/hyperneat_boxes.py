"""Evolve a HyperNEAT network for the boxes task, then re-query its CPPN at a finer resolution.

    python examples/hyperneat_boxes.py [--population 150] [--generations 100] [--seed 0] [--scale 33]

The visual discrimination task of Stanley, D'Ambrosio & Gauci (2009): an 11 x 11 visual field shows a
small and a large box, the target field's strongest node must sit at the large box's centre. The CPPN
reads the two nodes' coordinates and their differences; the champion's substrate network is then
rebuilt at ``--scale`` x ``--scale`` from the same CPPN, with no further evolution.
"""

from __future__ import annotations

import argparse

import torch

from neatify import Population
from neatify.envs.boxes import Boxes
from neatify.hyperneat import HyperNEAT, Substrate, cppn_config


def substrate_for(task: Boxes) -> HyperNEAT:
    """Visual and target fields on the task's cell centres; the CPPN also reads (dx, dy)."""
    return HyperNEAT(Substrate(task.coordinates, task.coordinates), threshold=0.2, max_weight=3.0,
                     output_activation="identity", deltas=True)


def report(champion, task: Boxes) -> str:
    """How the champion's network does on the 75 trials at ``task``'s resolution."""
    guesses = task.guesses(substrate_for(task).networks([champion]))[0]
    return (f"{task.resolution}x{task.resolution}: mean distance {float(task.distances(guesses).mean()):.3f}, "
            f"on the large box in {int(task.inside(guesses).sum())}/75 trials")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--population", type=int, default=150)
    parser.add_argument("--generations", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scale", type=int, default=33, help="resolution of the re-query (11 times an odd number)")
    args = parser.parse_args()
    torch.set_num_threads(1)  # the batched query is fastest on one thread of a shared CPU
    task = Boxes(11)
    hyperneat = substrate_for(task)
    pop = Population(num_inputs=hyperneat.cppn_inputs, num_outputs=hyperneat.cppn_outputs,
                     config=cppn_config(population_size=args.population), seed=args.seed)
    champion = pop.run(hyperneat.fitness(task), args.generations, fitness_threshold=100.0)
    print(f"after {len(pop.history)} generations ({pop.evaluations} evaluations): fitness {champion.fitness:.2f}, "
          f"its CPPN has {len(champion.nodes)} nodes besides the inputs")
    print("found at", report(champion, task))
    print("re-queried at", report(champion, Boxes(args.scale)))


if __name__ == "__main__":
    main()
