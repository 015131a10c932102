"""Per-genome cost of the TASK_ASSIGNMENT genome encoding: protocol 5's columns of packed records through a
``GenomeBatch`` against protocol 2's lists.

    python benchmarks/genome_wire.py [--batch 50] [--repeat 30]

For a batch of small genomes (the initial 2-input, 1-output population: 2 connections each) and one
of grown genomes (50-100 connections), prints microseconds per genome (median over the repeats) of:
the master's encoding of a task of plain ``Genome`` objects and of unread views of one ``GenomeBatch``
(what the population holds); the worker's msgpack decoding of the task frame; its check of the task
into one ``GenomeBatch`` and its
views (protocol 2: the check and build of ``Genome`` objects); the same plus reading every view's
genes, as a fitness function that reads ``nodes``/``connections`` does; and the bytes per genome.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable

import msgpack

from neatify import EvolutionConfig, Genome, Population
from neatify.io.schema import genome_dict_problem
from neatify.distributed.wire.columns import WireGenomes, decode_genomes
from neatify.genome.batch import GenomeBatch
from neatify.distributed.wire.messages import MessageType
from neatify.distributed.wire.framing import decode_message, encode_frame
from neatify.genome.innovation import InnovationTracker


def encode_v2(genomes: list[Genome]) -> bytes:
    """Protocol 2's task payload: a list of the msgpack maps of each ``Genome.to_dict()``."""
    maps = [{**g.to_dict(), "fitness": None} for g in genomes]
    return msgpack.packb({"batch_id": 1, "generation": 0, "genomes": maps}, use_bin_type=True)


def unpack_v2(body: bytes) -> list[dict]:
    """Protocol 2's worker: the genome maps of a task payload."""
    return msgpack.unpackb(body)["genomes"]


def encode_columns(genomes: list[Genome]) -> bytes:
    """Protocol 5's task payload: the genomes' columns."""
    return encode_frame(WireGenomes.of(genomes).task(1, 0))[5:]


def unpack_columns(body: bytes):
    """Protocol 5's worker: the checked TASK_ASSIGNMENT message of a payload."""
    return decode_message(MessageType.TASK_ASSIGNMENT, body)


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


def read_genes(genomes: list[Genome]) -> list[Genome]:
    """Read every genome's genes (builds a view's gene objects), as a fitness function reading them does."""
    for genome in genomes:
        _ = genome.nodes
    return genomes


def measure(genomes: list[Genome], repeat: int) -> dict[str, tuple[float, float]]:
    """Figure name -> (protocol 2, batch path) for one batch of genomes (nan where a figure has no meaning)."""
    n = len(genomes)
    views = GenomeBatch.from_genomes(genomes).views()
    results = []
    paths = ((encode_v2, unpack_v2, decode_v2), (encode_columns, unpack_columns, decode_genomes))
    for encode, unpack, decode in paths:
        body = encode(genomes)
        maps = unpack(body)
        built = read_genes(decode(maps))
        assert sorted(map(sorted_genes, built)) == sorted(map(sorted_genes, genomes))
        results.append({
            "master: encode Genome objects": per_genome_us(lambda: encode(genomes), n, repeat),
            "master: encode views of a batch": per_genome_us(lambda: encode(views), n, repeat)
            if encode is encode_columns else float("nan"),
            "worker: msgpack decode": per_genome_us(lambda: unpack(body), n, repeat),
            "worker: check -> genomes (views)": per_genome_us(lambda: decode(maps), n, repeat),
            "worker: check + read every gene": per_genome_us(lambda: read_genes(decode(maps)), n, repeat),
            "bytes per genome": len(body) / n,
        })
    return {name: (results[0][name], results[1][name]) for name in results[0]}


def sorted_genes(genome: Genome) -> tuple:
    """A genome's id and genes as sorted plain lists (gene order aside, equal genomes give equal tuples)."""
    return (genome.id, sorted(n.to_list() for n in genome.nodes.values()),
            sorted(c.to_list() for c in genome.connections.values()))


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
        print(f"  {'':34} {'protocol 2':>11} {'columns':>11}")
        for name, (old, new) in measure(genomes, args.repeat).items():
            print(f"  {name:34} {old:11.1f} {new:11.1f}")


if __name__ == "__main__":
    main()
