"""Where a NEATify generation's CPU time goes, phase by phase, in the runs benchmarks/tensorneat_compare.py times.

    python benchmarks/generation_profile.py [--xor-sizes 1000 10000] [--cartpole-sizes 1000]
        [--generations 12] [--warmup 4] [--profile]

Same settings as the comparison's "NEATify" row (its ``NEATIFY_MATCHED``, species target
``auto_target_species(size)``; ``--fixed-threshold``: its "fixed threshold" row), one thread, CPU time
(``time.process_time``). Phases, medians over the generations after ``--warmup``: breeding (the rest
of ``ask``: ``reproduce``'s selection, crossover and mutation), the views (one ``Genome`` per row for
the fitness function), speciation, the module build (``NeatPopulationModule(genomes)``: batch,
layout, tensors), evaluation (XOR: the forward pass and the error; cart-pole: ``rollout``), setting
each genome's fitness (a Python loop, as a user's fitness function writes it), and bookkeeping
(``_conclude``: checks, statistics, reporters). ``--profile`` adds cProfile's top functions over the
timed generations.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import torch

import population_scale
import tensorneat_compare
from neatify import EvolutionConfig, Genome, Population
from neatify.config import auto_target_species
from neatify.envs import CartPole, rollout
from neatify.nn import NeatPopulationModule

CLOCK = time.process_time
PHASES = ("breeding", "views", "speciation", "module build", "evaluation", "set fitness", "bookkeeping")


class TimedPopulation(Population):
    """A population that adds each phase's CPU time to ``seconds`` (the fitness function adds its own)."""

    seconds: defaultdict[str, float] = defaultdict(float)
    """Set to the run's own before its first generation (the class's catches the initial population's)."""

    def _timed(self, phase: str, step: Callable[[], Any]) -> Any:
        start = CLOCK()
        result = step()
        self.seconds[phase] += CLOCK() - start
        return result

    def _hold(self, batch: Any) -> None:
        self._timed("views", lambda: super(TimedPopulation, self)._hold(batch))

    def _speciate(self) -> None:
        self._timed("speciation", super()._speciate)

    def _conclude(self) -> None:
        self._timed("bookkeeping", super()._conclude)


def xor_fitness(seconds: defaultdict[str, float]) -> Callable[[list[Genome]], None]:
    """The comparison's XOR fitness (4 - SSE through one module), its phases timed into ``seconds``."""
    x = torch.tensor([row for row, _ in population_scale.XOR_ROWS])
    y = torch.tensor([[target] for _, target in population_scale.XOR_ROWS])

    def fitness(genomes: list[Genome]) -> None:
        start = CLOCK()
        module = NeatPopulationModule(genomes)
        built = CLOCK()
        errors = ((module(x) - y) ** 2).sum(dim=(1, 2)).tolist()
        evaluated = CLOCK()
        for genome, error in zip(genomes, errors):
            genome.fitness = 4.0 - error
        seconds["module build"] += built - start
        seconds["evaluation"] += evaluated - built
        seconds["set fitness"] += CLOCK() - evaluated

    return fitness


def cartpole_fitness(seconds: defaultdict[str, float], seed: int) -> Callable[[list[Genome]], None]:
    """The comparison's cart-pole fitness (examples/cartpole_batched.py's), its phases timed into ``seconds``."""
    episodes, max_steps = tensorneat_compare.EPISODES, tensorneat_compare.MAX_STEPS

    def fitness(genomes: list[Genome]) -> None:
        start = CLOCK()
        module = NeatPopulationModule(genomes)
        built = CLOCK()
        env = CartPole(len(genomes) * episodes, max_steps, seed=seed)
        mean_steps = rollout(module, env).double().mean(dim=1).tolist()
        evaluated = CLOCK()
        for genome, steps in zip(genomes, mean_steps):
            genome.fitness = steps
        seconds["module build"] += built - start
        seconds["evaluation"] += evaluated - built
        seconds["set fitness"] += CLOCK() - evaluated

    return fitness


def profile_run(task: str, size: int, args: argparse.Namespace) -> None:
    """Print the phases of ``task`` at ``size`` (and, with ``--profile``, cProfile's top functions)."""
    seconds: defaultdict[str, float] = defaultdict(float)
    fitness = xor_fitness(seconds) if task == "xor" else cartpole_fitness(seconds, args.seed)
    variant = tensorneat_compare.NEATIFY_VARIANTS["fixed threshold"] if args.fixed_threshold else {}
    config = EvolutionConfig(**{**tensorneat_compare.NEATIFY_MATCHED, "target_species": auto_target_species(size),
                                **variant})
    pop = TimedPopulation(size, 2 if task == "xor" else 4, 1, config=config, seed=args.seed)
    pop.seconds = seconds
    rows: dict[str, list[float]] = defaultdict(list)
    profiler = cProfile.Profile()
    for generation in range(args.generations):
        seconds.clear()
        if args.profile and generation == args.warmup:
            profiler.enable()
        start = CLOCK()
        pop.run_generation(fitness)
        total = CLOCK() - start
        seconds["breeding"] = total - sum(seconds.values())
        seconds["total"] = total
        for phase, value in seconds.items():
            rows[phase].append(value)
    profiler.disable()
    later = {phase: statistics.median(values[args.warmup:]) * 1e3 for phase, values in rows.items()}
    print(f"{task} pop {size:,}: {later['total']:.1f} CPU ms/gen (median of generations {args.warmup}.."
          f"{args.generations - 1}), species {pop.history[-1].num_species}", flush=True)
    for phase in PHASES:
        print(f"  {phase:<13} {later.get(phase, 0.0):8.2f} ms  {later.get(phase, 0.0) / later['total']:6.1%}")
    if args.profile:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(args.profile_lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--xor-sizes", type=int, nargs="*", default=[1_000, 10_000])
    parser.add_argument("--cartpole-sizes", type=int, nargs="*", default=[1_000])
    parser.add_argument("--generations", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=4, help="first generations left out of the medians")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--fixed-threshold", action="store_true",
                        help="the comparison's 'fixed threshold' row: threshold 3.0 kept, no species target")
    parser.add_argument("--profile", action="store_true", help="also print cProfile's top functions")
    parser.add_argument("--profile-lines", type=int, default=25)
    args = parser.parse_args()
    torch.set_num_threads(1)
    for size in args.xor_sizes:
        profile_run("xor", size, args)
    for size in args.cartpole_sizes:
        profile_run("cartpole", size, args)


if __name__ == "__main__":
    sys.exit(main())
