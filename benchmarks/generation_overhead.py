"""Generation overhead (everything but fitness) of NEATify against neat-python, side by side.

    python benchmarks/generation_overhead.py [--sizes 1000 10000] [--generations 20]

Both libraries run the same configuration (benchmarks/neat_python_config.ini, the NEAT paper's
rates; NEATify's EvolutionConfig is set to match) with the same trivial fitness, the sum of a
genome's connection weights, which still drives selection and structural growth. The time spent
in the fitness function is subtracted; what is left is reproduction, mutation, speciation and
bookkeeping. Needs ``pip install neat-python`` (the ``bench`` extra).
"""

from __future__ import annotations

import argparse
import configparser
import statistics
import time
from pathlib import Path

import neat

from neatify import EvolutionConfig, Population

CONFIG_INI = Path(__file__).with_name("neat_python_config.ini")


def neatify_config(pop_size: int) -> EvolutionConfig:
    """The EvolutionConfig equivalent to the neat-python configuration file."""
    ini = configparser.ConfigParser()  # the threshold aside, every value comes from the ini file
    ini.read(CONFIG_INI)
    g = ini["DefaultGenome"]
    return EvolutionConfig(
        population_size=pop_size,
        # neat-python's distance adds a node-gene term, so at its threshold of 3.0 it keeps more
        # species than NEATify would; 2.0 gives both a similar species count (printed).
        compatibility_threshold=2.0, target_species=0,  # fixed, as neat-python's
        c1=float(g["compatibility_disjoint_coefficient"]), c2=float(g["compatibility_disjoint_coefficient"]),
        c3=float(g["compatibility_weight_coefficient"]),
        prob_add_connection=float(g["conn_add_prob"]), prob_add_node=float(g["node_add_prob"]),
        prob_mutate_weight=float(g["weight_mutate_rate"]), prob_replace_weight=float(g["weight_replace_rate"]),
        weight_mutation_power=float(g["weight_mutate_power"]),
        prob_mutate_bias=float(g["bias_mutate_rate"]), prob_replace_bias=float(g["bias_replace_rate"]),
        bias_mutation_power=float(g["bias_mutate_power"]),
        prob_toggle_enable=float(g["enabled_mutate_rate"]),
        max_stagnation=int(ini["DefaultStagnation"]["max_stagnation"]),
        species_elitism=int(ini["DefaultStagnation"]["species_elitism"]),
        elitism_count=int(ini["DefaultReproduction"]["elitism"]),
        elitism_min_species_size=0,
        normalize_min_genes=1,  # neat-python always divides by the larger genome's gene count
        survival_threshold=float(ini["DefaultReproduction"]["survival_threshold"]),
        min_species_size=int(ini["DefaultReproduction"]["min_species_size"]),
    )


class Timed:
    """A fitness function that records how long it ran, so it can be subtracted."""

    def __init__(self, fn):
        self.fn = fn
        self.seconds = 0.0

    def __call__(self, *args):
        start = time.perf_counter()
        self.fn(*args)
        self.seconds += time.perf_counter() - start


def neatify_seconds(pop_size: int, generations: int, seed: int) -> tuple[float, float]:
    def weights(genomes):
        for g in genomes:
            g.fitness = sum(c.weight for c in g.connections.values())

    fitness = Timed(weights)
    pop = Population(pop_size=pop_size, num_inputs=2, num_outputs=1, config=neatify_config(pop_size), seed=seed)
    start = time.perf_counter()
    for _ in range(generations):
        pop.run_generation(fitness)
    total = time.perf_counter() - start
    return (total - fitness.seconds) / generations, statistics.mean(h.num_species for h in pop.history)


def neat_python_seconds(pop_size: int, generations: int, seed: int) -> tuple[float, float]:
    def weights(genomes, config):
        for _, g in genomes:
            g.fitness = sum(c.weight for c in g.connections.values())

    config = neat.Config(neat.DefaultGenome, neat.DefaultReproduction, neat.DefaultSpeciesSet,
                         neat.DefaultStagnation, str(CONFIG_INI))
    config.pop_size = pop_size
    config.seed = seed
    fitness = Timed(weights)
    species_counts = []

    class Count(neat.reporting.BaseReporter):
        def post_evaluate(self, config, population, species, best_genome):
            species_counts.append(len(species.species))

    pop = neat.Population(config)
    pop.add_reporter(Count())
    start = time.perf_counter()
    pop.run(fitness, generations)
    total = time.perf_counter() - start
    return (total - fitness.seconds) / generations, statistics.mean(species_counts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--generations", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(f"generation overhead (fitness excluded), {args.generations} generations, trivial fitness")
    print(f"{'pop':>7} {'neatify ms/gen':>15} {'neat-python ms/gen':>19} {'ratio':>7} {'species (ours/theirs)':>22}")
    for size in args.sizes:
        ours, our_species = neatify_seconds(size, args.generations, args.seed)
        theirs, their_species = neat_python_seconds(size, args.generations, args.seed)
        print(f"{size:>7} {ours * 1e3:>15.1f} {theirs * 1e3:>19.1f} {ours / theirs:>7.3f} "
              f"{our_species:>10.1f} / {their_species:<10.1f}")
    print("target: ratio <= 0.333 (at most a third of neat-python's time)")


if __name__ == "__main__":
    main()
