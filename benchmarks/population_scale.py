"""XOR with the default config at growing population sizes: species count, time per generation, memory.

    python benchmarks/population_scale.py [--sizes 150 1000 10000 100000] [--generations 20]

For each size NEATify runs XOR with ``EvolutionConfig()`` (``--set key=value`` changes a field),
fitness 4 - SSE computed by one ``NeatPopulationModule`` per generation, torch on one thread; then
neat-python runs the same task with its documented XOR config (benchmarks/neat_python_config.ini,
fitness through ``FeedForwardNetwork``) at that size, unless the size is above
``--neat-python-max``. Both run every generation (no early stop at a solution). Each run is its
own process, so its peak RSS is its own. Prints, per size and library: species per generation
(and min/mean/max from generation ``--settled`` on), ms per generation split into breeding
(reproduction, mutation, speciation) and evaluation, and peak RSS. Needs neat-python (the
``bench`` extra).
"""

from __future__ import annotations

import argparse
import ast
import resource
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

CONFIG_INI = Path(__file__).with_name("neat_python_config.ini")
XOR_ROWS = [((0.0, 0.0), 0.0), ((0.0, 1.0), 1.0), ((1.0, 0.0), 1.0), ((1.0, 1.0), 0.0)]
CLOCK: Callable[[], float] = time.perf_counter
"""What the runs are timed by (benchmarks/tensorneat_compare.py sets ``time.process_time`` in its runs' processes)."""


@dataclass
class Run:
    """What one library did at one population size."""

    species: list[int] = field(default_factory=list)
    generation_s: list[float] = field(default_factory=list)
    evaluation_s: list[float] = field(default_factory=list)
    peak_rss_mb: float = 0.0
    best_fitness: float = 0.0


class Timed:
    """A fitness function that records how long each call ran."""

    def __init__(self, fn: Callable[..., None]) -> None:
        self.fn = fn
        self.seconds: list[float] = []

    def __call__(self, *args: Any) -> None:
        start = CLOCK()
        self.fn(*args)
        self.seconds.append(CLOCK() - start)


def peak_rss_mb() -> float:
    """This process's peak resident memory since it started its program (Linux's VmHWM). Not ru_maxrss:
    Linux carries that over exec from the parent it was forked from, so a child of a big parent reads big."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux, bytes on macOS


def neatify_run(pop_size: int, generations: int, seed: int, changes: dict[str, Any],
                task: Callable[[list], None] | None = None, num_inputs: int = 2) -> Run:
    """XOR with the default config (plus ``changes``), fitness by one NeatPopulationModule per generation;
    ``task`` replaces XOR's fitness (a batched fitness function of ``num_inputs`` inputs, one output)."""
    import torch

    from neatify import EvolutionConfig, Population
    from neatify.nn import NeatPopulationModule

    torch.set_num_threads(1)
    x = torch.tensor([row for row, _ in XOR_ROWS])
    y = torch.tensor([[target] for _, target in XOR_ROWS])

    def xor(genomes):
        errors = ((NeatPopulationModule(genomes)(x) - y) ** 2).sum(dim=(1, 2))
        for genome, error in zip(genomes, errors.tolist()):
            genome.fitness = 4.0 - error

    fitness, run = Timed(task or xor), Run()
    pop = Population(pop_size=pop_size, num_inputs=num_inputs, num_outputs=1, config=EvolutionConfig(**changes),
                     seed=seed)
    for _ in range(generations):
        start = CLOCK()
        pop.run_generation(fitness)
        run.generation_s.append(CLOCK() - start)
        run.species.append(pop.history[-1].num_species)
    run.evaluation_s, run.peak_rss_mb = fitness.seconds, peak_rss_mb()
    run.best_fitness = max(h.best_fitness for h in pop.history)
    return run


def neat_python_run(pop_size: int, generations: int, seed: int, changes: dict[str, Any],
                    neat_changes: dict[str, dict[str, Any]] | None = None,
                    task: Callable[[list, Any], None] | None = None) -> Run:
    """XOR with neat-python's documented config at ``pop_size`` (``changes`` are NEATify's: unused);
    ``neat_changes`` sets fields of its config sections, e.g. ``{"genome_config": {"conn_add_prob": 0.5}}``;
    ``task`` replaces XOR's fitness (a neat-python fitness function)."""
    import neat

    def xor(genomes, config):
        for _, genome in genomes:
            net = neat.nn.FeedForwardNetwork.create(genome, config)
            genome.fitness = 4.0 - sum((net.activate(row)[0] - target) ** 2 for row, target in XOR_ROWS)

    config = neat.Config(neat.DefaultGenome, neat.DefaultReproduction, neat.DefaultSpeciesSet,
                         neat.DefaultStagnation, str(CONFIG_INI))
    config.pop_size, config.seed = pop_size, seed
    for section, values in (neat_changes or {}).items():
        for key, value in values.items():
            if not hasattr(getattr(config, section, None), key):
                raise ValueError(f"neat-python's config has no {section}.{key}")
            setattr(getattr(config, section), key, value)
    fitness, run = Timed(task or xor), Run()

    class Clock(neat.reporting.BaseReporter):
        def start_generation(self, generation):
            self.started = CLOCK()

        def post_evaluate(self, config, population, species, best_genome):
            run.species.append(len(species.species))

        def end_generation(self, config, population, species_set):
            run.generation_s.append(CLOCK() - self.started)

    pop = neat.Population(config)
    pop.add_reporter(Clock())
    best = pop.run(fitness, generations)
    run.evaluation_s, run.peak_rss_mb, run.best_fitness = fitness.seconds, peak_rss_mb(), best.fitness
    return run


def in_own_process(fn: Callable[..., Run], *args: Any) -> Run:
    """Run ``fn`` in a fresh process, so that the peak RSS it reports is its own."""
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


def report(library: str, pop_size: int, run: Run, settled: int) -> None:
    """One size's lines: species per generation, their spread once settled, ms per generation."""
    settled = min(settled, len(run.species) - 1)
    later = run.species[settled:]
    total = statistics.mean(run.generation_s) * 1e3
    evaluation = statistics.mean(run.evaluation_s) * 1e3
    settled_ms = statistics.mean(run.generation_s[settled:]) * 1e3
    print(f"{library:>11} pop {pop_size:>7,}: species per generation {run.species}")
    print(f"{'':>11} {'':>12} species from generation {settled}: "
          f"min {min(later)}, mean {statistics.mean(later):.1f}, max {max(later)}; "
          f"{total:,.1f} ms/gen (breeding {total - evaluation:,.1f}, evaluation {evaluation:,.1f}; "
          f"from generation {settled}: {settled_ms:,.1f}); "
          f"peak RSS {run.peak_rss_mb:,.0f} MB; best fitness {run.best_fitness:.3f}", flush=True)


def parse_changes(items: list[str]) -> dict[str, Any]:
    """``key=value`` pairs, values read as Python literals (numbers, quoted strings) or else as text."""
    changes = {}
    for item in items:
        key, _, text = item.partition("=")
        try:
            changes[key] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            changes[key] = text
    return changes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[150, 1_000, 10_000, 100_000])
    parser.add_argument("--generations", type=int, default=20)
    parser.add_argument("--large-generations", type=int, default=8,
                        help="generations at sizes above 10,000 (one takes 10-20 s at 100,000)")
    parser.add_argument("--settled", type=int, default=6, help="first generation counted in min/mean/max")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--neat-python-max", type=int, default=10_000,
                        help="largest size neat-python is run at (0: never)")
    parser.add_argument("--set", dest="changes", nargs="*", default=[], metavar="KEY=VALUE",
                        help="EvolutionConfig fields changed from the defaults, e.g. target_species=0")
    args = parser.parse_args()
    changes = parse_changes(args.changes)
    print(f"XOR, default EvolutionConfig{f' with {changes}' if changes else ''}, seed {args.seed}, "
          f"one torch thread; neat-python with {CONFIG_INI.name}")
    for size in args.sizes:
        generations = args.generations if size <= 10_000 else args.large_generations
        report("neatify", size, in_own_process(neatify_run, size, generations, args.seed, changes), args.settled)
        if size <= args.neat_python_max:
            report("neat-python", size, in_own_process(neat_python_run, size, generations, args.seed, changes),
                   args.settled)
        else:
            print(f"{'neat-python':>11} pop {size:>7,}: skipped (above --neat-python-max {args.neat_python_max:,})")


if __name__ == "__main__":
    main()
