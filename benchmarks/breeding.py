"""Breeding time per generation (reproduction: selection, crossover, mutation, copies), speciation
time and the whole generation but fitness, for XOR-shaped genomes (2 inputs, 1 output).

    python benchmarks/breeding.py [--sizes 1000 10000] [--generations 10] [--warmup 5]
    python benchmarks/breeding.py --baseline /tmp/old/src   # the same, also for another copy of neatify

The default configuration, steered toward 20 species. The fitness is the sum of a genome's
connection weights: free to compute, yet it drives selection and structural growth. With
``--baseline DIR`` every size runs twice, in child processes importing neatify from DIR and from
this checkout, and both figures print side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def sum_of_weights(genomes) -> None:
    for g in genomes:
        g.fitness = sum(c.weight for c in g.connections.values())


def stopwatch(spent: dict[str, float], name: str, fn: Callable) -> Callable:
    """``fn``, adding the seconds each call takes to ``spent[name]``."""
    def timed(*args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            spent[name] += time.perf_counter() - start

    return timed


def measure(pop_size: int, generations: int, warmup: int, seed: int) -> dict[str, float]:
    """Mean ms per generation of ``reproduce``, of ``speciate`` and of all but the fitness function,
    after ``warmup`` generations."""
    import neatify.population as population
    from neatify import EvolutionConfig, Population

    pop = Population(pop_size=pop_size, num_inputs=2, num_outputs=1, config=EvolutionConfig(target_species=20),
                     seed=seed)
    for _ in range(warmup):
        pop.run_generation(sum_of_weights)
    spent = {"reproduce": 0.0, "speciate": 0.0, "fitness": 0.0}
    # the names neatify.population calls them by: speciate_steered (threshold search included) since
    # 2026-11-29, speciate in a baseline from before
    speciation = "speciate_steered" if hasattr(population, "speciate_steered") else "speciate"
    for name, timed in (("reproduce", "reproduce"), ("speciate", speciation)):
        setattr(population, timed, stopwatch(spent, name, getattr(population, timed)))
    fitness = stopwatch(spent, "fitness", sum_of_weights)
    start = time.perf_counter()
    for _ in range(generations):
        pop.run_generation(fitness)
    whole = time.perf_counter() - start - spent["fitness"]
    recent = pop.history[-generations:]
    return {"breed_ms": spent["reproduce"] * 1e3 / generations, "speciate_ms": spent["speciate"] * 1e3 / generations,
            "generation_ms": whole * 1e3 / generations, "species": sum(h.num_species for h in recent) / generations,
            "connections": recent[-1].mean_connections}


def measure_in(src: str, args: argparse.Namespace, size: int) -> dict[str, float]:
    """``measure`` in a child process that imports neatify from ``src``."""
    code = (f"import json, sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import breeding; "
            f"print(json.dumps(breeding.measure({size}, {args.generations}, {args.warmup}, {args.seed})))")
    env = {**os.environ, "PYTHONPATH": src}
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--generations", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--baseline", help="src directory of another neatify to measure side by side")
    args = parser.parse_args()
    print(f"ms per generation, mean of {args.generations} after {args.warmup} warm-up generations, seed {args.seed}")
    print(f"{'pop':>7} {'code':>9} {'breed':>9} {'speciate':>9} {'generation':>11} {'species':>8} {'conns':>6}")
    sources = [("baseline", args.baseline), ("this", str(SRC))] if args.baseline else [("this", str(SRC))]
    for size in args.sizes:
        for label, src in sources:
            r = measure_in(src, args, size)
            print(f"{size:>7} {label:>9} {r['breed_ms']:>9.1f} {r['speciate_ms']:>9.1f} {r['generation_ms']:>11.1f} {r['species']:>8.1f} "
                  f"{r['connections']:>6.1f}", flush=True)


if __name__ == "__main__":
    main()
