"""Bulk add-node and add-connection (``neatify.breeding.structure``) against the per-genome operators.

    python benchmarks/batch_structure.py [--size 10000] [--generations 8] [--repeats 7] [--recurrent]

An XOR population of ``--size`` genomes evolves ``--generations`` generations (NEAT paper XOR fitness
through ``NeatPopulationModule``, default ``EvolutionConfig``, seed 1); its last generation becomes a
``GenomeBatch``. Timed, best of ``--repeats`` (garbage collector paused): ``add_connections`` on a
random half of the rows, ``add_nodes`` on 500 rows and on the same half, and, for comparison,
``Genome.mutate_add_connection`` / ``mutate_add_node`` on copies of the same genomes. The page
faults of the best run show whether the allocator handed out fresh memory for the temporaries.
"""

from __future__ import annotations

import argparse
import gc
import random
import resource
import time
from collections.abc import Callable

import numpy as np
from module_build import xor_evolved

from neatify import EvolutionConfig
from neatify.breeding.structure import add_connections, add_nodes
from neatify.genome.batch import GenomeBatch
from neatify.genome.innovation import InnovationTracker


def best_ms(work: Callable[[], object], repeats: int) -> tuple[float, int]:
    """Fastest of ``repeats`` runs of ``work`` in milliseconds, without collector passes, and the
    minor page faults of that run (fresh memory the allocator asked the system for)."""
    runs = []
    gc.disable()
    try:
        for _ in range(repeats):
            faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            start = time.perf_counter()
            work()
            runs.append((time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults))
    finally:
        gc.enable()
    seconds, faults = min(runs)
    return 1000 * seconds, faults


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=10000)
    parser.add_argument("--generations", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--recurrent", action="store_true")
    args = parser.parse_args()
    config = EvolutionConfig(allow_recurrent=args.recurrent)
    genomes = xor_evolved(args.size, args.generations, seed=1, recurrent=args.recurrent)
    batch = GenomeBatch.from_genomes(genomes)
    hidden, enabled = batch.sizes()
    print(f"{len(batch)} genomes: {hidden.mean():.2f} hidden, {enabled.mean():.2f} enabled connections, "
          f"{np.diff(batch.conn_start).mean():.2f} connection genes")
    half = np.sort(np.random.default_rng(0).choice(len(batch), len(batch) // 2, replace=False))
    few = half[:: max(1, len(half) // 500)][:500]
    tracker = InnovationTracker(int(batch.conn_innovation.max()) + 1, int(batch.node_id.max()) + 1)

    def batched(operator: Callable, rows: np.ndarray) -> Callable[[], object]:
        return lambda: operator(batch, rows, config, np.random.default_rng(1), tracker)

    def plain(method: str, rows: np.ndarray) -> Callable[[], object]:
        copies = [genomes[row].copy(genomes[row].id) for row in rows.tolist()]
        rng = random.Random(1)
        return lambda: [getattr(g.copy(g.id), method)(config, rng, tracker) for g in copies]

    def copies_only(rows: np.ndarray) -> Callable[[], object]:
        copies = [genomes[row].copy(genomes[row].id) for row in rows.tolist()]
        return lambda: [g.copy(g.id) for g in copies]

    for name, operator, method in (("add_connections", add_connections, "mutate_add_connection"),
                                   ("add_nodes", add_nodes, "mutate_add_node")):
        for rows in (few, half):
            ms, faults = best_ms(batched(operator, rows), args.repeats)
            per_genome = best_ms(plain(method, rows), args.repeats)[0] - best_ms(copies_only(rows), args.repeats)[0]
            print(f"{name:16} {len(rows):5} rows: {ms:7.2f} ms ({faults:5} page faults)   "
                  f"per genome {per_genome:7.2f} ms (copies excluded)")


if __name__ == "__main__":
    main()
