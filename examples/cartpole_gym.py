"""Evolve a CartPole-v1 controller with gymnasium (``pip install 'neatify-neat[gym]'``).

    python examples/cartpole_gym.py --generations 30 --workers 2 --out cartpole-run

Prints a progress line per generation, then saves the champion genome, statistics and (with
matplotlib) plots under --out. ``GymTask`` works for any gymnasium environment with a Box
observation and a Discrete action space (see lunar_lander_gym.py).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from neatify import Checkpoint, EvolutionConfig, Genome, Population
from neatify.network import Network
from neatify.parallel import ParallelEvaluator
from neatify.reporters import ProgressReporter, StatisticsReporter


def _gym() -> Any:
    try:
        import gymnasium
    except ImportError:
        raise SystemExit("this example needs gymnasium: pip install 'neatify-neat[gym]'") from None
    return gymnasium


class GymTask:
    """A picklable fitness function: mean episode reward, actions by argmax of the network's outputs.

    Episodes use fixed seeds, so a genome's fitness is the same in any process. The environment
    is made on first use in each process and reused.
    """

    def __init__(self, env_id: str, episodes: int = 3, max_steps: int = 1000, seed: int = 0) -> None:
        self.env_id, self.episodes, self.max_steps, self.seed = env_id, episodes, max_steps, seed
        self._env: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_env": None}

    def shape(self) -> tuple[int, int]:
        """(inputs, outputs) a genome needs for this environment."""
        env = self.env()
        return int(env.observation_space.shape[0]), int(env.action_space.n)

    def env(self) -> Any:
        if self._env is None:
            self._env = _gym().make(self.env_id)
        return self._env

    def episode_reward(self, genome: Genome) -> float:
        """Mean reward of ``genome`` over this task's seeded episodes."""
        env, net, total = self.env(), Network(genome), 0.0
        for episode in range(self.episodes):
            observation, _ = env.reset(seed=self.seed + episode)
            net.reset()
            for _ in range(self.max_steps):
                outputs = net.activate([float(v) for v in observation])
                observation, reward, terminated, truncated, _ = env.step(outputs.index(max(outputs)))
                total += float(reward)
                if terminated or truncated:
                    break
        return total / self.episodes

    def __call__(self, genomes: list[Genome]) -> None:
        for genome in genomes:
            genome.fitness = self.episode_reward(genome)


cartpole_fitness = GymTask("CartPole-v1")
"""``neatify worker cartpole_gym:cartpole_fitness`` evaluates CartPole for a master."""


def evolve(task: GymTask, description: str, threshold: float, argv: list[str] | None = None) -> Genome:
    """Parse the common command line, evolve on ``task``, save results; returns the champion."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--generations", type=int, default=50)
    parser.add_argument("--pop-size", type=int, default=100)
    parser.add_argument("--workers", type=int, default=1, help="local processes (ParallelEvaluator) if > 1")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path(task.env_id), help="folder for champion, stats, plots")
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
