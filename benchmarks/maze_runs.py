"""Novelty search against fitness-only NEAT on the medium and hard mazes (Lehman & Stanley 2011).

    python benchmarks/maze_runs.py --seeds 10 [--first-seed 0] [--mazes medium hard]
                                   [--methods novelty fitness] [--cap 250000] [--population 250]
                                   [--jobs 2] [--plot maze_positions.png]

Each run evolves robot controllers (11 inputs: bias, six rangefinders, four goal radars; 2 outputs:
angular and linear velocity changes) for 400 steps in one of the paper's mazes, every genome's
robot stepped together through one ``NeatPopulationModule`` per step (``neatify.envs.navigate``).
A genome's fitness is the paper's 300 minus its final distance to the goal, its behaviour its final
(x, y). "novelty" selects on novelty (mean distance to the 15 nearest behaviours of the generation
and the archive; the paper's dynamic archive threshold, starting at 6), "fitness" on fitness.
A run is solved in the generation where a robot ends within the goal radius; its evaluations are
the genomes evaluated up to and including that generation. Runs stop at ``--cap`` evaluations (the
paper's 250,000 is the default). Prints each run, then per maze and method the runs solved and the
mean evaluations of the solved ones, and the seconds per run. ``--plot`` draws the final positions
of every robot of the first seed's runs over generations, one panel per maze and method, as the
paper's figures do.
Targets (the paper and the goNEAT_NS reimplementation): hard maze novelty 39/40 (mean evaluations at
most 29,531), medium 40/40 (at most 25,132); fitness-only fails the hard maze (3/40 in the paper).
"""

from __future__ import annotations

import argparse
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import torch

from neatify import EvolutionConfig, Genome, Population
from neatify.envs.maze import navigate
from neatify.envs.maze_geometry import NUM_INPUTS, NUM_OUTPUTS, Maze, get_maze
from neatify.nn import NeatPopulationModule

CONFIG = EvolutionConfig(
    # Population 250 as in the paper; its NEAT's structural rates (add-node 0.03, add-link 0.1) and
    # recurrent links allowed; weights, speciation and stagnation as the library's defaults (the
    # NEAT paper's values). Behaviours: the robot's final (x, y).
    population_size=250, prob_add_node=0.03, prob_add_connection=0.1, allow_recurrent=True, behaviour_size=2)
METHODS = {
    "novelty": {"selection": "novelty", "novelty_k": 15, "novelty_archive": "threshold", "novelty_threshold": 6.0},
    "fitness": {"selection": "fitness"},
}


class MazeFitness:
    """Fitness function: every genome's robot through ``maze`` at once; fitness and final (x, y) set on
    each genome. ``solved`` tells whether the last generation had a robot reach the goal; ``positions``
    keeps every generation's final positions when ``record`` is set (for the plot)."""

    def __init__(self, maze: Maze, record: bool = False) -> None:
        self.maze, self.record = maze, record
        self.solved = False
        self.positions: list[np.ndarray] = []

    def __call__(self, genomes: list[Genome]) -> None:
        outcome = navigate(NeatPopulationModule(genomes), self.maze)
        for genome, fitness, position in zip(genomes, outcome.fitness.tolist(), outcome.positions.tolist()):
            genome.fitness, genome.behaviour = fitness, position
        self.solved = bool(outcome.reached.any())
        if self.record:
            self.positions.append(outcome.positions.numpy())


@dataclass
class RunResult:
    """One run: solved or not, evaluations used, generations, seconds; final positions if recorded."""

    maze: str
    method: str
    seed: int
    solved: bool
    evaluations: int
    generations: int
    seconds: float
    positions: list[np.ndarray] = field(default_factory=list)


def run(maze_name: str, method: str, seed: int, cap: int, record: bool = False,
        population_size: int = CONFIG.population_size) -> RunResult:
    """Evolve until a robot reaches the goal or ``cap`` genomes were evaluated."""
    torch.set_num_threads(1)
    maze = get_maze(maze_name)
    fitness = MazeFitness(maze, record)
    config = CONFIG.replace(population_size=population_size, **METHODS[method])
    population = Population(None, NUM_INPUTS, NUM_OUTPUTS, config, seed=seed)
    start = time.perf_counter()
    while population.evaluations < cap:
        population.run_generation(fitness)
        if fitness.solved:
            break
    return RunResult(maze_name, method, seed, fitness.solved, population.evaluations, len(population.history),
                     time.perf_counter() - start, fitness.positions)


def plot_positions(results: list[RunResult], path: str) -> None:
    """The final positions of every robot of each run over its generations (colour: generation), over
    the maze's walls, with the start (triangle) and goal (star); one panel per run."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.5 * len(results), 4.2), layout="constrained")
    for k, result in enumerate(results):
        ax = fig.add_subplot(1, len(results), k + 1)
        maze = get_maze(result.maze)
        for x1, y1, x2, y2 in maze.walls:
            ax.plot([x1, x2], [y1, y2], color="black", linewidth=1.5)
        points = np.concatenate(result.positions)
        generation = np.repeat(np.arange(len(result.positions)), [len(p) for p in result.positions])
        dots = ax.scatter(points[:, 0], points[:, 1], c=generation, s=2, cmap="viridis")
        ax.plot(*maze.start, marker="^", color="tab:blue", markersize=9)
        ax.plot(*maze.goal, marker="*", color="tab:red", markersize=14)
        outcome = f"solved at {result.evaluations:,}" if result.solved else f"unsolved after {result.evaluations:,}"
        ax.set_title(f"{result.maze} maze, {result.method}: {outcome}", fontsize=9)
        ax.set_aspect("equal")
        ax.invert_yaxis()  # the maze files' y grows downward, as the paper draws them
        fig.colorbar(dots, ax=ax, label="generation", shrink=0.7)
    fig.savefig(path, dpi=100)


def summary(results: list[RunResult]) -> list[str]:
    """Per maze and method: runs solved, mean evaluations of the solved ones, seconds per run."""
    lines = []
    for key in dict.fromkeys((r.maze, r.method) for r in results):
        group = [r for r in results if (r.maze, r.method) == key]
        solved = [r.evaluations for r in group if r.solved]
        mean = f"{statistics.mean(solved):,.0f}" if solved else "-"
        lines.append(f"{key[0]:>6} {key[1]:>8}: solved {len(solved)}/{len(group)}, mean evaluations of solved {mean}, "
                     f"{statistics.mean(r.seconds for r in group):.0f} s a run")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="runs per maze and method")
    parser.add_argument("--first-seed", type=int, default=0, help="seeds run: first-seed .. first-seed + seeds - 1")
    parser.add_argument("--mazes", nargs="+", default=["medium", "hard"], choices=["medium", "hard"])
    parser.add_argument("--methods", nargs="+", default=["novelty", "fitness"], choices=list(METHODS))
    parser.add_argument("--cap", type=int, default=250_000, help="evaluations a run may use")
    parser.add_argument("--population", type=int, default=CONFIG.population_size, help="genomes a generation")
    parser.add_argument("--jobs", type=int, default=1, help="runs at once, in processes")
    parser.add_argument("--plot", default=None, help="PNG of the first seed's final positions over generations")
    args = parser.parse_args()
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    tasks = [(maze, method, seed, args.cap, args.plot is not None and seed == seeds[0], args.population)
             for maze in args.mazes for method in args.methods for seed in seeds]
    with ProcessPoolExecutor(args.jobs) as pool:
        results = []
        for result in pool.map(run, *zip(*tasks)):
            print(f"{result.maze:>6} {result.method:>8} seed {result.seed:2d}: "
                  f"{'solved' if result.solved else 'not solved'} after {result.evaluations:,} evaluations "
                  f"({result.generations} generations, {result.seconds:.0f} s)", flush=True)
            results.append(result)
    print("\n".join(summary(results)))
    if args.plot:
        plot_positions([r for r in results if r.positions], args.plot)
        print(f"saved {args.plot}")


if __name__ == "__main__":
    main()
