"""The boxes task of the HyperNEAT paper over several seeds: solved runs, the success curve, the scaling test.

    python benchmarks/hyperneat_boxes.py [--seeds 3] [--first-seed 0] [--population 150]
                                         [--generations 300] [--minutes 30] [--cppn plain|deltas|distance|both]

Evolves CPPNs on the boxes task at 11 x 11 (``neatify.envs.boxes``) as Stanley, D'Ambrosio & Gauci (2009)
set it up: a visual field and a target field of 11 x 11 nodes at the cells' centres over [-1, 1]^2, every
visual node connected to every target node by the CPPN (threshold 0.2, weights scaled into [0, 3]), the
target node with the highest activation the network's choice, fitness ``100 / (1 + summed squared
distance error)`` over the 75 trials. ``--cppn`` picks what the CPPN reads besides (x1, y1, x2, y2): the
deltas (x2 - x1, y2 - y1), the distance between the nodes, or both. A run is solved when its champion
chooses the large box's centre in all 75 trials; it stops then (or after ``--generations`` or
``--minutes``). Each run's champion is then re-queried at 33 x 33 and 55 x 55 with no further evolution
(the paper's scaling test): its mean distance from the large box's centre (field units: one cell is
2/11 wide at 11 x 11), the trials whose choice lies on the large box, and those exactly at its centre.

Prints each run's progress every ``--every`` generations, then the runs solved, the success curve
(runs solved by each generation) and the scaling test of every run.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field

import torch

from neatify import Population
from neatify.envs.boxes import Boxes
from neatify.hyperneat import HyperNEAT, Substrate, cppn_config

RESOLUTIONS = (11, 33, 55)
CPPN_INPUTS = {"plain": {}, "deltas": {"deltas": True}, "distance": {"distance": True},
               "both": {"deltas": True, "distance": True}}
"""What the CPPN reads besides the two nodes' coordinates (``--cppn``)."""


def hyperneat(task: Boxes, cppn: str) -> HyperNEAT:
    """The paper's substrate for ``task``: a visual field and a target field on the same grid."""
    return HyperNEAT(Substrate(task.coordinates, task.coordinates), threshold=0.2, max_weight=3.0,
                     output_activation="identity", **CPPN_INPUTS[cppn])


@dataclass
class Scaling:
    """A champion's figures at one resolution."""

    mean_distance: float
    inside: int
    exact: int

    def __str__(self) -> str:
        return f"mean distance {self.mean_distance:.3f}  on the large box {self.inside}/75  exact {self.exact}/75"


def measure(genome, task: Boxes, cppn: str) -> Scaling:
    """``genome``'s substrate network at ``task``'s resolution, run on the 75 trials."""
    guesses = task.guesses(hyperneat(task, cppn).networks([genome]))[0]
    distances = task.distances(guesses)
    return Scaling(float(distances.mean()), int(task.inside(guesses).sum()), int((distances < 1e-6).sum()))


@dataclass
class Run:
    """One seed's run: when it was solved, and its champion at each resolution."""

    seed: int
    generations: int = 0
    evaluations: int = 0
    solved_at: int | None = None
    scaling: dict[int, Scaling] = field(default_factory=dict)


def evolve(seed: int, args: argparse.Namespace, tasks: dict[int, Boxes]) -> Run:
    """One run: evolve until solved or out of generations or time, then the scaling test."""
    pop = Population(num_inputs=hyperneat(tasks[11], args.cppn).cppn_inputs, num_outputs=1,
                     config=cppn_config(population_size=args.population), seed=seed)
    fitness_function = hyperneat(tasks[11], args.cppn).fitness(tasks[11], max_genomes=500)
    run, start = Run(seed), time.perf_counter()
    for generation in range(args.generations):
        pop.run_generation(fitness_function)
        champion = measure(pop.best_genome, tasks[11], args.cppn)
        run.generations, run.evaluations = generation + 1, pop.evaluations
        if champion.exact == 75:
            run.solved_at = generation
        if generation % args.every == 0 or run.solved_at is not None:
            print(f"seed {seed}  gen {generation:4d}  {time.perf_counter() - start:6.0f} s  evaluations "
                  f"{pop.evaluations:7d}  fitness {pop.best_genome.fitness:7.2f}  {champion}", flush=True)
        if run.solved_at is not None or time.perf_counter() - start > 60 * args.minutes:
            break
    run.scaling = {r: measure(pop.best_genome, task, args.cppn) for r, task in tasks.items()}
    return run


def summary(runs: list[Run], generations: int) -> None:
    """The runs solved, the success curve and the scaling test of every run."""
    solved = [run for run in runs if run.solved_at is not None]
    mean = sum(run.evaluations for run in solved) / len(solved) if solved else float("nan")
    print(f"solved {len(solved)}/{len(runs)} runs; mean evaluations of the solved {mean:,.0f}")
    marks = sorted({g for g in range(0, generations + 1, max(1, generations // 10))} | {generations})
    curve = "  ".join(f"{g}: {sum(run.solved_at is not None and run.solved_at < g for run in runs)}" for g in marks)
    print(f"success curve (runs solved within the first N generations) {curve}")
    print("scaling test (each run's champion re-queried, no further evolution):")
    for run in runs:
        state = f"solved at generation {run.solved_at}" if run.solved_at is not None else \
            f"not solved in {run.generations} generations"
        print(f"  seed {run.seed} ({state})")
        for resolution, figures in run.scaling.items():
            print(f"    {resolution}x{resolution}: {figures}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--population", type=int, default=150)
    parser.add_argument("--generations", type=int, default=300)
    parser.add_argument("--minutes", type=float, default=30.0, help="stop a run after this long")
    parser.add_argument("--every", type=int, default=10, help="print every this many generations")
    parser.add_argument("--cppn", choices=sorted(CPPN_INPUTS), default="deltas")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a shared CPU)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    tasks = {resolution: Boxes(resolution) for resolution in RESOLUTIONS}
    print(f"boxes 11x11, population {args.population}, CPPN inputs {hyperneat(tasks[11], args.cppn).cppn_input_names}")
    runs = [evolve(seed, args, tasks) for seed in range(args.first_seed, args.first_seed + args.seeds)]
    summary(runs, args.generations)


if __name__ == "__main__":
    main()
