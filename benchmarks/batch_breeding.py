"""Time to breed a whole generation in bulk with ``neatify.breeding.operators.breed_batch``: inheritance,
weight and bias mutations (structure mutations off) of as many children as parents.

    python benchmarks/batch_breeding.py [--pop-size 10000] [--generations 5] [--repeats 20] [--seed 1]

The parents are a population evolved ``--generations`` generations (3 inputs, 2 outputs, the sum of
enabled weights as fitness). The plan follows ``reproduction``: 1 % elites, three in four of the rest
crossed with a second parent, the others mutated copies. Prints the median ms of ``breed_batch``
and of its parts (``inherit``; weights and biases of every non-elite child).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np

from neatify import EvolutionConfig, Population
from neatify.breeding.operators import CHILD, ELITE, Offspring, breed_batch, inherit, mutate_biases, mutate_weights
from neatify.genome.batch import GenomeBatch
from neatify.genome.innovation import InnovationTracker


def evolved(pop_size: int, generations: int, seed: int) -> GenomeBatch:
    pop = Population(pop_size=pop_size, num_inputs=3, num_outputs=2, seed=seed)

    def fitness(genomes) -> None:
        for g in genomes:
            g.fitness = sum(c.weight for c in g.connections.values() if c.enabled)

    for _ in range(generations):
        pop.run_generation(fitness)
    return GenomeBatch.from_genomes(pop.genomes)


def plan(parents: GenomeBatch, rng: np.random.Generator) -> Offspring:
    n = len(parents)
    kind = np.where(rng.random(n) < 0.01, ELITE, CHILD).astype(np.int8)
    father = np.where((kind == CHILD) & (rng.random(n) < 0.75), rng.integers(0, n, n), -1)
    return Offspring(np.arange(n, dtype=np.int64) + n, rng.integers(0, n, n), father, kind)


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pop-size", type=int, default=10_000)
    parser.add_argument("--generations", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    parents = evolved(args.pop_size, args.generations, args.seed)
    rng = np.random.default_rng(args.seed)
    offspring = plan(parents, rng)
    config = EvolutionConfig(prob_add_node=0.0, prob_add_connection=0.0)
    tracker = InnovationTracker(int(parents.conn_innovation.max()) + 1, int(parents.node_id.max()) + 1)
    mutated = np.flatnonzero(offspring.kind == CHILD)
    children = inherit(parents, offspring, config, rng)
    print(f"{len(parents)} parents, {len(parents.node_id)} node genes, {len(parents.conn_innovation)} connection "
          f"genes; {len(offspring.ids)} children, {int((offspring.father >= 0).sum())} crossed")
    breed = median_ms(lambda: breed_batch(parents, offspring, config, rng, tracker), args.repeats)
    print(f"breed_batch  {breed:8.2f} ms")
    print(f"  inherit    {median_ms(lambda: inherit(parents, offspring, config, rng), args.repeats):8.2f} ms")
    print(f"  weights    {median_ms(lambda: mutate_weights(children, mutated, config, rng), args.repeats):8.2f} ms"
          " (every non-elite child)")
    print(f"  biases     {median_ms(lambda: mutate_biases(children, mutated, config, rng), args.repeats):8.2f} ms"
          " (every non-elite child)")


if __name__ == "__main__":
    main()
