"""Migrating from neat-python: its XOR configs run by neat-python and by ``EvolutionConfig.from_neat_python``.

    python benchmarks/neat_python_migration.py --runs 10 --unmapped --scales 1.0 1.3 --distances

Both libraries read the same INI files (default: neat-python 2.0's own XOR example,
benchmarks/neat_python_xor_example.ini, and its documented XOR configuration with the paper's
rates, benchmarks/neat_python_config.ini) and evolve XOR (fitness 4 minus the squared error,
solved above 3.9) from the same seeds. Prints, side by side, how many seeds each solves within
``--max-generations``, the median generations of those solved and the mean species count.
``--unmapped`` adds NEATify with the threshold and gene-count normalisation taken as they are
(the import before the distance scale was mapped), ``--steered`` both steered toward a species count
(``target_species = "auto"`` set after the import), ``--scales`` NEATify with the threshold divided by
other scales than ``neatify.config.neat_python.DISTANCE_SCALE``; ``--distances`` measures
neat-python's distance over NEATify's on the same genomes.
Needs ``pip install neat-python`` (the ``bench`` extra).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).parent
CONFIGS = [str(HERE / "neat_python_xor_example.ini"), str(HERE / "neat_python_config.ini")]
XOR_ROWS = (((0.0, 0.0), 0.0), ((0.0, 1.0), 1.0), ((1.0, 0.0), 1.0), ((1.0, 1.0), 0.0))
SOLVED = 3.9
UNMAPPED = (1.0, 20)
"""The distance scale and ``normalize_min_genes`` (NEATify's own, the paper's) of the import before the mapping."""


@dataclass(frozen=True)
class Row:
    """A library, and for NEATify the distance scale and normalisation, None for ``from_neat_python``'s own."""

    label: str
    scale: float | None = None
    min_genes: int = 1
    target_species: int | str = 0


@dataclass
class Outcome:
    """One seed's run: solved or not, generations evaluated, mean species per generation."""

    solved: bool
    generations: int
    species: float


def xor_score(activate: Callable[[list[float]], list[float]]) -> float:
    """4 minus the squared error of a network over the four XOR cases."""
    return 4.0 - sum((activate(list(x))[0] - y) ** 2 for x, y in XOR_ROWS)


def neat_python_config(ini: str):
    import neat

    return neat.Config(neat.DefaultGenome, neat.DefaultReproduction, neat.DefaultSpeciesSet,
                       neat.DefaultStagnation, ini)


def neat_python_run(ini: str, seed: int, max_generations: int) -> Outcome:
    """neat-python's own loop on the INI file, one generation per ``run`` call."""
    import neat

    best, species = [], []

    def eval_genomes(genomes, config):
        for _, genome in genomes:
            genome.fitness = xor_score(neat.nn.FeedForwardNetwork.create(genome, config).activate)
        best.append(max(genome.fitness for _, genome in genomes))

    pop = neat.Population(neat_python_config(ini), seed=seed)
    while len(best) < max_generations and (not best or best[-1] <= SOLVED):
        pop.run(eval_genomes, 1)
        species.append(len(pop.species.species))
    return Outcome(best[-1] > SOLVED, len(best), statistics.mean(species))


def neatify_config(ini: str, row: Row):
    """``from_neat_python(ini)``, with the threshold divided by ``row.scale`` instead when it has one."""
    import configparser

    from neatify import EvolutionConfig

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the keys that belong to the run (num_inputs, ...) are named
        config = EvolutionConfig.from_neat_python(ini)
    if row.scale is not None:
        parser = configparser.ConfigParser()
        parser.read(ini)
        config.compatibility_threshold = parser.getfloat("DefaultSpeciesSet", "compatibility_threshold") / row.scale
        config.normalize_min_genes = row.min_genes
    config.target_species = row.target_species
    return config


def neatify_fitness(genomes) -> None:
    from neatify.network import Network

    for genome in genomes:
        genome.fitness = xor_score(Network(genome).activate)


def neatify_run(ini: str, seed: int, max_generations: int, row: Row) -> Outcome:
    """NEATify on the imported config (or on another scale)."""
    from neatify import Population

    pop = Population(num_inputs=2, num_outputs=1, config=neatify_config(ini, row), seed=seed)
    pop.run(neatify_fitness, max_generations, fitness_threshold=SOLVED + 1e-12)
    history = pop.history
    return Outcome(history[-1].best_fitness > SOLVED, len(history), statistics.mean(h.num_species for h in history))


def one_run(job: tuple[Row, str, int, int]) -> Outcome:
    """Run one (row, INI file, seed) job; a top-level function, so a process pool can call it."""
    row, ini, seed, max_generations = job
    if row.label == "neat-python":
        return neat_python_run(ini, seed, max_generations)
    return neatify_run(ini, seed, max_generations, row)


def as_neat_python(genome, config):
    """The genome as a neat-python genome, for its distance: inputs -1, -2, ..., outputs 0, 1, ...,
    hidden nodes after them; connections keyed by their end nodes."""
    import neat

    keys = {node: -1 - k for k, node in enumerate(genome.input_ids)}
    keys.update({node: k for k, node in enumerate(genome.output_ids)})
    for node in genome.nodes:
        keys.setdefault(node, len(keys))
    converted = config.genome_type(genome.id)
    for node in genome.nodes.values():
        gene = neat.genes.DefaultNodeGene(keys[node.id])
        gene.bias, gene.response, gene.activation, gene.aggregation = node.bias, 1.0, "sigmoid", "sum"
        gene.time_constant = 1.0
        converted.nodes[gene.key] = gene
    for conn in genome.connections.values():
        gene = neat.genes.DefaultConnectionGene((keys[conn.in_node], keys[conn.out_node]), conn.innovation)
        gene.weight, gene.enabled = conn.weight, conn.enabled
        converted.connections[gene.key] = gene
    return converted


def distance_ratios(ini: str, seed: int, generations: int, pairs: int) -> list[float]:
    """neat-python's distance over NEATify's (as imported) for random pairs of a NEATify population's
    genomes, every 10 generations of an XOR run."""
    from neatify import Population

    npc, config, rng = neat_python_config(ini), neatify_config(ini, Row("from_neat_python")), random.Random(seed)
    pop, ratios = Population(num_inputs=2, num_outputs=1, config=config, seed=seed), []
    for generation in range(generations):
        pop.run_generation(neatify_fitness)
        if generation % 10 == 9:
            for a, b in (rng.sample(pop.genomes, 2) for _ in range(pairs)):
                ours = a.distance(b, config)
                if ours > 0:
                    ratios.append(as_neat_python(a, npc).distance(as_neat_python(b, npc), npc.genome_config) / ours)
    return ratios


def summary(label: str, outcomes: list[Outcome]) -> str:
    """One table row: solved count, median generations of the solved runs, mean species."""
    gens = [o.generations for o in outcomes if o.solved]
    median = f"{statistics.median(gens):.0f}" if gens else "-"
    species = statistics.mean(o.species for o in outcomes)
    return f"  {label:<42} {len(gens):>3}/{len(outcomes):<3} {median:>18} {species:>13.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=CONFIGS, help="neat-python INI files (XOR: 2 inputs, 1 output)")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--max-generations", type=int, default=300)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--unmapped", action="store_true", help="also run the import before the scale mapping")
    parser.add_argument("--steered", action="store_true", help="also run NEATify steered toward 'auto' species")
    parser.add_argument("--scales", type=float, nargs="*", default=[], help="also run NEATify on these distance scales")
    parser.add_argument("--distances", action="store_true", help="also measure the distance ratio on the same genomes")
    args = parser.parse_args()
    seeds = range(args.first_seed, args.first_seed + args.runs)
    rows = [Row("neat-python"), Row("NEATify, from_neat_python")]
    rows += [Row("NEATify, unmapped threshold", *UNMAPPED)] if args.unmapped else []
    rows += [Row(f"NEATify, threshold / {scale:g}", scale) for scale in args.scales]
    rows += [Row("NEATify, steered (target_species auto)", target_species="auto"),
             Row("NEATify, unmapped, steered", *UNMAPPED, target_species="auto")] if args.steered else []
    print(f"XOR, seeds {seeds.start}..{seeds.stop - 1}, at most {args.max_generations} generations, solved above "
          f"{SOLVED}")
    with ProcessPoolExecutor(args.processes) as pool:
        for ini in args.configs:
            start = time.perf_counter()
            results = [list(pool.map(one_run, [(row, ini, s, args.max_generations) for s in seeds])) for row in rows]
            print(f"{Path(ini).name} ({time.perf_counter() - start:.0f} s)")
            print(f"  {'':<42} {'solved':>7} {'median generations':>18} {'mean species':>13}")
            for row, outcomes in zip(rows, results):
                print(summary(row.label, outcomes))
            if args.distances:
                ratios = distance_ratios(ini, args.first_seed, 50, 200)
                quartiles = statistics.quantiles(ratios, n=4)
                print(f"  neat-python's distance / NEATify's on the same genomes: median {quartiles[1]:.2f} "
                      f"(quartiles {quartiles[0]:.2f}, {quartiles[2]:.2f}; {len(ratios)} pairs)")


if __name__ == "__main__":
    main()
