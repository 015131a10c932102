"""ES-HyperNEAT against PUREPLES: decode + evaluate time per generation, peak memory, side by side.

Task: XOR over PUREPLES's own XOR substrate (inputs x1, x2, 1 at (-1, -1), (0, -1), (1, -1); output at
(0, 1)), with PUREPLES's "medium" XOR settings (initial depth 1, max depth 2, variance 0.03, band 0.3,
division 0.5, iteration level 1, max weight 5, sigmoid) unless flags say otherwise. NEATify evolves a
population of CPPNs for ``--generations`` generations, timing its fitness function (decode every
CPPN in one batch, run every phenotype on the four cases); PUREPLES then decodes and evaluates CPPNs
of that last generation one at a time, as its XOR example does (``ESNetwork`` then a
``RecurrentNetwork`` activated 2**max_depth + 1 times per case). Its CPPNs are neat-python
``FeedForwardNetwork``s built from the same genomes with NEATify's activation functions, so both
libraries query the same functions; a check compares both libraries' phenotype sizes genome by genome.
PUREPLES times a sample of ``--pureples-sample`` genomes, scaled to the population (its work is one
genome after another). Each library runs in a process of its own, so the peak RSS is its own; NEATify
on ``--threads`` torch threads (default 1: one core, as PUREPLES). Times are the median generation's,
in CPU time of the process (steady on a shared machine) and wall time.

PUREPLES is not on the package index and this script fetches nothing: clone
https://github.com/ukuleleplayer/pureples, ``pip install neat-python graphviz matplotlib`` and pass
``--pureples PATH_TO_CLONE`` (or set ``PUREPLES_PATH``); without it only NEATify's rows print.

``--distributed`` also runs the population-1,000 case over 2 TCP workers on 127.0.0.1 (the CPPNs
travel, the workers decode) and checks every fitness of every generation equals the local run's.

    python benchmarks/es_hyperneat_pureples.py --pureples ~/src/pureples --distributed
    python benchmarks/es_hyperneat_pureples.py --sizes 150 --generations 2 --pureples-sample 30   # small
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from population_scale import peak_rss_mb  # noqa: E402 (the benchmarks folder, above)

from neatify import Genome, Population  # noqa: E402
from neatify.activations import ACTIVATIONS  # noqa: E402
from neatify.config.evolution import EvolutionConfig  # noqa: E402
from neatify.hyperneat.es_params import ESParams  # noqa: E402
from neatify.hyperneat.es_xor import (XOR_CASES, XOR_INPUT_POINTS, XOR_OUTPUT_POINTS, XOR_TARGETS,  # noqa: E402
                                      ESXorFitness)
from neatify.network.network import NetworkLayout  # noqa: E402

HOST = "127.0.0.1"
CPPN_CONFIG = EvolutionConfig(activation_default="tanh", prob_mutate_activation=0.3, prob_add_node=0.2,
                              activation_options=["sin", "gauss", "sigmoid", "tanh", "abs", "identity"])
CHECKED = 20
"""Genomes whose phenotype sizes are compared between the libraries."""


def es_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The ES-HyperNEAT settings both libraries get (PUREPLES's parameter names)."""
    return {"initial_depth": args.initial_depth, "max_depth": args.max_depth, "variance_threshold": 0.03,
            "band_threshold": 0.3, "iteration_level": 1, "division_threshold": 0.5, "max_weight": 5.0,
            "activation": "sigmoid"}


def our_params(settings: dict[str, Any]) -> ESParams:
    return ESParams(**settings)


def clocks() -> tuple[float, float]:
    """(CPU seconds of this process, wall seconds): on a shared machine the CPU time is the steadier."""
    return time.process_time(), time.perf_counter()


def since(start: tuple[float, float]) -> tuple[float, float]:
    return tuple(now - then for now, then in zip(clocks(), start))


class Timed:
    """A fitness function that records how long each call took (CPU, wall)."""

    def __init__(self, fitness: ESXorFitness) -> None:
        self.fitness, self.seconds = fitness, []

    def __call__(self, genomes: list[Genome]) -> None:
        start = clocks()
        self.fitness(genomes)
        self.seconds.append(since(start))


def neatify_run(pop_size: int, generations: int, seed: int, settings: dict[str, Any], sample: int,
                threads: int) -> dict[str, Any]:
    """Evolve; the fitness call's seconds per generation, the last generation's first ``sample`` genomes
    (plain) with their phenotype sizes, and this process's peak RSS."""
    torch.set_num_threads(threads)
    fitness = ESXorFitness(our_params(settings))
    timed = Timed(fitness)
    population = Population(pop_size, 4, 1, config=CPPN_CONFIG, seed=seed)
    for _ in range(generations):
        population.run_generation(timed)
    genomes = population.genomes
    hidden, connections = fitness.decoder.phenotypes(genomes[:CHECKED]).sizes()
    return {"seconds": timed.seconds, "genomes": [g.to_dict() for g in genomes[:sample]],
            "sizes": list(zip(hidden.tolist(), connections.tolist())),
            "best": max(g.fitness for g in genomes), "peak_rss_mb": peak_rss_mb()}


def neat_python_cppn(genome: Genome) -> Any:
    """The genome as a neat-python ``FeedForwardNetwork`` of 5 inputs (PUREPLES adds a constant 1, which
    the genome's biases make unneeded), its nodes running NEATify's activation functions."""
    import neat

    layout = NetworkLayout.from_genome(genome)
    incoming: dict[int, list] = {}
    for edge in layout.edges:
        incoming.setdefault(edge.dst, []).append((layout.node_ids[edge.src], edge.weight))
    evals = [(layout.node_ids[p], ACTIVATIONS[layout.activations[p - layout.num_inputs]], sum,
              layout.biases[p - layout.num_inputs], 1.0, incoming.get(p, []))
             for p in range(layout.num_inputs, layout.num_nodes)]
    return neat.nn.FeedForwardNetwork([0, 1, 2, 3, -1], genome.output_ids, evals)


def pureples_run(path: str, genomes: list[dict], settings: dict[str, Any]) -> dict[str, Any]:
    """PUREPLES's decode + XOR evaluation of each genome, one after another, as its XOR example does."""
    sys.path.insert(0, path)
    from pureples.es_hyperneat.es_hyperneat import ESNetwork
    from pureples.shared.substrate import Substrate

    substrate = Substrate(list(XOR_INPUT_POINTS), list(XOR_OUTPUT_POINTS))
    cppns = [neat_python_cppn(Genome.from_dict(g)) for g in genomes]
    start = clocks()
    for cppn in cppns:
        network = ESNetwork(substrate, cppn, settings)
        net = network.create_phenotype_network()
        error = 0.0
        for case, target in zip(XOR_CASES.tolist(), XOR_TARGETS.tolist()):
            net.reset()
            for _ in range(network.activations):
                out = net.activate(case)
            error += (out[0] - target) ** 2
    seconds = since(start)
    sizes = [tuple(map(len, ESNetwork(substrate, cppn, settings).es_hyperneat())) for cppn in cppns[:CHECKED]]
    return {"seconds": seconds, "sizes": sizes, "peak_rss_mb": peak_rss_mb()}


def in_own_process(fn: Any, *args: Any) -> Any:
    """``fn(*args)`` in a fresh process, so the peak RSS it reports is its own."""
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


def compare(pop_size: int, args: argparse.Namespace) -> None:
    """One population size: both libraries' rows and their ratio."""
    settings = es_settings(args)
    sample = min(pop_size, args.pureples_sample)
    ours = in_own_process(neatify_run, pop_size, args.generations, args.seed, settings, sample, args.threads)
    cpu, wall = (sorted(column)[len(column) // 2] for column in zip(*ours["seconds"]))
    print(f"pop {pop_size:>6,}  NEATify   {cpu * 1e3:10.1f} ms CPU {wall * 1e3:10.1f} ms wall per generation (median "
          f"of {len(ours['seconds'])})   peak RSS {ours['peak_rss_mb']:,.0f} MB   best {ours['best']:.3f}")
    if not args.pureples:
        return
    theirs = in_own_process(pureples_run, args.pureples, ours["genomes"], settings)
    their_cpu, their_wall = (s / sample * pop_size for s in theirs["seconds"])
    agree = sum(a == b for a, b in zip(ours["sizes"], theirs["sizes"]))
    print(f"{'':12}PUREPLES  {their_cpu * 1e3:10.1f} ms CPU {their_wall * 1e3:10.1f} ms wall per generation "
          f"({sample} genomes timed, scaled)   peak RSS {theirs['peak_rss_mb']:,.0f} MB")
    print(f"{'':12}ratio     {their_cpu / cpu:10.1f}x CPU {their_wall / wall:8.1f}x wall   phenotype sizes "
          f"(hidden, connections) equal on {agree}/{len(theirs['sizes'])} genomes")


def distributed_check(args: argparse.Namespace) -> None:
    """Population 1,000 over 2 TCP workers on 127.0.0.1 against the local run: every fitness equal?"""
    from neatify.distributed import DistributedConfig, DistributedEvaluator

    settings = es_settings(args)
    local = fitness_history(ESXorFitness(our_params(settings)), args)
    config = DistributedConfig(host=HOST, port=0, min_workers=2, worker_wait_timeout=120.0)
    with DistributedEvaluator(config) as evaluator:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parents[1] / "src"),
                                                          os.environ.get("PYTHONPATH", "")]))
        workers = [subprocess.Popen([sys.executable, __file__, "worker", str(evaluator.port), str(args.initial_depth),
                                     str(args.max_depth)], env=env) for _ in range(2)]
        try:
            start = time.perf_counter()
            remote = fitness_history(evaluator, args)
            seconds = time.perf_counter() - start
        finally:
            evaluator.close()
            for worker in workers:
                worker.wait(timeout=60)
    print(f"distributed, pop 1,000, {args.generations} generations over 2 workers: {seconds:.1f} s; every "
          f"fitness equals the local run's: {remote == local}")


def fitness_history(fitness: Any, args: argparse.Namespace) -> list[list[float]]:
    """Every generation's fitness, genome by genome, of a seeded population-1,000 run."""
    population = Population(1000, 4, 1, config=CPPN_CONFIG, seed=args.seed)
    history = []
    for _ in range(args.generations):
        population.run_generation(fitness)
        history.append([g.fitness for g in population.genomes])
    return history


def worker_main(port: int, initial_depth: int, max_depth: int) -> None:
    from neatify.distributed import WorkerNode

    settings = es_settings(argparse.Namespace(initial_depth=initial_depth, max_depth=max_depth))
    WorkerNode(HOST, port, fitness_function=ESXorFitness(our_params(settings)), max_connect_attempts=50,
               capacity=250).start()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[150, 1000, 10000],
                        help="population sizes (none: skip)")
    parser.add_argument("--generations", type=int, default=3)
    parser.add_argument("--pureples-sample", type=int, default=150,
                        help="PUREPLES genomes timed per size (scaled to the population)")
    parser.add_argument("--pureples", default=os.environ.get("PUREPLES_PATH"),
                        help="a clone of github.com/ukuleleplayer/pureples (default: $PUREPLES_PATH)")
    parser.add_argument("--initial-depth", type=int, default=1)
    parser.add_argument("--max-depth", type=int, default=2)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads of the NEATify process (PUREPLES runs on one core)")
    parser.add_argument("--distributed", action="store_true", help="also the pop-1,000 run over 2 TCP workers")
    args = parser.parse_args()
    print(f"ES-HyperNEAT XOR, settings {es_settings(args)}; decode + evaluate per generation")
    for size in args.sizes:
        compare(size, args)
    if args.distributed:
        distributed_check(args)


if __name__ == "__main__":
    if sys.argv[1:2] == ["worker"]:
        worker_main(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
    else:
        main()
