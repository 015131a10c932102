"""Solve a gymnasium task with neatify.gym and report the wall time; the champion is then scored on unseen episodes.

    python benchmarks/gym_solve.py CartPole-v1 --threshold 500
    python benchmarks/gym_solve.py InvertedDoublePendulum-v5 --threshold 9000 --pop-size 150
    python benchmarks/gym_solve.py LunarLander-v3 --threshold 200 --episodes 5 --unseen 100 --workers 2

A run is solved when its best genome's mean return over its ``--episodes`` training episodes reaches
``--threshold``; the champion's mean over ``--unseen`` episodes never used in training is printed next to it.
"""

from __future__ import annotations

import argparse
import time
from contextlib import nullcontext

import torch

from neatify import Checkpoint, EvolutionConfig, Population
from neatify.backends.processes import ParallelEvaluator
from neatify.gym import GymEvaluator
from neatify.reporting.reporters import ProgressReporter

OUTPUT_RANGES = {"neat_sigmoid": (0.0, 1.0), "sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0), "clamped": (-1.0, 1.0)}
"""The activations offered, with the range their outputs span (what ``GymEvaluator`` scales Box actions from)."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("env")
    parser.add_argument("--threshold", type=float, required=True)
    parser.add_argument("--pop-size", type=int, default=100)
    parser.add_argument("--generations", type=int, default=200)
    parser.add_argument("--episodes", type=int, default=1)
    parser.add_argument("--unseen", type=int, default=100, help="episodes the champion is scored on afterwards")
    parser.add_argument("--workers", type=int, default=1, help="local processes (ParallelEvaluator) if > 1")
    parser.add_argument("--normalize", action="store_true")
    parser.add_argument("--resample", action="store_true",
                        help="new episodes each generation")
    parser.add_argument("--save", metavar="JSON", help="save the champion there")
    parser.add_argument("--activation", choices=sorted(OUTPUT_RANGES), default="neat_sigmoid",
                        help="every node's activation (the outputs' range follows)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(1)
    evaluator = GymEvaluator(args.env, episodes=args.episodes, seed=args.seed, normalize=args.normalize,
                             resample=args.resample, output_range=OUTPUT_RANGES[args.activation])
    num_inputs, num_outputs = evaluator.shape()
    config = EvolutionConfig(population_size=args.pop_size, prob_add_node=0.1, prob_add_connection=0.2,
                             activation_default=args.activation, activation_options=[args.activation])
    population = Population(num_inputs=num_inputs, num_outputs=num_outputs, config=config, seed=args.seed)
    population.add_reporter(ProgressReporter())
    start = time.perf_counter()
    pool = ParallelEvaluator(evaluator, args.workers) if args.workers > 1 else nullcontext(evaluator)
    with pool as evaluate:
        champion = population.run(evaluate, args.generations, args.threshold)
    elapsed = time.perf_counter() - start
    if args.save:
        Checkpoint.export_genome_json(champion, args.save)
    unseen = GymEvaluator(args.env, episodes=args.unseen, seed=args.seed + 10_000)
    unseen.normalizer = evaluator.normalizer
    score = float(unseen.run([champion]).returns.mean())
    solved = "solved" if champion.fitness >= args.threshold else "NOT solved"
    print(f"{args.env}: {solved} at generation {len(population.history) - 1} in {elapsed:.1f} s "
          f"(population {args.pop_size}, {args.workers} process(es)); champion {champion.fitness:.1f} on its "
          f"training episodes, {score:.1f} averaged over {args.unseen} unseen episodes")


if __name__ == "__main__":
    main()
