"""ES-HyperNEAT on the novelty search paper's mazes, with Risi & Stanley's (2012) kind of fitness: waypoints.

    python benchmarks/es_hyperneat_maze.py [--seeds 3] [--first-seed 0] [--maze hard] [--method fitness]
                                           [--fitness waypoints] [--max-depth 2] [--steps 800]
                                           [--population 300] [--cap 60000] [--minutes 6]

Every generation the CPPN population is decoded by ``ESHyperNEAT`` (quadtree search for hidden nodes
between the robot's sensors and its effectors) and the phenotypes drive the robots of
``neatify.envs.maze`` together (``navigate``). The substrate: the 11 inputs (bias, six rangefinders,
four goal radars) laid out by direction on lines at y = -1 and -0.5, the two outputs (angular and
linear velocity changes) at y = 1 (``neatify.envs.maze_substrate``); ``ESParams``' defaults but for
``--initial-depth`` and ``--max-depth``. The defaults are the set-up that solves (docs/benchmarks.md). ``--fitness waypoints`` (hard maze only) scores progress
along the maze's waypoints (``MazeEnv.progress``), ``distance`` the novelty paper's 300 minus the
final distance to the goal. ``--method`` "fitness" selects on that fitness, "novelty" on the novelty
of the robots' final (x, y) (15 nearest, the paper's dynamic archive), "pareto" on both (NSGA-II).
A run is solved in the generation a robot reaches the goal; its evaluations are the CPPNs evaluated
up to then. Prints each run, then the runs solved and the mean evaluations of the solved ones.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import torch

from neatify import Population
from neatify.envs.maze import navigate
from neatify.envs.maze_geometry import MAX_STEPS, get_maze, waypoint_maze
from neatify.envs.maze_substrate import robot_points
from neatify.hyperneat import ESHyperNEAT, ESParams, cppn_config

SELECTION = {"novelty": {"selection": "novelty", "novelty_k": 15, "novelty_archive": "threshold",
                         "novelty_threshold": 6.0, "behaviour_size": 2},
             "fitness": {"selection": "fitness", "behaviour_size": 2},
             "pareto": {"selection": "pareto", "objectives": ["fitness", "novelty"], "novelty_k": 15,
                        "novelty_archive": "threshold", "novelty_threshold": 6.0, "behaviour_size": 2}}


class ESMazeFitness:
    """Fitness function: decode every CPPN, run all their robots through ``maze`` at once, set fitness and
    final (x, y); ``solved`` says whether the last generation had a robot reach the goal."""

    def __init__(self, maze: str, es: ESHyperNEAT, waypoints: bool, steps: int) -> None:
        self.maze = waypoint_maze(maze) if waypoints else get_maze(maze)
        self.es, self.waypoints, self.steps, self.solved = es, waypoints, steps, False
        self.best: tuple[float, list[float]] = (float("-inf"), [])
        """The best fitness so far and where that robot ended."""

    def __call__(self, genomes: list) -> None:
        outcome = navigate(self.es.decode(genomes), self.maze, self.steps)
        fitness = outcome.progress if self.waypoints else outcome.fitness
        for genome, value, position in zip(genomes, fitness.tolist(), outcome.positions.tolist()):
            genome.fitness, genome.behaviour = value, position
        self.solved = bool(outcome.reached.any())
        top = int(fitness.argmax())
        self.best = max(self.best, (float(fitness[top]), outcome.positions[top].tolist()))


@dataclass
class Run:
    seed: int
    solved: bool
    evaluations: int
    generations: int
    seconds: float


def evolve(seed: int, args: argparse.Namespace) -> Run:
    """One run until solved, ``--cap`` evaluations or ``--minutes``."""
    params = ESParams(initial_depth=args.initial_depth, max_depth=args.max_depth)
    fitness = ESMazeFitness(args.maze, ESHyperNEAT(*robot_points(), params), args.fitness == "waypoints", args.steps)
    config = cppn_config(population_size=args.population, **SELECTION[args.method])
    pop = Population(num_inputs=4, num_outputs=1, config=config, seed=seed)
    start = time.perf_counter()
    while pop.evaluations < args.cap and not fitness.solved and time.perf_counter() - start < 60 * args.minutes:
        pop.run_generation(fitness)
        if len(pop.history) % args.every == 0:
            print(f"  seed {seed}  gen {len(pop.history):4d}  evaluations {pop.evaluations:7d}  "
                  f"best fitness so far {fitness.best[0]:6.2f} (its robot ended at "
                  f"({fitness.best[1][0]:.0f}, {fitness.best[1][1]:.0f}))  "
                  f"{time.perf_counter() - start:6.0f} s",
                  flush=True)
    return Run(seed, fitness.solved, pop.evaluations, len(pop.history), time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--maze", choices=["medium", "hard"], default="hard")
    parser.add_argument("--method", choices=sorted(SELECTION), default="fitness")
    parser.add_argument("--fitness", choices=["distance", "waypoints"], default="waypoints",
                        help="what fitness (and the 'fitness' method) rewards: 300 minus the final distance to "
                             "the goal, or progress along the maze's waypoints")
    parser.add_argument("--initial-depth", type=int, default=ESParams.initial_depth)
    parser.add_argument("--max-depth", type=int, default=2)
    parser.add_argument("--steps", type=int, default=2 * MAX_STEPS, help="robot time steps (the novelty paper: 400)")
    parser.add_argument("--population", type=int, default=300)
    parser.add_argument("--cap", type=int, default=60_000, help="stop a run after this many evaluations")
    parser.add_argument("--minutes", type=float, default=6.0, help="stop a run after this long")
    parser.add_argument("--every", type=int, default=10, help="print every this many generations")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"ES-HyperNEAT, {args.maze} maze, {args.method} ({args.fitness} fitness), {args.steps} steps, "
          f"depth {args.max_depth}, population {args.population}")
    runs = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        runs.append(evolve(seed, args))
        run = runs[-1]
        print(f"seed {seed}: {'solved' if run.solved else 'not solved'} after {run.evaluations:,} evaluations, "
              f"{run.generations} generations, {run.seconds:.0f} s", flush=True)
    solved = [run.evaluations for run in runs if run.solved]
    mean = f"{sum(solved) / len(solved):,.0f}" if solved else "-"
    print(f"solved {len(solved)}/{len(runs)}; mean evaluations of the solved {mean}; "
          f"{sum(run.seconds for run in runs) / len(runs):.0f} s a run")


if __name__ == "__main__":
    main()
