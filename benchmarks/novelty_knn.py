"""Novelty's k-nearest search for a whole population, side by side with the breeding time of a generation.

    python benchmarks/novelty_knn.py [--pop 10000] [--archive 10000] [--dims 2 4] [--k 15] [--repeats 5]

Each novelty figure is timed alternately with the breeding of one generation of ``--pop`` genomes
(``Population.ask`` after a told generation: reproduction, mutation, speciation; the fifth generation of an XOR
run with random fitness, bred again each time), so that a loaded machine slows both alike; printed are the
medians of ``--repeats`` pairs and their ratio, in wall time and in CPU time (the process's, all threads; a
loaded machine inflates it less). Timed: novelty of ``--pop`` behaviours against an archive of ``--archive`` by
the k-d tree NEATify uses (``neatify.objectives.novelty``), uniform behaviours and a population clustered in a
small corner of the archive's space; chunked numpy (every distance, ``np.partition`` for the k smallest; timed
once, without breeding beside it: its ratio is to the median breeding time of the run); and the NSGA-II scores
of ``--pop`` genomes on two objectives.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from neatify import EvolutionConfig, Population
from neatify.objectives import novelty, pareto_scores


class Breeding:
    """A run at ``pop_size`` whose fifth generation is bred again and again on demand, each time timed (the same
    work each time: the genomes do not grow as the benchmark goes on)."""

    def __init__(self, pop_size: int) -> None:
        pop = Population(config=EvolutionConfig(population_size=pop_size), num_inputs=2, num_outputs=1, seed=1)
        rng = np.random.default_rng(1)
        for _ in range(4):  # the first breedings compile and warm up
            pop.tell(rng.random(len(pop.ask())))
        self.state = pop.state_dict()
        self.seconds: list[tuple[float, float]] = []

    def breed(self) -> tuple[float, float]:
        """Wall and CPU seconds to breed (and speciate) the fifth generation."""
        timed(Population.from_state_dict(self.state).ask, self.seconds)
        return self.seconds[-1]


def timed(action: Callable[[], Any], seconds: list[tuple[float, float]]) -> Any:
    """``action()``, its wall and CPU seconds appended to ``seconds``."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = action()
    seconds.append((time.perf_counter() - wall, time.process_time() - cpu))
    return result


def medians(seconds: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(s[0] for s in seconds), statistics.median(s[1] for s in seconds)


def beside_breeding(action: Callable[[], object], breeding: Breeding, repeats: int) -> tuple[float, ...]:
    """Median wall and CPU seconds of ``action`` and of a breeding timed right after each call (one untimed
    call first): (wall, breeding wall, CPU, breeding CPU)."""
    action()
    own: list[tuple[float, float]] = []
    bred: list[tuple[float, float]] = []
    for _ in range(repeats):
        timed(action, own)
        bred.append(breeding.breed())
    (wall, cpu), (bred_wall, bred_cpu) = medians(own), medians(bred)
    return wall, bred_wall, cpu, bred_cpu


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


def row(label: str, seconds: float, breeding: float, cpu: float = math.nan, bred_cpu: float = math.nan,
        note: str = "") -> None:
    print(f"{label:58} {seconds * 1e3:9.1f} {breeding * 1e3:9.1f} {seconds / breeding:7.3f} {cpu * 1e3:9.1f} "
          f"{bred_cpu * 1e3:9.1f} {cpu / bred_cpu:7.3f}  {note}")


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
    print(f"{'what':58} {'ms':>9} {'breed ms':>9} {'ratio':>7} {'CPU ms':>9} {'breed CPU':>9} {'ratio':>7}")
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
                row(f"{label}, numpy", seconds, medians(breeding.seconds)[0], note=f"(equal: {same})")
    objectives = np.column_stack([rng.random(args.pop), rng.random(args.pop)])
    row(f"NSGA-II scores, {args.pop:,} genomes, 2 objectives",
        *beside_breeding(lambda: pareto_scores(objectives), breeding, args.repeats))


if __name__ == "__main__":
    main()
