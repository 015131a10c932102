"""The boxes task of the HyperNEAT paper: the success curve, then the scaling test.

    python benchmarks/hyperneat_boxes.py [--population 150] [--generations 300] [--minutes 30] [--seed 0]

Evolves CPPNs on the boxes task at 11 x 11 (``neatify.envs.boxes``; a substrate of two 11 x 11 sheets
over [-1, 1]^2, CPPN inputs x1, y1, x2, y2, threshold 0.2, weights up to 3) and prints, every
``--every`` generations, the champion's fitness, mean distance error and share of the 75 trials it
gets exactly right. At the end the champion is re-queried at 33 x 33 and 55 x 55 with no further
evolution (the paper's scaling test) and the same figures are printed for each resolution.
"""

from __future__ import annotations

import argparse
import time

from neatify import Population
from neatify.envs.boxes import Boxes
from neatify.hyperneat import HyperNEAT, Substrate, cppn_config, grid_coordinates


def hyperneat(resolution: int) -> HyperNEAT:
    """The paper's substrate at ``resolution``: a visual field and a target field on the same grid."""
    field = grid_coordinates(resolution, resolution)
    return HyperNEAT(Substrate(field, field), threshold=0.2, max_weight=3.0, output_activation="identity")


def report(genome, resolution: int) -> str:
    """Fitness, mean distance error and exact share of ``genome`` at ``resolution``."""
    task = Boxes(resolution)
    distances = task.distances(hyperneat(resolution).networks([genome]))[0]
    fitness = 100.0 / (1.0 + float(distances.double().square().sum()))
    return (f"fitness {fitness:7.2f}  mean distance {float(distances.mean()):.4f}  "
            f"exact {int((distances < 1e-6).sum())}/{len(distances)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--population", type=int, default=150)
    parser.add_argument("--generations", type=int, default=300)
    parser.add_argument("--minutes", type=float, default=30.0, help="stop evolving after this long")
    parser.add_argument("--every", type=int, default=5, help="print every this many generations")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    config = cppn_config(population_size=args.population)
    pop = Population(num_inputs=4, num_outputs=1, config=config, seed=args.seed)
    fitness = hyperneat(11).fitness(Boxes(11), max_genomes=500)
    start = time.perf_counter()
    print(f"boxes 11x11, population {args.population}, seed {args.seed}")
    for generation in range(args.generations):
        pop.run_generation(fitness)
        champion = pop.best_genome
        solved = report(champion, 11).endswith("75/75")
        if generation % args.every == 0 or solved:
            print(f"gen {generation:4d}  {time.perf_counter() - start:7.0f} s  evaluations {pop.evaluations:7d}  "
                  f"{report(champion, 11)}", flush=True)
        if solved or time.perf_counter() - start > 60 * args.minutes:
            break
    print("scaling test (the champion re-queried, no further evolution):")
    for resolution in (11, 33, 55):
        print(f"  {resolution}x{resolution}: {report(pop.best_genome, resolution)}", flush=True)


if __name__ == "__main__":
    main()
