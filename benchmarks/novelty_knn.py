"""Novelty's k-nearest search for a whole population, side by side with the breeding time of a generation.

    python benchmarks/novelty_knn.py [--pop 10000] [--archive 10000] [--dims 2 4] [--k 15] [--repeats 5]

Each novelty figure is timed alternately with the breeding of one generation of ``--pop`` genomes
(``Population.ask`` after a told generation: reproduction, mutation, speciation; XOR-sized genomes, random
fitness), so that a loaded machine slows both alike; printed are the medians of ``--repeats`` pairs and their
ratio. Timed: novelty of ``--pop`` behaviours against an archive of ``--archive`` by the k-d tree NEATify uses
(``neatify.objectives.novelty``), uniform behaviours and a population clustered in a small corner of the
archive's space; chunked numpy (every distance, ``np.partition`` for the k smallest; timed once, without
breeding beside it: its ratio is to the median breeding time of the run); and the NSGA-II scores of ``--pop``
genomes on two objectives.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np

from neatify import EvolutionConfig, Population
from neatify.objectives import novelty, pareto_scores


class Breeding:
    """A run at ``pop_size`` whose generations are bred one at a time on demand, each timed."""

    def __init__(self, pop_size: int) -> None:
        self.pop = Population(config=EvolutionConfig(population_size=pop_size), num_inputs=2, num_outputs=1, seed=1)
        self.rng = np.random.default_rng(1)
        self.seconds: list[float] = []
        for _ in range(3):  # the first breedings compile and warm up
            self.breed()
        self.seconds.clear()

    def breed(self) -> float:
        """Seconds to breed (and speciate) the next generation."""
        start = time.perf_counter()
        genomes = self.pop.ask()
        self.seconds.append(time.perf_counter() - start)
        self.pop.tell(self.rng.random(len(genomes)))
        return self.seconds[-1]


def beside_breeding(action: Callable[[], object], breeding: Breeding, repeats: int) -> tuple[float, float]:
    """Median seconds of ``action`` and of a breeding timed right after each call (one untimed call first)."""
    action()
    own, bred = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        own.append(time.perf_counter() - start)
        bred.append(breeding.breed())
    return statistics.median(own), statistics.median(bred)


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


def row(label: str, seconds: float, breeding: float, note: str = "") -> None:
    print(f"{label:58} {seconds * 1e3:9.1f} {breeding * 1e3:9.1f} {seconds / breeding:8.3f}  {note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pop", type=int, default=10_000)
    parser.add_argument("--archive", type=int, default=10_000)
    parser.add_argument("--dims", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--k", type=int, default=15)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-numpy", action="store_true", help="leave out the chunked numpy timing (slow)")
    args = parser.parse_args()
    breeding = Breeding(args.pop)
    print(f"{'what':58} {'ms':>9} {'breed ms':>9} {'ratio':>8}")
    rng = np.random.default_rng(2)
    for dims in args.dims:
        archive = rng.random((args.archive, dims))
        cases = {"uniform": rng.random((args.pop, dims)),
                 "clustered": 0.5 + 0.01 * rng.standard_normal((args.pop, dims))}
        for name, behaviours in cases.items():
            label = f"novelty, {dims}-D {name}, {args.pop:,} vs archive {args.archive:,}"
            row(f"{label}, k-d tree", *beside_breeding(lambda: novelty(behaviours, archive, args.k), breeding,
                                                       args.repeats))
            if not args.no_numpy:
                start = time.perf_counter()
                plain = chunked_numpy(behaviours, archive, args.k)
                seconds = time.perf_counter() - start
                same = np.allclose(novelty(behaviours, archive, args.k), plain, atol=1e-6)
                row(f"{label}, numpy", seconds, statistics.median(breeding.seconds), f"(equal: {same})")
    objectives = np.column_stack([rng.random(args.pop), rng.random(args.pop)])
    row(f"NSGA-II scores, {args.pop:,} genomes, 2 objectives",
        *beside_breeding(lambda: pareto_scores(objectives), breeding, args.repeats))


if __name__ == "__main__":
    main()
