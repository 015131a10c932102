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
``--backend tcp|pool|ray --generations 15`` runs each seed twice for that many generations, locally and
through ``--workers`` TCP workers on 127.0.0.1 (a ``DistributedEvaluator`` and ``neatify`` ``WorkerNode``
processes), a process pool or Ray actors, and prints whether the two final states (champion, archive and
generation solved included) are equal, or their first difference.
Targets (the paper and the goNEAT_NS reimplementation): hard maze novelty 39/40 (mean evaluations at
most 29,531), medium 40/40 (at most 25,132); fitness-only fails the hard maze (3/40 in the paper).
"""

from __future__ import annotations

import argparse
import os
import reprlib
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from neatify import EvolutionConfig, Genome, Population
from neatify.envs.maze import navigate
from neatify.envs.maze_geometry import GOAL_RADIUS, MAX_STEPS, NUM_INPUTS, NUM_OUTPUTS, Maze, get_maze
from neatify.nn import NeatPopulationModule

HOST = "127.0.0.1"

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
    """Fitness function: every genome's robot through the maze at once, for ``steps`` steps; fitness and final
    (x, y) set on each genome. Picklable (a maze name), so the process pool, Ray actors and TCP workers run it."""

    def __init__(self, maze_name: str, steps: int = MAX_STEPS) -> None:
        self.maze_name, self.steps = maze_name, steps

    def __call__(self, genomes: list[Genome]) -> None:
        torch.set_num_threads(1)
        outcome = navigate(NeatPopulationModule(genomes), get_maze(self.maze_name), self.steps)
        for genome, fitness, position in zip(genomes, outcome.fitness.tolist(), outcome.positions.tolist()):
            genome.fitness, genome.behaviour = fitness, position


def reached(behaviours: np.ndarray, maze: Maze) -> bool:
    """Whether a robot of the generation ended within the goal radius (a robot stops where it reaches it)."""
    return bool((np.hypot(*(behaviours - np.asarray(maze.goal)).T) < GOAL_RADIUS).any())


@dataclass
class RunResult:
    """One run: solved or not, evaluations used, generations, seconds; final positions if recorded, and its
    final state when kept (to compare backends)."""

    maze: str
    method: str
    seed: int
    solved: bool
    evaluations: int
    generations: int
    seconds: float
    positions: list[np.ndarray] = field(default_factory=list)
    state: dict | None = None


def run(maze_name: str, method: str, seed: int, cap: int, record: bool = False,
        population_size: int = CONFIG.population_size, fitness_fn: Any = None,
        generations: int | None = None) -> RunResult:
    """Evolve until a robot reaches the goal or ``cap`` genomes were evaluated; with ``generations``, exactly that
    many generations (its state kept; solved: in the first generation a robot reached the goal). ``fitness_fn``:
    the evaluator (``MazeFitness`` in this process by default)."""
    torch.set_num_threads(1)
    maze = get_maze(maze_name)
    fitness_fn = fitness_fn if fitness_fn is not None else MazeFitness(maze_name)
    config = CONFIG.replace(population_size=population_size, **METHODS[method])
    population = Population(None, NUM_INPUTS, NUM_OUTPUTS, config, seed=seed)
    start, solved_at, positions = time.perf_counter(), None, []
    while population.evaluations < cap and len(population.history) != generations:
        population.run_generation(fitness_fn)
        if record:
            positions.append(population.behaviours.copy())
        if solved_at is None and reached(population.behaviours, maze):
            solved_at = population.evaluations
            if generations is None:
                break
    return RunResult(maze_name, method, seed, solved_at is not None, solved_at or population.evaluations,
                     len(population.history), time.perf_counter() - start, positions,
                     None if generations is None else population.state_dict())


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


@contextmanager
def evaluator(backend: str, fitness: MazeFitness, workers: int) -> Iterator[Any]:
    """``fitness`` evaluated on ``backend`` with ``workers`` processes: a process pool, Ray actors on a local Ray,
    or a TCP master with that many ``WorkerNode`` processes of this script on 127.0.0.1."""
    if backend == "pool":
        from neatify.backends.processes import ParallelEvaluator

        with ParallelEvaluator(fitness, workers=workers) as pool:
            yield pool
    elif backend == "ray":
        import ray

        from neatify.backends.ray import RayEvaluator

        ray._private.ray_constants.ENABLE_RAY_CLUSTER = False  # else Ray swaps 127.0.0.1 for the outward address
        ray.init(num_cpus=workers, _node_ip_address=HOST, include_dashboard=False, logging_level="WARNING",
                 runtime_env={"env_vars": {"PYTHONPATH": _path()}})
        try:
            with RayEvaluator(fitness, num_actors=workers) as actors:
                yield actors
        finally:
            ray.shutdown()
    else:
        yield from _tcp(fitness, workers)


def _tcp(fitness: MazeFitness, workers: int) -> Iterator[Any]:
    """A ``DistributedEvaluator`` and ``workers`` worker processes (this script's ``worker`` command)."""
    from neatify.distributed import DistributedConfig, DistributedEvaluator

    config = DistributedConfig(host=HOST, port=0, min_workers=workers, worker_wait_timeout=120.0)
    with DistributedEvaluator(config) as master:
        command = ["worker", str(master.port), fitness.maze_name, str(fitness.steps)]
        procs = [subprocess.Popen([sys.executable, __file__, *command],
                                  env=dict(os.environ, PYTHONPATH=_path())) for _ in range(workers)]
        try:
            yield master
        finally:
            master.close()
            for proc in procs:
                proc.wait(timeout=60)


def _path() -> str:
    """PYTHONPATH for the processes started: this script's folder and the neatify it imports."""
    import neatify

    return os.pathsep.join([str(Path(__file__).resolve().parent), str(Path(neatify.__file__).resolve().parents[1]),
                            os.environ.get("PYTHONPATH", "")])


def worker(port: int, fitness: MazeFitness) -> None:
    """A TCP worker evaluating ``fitness`` for the master on 127.0.0.1:``port``."""
    from neatify.distributed import WorkerNode

    WorkerNode(HOST, port, fitness_function=fitness, max_connect_attempts=50).start()


def first_difference(a: Any, b: Any, path: str = "state") -> str | None:
    """Where plain data ``a`` and ``b`` first differ (a dotted path and the two values), None if equal."""
    if isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys():
        found = (first_difference(a[key], b[key], f"{path}.{key}") for key in a)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        found = (first_difference(x, y, f"{path}[{i}]") for i, (x, y) in enumerate(zip(a, b)))
    else:
        return None if a == b else f"{path}: {reprlib.repr(a)} != {reprlib.repr(b)}"
    return next((where for where in found if where is not None), None)


def compare(args: argparse.Namespace) -> None:
    """Each seed's run for ``--generations`` generations locally and on ``--backend``: equal final states?"""
    for maze in args.mazes:
        fitness = MazeFitness(maze)
        with evaluator(args.backend, fitness, args.workers) as remote:
            for method in args.methods:
                for seed in range(args.first_seed, args.first_seed + args.seeds):
                    mine = run(maze, method, seed, args.cap, population_size=args.population, fitness_fn=fitness,
                               generations=args.generations)
                    theirs = run(maze, method, seed, args.cap, population_size=args.population, fitness_fn=remote,
                                 generations=args.generations)
                    difference = first_difference(mine.state, theirs.state)
                    solved = f"solved at {mine.evaluations:,} evaluations" if mine.solved else "not solved"
                    histories = zip(mine.state["history"], theirs.state["history"])
                    since = next((i for i, (a, b) in enumerate(histories) if a != b), None)
                    where = "" if since is None else f" (statistics differ from generation {since})"
                    print(f"{maze:>6} {method:>8} seed {seed:2d}, {mine.generations} generations ({solved}), local "
                          f"{mine.seconds:.0f} s, {args.backend} x{args.workers} {theirs.seconds:.0f} s: "
                          f"{'equal' if difference is None else 'DIFFERENT at ' + difference + where}", flush=True)


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
    parser.add_argument("--backend", default="local", choices=["local", "pool", "tcp", "ray"],
                        help="other than local: each run also on this backend, compared with the local one")
    parser.add_argument("--workers", type=int, default=2, help="the backend's processes (TCP workers, actors)")
    parser.add_argument("--generations", type=int, default=15, help="generations of a compared run")
    args = parser.parse_args()
    if args.backend != "local":
        compare(args)
        return
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
    if sys.argv[1:2] == ["worker"]:
        worker(int(sys.argv[2]), MazeFitness(sys.argv[3], int(sys.argv[4])))
    else:
        main()
