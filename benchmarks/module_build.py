"""NeatPopulationModule's build: the array layout against laying out genome by genome, side by side.

    python benchmarks/module_build.py [--sizes 1000 10000] [--generations 8] [--repeats 5] [--threads 1]

Populations: XOR-evolved (a population of each size evolves ``--generations`` generations with the
NEAT paper's XOR fitness through ``NeatPopulationModule``, default ``EvolutionConfig``; its last
generation is used), the same with ``allow_recurrent=True``, and grown (benchmarks/grown_genomes.py:
5-10 hidden nodes each). For each, the layout is built by ``PopulationLayout.from_genomes`` in array
operations and with ``per_genome=True`` (``NetworkLayout.from_genome`` for every genome, as before),
checked identical, and timed (best of ``--repeats``, garbage collector paused); the whole module
build is timed too. Each XOR run also prints what its last three generations cost: breeding
(everything but fitness), the module build and the forward pass.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Callable

import torch

from grown_genomes import make_genomes
from neatify import EvolutionConfig, Genome, Population
from neatify.nn import NeatPopulationModule
from neatify.network.layout import PopulationLayout

XOR_INPUTS = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
XOR_TARGETS = torch.tensor([0.0, 1.0, 1.0, 0.0])


class XorFitness:
    """XOR fitness (4 - squared error) through one NeatPopulationModule, timing its build and forward pass."""

    def __init__(self) -> None:
        self.build: list[float] = []
        self.forward: list[float] = []
        self.total: list[float] = []

    def __call__(self, genomes: list[Genome]) -> None:
        start = time.perf_counter()
        module = NeatPopulationModule(genomes)
        built = time.perf_counter()
        outputs = module(XOR_INPUTS)[:, :, 0]
        self.forward.append(time.perf_counter() - built)
        self.build.append(built - start)
        for genome, fitness in zip(genomes, (4.0 - ((outputs - XOR_TARGETS) ** 2).sum(dim=1)).tolist()):
            genome.fitness = fitness
        self.total.append(time.perf_counter() - start)


def xor_evolved(size: int, generations: int, seed: int, recurrent: bool = False) -> list[Genome]:
    """The last generation of an XOR run of ``size`` genomes; prints the cost of its last generations."""
    fitness = XorFitness()
    population = Population(size, 2, 1, config=EvolutionConfig(allow_recurrent=recurrent), seed=seed)
    seconds = []
    for _ in range(generations):
        start = time.perf_counter()
        population.run_generation(fitness)
        seconds.append(time.perf_counter() - start)
    whole, fit, build, forward = (statistics.mean(times[-3:]) * 1e3 for times in
                                  (seconds, fitness.total, fitness.build, fitness.forward))
    print(f"XOR{' recurrent' if recurrent else ''} pop {size:,}, generations {generations - 3}-{generations - 1} "
          f"(mean): {whole:.0f} ms per generation = breeding {whole - fit:.0f} ms + module build {build:.0f} ms "
          f"+ forward {forward:.1f} ms (+ fitness bookkeeping); {len(population.species)} species")
    return population.genomes


def best_time(fn: Callable[[], object], repeats: int) -> float:
    """Best wall time of ``repeats`` calls, Python's cyclic GC paused (as the per-genome build once did)."""
    best = float("inf")
    gc.disable()
    try:
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - start)
    finally:
        gc.enable()
    return best


def report(label: str, genomes: list[Genome], repeats: int) -> None:
    hidden, connections = (statistics.mean(v) for v in zip(*(g.size() for g in genomes)))
    cyclic = sum(g.is_recurrent() for g in genomes) / len(genomes)
    if not PopulationLayout.from_genomes(genomes).equals(PopulationLayout.from_genomes(genomes, per_genome=True)):
        raise SystemExit(f"{label}: the array layout differs from the per-genome one")
    per_genome = best_time(lambda: PopulationLayout.from_genomes(genomes, per_genome=True), repeats)
    arrays = best_time(lambda: PopulationLayout.from_genomes(genomes), repeats)
    module = best_time(lambda: NeatPopulationModule(genomes), repeats)
    n = len(genomes)
    print(f"{label:<14} {n:>7,} {hidden:>7.2f} {connections:>7.2f} {cyclic:>6.0%} {per_genome * 1e3:>10.1f} ms "
          f"{per_genome / n * 1e6:>6.1f} us {arrays * 1e3:>8.1f} ms {arrays / n * 1e6:>6.1f} us "
          f"{per_genome / arrays:>6.1f}x {module * 1e3:>8.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--generations", type=int, default=8, help="XOR generations evolved (at least 3)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    populations = []
    for size in args.sizes:
        populations.append(("XOR-evolved", xor_evolved(size, args.generations, args.seed)))
        populations.append(("XOR recurrent", xor_evolved(size, args.generations, args.seed, recurrent=True)))
        populations.append(("grown 5-10", make_genomes(size, args.seed)))
    print(f"\n{'population':<14} {'genomes':>7} {'hidden':>7} {'conns':>7} {'cyclic':>6} {'per-genome layout':>20} "
          f"{'array layout':>18} {'ratio':>7} {'module build':>11}")
    for label, genomes in populations:
        report(label, genomes, args.repeats)


if __name__ == "__main__":
    main()
