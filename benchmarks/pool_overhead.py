"""Per-genome overhead of the process pool (``ParallelEvaluator``): its evaluation of a generation against
the same fitness called in this process.

    python benchmarks/pool_overhead.py [--genomes 2000] [--workers 2] [--repeat 15] [--grown]

The fitness is trivial (it reads each genome's connections, which builds a view's gene objects, in the
pool and locally alike), so the difference is what the pool adds per genome: packing the genomes,
sending them to the processes, unpacking and checking them there, and sending the fitness back.
The population's genomes are unread views of its ``GenomeBatch`` (as ``Population`` holds them);
``--grown`` takes genomes grown to 5-10 hidden nodes (``grown_genomes.py``) instead of initial ones.
Whichever ``neatify`` is first on the path is measured: run it over two checkouts, alternated, to compare.
"""

from __future__ import annotations

import argparse
import statistics
import time

from grown_genomes import make_genomes
from neatify import Population
from neatify.backends.processes import ParallelEvaluator
from neatify.genome.batch import GenomeBatch


def trivial_fitness(genomes) -> None:
    for genome in genomes:
        genome.fitness = float(len(genome.connections))


def median_seconds(action, repeat: int) -> float:
    """Median wall time of ``action()`` over ``repeat`` calls."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--genomes", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--grown", action="store_true", help="genomes of 5-10 hidden nodes (default: initial ones)")
    args = parser.parse_args()
    genomes = make_genomes(args.genomes, seed=0) if args.grown else Population(args.genomes, 2, 1, seed=0).genomes
    batch = GenomeBatch.from_genomes(genomes)
    local = median_seconds(lambda: trivial_fitness(batch.views()), args.repeat)  # fresh views, as the pool's
    with ParallelEvaluator(trivial_fitness, workers=args.workers) as evaluator:
        evaluator(batch.views())  # the processes start and import
        pool = median_seconds(lambda: evaluator(batch.views()), args.repeat)
    n = args.genomes
    print(f"{n} {'grown' if args.grown else 'initial'} genomes, {args.workers} workers: pool {pool * 1e3:.1f} ms, "
          f"local {local * 1e3:.1f} ms; per-genome overhead {(pool - local) / n * 1e6:.2f} us")


if __name__ == "__main__":
    main()
