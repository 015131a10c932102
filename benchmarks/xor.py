"""XOR sample efficiency: seeded runs as in the NEAT paper (pop 150, fitness 4 - SSE, solved at > 3.9).

    python benchmarks/xor.py --runs 100

Prints success rate, mean/median generations and evaluations, and mean hidden nodes of the
winners, beside the paper's 4,755 evaluations. ``--network python`` uses the plain-Python runner
instead of ``NeatModule`` (same networks, float64, for quick tuning). ``--refine-samples N`` turns on
the weight search (``EvolutionConfig.refine_samples``) with ``--population`` genomes a generation.
"""

from __future__ import annotations

import argparse
import statistics
import time
from concurrent.futures import ProcessPoolExecutor

from neatify import EvolutionConfig, Network, Population

XOR_ROWS = [((0.0, 0.0), 0.0), ((0.0, 1.0), 1.0), ((1.0, 0.0), 1.0), ((1.0, 1.0), 0.0)]
PAPER_EVALUATIONS = 4755


def python_fitness(genomes):
    for genome in genomes:
        net = Network(genome)
        genome.fitness = 4.0 - sum((net.activate(list(x))[0] - y) ** 2 for x, y in XOR_ROWS)


def module_fitness(genomes):
    import torch

    from neatify import NeatModule

    x = torch.tensor([row for row, _ in XOR_ROWS])
    y = torch.tensor([[target] for _, target in XOR_ROWS])
    for genome in genomes:
        genome.fitness = 4.0 - torch.sum((NeatModule(genome)(x) - y) ** 2).item()


def one_run(args: tuple[int, str, int, EvolutionConfig]) -> tuple[bool, int, int, int]:
    """(solved, generations, evaluations, hidden nodes of the winner) for one seed."""
    seed, network, max_generations, config = args
    fitness = module_fitness if network == "module" else python_fitness
    pop = Population(num_inputs=2, num_outputs=1, config=config, seed=seed)
    for _ in range(max_generations):
        pop.run_generation(fitness)
        best = max(pop.genomes, key=lambda g: g.fitness)
        if best.fitness > 3.9:
            return True, pop.generation + 1, pop.evaluations, best.size()[0]
    return False, pop.generation + 1, pop.evaluations, 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--max-generations", type=int, default=300)
    parser.add_argument("--network", choices=["module", "python"], default="module")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--population", type=int, default=150)
    parser.add_argument("--refine-samples", type=int, default=0, help="weight-search samples a generation (0: off)")
    parser.add_argument("--refine-patience", type=int, default=20, help="generations without progress: restart")
    parser.add_argument("--refine-tolerance", type=float, default=0.0, help="rises of the best that are no progress")
    parser.add_argument("--refine-growth", type=float, default=1.0, help="samples grow by this at each restart")
    args = parser.parse_args()
    start = time.perf_counter()
    config = EvolutionConfig(population_size=args.population, refine_samples=args.refine_samples,
                             refine_patience=args.refine_patience, refine_tolerance=args.refine_tolerance,
                             refine_growth=args.refine_growth)
    seeds = range(args.first_seed, args.first_seed + args.runs)
    jobs = [(seed, args.network, args.max_generations, config) for seed in seeds]
    with ProcessPoolExecutor(args.processes) as pool:
        results = list(pool.map(one_run, jobs))
    solved = [r for r in results if r[0]]
    gens = [r[1] for r in solved]
    evals = [r[2] for r in solved]
    print(f"XOR, {args.runs} runs (seeds {args.first_seed}..{args.first_seed + args.runs - 1}), "
          f"network={args.network}, population {args.population}, refine_samples {args.refine_samples} "
          f"(patience {args.refine_patience}, tolerance {args.refine_tolerance}, growth {args.refine_growth}), "
          f"{time.perf_counter() - start:.1f} s")
    print(f"solved: {len(solved)}/{args.runs} ({100.0 * len(solved) / args.runs:.0f} %)")
    if solved:
        print(f"generations: mean {statistics.mean(gens):.1f}, median {statistics.median(gens):.1f}, "
              f"max {max(gens)}")
        print(f"evaluations: mean {statistics.mean(evals):.0f}, median {statistics.median(evals):.0f}, "
              f"sd {statistics.pstdev(evals):.0f}, worst {max(evals)} "
              f"(paper: mean {PAPER_EVALUATIONS}; ratio {statistics.mean(evals) / PAPER_EVALUATIONS:.2f})")
        print(f"winners' hidden nodes: mean {statistics.mean(r[3] for r in solved):.2f}")


if __name__ == "__main__":
    main()
