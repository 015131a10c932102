"""Solve a gymnasium task with neatify.gym: train, pick the champion on held-out episodes, test it on unseen ones.

    python benchmarks/gym_solve.py CartPole-v1 --threshold 500
    python benchmarks/gym_solve.py LunarLander-v3 --threshold 200 --resample --pop-size 100 --normalize --episodes 5 \
        --validate 100 --top 3 --workers 2 --refine-samples 20 --refine-patience 1000 --confidence 4
    python benchmarks/gym_solve.py InvertedDoublePendulum-v5 --threshold 9000 --activation tanh --resample \
        --pop-size 50 --add-node 0 --add-connection 0 --normalize --episodes 5 --validate 100 --top 3 --workers 2 \
        --refine-samples 20 --refine-patience 1000

Every generation the ``--top`` genomes by training fitness run ``--validate`` held-out episodes (``HeldOutChampion``),
and the best of them on those is the champion; the run stops once its held-out mean, less ``--confidence`` standard
errors, reaches ``--threshold`` (or at ``--generations`` or ``--time-limit``). The champion, and the training-fitness best for comparison, are then scored on
``--unseen`` episodes used by neither: that mean is the figure to read. With ``--normalize`` the task learns the
observation statistics as a reporter (they reach the ``--workers`` processes with each generation), and the champion
is tested, and saved beside ``--save``, with the statistics it was validated with. ``--refine-*`` turn on the CMA-ES
weight search around the champion (``EvolutionConfig.refine_*``).
"""

from __future__ import annotations

import argparse
import json
import time
from contextlib import nullcontext
from pathlib import Path

import torch

from neatify import Checkpoint, EvolutionConfig, Population
from neatify.backends.processes import ParallelEvaluator
from neatify.gym import GymEvaluator, HeldOutChampion
from neatify.reporting.reporters import ProgressReporter

OUTPUT_RANGES = {"neat_sigmoid": (0.0, 1.0), "sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0), "clamped": (-1.0, 1.0)}
"""The activations offered, with the range their outputs span (what ``GymEvaluator`` scales Box actions from)."""

VALIDATION_SEED, TEST_SEED = 20_000, 10_000
"""Offsets of the held-out and the unseen episodes' seeds from ``--seed`` (training uses ``--seed`` itself)."""


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("env")
    parser.add_argument("--threshold", type=float, required=True)
    parser.add_argument("--pop-size", type=int, default=150)
    parser.add_argument("--generations", type=int, default=500)
    parser.add_argument("--time-limit", type=float, default=None, help="stop after this many seconds")
    parser.add_argument("--episodes", type=int, default=1, help="training episodes per genome")
    parser.add_argument("--resample", action="store_true", help="new training episodes each generation")
    parser.add_argument("--top", type=int, default=5, help="genomes validated each generation")
    parser.add_argument("--validate", type=int, default=50, help="held-out episodes each of them runs")
    parser.add_argument("--confidence", type=float, default=2.0,
                        help="standard errors the held-out mean must clear the threshold by")
    parser.add_argument("--unseen", type=int, default=100, help="episodes the champion is tested on at the end")
    parser.add_argument("--workers", type=int, default=1, help="local processes (ParallelEvaluator) if > 1")
    parser.add_argument("--normalize", action="store_true",
                        help="observations standardised by statistics of each generation's fittest")
    parser.add_argument("--save", metavar="JSON", help="save the champion there")
    parser.add_argument("--activation", choices=sorted(OUTPUT_RANGES), default="neat_sigmoid",
                        help="every node's activation (the outputs' range follows)")
    parser.add_argument("--seed", type=int, default=1)
    search = parser.add_argument_group("the weight search around the champion (EvolutionConfig refine_*)")
    search.add_argument("--refine-samples", type=int, default=0, help="CMA-ES samples a generation (0: off)")
    search.add_argument("--refine-sigma", type=float, default=0.5, help="its step size on a new topology")
    search.add_argument("--refine-patience", type=int, default=20, help="generations without progress before a restart")
    search.add_argument("--refine-full-limit", type=int, default=100, help="full covariance up to this many weights")
    mutation = parser.add_argument_group("NEAT's mutations")
    mutation.add_argument("--weight-power", type=float, default=1.0, help="weight_mutation_power")
    mutation.add_argument("--add-node", type=float, default=0.1, help="prob_add_node")
    mutation.add_argument("--add-connection", type=float, default=0.2, help="prob_add_connection")
    return parser.parse_args()


def evolve(args: argparse.Namespace, task: GymEvaluator, champion: HeldOutChampion) -> Population:
    """Train until the held-out champion reaches the threshold, or the generations or the time run out."""
    num_inputs, num_outputs = task.shape()
    config = EvolutionConfig(population_size=args.pop_size, prob_add_node=args.add_node,
                             prob_add_connection=args.add_connection, weight_mutation_power=args.weight_power,
                             activation_default=args.activation, activation_options=[args.activation],
                             refine_samples=args.refine_samples, refine_sigma=args.refine_sigma,
                             refine_patience=args.refine_patience, refine_full_limit=args.refine_full_limit)
    population = Population(num_inputs=num_inputs, num_outputs=num_outputs, config=config, seed=args.seed)
    population.add_reporter(ProgressReporter())
    population.add_reporter(champion)  # validates with the statistics the generation was trained with...
    population.add_reporter(task)  # ...before the task learns the next ones (with --normalize)
    start = time.perf_counter()
    pool = ParallelEvaluator(task, args.workers) if args.workers > 1 else nullcontext(task)
    with pool as evaluate:
        for _ in range(args.generations):
            population.run_generation(evaluate)
            print(f"  held-out champion {champion.score:.1f} ± {champion.stderr:.1f} over {args.validate} episodes",
                  flush=True)
            if champion.score - args.confidence * champion.stderr >= args.threshold or (args.time_limit and time.perf_counter() - start > args.time_limit):
                break
    return population


def main() -> None:
    args = arguments()
    torch.set_num_threads(1)
    task = GymEvaluator(args.env, episodes=args.episodes, seed=args.seed, normalize=args.normalize,
                        resample=args.resample, output_range=OUTPUT_RANGES[args.activation])
    champion = HeldOutChampion(task.held_out(args.validate, args.seed + VALIDATION_SEED), args.top)
    start = time.perf_counter()
    population = evolve(args, task, champion)
    elapsed = time.perf_counter() - start
    assert champion.genome is not None and population.best_genome is not None
    if args.save:
        Checkpoint.export_genome_json(champion.genome, args.save)
        if champion.statistics is not None:  # the observation statistics it needs, beside it
            Path(args.save).with_suffix(".normalizer.json").write_text(json.dumps(champion.statistics))
    test = task.held_out(args.unseen, args.seed + TEST_SEED, champion.statistics)  # the champion's statistics
    unseen, best_unseen = test.run([champion.genome, population.best_genome]).returns.mean(axis=1).tolist()
    solved = "solved" if unseen >= args.threshold else "NOT solved"
    episodes = population.evaluations * args.episodes + champion.evaluations
    print(f"{args.env}: {solved}: champion {unseen:.1f} averaged over {args.unseen} unseen episodes "
          f"({champion.score:.1f} on its {args.validate} held-out ones); generation {len(population.history) - 1}, "
          f"{elapsed:.1f} s (population {args.pop_size}, {args.workers} process(es)), {population.evaluations} "
          f"genome evaluations, {episodes} episodes; the training-fitness best "
          f"({population.best_genome.fitness:.1f}) averaged {best_unseen:.1f} on the unseen episodes")


if __name__ == "__main__":
    main()
