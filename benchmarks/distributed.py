"""Distributed evaluation benchmark on loopback: scaling with workers, and the master's overhead.

    python benchmarks/distributed.py

(1) scaling: seconds per generation with 1, 2, 4 and 8 worker processes and a fitness that sleeps
20 ms per genome (population 400), and the speed-up over one worker (target: >= 0.9 x workers);
(2) overhead: genomes per second through the master with a trivial fitness, against a local
``Population`` running the same fitness: for whole generations (breeding included) and for the
evaluation step alone (network round trips against a plain function call), and from the latter the
per-genome distribution overhead, (distributed minus local evaluation time) / genomes
(target: <= 10 us with two workers).

The population's genomes are unread views of its ``GenomeBatch``, so the master encodes from the
batch; the trivial fitness reads each genome's connections, which builds its gene objects, on the
workers and in the local run alike (the local step evaluates fresh views every time, as workers
do). With ``--batch-views`` the fitness reads each view's connection count from its batch instead
(as ``NeatPopulationModule`` does), on both sides: the distribution path alone.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from neatify import Population
from neatify.distributed import DistributedConfig, DistributedPopulation, WorkerNode
from neatify.genome.batch import GenomeBatch

HOST = "127.0.0.1"


def sleepy_fitness(genomes, sleep: float) -> None:
    """Stands for an expensive simulation: ``sleep`` seconds per genome."""
    for genome in genomes:
        time.sleep(sleep)
        genome.fitness = float(len(genome.connections))


def trivial_fitness(genomes) -> None:
    for genome in genomes:
        genome.fitness = float(len(genome.connections))


def batch_fitness(genomes) -> None:
    """``trivial_fitness`` reading an unread view's connection count from its batch (no gene objects built)."""
    for genome in genomes:
        batch, row = genome.batch_row()
        genome.fitness = float(len(genome.connections) if batch is None else
                               batch.conn_start[row + 1] - batch.conn_start[row])


def seconds_per_generation(workers: int, pop_size: int, generations: int, sleep: float,
                           batch_views: bool = False) -> tuple[float, float]:
    """Mean wall time of a whole distributed generation, and of its evaluation step alone (after registration;
    of views of a ``GenomeBatch`` with ``batch_views``)."""
    config = DistributedConfig(host=HOST, port=0, min_workers=workers, worker_wait_timeout=60.0)
    with DistributedPopulation(pop_size, 2, 1, seed=0, distributed_config=config) as pop:
        procs = [subprocess.Popen([sys.executable, __file__, "worker", str(pop.port), str(sleep), str(batch_views)])
                 for _ in range(workers)]
        try:
            pop.coordinator.wait_for_workers(workers)
            start = time.perf_counter()
            for _ in range(generations):
                pop.run_generation(lambda genomes: None)
            whole = (time.perf_counter() - start) / generations
            genomes = GenomeBatch.from_genomes(pop.genomes).views() if batch_views else pop.genomes
            start = time.perf_counter()
            for _ in range(generations):
                pop.coordinator.evaluate(genomes, pop.generation)
            return whole, (time.perf_counter() - start) / generations
        finally:
            pop.shutdown()
            for proc in procs:
                proc.wait(timeout=30)


def local_seconds_per_generation(pop_size: int, generations: int, batch_views: bool = False) -> tuple[float, float]:
    """The same two figures for a local ``Population`` (its evaluation step with the workers' fitness)."""
    pop = Population(pop_size, 2, 1, seed=0)
    start = time.perf_counter()
    for _ in range(generations):
        pop.run_generation(trivial_fitness)
    whole = (time.perf_counter() - start) / generations
    batch = GenomeBatch.from_genomes(pop.genomes)
    start = time.perf_counter()
    for _ in range(generations):  # fresh views each time, as a worker decodes fresh ones: both read the genes
        (batch_fitness if batch_views else trivial_fitness)(batch.views())
    return whole, (time.perf_counter() - start) / generations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pop-size", type=int, default=400)
    parser.add_argument("--sleep", type=float, default=0.02, help="seconds per genome in the scaling part")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--generations", type=int, default=2, help="generations timed per scaling point")
    parser.add_argument("--overhead-workers", type=int, default=2)
    parser.add_argument("--overhead-generations", type=int, default=20)
    parser.add_argument("--batch-views", action="store_true",
                        help="time the evaluation step on views of a GenomeBatch, read from the batch (see above)")
    args = parser.parse_args()

    print(f"(1) scaling: population {args.pop_size}, fitness sleeps {args.sleep * 1000:.0f} ms per genome, "
          f"{args.generations} generation(s) per point")
    base = None
    for workers in args.workers:
        seconds, _ = seconds_per_generation(workers, args.pop_size, args.generations, args.sleep)
        base = base if base is not None else seconds * args.workers[0]
        speedup = base / seconds
        print(f"  {workers} worker(s): {seconds:6.2f} s/generation  speed-up {speedup:5.2f}  "
              f"({speedup / workers:.2f} x workers)", flush=True)

    n, gens = args.pop_size, args.overhead_generations
    remote = seconds_per_generation(args.overhead_workers, n, gens, 0.0, args.batch_views)
    local = local_seconds_per_generation(n, gens, args.batch_views)
    print(f"(2) overhead: trivial fitness, population {n}, {gens} generations, "
          f"{args.overhead_workers} workers; genomes/s")
    print(f"  {'':28} {'distributed':>12} {'local':>12} {'ratio':>9}")
    for label, r, loc in (("whole generation (breeding)", remote[0], local[0]),
                          ("evaluation step alone", remote[1], local[1])):
        print(f"  {label:28} {n / r:12.0f} {n / loc:12.0f} {loc / r:9.3g}")
    overhead_us = (remote[1] - local[1]) / n * 1e6
    print(f"  per-genome overhead of distributed evaluation: {overhead_us:.1f} us (target <= 10 us)")
    if not args.batch_views:
        print("  (this fitness builds each genome's gene objects, a cost the workers share between them;"
              " --batch-views measures the distribution path alone)")


def worker_main(port: int, sleep: float, batch_views: bool) -> None:
    trivial = batch_fitness if batch_views else trivial_fitness
    fitness = trivial if sleep == 0 else (lambda genomes: sleepy_fitness(genomes, sleep))
    WorkerNode(HOST, port, fitness_function=fitness, max_connect_attempts=50).start()


if __name__ == "__main__":
    if sys.argv[1:2] == ["worker"]:
        worker_main(int(sys.argv[2]), float(sys.argv[3]), sys.argv[4] == "True")
    else:
        main()
