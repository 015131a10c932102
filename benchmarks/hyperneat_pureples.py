"""HyperNEAT decoding + evaluation time per generation, NEATify against PUREPLES, on the boxes task.

PUREPLES is not on the package index and this script fetches nothing; install it by hand:

    git clone https://github.com/ukuleleplayer/pureples /tmp/pureples   # needs neat-python (the bench extra)
    python benchmarks/hyperneat_pureples.py --pureples /tmp/pureples [--sizes 150 1000 10000] [--sample 5]

(or ``PUREPLES_PATH=/tmp/pureples``). Same task and settings on both sides: the boxes task at 11 x 11
(75 trials, ``neatify.envs.boxes``) on a substrate of input, hidden and output sheets of 11 x 11 points
in 2D (PUREPLES connects inputs to outputs only through hidden layers), threshold 0.2, weights up to
5, neat-python's sigmoid on substrate nodes, and the *same CPPNs*: NEATify CPPNs grown for a few
generations, translated to neat-python genomes with NEATify's activation functions. NEATify decodes
and evaluates the whole population, ``--chunk`` genomes at a time; PUREPLES builds and runs one
phenotype at a time in pure Python, so it is timed on ``--sample`` genomes and its time scaled to the
population (its work is per genome by construction). Both sides' fitness of the sampled genomes is
compared (float64 on NEATify's side). Peak memory: the peak resident size of a fresh process doing
one side's measurement at one size (for PUREPLES: holding the whole population as neat-python genomes
and evaluating the sample).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import sys
import time

import numpy as np
import torch

from neatify import Population
from neatify.activations import ACTIVATIONS, register_activation
from neatify.envs.boxes import Boxes
from neatify.hyperneat import HyperNEAT, Substrate, cppn_config, grid_coordinates

register_activation("np_sigmoid", lambda x: 1.0 / (1.0 + np.exp(-max(-60.0, min(60.0, 5.0 * x)))),
                    lambda x: torch.sigmoid((5.0 * x).clamp(-60.0, 60.0)))
"""neat-python's sigmoid, 1 / (1 + e^(-5x)), which PUREPLES gives substrate nodes."""


def substrate(side: int, hidden: int) -> Substrate:
    """Input and output sheets of ``side`` x ``side`` points, one hidden sheet of ``hidden`` x ``hidden``."""
    field = grid_coordinates(side, side)
    return Substrate(field, field, (grid_coordinates(hidden, hidden),))


def grown_cppns(size: int, seed: int, generations: int) -> list:
    """``size`` CPPNs of 4 inputs (x1, y1, x2, y2) grown ``generations`` generations on connection count."""
    pop = Population(pop_size=size, num_inputs=4, num_outputs=1, config=cppn_config(prob_add_node=0.3), seed=seed)
    for _ in range(generations):
        pop.run_generation(lambda genomes: [setattr(g, "fitness", float(len(g.connections))) for g in genomes])
    return pop.ask()


def neatify_side(args: argparse.Namespace, size: int, dtype: torch.dtype = torch.float32) -> dict:
    """Seconds to decode and evaluate the whole population (best of ``--repeats``) and its fitness; in
    float64 only the sample's (to compare with PUREPLES)."""
    genomes = grown_cppns(size, args.seed, args.grow)
    if dtype == torch.float64:
        genomes = genomes[:args.sample]
    hyperneat = HyperNEAT(substrate(11, args.hidden), hidden_activation="np_sigmoid",
                          output_activation="np_sigmoid", dtype=dtype)
    fitness = hyperneat.fitness(Boxes(11, dtype=dtype), max_genomes=args.chunk)
    fitness(genomes[:2])  # warm-up: compiled loops, torch kernels
    best = float("inf")
    for _ in range(args.repeats):
        start = time.perf_counter()
        fitness(genomes)
        best = min(best, time.perf_counter() - start)
    return {"seconds": best, "fitness": [g.fitness for g in genomes[:args.sample]]}


def pureples_side(args: argparse.Namespace, size: int) -> dict:
    """Seconds PUREPLES takes for ``--sample`` genomes, scaled to ``size``, and their fitness."""
    sys.path.insert(0, args.pureples)
    import neat
    from pureples.hyperneat.hyperneat import create_phenotype_network
    from pureples.shared.substrate import Substrate as PureplesSubstrate

    config = neat_python_config(neat, size)
    population = [to_neat_python(neat, g) for g in grown_cppns(size, args.seed, args.grow)]
    sheet = [list(p) for p in grid_coordinates(11, 11)]
    space = PureplesSubstrate(sheet, sheet, [[list(p) for p in grid_coordinates(args.hidden, args.hidden)]])
    task = Boxes(11, dtype=torch.float64)
    fields, cells = task.fields.tolist(), task.cell_xy.tolist()
    targets = task.targets.tolist()
    values = []
    start = time.perf_counter()
    for genome in population[:args.sample]:
        cppn = neat.nn.FeedForwardNetwork.create(genome, config)
        network = create_phenotype_network(cppn, space, "sigmoid")
        error = 0.0
        for field, target in zip(fields, targets):
            network.reset()
            network.activate(field)
            out = network.activate(field)  # two steps: inputs to hidden, hidden to outputs
            guess = out.index(max(out))
            error += (cells[guess][0] - cells[target][0]) ** 2 + (cells[guess][1] - cells[target][1]) ** 2
        values.append(100.0 / (1.0 + error))
    seconds = (time.perf_counter() - start) * size / args.sample
    return {"seconds": seconds, "fitness": values}


def neat_python_config(neat, size: int):
    """A neat-python config for 5-input CPPNs (PUREPLES adds a bias input) knowing NEATify's activations."""
    import tempfile
    from pathlib import Path

    ini = Path(__file__).with_name("neat_python_config.ini").read_text()
    ini = ini.replace("num_inputs              = 2", "num_inputs              = 5").replace(
        "pop_size              = 150", f"pop_size              = {size}")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config"
        path.write_text(ini)
        config = neat.Config(neat.DefaultGenome, neat.DefaultReproduction, neat.DefaultSpeciesSet,
                             neat.DefaultStagnation, str(path))
    for name in ACTIVATIONS:
        config.genome_config.add_activation(f"neatify_{name}", _activation(name))
    return config


def _activation(name: str):
    """NEATify's activation ``name`` as a one-argument Python function (neat-python refuses built-ins)."""
    function = ACTIVATIONS[name]
    return lambda x: function(x)


def to_neat_python(neat, genome):
    """The same CPPN as a neat-python genome: inputs -1..-4 (-5, PUREPLES' bias input, unconnected), output 0."""
    def key(node_id: int) -> int:
        return -1 - node_id if node_id < 4 else (0 if node_id == 4 else node_id)

    converted = neat.DefaultGenome(genome.id)
    for node in genome.nodes.values():
        converted.nodes[key(node.id)] = _gene(neat.genes.DefaultNodeGene(key(node.id)), bias=node.bias, response=1.0,
                                              aggregation="sum", activation=f"neatify_{node.activation}",
                                              time_constant=1.0)
    for c in genome.connections.values():
        pair = (key(c.in_node), key(c.out_node))
        converted.connections[pair] = _gene(neat.genes.DefaultConnectionGene(pair, innovation=c.innovation),
                                            weight=c.weight, enabled=c.enabled)
    return converted


def _gene(gene, **values):
    """``gene`` with ``values`` set on it."""
    for name, value in values.items():
        setattr(gene, name, value)
    return gene


def measured(side: str, args: argparse.Namespace, size: int) -> dict:
    """One side at one size in a fresh process, with that process's peak resident memory."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        return pool.apply(_run, (side, args, size))


def _run(side: str, args: argparse.Namespace, size: int) -> dict:
    if args.threads:
        torch.set_num_threads(args.threads)
    result = {"neatify": neatify_side, "neatify64": lambda a, n: neatify_side(a, n, torch.float64),
              "pureples": pureples_side}[side](args, size)
    result["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pureples", default=os.environ.get("PUREPLES_PATH"),
                        help="a clone of github.com/ukuleleplayer/pureples (or PUREPLES_PATH)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[150, 1000, 10000])
    parser.add_argument("--sample", type=int, default=5, help="genomes PUREPLES is timed on per size")
    parser.add_argument("--hidden", type=int, default=11, help="hidden sheet side")
    parser.add_argument("--chunk", type=int, default=500, help="genomes NEATify decodes at once")
    parser.add_argument("--grow", type=int, default=5, help="generations the CPPNs grow before timing")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if not args.pureples or not os.path.isdir(os.path.join(args.pureples, "pureples")):
        parser.error("give a PUREPLES clone with --pureples or PUREPLES_PATH (see the module docstring)")
    print(f"boxes 11x11, hidden {args.hidden}x{args.hidden}, torch threads {args.threads or torch.get_num_threads()}, "
          f"PUREPLES timed on {args.sample} genomes per size and scaled")
    print(f"{'population':>10} {'NEATify s/gen':>14} {'PUREPLES s/gen':>15} {'ratio':>8} "
          f"{'NEATify MiB':>12} {'PUREPLES MiB':>13} {'fitness agrees':>15}")
    for size in args.sizes:
        ours, theirs = measured("neatify", args, size), measured("pureples", args, size)
        exact = measured("neatify64", args, size)
        agrees = f"{sum(np.isclose(exact['fitness'], theirs['fitness']))}/{args.sample}"
        print(f"{size:>10} {ours['seconds']:>14.3f} {theirs['seconds']:>15.1f} "
              f"{theirs['seconds'] / ours['seconds']:>7.0f}x {ours['peak_mib']:>12.0f} {theirs['peak_mib']:>13.0f} "
              f"{agrees:>15}", flush=True)


if __name__ == "__main__":
    main()
