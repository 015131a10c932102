"""Species batching against genome batching: two real workers on 127.0.0.1, the same seeded XOR run in each mode.

    python benchmarks/species_batching.py

For ``DistributedConfig(batching="genomes")`` and ``batching="species"`` it prints, per generation, the
batches and bytes of TASK_ASSIGNMENT frames the master sent, the genomes per second of the evaluation
step, and the cost of a fitness function that caches a built network per topology (the set of enabled
connection innovations): each worker keeps a cache for the whole run, and a build costs ``--build-ms``
(standing for compiling a network, e.g. for an accelerator). Also counted: the builds a cache that
lives for one batch only would make (distinct topologies per batch), as a batched evaluator does. The
two runs must end in the same best fitness (batching changes no result).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from neatify import Network
from neatify.distributed import DistributedConfig, DistributedPopulation, WorkerNode
from neatify.distributed.core.scheduler import GenerationJob, SentBatch
from neatify.genome.genome import Genome
from neatify.network.network import NetworkLayout

HOST = "127.0.0.1"
XOR_ROWS = [((0.0, 0.0), 0.0), ((0.0, 1.0), 1.0), ((1.0, 0.0), 1.0), ((1.0, 1.0), 0.0)]


def topology(genome: Genome) -> frozenset[int]:
    """What a built network depends on besides its weights: the enabled connections' innovations."""
    return frozenset(c.innovation for c in genome.connections.values() if c.enabled)


class TopologyCachedFitness:
    """XOR fitness (4 - SSE) that builds each topology's network layout once per worker, counting hits."""

    def __init__(self, build_seconds: float) -> None:
        self.build_seconds = build_seconds
        self.cache: dict[frozenset[int], NetworkLayout] = {}
        self.hits = self.misses = self.batch_builds = 0
        self.build_time = 0.0

    def __call__(self, genomes: list[Genome]) -> None:
        self.batch_builds += len({topology(g) for g in genomes})
        for genome in genomes:
            self.layout(genome)
            net = Network(genome)
            genome.fitness = 4.0 - sum((net.activate(list(x))[0] - y) ** 2 for x, y in XOR_ROWS)

    def layout(self, genome: Genome) -> NetworkLayout:
        key = topology(genome)
        if key in self.cache:
            self.hits += 1
            return self.cache[key]
        self.misses += 1
        start = time.perf_counter()
        time.sleep(self.build_seconds)
        built = self.cache[key] = NetworkLayout.from_genome(genome)
        self.build_time += time.perf_counter() - start
        return built


class CountedPopulation(DistributedPopulation):
    """Times the evaluation step alone (breeding excluded)."""

    eval_seconds = 0.0

    def evaluate(self, fitness_fn) -> None:
        start = time.perf_counter()
        super().evaluate(fitness_fn)
        self.eval_seconds += time.perf_counter() - start


SENT: list[int] = []
"""Length of every TASK_ASSIGNMENT frame the master built (recorded by wrapping ``GenerationJob.task_frame``)."""


def count_task_frames() -> None:
    build = GenerationJob.task_frame

    def counted(job: GenerationJob, batch: SentBatch) -> bytes:
        frame = build(job, batch)
        SENT.append(len(frame))
        return frame

    GenerationJob.task_frame = counted  # type: ignore[method-assign]


def one_mode(batching: str, args: argparse.Namespace) -> dict[str, float]:
    """Run the seeded evolution with two workers in one batching mode; the figures per generation."""
    SENT.clear()
    config = DistributedConfig(host=HOST, port=0, min_workers=2, worker_wait_timeout=60.0, batching=batching)
    with CountedPopulation(args.pop_size, 2, 1, seed=args.seed, distributed_config=config) as pop:
        workers = [subprocess.Popen([sys.executable, __file__, "worker", str(pop.port), str(args.build_ms),
                                     str(args.capacity)], stdout=subprocess.PIPE, text=True) for _ in range(2)]
        try:
            for _ in range(args.generations):
                pop.run_generation(lambda genomes: None)
            species = len(pop.species)
            best = max(g.fitness for g in pop.genomes)
        finally:
            pop.shutdown()
            stats = [[float(v) for v in w.communicate(timeout=30)[0].split()[-4:]] for w in workers]
    hits, misses, batch_builds, build_time = (sum(column) for column in zip(*stats))
    gens = args.generations
    return {"batches": len(SENT) / gens, "kbytes": sum(SENT) / gens / 1000, "genomes/s":
            args.pop_size * gens / pop.eval_seconds, "hit rate": hits / (hits + misses), "builds": misses / gens,
            "batch builds": batch_builds / gens, "build s": build_time / gens, "species": species, "best": best}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pop-size", type=int, default=150)
    parser.add_argument("--generations", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--build-ms", type=float, default=2.0, help="milliseconds one network build costs")
    parser.add_argument("--capacity", type=int, default=50, help="each worker's capacity")
    args = parser.parse_args()
    count_task_frames()
    results = {mode: one_mode(mode, args) for mode in ("genomes", "species")}
    print(f"population {args.pop_size}, {args.generations} generations, seed {args.seed}, 2 workers, "
          f"build {args.build_ms:g} ms; per generation:")
    print(f"  {'':28} {'genomes':>10} {'species':>10}")
    for key in results["genomes"]:
        print(f"  {key:28} {results['genomes'][key]:10.3f} {results['species'][key]:10.3f}")


def worker_main(port: int, build_ms: float, capacity: int) -> None:
    """A worker with the cached fitness; prints hits, misses, per-batch builds and build seconds at exit."""
    fitness = TopologyCachedFitness(build_ms / 1000)
    WorkerNode(HOST, port, fitness_function=fitness, capacity=capacity, max_connect_attempts=50).start()
    print(fitness.hits, fitness.misses, fitness.batch_builds, fitness.build_time)


if __name__ == "__main__":
    if sys.argv[1:2] == ["worker"]:
        worker_main(int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]))
    else:
        main()
