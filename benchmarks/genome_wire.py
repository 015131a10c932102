"""Per-genome cost of the TASK_ASSIGNMENT genome encoding: protocol 3's columns against protocol 2's lists.

    python benchmarks/genome_wire.py [--batch 50] [--repeat 30]

For a batch of small genomes (the initial 2-input, 1-output population: 2 connections each) and one
of grown genomes (50-100 connections), prints microseconds per genome (median over the repeats) of:
the master's encoding (once per genome per generation), the worker's msgpack decoding of the task
frame, its check and build of the ``Genome`` objects, and of that the building alone (``Genome.copy``
of the decoded genomes, which makes the same objects); and the bytes per genome on the wire.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable

import msgpack

from neatify import EvolutionConfig, Genome, Population
from neatify.checks import genome_dict_problem
from neatify.distributed.genome_wire import decode_genomes, encode_genomes
from neatify.distributed.messages import MessageType
from neatify.distributed.protocol import decode_message, task_frame
from neatify.innovation import InnovationTracker


def encode_v2(genomes: list[Genome]) -> list[bytes]:
    """Protocol 2's encoding: the msgpack of each ``Genome.to_dict()``."""
    return [msgpack.packb({**g.to_dict(), "fitness": None}, use_bin_type=True) for g in genomes]


def decode_v2(maps: list[dict]) -> list[Genome]:
    """Protocol 2's worker: check each genome map, then build it."""
    problems = [p for p in map(genome_dict_problem, maps) if p]
    if problems:
        raise ValueError(problems[0])
    return [Genome.from_dict(d) for d in maps]


def grown_genomes(count: int, seed: int) -> list[Genome]:
    """Genomes of 2 inputs and 1 output grown by mutations to 50-100 connections."""
    config = EvolutionConfig(activation_options=["neat_sigmoid", "tanh", "relu"])
    rng = random.Random(seed)
    tracker = InnovationTracker(0, 3)
    genomes = []
    for i in range(count):
        genome = Genome.initial(i, 2, 1, config, rng, tracker)
        target = rng.randint(50, 100)
        while len(genome.connections) < target:
            if rng.random() < 0.3:
                genome.mutate_add_node(config, rng, tracker)
            genome.mutate_add_connection(config, rng, tracker)
        genome.mutate_activations(EvolutionConfig(activation_options=config.activation_options,
                                                  prob_mutate_activation=0.5), rng)
        genomes.append(genome)
    return genomes


def per_genome_us(action: Callable[[], object], genomes: int, repeat: int) -> float:
    """Median microseconds per genome of ``action`` (which handles ``genomes`` genomes)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times) / genomes * 1e6


def measure(genomes: list[Genome], repeat: int) -> dict[str, tuple[float, float]]:
    """Figure name -> (protocol 2, protocol 3) for one batch of genomes."""
    n = len(genomes)
    rows: dict[str, tuple[float, float]] = {}
    results = []
    for encode, decode in ((encode_v2, decode_v2), (encode_genomes, decode_genomes)):
        encoded = encode(genomes)
        body = task_frame(1, 0, encoded)[5:]
        maps = decode_message(MessageType.TASK_ASSIGNMENT, body).genomes
        built = decode(maps)
        assert [g.to_dict() for g in built] == [{**g.to_dict(), "fitness": None} for g in genomes]
        results.append({
            "master: encode": per_genome_us(lambda: encode(genomes), n, repeat),
            "worker: msgpack decode": per_genome_us(lambda: decode_message(MessageType.TASK_ASSIGNMENT, body),
                                                    n, repeat),
            "worker: check + build": per_genome_us(lambda: decode(maps), n, repeat),
            "  of which building Genomes": per_genome_us(lambda: [g.copy(g.id) for g in built], n, repeat),
            "bytes per genome": len(body) / n,
        })
    for name in results[0]:
        rows[name] = (results[0][name], results[1][name])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=50, help="genomes per task (a worker's default capacity)")
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    batches = {"small (2 connections)": Population(args.batch, 2, 1, seed=0).genomes,
               "grown (50-100 connections)": grown_genomes(args.batch, seed=0)}
    for label, genomes in batches.items():
        mean = statistics.mean(len(g.connections) for g in genomes)
        print(f"{label}: batch of {len(genomes)}, {mean:.1f} connections on average; us per genome")
        print(f"  {'':30} {'protocol 2':>11} {'protocol 3':>11}")
        for name, (old, new) in measure(genomes, args.repeat).items():
            print(f"  {name:30} {old:11.1f} {new:11.1f}")


if __name__ == "__main__":
    main()
