"""Evolve a CartPole-v1 controller with gymnasium (from a checkout: ``pip install '.[gym]'``).

    python examples/cartpole_gym.py --generations 30 --workers 2 --out cartpole-run

Prints a progress line per generation, then saves the champion genome, statistics and (with
matplotlib) plots under --out. The fitness is ``neatify.gym.GymEvaluator``, which takes any gymnasium
environment with Discrete, Box or MultiBinary actions (see lunar_lander_gym.py and docs/gym.md).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from neatify import Checkpoint, EvolutionConfig, Genome, Population
from neatify.gym import GymEvaluator
from neatify.parallel import ParallelEvaluator
from neatify.reporters import ProgressReporter, StatisticsReporter


cartpole_fitness = GymEvaluator("CartPole-v1", episodes=3)
"""``neatify worker cartpole_gym:cartpole_fitness`` evaluates CartPole for a master."""


def evolve(task: GymEvaluator, description: str, threshold: float, argv: list[str] | None = None) -> Genome:
    """Parse the common command line, evolve on ``task``, save results; returns the champion."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--generations", type=int, default=50)
    parser.add_argument("--pop-size", type=int, default=100)
    parser.add_argument("--workers", type=int, default=1, help="local processes (ParallelEvaluator) if > 1")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path(task.name), help="folder for champion, stats, plots")
    args = parser.parse_args(argv)

    num_inputs, num_outputs = task.shape()
    config = EvolutionConfig(population_size=args.pop_size, prob_add_node=0.1, prob_add_connection=0.2)
    population = Population(num_inputs=num_inputs, num_outputs=num_outputs, config=config, seed=args.seed)
    statistics = StatisticsReporter()
    population.add_reporter(ProgressReporter())
    population.add_reporter(statistics)
    if args.workers > 1:
        with ParallelEvaluator(task, workers=args.workers) as evaluator:
            champion = population.run(evaluator, args.generations, threshold)
    else:
        champion = population.run(task, args.generations, threshold)

    args.out.mkdir(parents=True, exist_ok=True)
    Checkpoint.export_genome_json(champion, args.out / "champion.json")
    statistics.save_csv(args.out / "statistics.csv")
    try:
        from neatify.plot import draw_genome, plot_fitness, plot_species

        plot_fitness(statistics, args.out / "fitness.png")
        plot_species(statistics, args.out / "species.png")
        draw_genome(champion, args.out / "champion.png")
    except ImportError as exc:
        print(f"no plots: {exc}")
    print(f"champion: {champion}; results in {args.out}/")
    return champion


if __name__ == "__main__":
    evolve(cartpole_fitness, "Evolve a CartPole-v1 controller.", threshold=475.0)
