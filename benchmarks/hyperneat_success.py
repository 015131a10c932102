"""Success rate against PUREPLES on XOR, HyperNEAT and ES-HyperNEAT: the same task, population and budget.

PUREPLES is not on the package index and this script fetches nothing: clone
https://github.com/ukuleleplayer/pureples (it needs neat-python) and pass its path:

    python benchmarks/hyperneat_success.py --pureples /tmp/pureples [--seeds 10] [--generations 300]
                                           [--methods hyperneat es] [--es-version S] [--unfed zero|bias]
                                           [--check 60]

The task and settings are PUREPLES's own XOR examples' (``pureples/experiments/xor``): inputs x1, x2 and
a constant 1 at (-1, -1), (0, -1), (1, -1), the output at (0, 1), HyperNEAT with a hidden row at
y = 0 (x = -1, 0, 1), weights over 0.2 in magnitude scaled into [0, 5], neat-python's sigmoid
(1 / (1 + e^(-5x))) on substrate nodes; ES-HyperNEAT with their ``--es-version`` parameters (S: depths 0
and 1, as their script; M: 1 and 2; L: 2 and 3; variance 0.03, band 0.3, division 0.5, iteration 1);
population 150 and ``--generations`` (their 300); a run is solved when a phenotype's squared error
over the four cases is at most 0.1 (their fitness threshold 0.975 of ``1 - error / 4``). PUREPLES
evolves its CPPNs with neat-python on its ``config_cppn_xor`` (gauss, sin, tanh), NEATify with
``cppn_config`` on the same three functions (NEATify's versions, or neat-python's steeper ones with
``--functions neat-python``) and its other defaults, or with ``--neatify-config pureples`` on
PUREPLES's config file itself (``EvolutionConfig.from_neat_python``). Each seed seeds both libraries'
random generators. A substrate node that no connection feeds reads 0 in PUREPLES (neat-python's
networks never compute it); NEATify's networks give it the activation of its zero bias (0.5 for a
sigmoid), so on XOR an empty phenotype scores 3 of 4 in NEATify and 2 in PUREPLES: ``--unfed zero``
(the default) scores NEATify's phenotypes with PUREPLES's convention, ``--unfed bias`` with its own.
Prints per library and method the runs solved and the mean evaluations of the
solved ones; PUREPLES runs in a process of its own. A run that neat-python stops with an error (its
2.0 cannot always share 150 genomes among species when PUREPLES's config asks for 15 elites a
species) counts as not solved, and the line says how many and why. ``--check N`` first scores N grown
CPPNs in both libraries (the same genomes, as neat-python networks on PUREPLES's side) and prints how
many scores agree.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import hyperneat_pureples  # noqa: E402,F401 (registers np_sigmoid, neat-python's sigmoid)

from neatify import EvolutionConfig, Genome, Population  # noqa: E402
from neatify.activations import register_activation  # noqa: E402
from neatify.hyperneat import ESHyperNEAT, HyperNEAT, Substrate, cppn_config  # noqa: E402
from neatify.nn import NeatPopulationModule  # noqa: E402
from neatify.hyperneat.es_params import ESParams  # noqa: E402
from neatify.hyperneat.es_xor import (XOR_CASES, XOR_INPUT_POINTS, XOR_OUTPUT_POINTS, XOR_TARGETS,  # noqa: E402
                                      ESXorFitness)

NEAT_PYTHON_FUNCTIONS = {
    "np_sin": (lambda x: math.sin(max(-60.0, min(60.0, 5.0 * x))), lambda x: torch.sin((5.0 * x).clamp(-60.0, 60.0))),
    "np_gauss": (lambda x: math.exp(-5.0 * max(-3.4, min(3.4, x)) ** 2),
                 lambda x: torch.exp(-5.0 * x.clamp(-3.4, 3.4).square())),
    "np_tanh": (lambda x: math.tanh(max(-60.0, min(60.0, 2.5 * x))),
                lambda x: torch.tanh((2.5 * x).clamp(-60.0, 60.0))),
}
"""neat-python's gauss, sin and tanh (steeper than NEATify's: sin(5x), e^(-5x^2), tanh(2.5x)), which
PUREPLES's CPPNs use; ``--functions neat-python`` gives NEATify's CPPNs these."""
for _name, (_scalar, _tensor) in NEAT_PYTHON_FUNCTIONS.items():
    register_activation(_name, _scalar, _tensor)
HIDDEN_POINTS = ((-1.0, 0.0), (0.0, 0.0), (1.0, 0.0))
POPULATION = 150
SOLVED_ERROR = 0.1
"""A run is solved when a phenotype's summed squared error over the four cases is at most this."""
XOR_CONFIG = "pureples/experiments/xor/config_cppn_xor"
"""PUREPLES's neat-python config of its XOR examples, in its clone."""
ES_DEPTHS = {"S": (0, 1), "M": (1, 2), "L": (2, 3)}
"""PUREPLES's XOR versions: (initial depth, max depth)."""


@dataclass(frozen=True)
class Outcome:
    """One run: solved or not, the CPPNs evaluated, and the error that stopped it early, if any."""

    solved: bool
    evaluations: int
    error: str = ""


def es_settings(version: str) -> dict:
    """PUREPLES's ES-HyperNEAT parameters for its XOR ``version``."""
    initial, deepest = ES_DEPTHS[version]
    return {"initial_depth": initial, "max_depth": deepest, "variance_threshold": 0.03, "band_threshold": 0.3,
            "iteration_level": 1, "division_threshold": 0.5, "max_weight": 5.0}


def xor_score(out: torch.Tensor) -> torch.Tensor:
    """4 minus each row's squared error over the four cases."""
    return 4.0 - (out - torch.from_numpy(XOR_TARGETS)).square().sum(dim=1)


@dataclass(frozen=True)
class HyperXorFitness:
    """HyperNEAT XOR: decode every CPPN onto PUREPLES's substrate, score 4 minus the squared error. With
    ``unfed_zero`` a substrate node no connection feeds reads 0, as in PUREPLES's neat-python networks
    (which never compute such a node), instead of the sigmoid of its zero bias, 0.5."""

    unfed_zero: bool

    def __call__(self, genomes) -> None:
        substrate = Substrate(XOR_INPUT_POINTS, XOR_OUTPUT_POINTS, (HIDDEN_POINTS,))
        hyperneat = HyperNEAT(substrate, threshold=0.2, max_weight=5.0, hidden_activation="np_sigmoid",
                              output_activation="np_sigmoid", dtype=torch.float64)
        hyperneat.fitness(self.score)(genomes)

    def score(self, module) -> torch.Tensor:
        values = torch.from_numpy(XOR_CASES).T.expand(module.num_genomes, -1, -1)  # (genomes, nodes, cases)
        for weight, function in zip(module.weights, module.functions):
            fed = (weight != 0.0).any(dim=2, keepdim=True) | (not self.unfed_zero)
            values = torch.where(fed, function(torch.bmm(weight, values)), 0.0)
        return xor_score(values[:, 0])


@dataclass(frozen=True)
class ESXorUnfedZero:
    """ES-HyperNEAT XOR scored as ``ESXorFitness`` does, except that a phenotype without connections (its
    output unfed: ES-HyperNEAT keeps only nodes on an input-output path) reads 0, as in PUREPLES."""

    params: ESParams

    def __call__(self, genomes) -> None:
        phenotypes = ESHyperNEAT(XOR_INPUT_POINTS, XOR_OUTPUT_POINTS, self.params).phenotypes(genomes)
        out = NeatPopulationModule.from_batch(phenotypes.batch, dtype=torch.float64)(torch.from_numpy(XOR_CASES))
        out = torch.where(torch.from_numpy(phenotypes.sizes()[1] > 0)[:, None], out[..., 0], 0.0)
        for genome, value in zip(genomes, xor_score(out).tolist()):
            genome.fitness = value


def fitness_function(method: str, args: argparse.Namespace):
    """NEATify's XOR fitness function for ``method`` under ``--unfed`` and ``--es-version``."""
    params = ESParams(**es_settings(args.es_version), activation="np_sigmoid")
    unfed_zero = args.unfed == "zero"
    if method == "hyperneat":
        return HyperXorFitness(unfed_zero)
    return ESXorUnfedZero(params) if unfed_zero else ESXorFitness(params)


def neatify_run(method: str, seed: int, args: argparse.Namespace) -> Outcome:
    """One NEATify run."""
    pop = Population(num_inputs=4, num_outputs=1, config=neatify_config(args), seed=seed)
    best = pop.run(fitness_function(method, args), args.generations, fitness_threshold=4.0 - SOLVED_ERROR)
    return Outcome(best.fitness >= 4.0 - SOLVED_ERROR, pop.evaluations)


def neatify_config(args: argparse.Namespace) -> EvolutionConfig:
    """``--neatify-config``: the library's CPPN defaults on PUREPLES's three functions, or PUREPLES's own
    neat-python file read by ``EvolutionConfig.from_neat_python``; ``--functions`` says whose versions of
    gauss, sin and tanh the CPPN nodes use."""
    if args.neatify_config == "cppn":
        config = cppn_config(population_size=POPULATION, activation_options=["gauss", "sin", "tanh"])
    else:
        with warnings.catch_warnings():  # it names the keys it leaves (threshold, input count): set here
            warnings.simplefilter("ignore")
            config = EvolutionConfig.from_neat_python(Path(args.pureples, XOR_CONFIG))
    if args.functions == "neatify":
        return config
    return config.replace(activation_default=f"np_{config.activation_default}",
                          activation_options=[f"np_{name}" for name in config.activation_options])


def pureples_scorer(path: str, method: str, args: argparse.Namespace):
    """PUREPLES's XOR evaluation of one neat-python CPPN network, as its example does: ``1 - error / 4``."""
    sys.path.insert(0, path)
    from pureples.es_hyperneat.es_hyperneat import ESNetwork
    from pureples.hyperneat.hyperneat import create_phenotype_network
    from pureples.shared.substrate import Substrate as PureplesSubstrate

    hidden = [list(HIDDEN_POINTS)] if method == "hyperneat" else []
    substrate = PureplesSubstrate(list(XOR_INPUT_POINTS), list(XOR_OUTPUT_POINTS), *([hidden] if hidden else []))
    settings = {**es_settings(args.es_version), "activation": "sigmoid"}

    def score(cppn) -> float:
        if method == "hyperneat":
            net, steps = create_phenotype_network(cppn, substrate), len(hidden) + 2
        else:
            network = ESNetwork(substrate, cppn, settings)
            net, steps = network.create_phenotype_network(), network.activations
        error = 0.0
        for case, target in zip(XOR_CASES.tolist(), XOR_TARGETS.tolist()):
            net.reset()
            for _ in range(steps):
                out = net.activate(case)
            error += (out[0] - target) ** 2
        return 1.0 - error / 4.0

    return score


def pureples_runs(path: str, method: str, seeds: list[int], args: argparse.Namespace) -> list[Outcome]:
    """PUREPLES's XOR example's run for each seed (in a process of its own)."""
    score = pureples_scorer(path, method, args)
    import neat

    def evaluate(genomes, config) -> None:
        for _, genome in genomes:
            genome.fitness = score(neat.nn.FeedForwardNetwork.create(genome, config))

    config = neat_config(neat, Path(path, XOR_CONFIG).read_text())
    results = []
    for seed in seeds:
        pop = neat.Population(config, seed=seed)
        try:
            solved = pop.run(evaluate, args.generations).fitness >= 1.0 - SOLVED_ERROR / 4.0
        except (neat.CompleteExtinctionException, RuntimeError) as error:  # neat-python stopped the run
            results.append(Outcome(False, pop.generation * POPULATION, f"{type(error).__name__}: {error}"))
            continue
        results.append(Outcome(solved, (pop.generation + solved) * POPULATION))  # a solving generation ends uncounted
    return results


def pureples_scores(path: str, method: str, genomes: list[dict], args: argparse.Namespace) -> list[float]:
    """PUREPLES's fitness, on NEATify's scale (4 minus the error), of NEATify genomes as neat-python CPPNs."""
    from es_hyperneat_pureples import neat_python_cppn

    score = pureples_scorer(path, method, args)
    return [4.0 - 4.0 * (1.0 - score(neat_python_cppn(Genome.from_dict(g)))) for g in genomes]


def agreement(method: str, args: argparse.Namespace) -> str:
    """How many of ``--check`` grown CPPNs both libraries score alike (to 1e-6: the two compute in different orders)."""
    pop = Population(num_inputs=4, num_outputs=1, config=cppn_config(population_size=args.check, prob_add_node=0.3),
                     seed=args.seeds)
    for _ in range(4):  # grow some structure
        pop.run_generation(lambda genomes: [setattr(g, "fitness", float(len(g.connections))) for g in genomes])
    genomes = pop.ask()
    fitness_function(method, args)(genomes)
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        theirs = pool.submit(pureples_scores, args.pureples, method, [g.to_dict() for g in genomes], args).result()
    alike = sum(abs(g.fitness - value) < 1e-6 for g, value in zip(genomes, theirs))
    return f"{method}: both libraries score {alike}/{len(genomes)} grown CPPNs alike"


def neat_config(neat, text: str):
    """neat-python's config from PUREPLES's file, plus the one key neat-python 2.0 requires that the file
    predates (``no_fitness_termination = False``, its old default)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "config")
        path.write_text(text.replace("[NEAT]", "[NEAT]\nno_fitness_termination = False", 1))
        return neat.Config(neat.DefaultGenome, neat.DefaultReproduction, neat.DefaultSpeciesSet,
                           neat.DefaultStagnation, str(path))


def line(library: str, method: str, results: list[Outcome]) -> str:
    """Runs solved and mean evaluations of the solved; runs the library stopped, and why."""
    solved = [run.evaluations for run in results if run.solved]
    mean = f"{statistics.mean(solved):,.0f}" if solved else "-"
    stopped = sorted({run.error for run in results if run.error})
    errors = f"; {sum(bool(run.error) for run in results)} stopped by: {' | '.join(stopped)}" if stopped else ""
    return (f"{library:>8} {method:>10} solved {len(solved):>3}/{len(results):<3} mean evaluations of the solved "
            f"{mean:>8}{errors}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pureples", default=os.environ.get("PUREPLES_PATH"),
                        help="a clone of github.com/ukuleleplayer/pureples (or PUREPLES_PATH); without: NEATify only")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--generations", type=int, default=300)
    parser.add_argument("--methods", nargs="+", choices=["hyperneat", "es"], default=["hyperneat", "es"])
    parser.add_argument("--es-version", choices=sorted(ES_DEPTHS), default="S")
    parser.add_argument("--unfed", choices=["zero", "bias"], default="zero",
                        help="what a node no connection feeds reads on NEATify's side: 0 as in PUREPLES, or the "
                             "activation of its bias (NEATify's networks)")
    parser.add_argument("--functions", choices=["neat-python", "neatify"], default="neatify",
                        help="whose gauss, sin and tanh NEATify's CPPN nodes use (PUREPLES's are neat-python's)")
    parser.add_argument("--neatify-config", choices=["cppn", "pureples"], default="cppn",
                        help="NEATify's NEAT settings: cppn_config, or PUREPLES's XOR config file (needs --pureples)")
    parser.add_argument("--check", type=int, default=0,
                        help="first score this many grown CPPNs in both libraries and count those alike")
    args = parser.parse_args()
    if (args.neatify_config == "pureples" or args.check) and not args.pureples:
        parser.error("--neatify-config pureples and --check need PUREPLES: give --pureples")
    if args.functions == "neat-python" and "es" in args.methods:
        parser.error("--functions neat-python runs HyperNEAT only: ES-HyperNEAT's compiled CPPN evaluator knows "
                     "NEATify's own functions, not activations registered at run time (give --methods hyperneat)")
    torch.set_num_threads(1)
    seeds = list(range(args.seeds))
    print(f"XOR, population {POPULATION}, at most {args.generations} generations, {args.seeds} seeds, "
          f"ES version {args.es_version}, NEATify config {args.neatify_config}, functions {args.functions}, "
          f"unfed nodes read {args.unfed}")
    for method in args.methods if args.check else []:
        print(agreement(method, args), flush=True)
    for method in args.methods:
        print(line("NEATify", method, [neatify_run(method, seed, args) for seed in seeds]), flush=True)
        if args.pureples:
            with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
                print(line("PUREPLES", method, pool.submit(pureples_runs, args.pureples, method, seeds, args).result()),
                      flush=True)


if __name__ == "__main__":
    main()
