"""Novelty's k-nearest search for a whole population, side by side with the breeding time of a generation.

    python benchmarks/novelty_knn.py [--pop 10000] [--archive 10000] [--dims 2 4] [--k 15] [--repeats 5]

Times (median of ``--repeats``): breeding one generation of ``--pop`` genomes (``Population.ask`` after a told
generation: reproduction, mutation, speciation; XOR-sized genomes, random fitness); novelty of ``--pop``
behaviours against an archive of ``--archive`` by the k-d tree search NEATify uses (``neatify.objectives.novelty``)
and by chunked numpy (every distance, ``np.partition`` for the k smallest), for uniform behaviours and for a
population clustered in a small corner of the archive's space; and the NSGA-II scores of ``--pop`` genomes on
two objectives (fitness, novelty). Each figure is printed with its ratio to the breeding time.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np

from neatify import EvolutionConfig, Population
from pool_overhead import median_seconds
from neatify.objectives import novelty, pareto_scores


def warm_median_seconds(action: Callable[[], object], repeats: int) -> float:
    """``median_seconds`` after one untimed call (compiling, caches)."""
    action()
    return median_seconds(action, repeats)


def breeding_seconds(pop_size: int, repeats: int) -> float:
    """Median seconds of ``ask`` after a told generation (breeding and speciation) at ``pop_size``."""
    pop = Population(config=EvolutionConfig(population_size=pop_size), num_inputs=2, num_outputs=1, seed=1)
    rng = np.random.default_rng(1)
    times = []
    for generation in range(repeats + 2):
        start = time.perf_counter()
        genomes = pop.ask()
        if generation >= 2:  # the first breedings compile and warm up
            times.append(time.perf_counter() - start)
        pop.tell(rng.random(len(genomes)))
    return statistics.median(times)


def chunked_numpy(behaviours: np.ndarray, archive: np.ndarray, k: int, chunk: int = 512) -> np.ndarray:
    """The plain way: every distance, a chunk of rows at a time, the k smallest by ``np.partition``."""
    points = np.vstack([behaviours, archive])
    squared = (points ** 2).sum(axis=1)
    out = np.empty(len(behaviours))
    for lo in range(0, len(behaviours), chunk):
        rows = behaviours[lo:lo + chunk]
        d2 = squared[lo:lo + len(rows), None] + squared[None, :] - 2.0 * rows @ points.T
        d2[np.arange(len(rows)), np.arange(lo, lo + len(rows))] = np.inf  # not itself
        nearest = np.partition(np.maximum(d2, 0.0), k - 1, axis=1)[:, :k]
        out[lo:lo + chunk] = np.sqrt(nearest).mean(axis=1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pop", type=int, default=10_000)
    parser.add_argument("--archive", type=int, default=10_000)
    parser.add_argument("--dims", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--k", type=int, default=15)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    breed = breeding_seconds(args.pop, args.repeats)
    print(f"breeding one generation of {args.pop:,}: {breed * 1e3:.1f} ms (= 1.00)")
    print(f"{'what':58} {'ms':>9} {'x breeding':>11}")
    rng = np.random.default_rng(2)
    for dims in args.dims:
        archive = rng.random((args.archive, dims))
        cases = {"uniform": rng.random((args.pop, dims)),
                 "clustered": 0.5 + 0.01 * rng.standard_normal((args.pop, dims))}
        for name, behaviours in cases.items():
            grid = warm_median_seconds(lambda: novelty(behaviours, archive, args.k), args.repeats)
            plain = median_seconds(lambda: chunked_numpy(behaviours, archive, args.k), 1)
            same = np.allclose(novelty(behaviours, archive, args.k), chunked_numpy(behaviours, archive, args.k),
                               atol=1e-6)
            label = f"novelty, {dims}-D {name}, {args.pop:,} vs archive {args.archive:,}"
            print(f"{label + ', k-d tree':58} {grid * 1e3:9.1f} {grid / breed:11.3f}")
            print(f"{label + ', numpy':58} {plain * 1e3:9.1f} {plain / breed:11.3f}  (equal: {same})")
    objectives = np.column_stack([rng.random(args.pop), rng.random(args.pop)])
    pareto = warm_median_seconds(lambda: pareto_scores(objectives), args.repeats)
    print(f"{f'NSGA-II scores, {args.pop:,} genomes, 2 objectives':58} {pareto * 1e3:9.1f} {pareto / breed:11.3f}")


if __name__ == "__main__":
    main()
