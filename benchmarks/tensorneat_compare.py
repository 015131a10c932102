"""XOR and cart-pole at large populations: NEATify, neat-python and TensorNEAT side by side, one core each.

    python benchmarks/tensorneat_compare.py [--sizes 1000 10000] [--cartpole-sizes 1000]
        [--tensorneat-python /tmp/tneat-venv/bin/python] [--cpu 1] [--no-default-row] [--no-variants]
        [--first-limits 50 100]

Matched settings, at every size (docs/benchmarks.md, "Against TensorNEAT", lists each setting and
what differs): feed-forward, full initial connection, plain sigmoid (neat-python's own "sigmoid" is
steepened, so its run gets a plain one under that name), add-node 0.05, add-connection 0.5, no
deletions, threshold 3.0 (1.0 disjoint, 0.4 weight, divided by the larger gene count), survival
0.2, one elite per species, every offspring bred by crossover, weights: power 1.0, replace 0.1,
within +-30, biases: rate 0.3, power 0.5, replace 0.1. TensorNEAT keeps at most ``species_size``
species, so that cap and NEATify's ``target_species`` are both ``auto_target_species(size)``;
neat-python has neither and keeps what threshold 3.0 gives. Rows "NEATify, fixed threshold" and
"NEATify, every child's weights" measure what the settings that cannot be matched cost NEATify
(``--no-variants`` skips them). XOR fitness is 4 - SSE (TensorNEAT: -MSE, the same ranking);
cart-pole (CartPole-v1 physics) is the mean steps balanced over 5 episodes of at most 500, the
single output pushing right above 0.5. NEATify computes fitness through one
``NeatPopulationModule`` a generation (torch on one thread; cart-pole: every cart of the
population stepped at once, examples/cartpole_batched.py), neat-python through
``FeedForwardNetwork`` (cart-pole: one call per cart and step, on NEATify's carts), TensorNEAT
through its jitted ``Pipeline.step`` (XOR, or gymnax's CartPole-v1; its compile time printed
apart).

TensorNEAT pads every genome to ``max_nodes`` x ``max_conns`` and pays for the padding, so it runs
twice: with its defaults (50 x 100), and with the smallest limits that refuse no mutation in that
run (benchmarks/padded_limits.py: the largest genome of the default run plus the room one
generation's mutations need, checked on the fitted run). Where a run at the defaults takes too
long (cart-pole at 10,000), ``--first-limits`` starts the first pass smaller (doubled while it binds;
its row is then the "first-pass" one). Then the "default config" row: NEATify's
``EvolutionConfig()`` against neat-python's documented XOR config (benchmarks/neat_python_config.ini)
at the largest XOR size. Each run is a process of its own pinned to one core (``--cpu``), so its
peak RSS is its own; the times are the CPU time of that process (``time.process_time``, which
other jobs on a shared machine do not inflate as they do wall-clock time), medians of the
generations after ``--warmup``. Every generation runs (no stop when solved).

TensorNEAT is not on the package index and needs JAX, so it runs in a subprocess with its own
interpreter (``--tensorneat-python``); without one its rows are skipped. How to get it (as done
for docs/benchmarks.md; TensorNEAT commit ee20490):

    git clone https://github.com/EMI-Group/tensorneat /tmp/tensorneat
    python3 -m venv /tmp/tneat-venv
    /tmp/tneat-venv/bin/pip install "jax[cpu]" sympy networkx gymnax six  # jax 0.10.2 on Python 3.11
    /tmp/tneat-venv/bin/pip install --no-deps /tmp/tensorneat             # skips brax, mujoco, ...

Its other declared dependencies (brax, mujoco, ...) serve only its robot tasks. gymnax 1.0
returns terminated and truncated apart where TensorNEAT expects one flag: the cart-pole problem
here merges them. Needs neat-python in this interpreter (the ``bench`` extra).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import population_scale
from padded_limits import Limits, fit_limits
from population_scale import Run, in_own_process, neat_python_run, neatify_run, peak_rss_mb

THRESHOLD, ADD_NODE, ADD_CONNECTION, SURVIVAL = 3.0, 0.05, 0.5, 0.2
WEIGHT_POWER, WEIGHT_REPLACE, BIAS_RATE, BIAS_POWER, BIAS_REPLACE, BOUND = 1.0, 0.1, 0.3, 0.5, 0.1, 30.0
EPISODES, MAX_STEPS = 5, 500  # cart-pole: fitness is the mean steps balanced over 5 episodes (CartPole-v1)
NEATIFY_MATCHED = dict(activation_default="sigmoid", activation_options=["sigmoid"], prob_add_node=ADD_NODE,
                       prob_add_connection=ADD_CONNECTION, compatibility_threshold=THRESHOLD,
                       survival_threshold=SURVIVAL, prob_crossover=1.0, interspecies_mating_rate=0.0,
                       elitism_min_species_size=0, normalize_min_genes=1)
NEATIFY_VARIANTS = {"fixed threshold": {"target_species": 0},
                    "every child's weights": {"prob_mutate_weight": 1.0, "prob_mutate_bias": 1.0}}
"""NEATify rows measuring settings the others cannot match: neat-python's fixed threshold 3.0 (no
steering, no cap), and weights and biases mutated in every child (the others: each gene with its rate)."""
TENSORNEAT_DEFAULT_LIMITS = Limits(50, 100)
TENSORNEAT_HEADROOM = Limits(1, 2)
"""What one generation's mutations need free in a TensorNEAT genome: add-node wants a node slot and two
connection slots (it frees the split connection after), add-connection then one more slot."""
ONE_THREAD_XLA = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


def plain_sigmoid(z: float) -> float:
    """The logistic function, clamped like neat-python's (whose "sigmoid" is steepened: 1 / (1 + e^-5z))."""
    z = max(-60.0, min(60.0, z))
    return 1.0 / (1.0 + math.exp(-z))


def neat_python_matched(inputs: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """neat-python's config sections set to the matched values (``inputs``: its input count and keys, if not 2)."""
    from neat.activations import ActivationFunctionSet

    activations = ActivationFunctionSet()
    activations.add("sigmoid", plain_sigmoid)
    genome = {"node_add_prob": ADD_NODE, "conn_add_prob": ADD_CONNECTION, "weight_mutate_power": WEIGHT_POWER,
              "weight_replace_rate": WEIGHT_REPLACE, "bias_mutate_rate": BIAS_RATE, "bias_mutate_power": BIAS_POWER,
              "bias_replace_rate": BIAS_REPLACE, "enabled_mutate_rate": 0.0, "activation_defs": activations}
    return {"genome_config": {**genome, **inputs}, "species_set_config": {"compatibility_threshold": THRESHOLD},
            "reproduction_config": {"survival_threshold": SURVIVAL, "elitism": 1, "min_species_size": 2}}


def pinned(cpu: int, fn: Callable[..., Run], *args: Any) -> Run:
    """Run ``fn`` with this process held to one core (as ``taskset -c cpu`` would), timed in CPU time."""
    os.sched_setaffinity(0, {cpu})
    population_scale.CLOCK = time.process_time
    return fn(*args)


def tensorneat_genome(task: str, max_nodes: int, max_conns: int) -> Any:
    """TensorNEAT's genome for ``task`` with the matched settings, padded to ``max_nodes`` x ``max_conns``."""
    import jax.numpy as jnp
    from tensorneat.common import ACT, AGG
    from tensorneat.genome import DefaultConn, DefaultGenome, DefaultMutation, DefaultNode

    if task == "xor":
        inputs, output = 2, ACT.sigmoid
    else:
        inputs, output = 4, lambda out: (ACT.sigmoid(out[0]) > 0.5).astype(jnp.int32)  # push right above 0.5
    return DefaultGenome(
        num_inputs=inputs, num_outputs=1, max_nodes=max_nodes, max_conns=max_conns, output_transform=output,
        node_gene=DefaultNode(activation_options=ACT.sigmoid, aggregation_options=AGG.sum, bias_mutate_rate=BIAS_RATE,
                              bias_mutate_power=BIAS_POWER, bias_replace_rate=BIAS_REPLACE, bias_lower_bound=-BOUND,
                              bias_upper_bound=BOUND, response_mutate_rate=0.0, response_replace_rate=0.0,
                              activation_replace_rate=0.0, aggregation_replace_rate=0.0),
        conn_gene=DefaultConn(weight_mutate_rate=0.8, weight_mutate_power=WEIGHT_POWER,
                              weight_replace_rate=WEIGHT_REPLACE, weight_lower_bound=-BOUND, weight_upper_bound=BOUND),
        mutation=DefaultMutation(conn_add=ADD_CONNECTION, conn_delete=0.0, node_add=ADD_NODE, node_delete=0.0))


def tensorneat_problem(task: str) -> Any:
    """TensorNEAT's XOR, or gymnax's CartPole-v1 with terminated and truncated merged into one flag."""
    from tensorneat.problem.func_fit import XOR
    from tensorneat.problem.rl import GymNaxEnv

    class CartPole(GymNaxEnv):
        """gymnax 1.0 returns terminated and truncated apart (6 values); TensorNEAT expects one done flag."""

        def env_step(self, randkey, env_state, action):
            obs, env_state, reward, terminated, truncated, info = super().env_step(randkey, env_state, action)
            return obs, env_state, reward, terminated | truncated, info

    return XOR() if task == "xor" else CartPole(env_name="CartPole-v1", max_step=MAX_STEPS, repeat_times=EPISODES)


def largest_genome(state: Any) -> list[int]:
    """The most node genes and the most connection genes any genome of TensorNEAT's population holds."""
    import jax
    import numpy as np

    nodes, conns = jax.device_get([state.pop_nodes, state.pop_conns])
    return [int((~np.isnan(nodes[:, :, 0])).sum(axis=1).max()), int((~np.isnan(conns[:, :, 0])).sum(axis=1).max())]


def tensorneat_run(task: str, pop_size: int, generations: int, seed: int, species: int, max_nodes: int,
                   max_conns: int) -> dict[str, Any]:
    """TensorNEAT with the matched settings on ``task``; runs under TensorNEAT's interpreter, returns plain data
    (with the largest genome of any generation, the first and the one bred by the last step included)."""
    import jax
    from tensorneat.algorithm.neat import NEAT
    from tensorneat.pipeline import Pipeline

    algorithm = NEAT(genome=tensorneat_genome(task, max_nodes, max_conns), pop_size=pop_size, species_size=species,
                     compatibility_threshold=THRESHOLD, survival_threshold=SURVIVAL, genome_elitism=1,
                     species_elitism=1, min_species_size=2)
    pipeline = Pipeline(algorithm, tensorneat_problem(task), seed=seed, generation_limit=generations)
    state = pipeline.setup()
    start = time.process_time()
    step = jax.jit(pipeline.step).lower(state).compile()
    compile_s = time.process_time() - start
    times, counts, best, largest = [], [], float("-inf"), largest_genome(state)
    for _ in range(generations):
        start = time.process_time()
        state, _, fitness = step(state)
        fitness = jax.block_until_ready(fitness)
        times.append(time.process_time() - start)
        counts.append(int((jax.device_get(state.species.member_count) > 0).sum()))
        best = max(best, float(fitness.max()))
        largest = [max(a, b) for a, b in zip(largest, largest_genome(state))]
    if task == "xor":
        best = 4.0 + 4.0 * best  # -MSE over 4 rows -> 4 - SSE
    return {"compile_s": compile_s, "generation_s": times, "species": counts, "best_fitness": best,
            "peak_rss_mb": peak_rss_mb(), "largest": largest}


def tensorneat_in_subprocess(python: str, cpu: int, spec: dict[str, Any]) -> dict[str, Any]:
    """``tensorneat_run(**spec)`` under ``python`` (TensorNEAT's interpreter), on one core with one XLA thread."""
    command = [python, os.path.abspath(__file__), "--tensorneat-child", json.dumps(spec)]
    if shutil.which("taskset"):
        command = ["taskset", "-c", str(cpu)] + command
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": ONE_THREAD_XLA}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"TensorNEAT run failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


class NeatPythonCartPole:
    """neat-python's cart-pole fitness: NEATify's batched carts (same starts), each action from
    ``FeedForwardNetwork.activate`` on one cart's observation, as a neat-python user would."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def __call__(self, genomes: list, config: Any) -> None:
        import neat
        import torch

        from neatify.envs import CartPole

        nets = [neat.nn.FeedForwardNetwork.create(genome, config) for _, genome in genomes]
        env = CartPole(len(nets) * EPISODES, MAX_STEPS, seed=self.seed)
        observations = env.reset().tolist()
        while not env.done.all():
            running = (~env.done).tolist()
            pushes = [running[i] and nets[i // EPISODES].activate(row)[0] > 0.5 for i, row in enumerate(observations)]
            observations = env.step(torch.tensor(pushes))[0].tolist()
        steps = env.steps.view(len(nets), EPISODES).double().mean(dim=1).tolist()
        for (_, genome), fitness in zip(genomes, steps):
            genome.fitness = fitness


def fitness_of(task: str, seed: int) -> tuple[Any, Any, dict[str, Any]]:
    """NEATify's fitness, neat-python's fitness and neat-python's extra inputs for ``task`` (None: XOR)."""
    if task == "xor":
        return None, None, {}
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
    from cartpole_batched import CartPoleFitness

    inputs = {"num_inputs": 4, "input_keys": [-1, -2, -3, -4]}
    return CartPoleFitness(EPISODES, MAX_STEPS, seed=seed), NeatPythonCartPole(seed), inputs


def median_ms(seconds: list[float], warmup: int) -> float:
    """Median of the generation times after the first ``warmup``, in milliseconds."""
    return statistics.median(seconds[min(warmup, len(seconds) - 1):]) * 1e3


def row(label: str, seconds: list[float], species: list[int], best: float, rss_mb: float, warmup: int,
        extra: str = "") -> float:
    """Print one library's line and return its median ms per generation."""
    ms = median_ms(seconds, warmup)
    later = species[min(warmup, len(species) - 1):]
    print(f"  {label:<31} {ms:9,.1f} CPU ms/gen   species {min(later)}-{max(later)} "
          f"(median {statistics.median(later):g})   best fitness {best:.3f}   peak RSS {rss_mb:,.0f} MB{extra}",
          flush=True)
    return ms


def run_row(label: str, run: Run, warmup: int) -> float:
    """``row`` for a NEATify or neat-python run, with the median time of its fitness function."""
    return row(label, run.generation_s, run.species, run.best_fitness, run.peak_rss_mb, warmup,
               f"   (fitness {median_ms(run.evaluation_s, warmup):,.1f} ms)")


def tensorneat_row(label: str, result: dict[str, Any], limits: Limits, warmup: int) -> float:
    """``row`` for a TensorNEAT run, with its limits, largest genome and compile time."""
    largest = Limits(*result["largest"])
    return row(label, result["generation_s"], result["species"], result["best_fitness"], result["peak_rss_mb"],
               warmup, f"   compile {result['compile_s']:.1f} s   limits {limits}, largest genome {largest}")


def tensorneat_rows(task: str, size: int, generations: int, species: int,
                    args: argparse.Namespace) -> tuple[float, float, str]:
    """TensorNEAT at its default (or ``--first-limits``) limits and at the fitted ones; the lines say how they
    were found. Returns both rows' ms and what the first limits were ("default" or "first-pass")."""

    def run(limits: Limits) -> tuple[dict[str, Any], Limits]:
        spec = {"task": task, "pop_size": size, "generations": generations, "seed": args.seed, "species": species,
                "max_nodes": limits.nodes, "max_conns": limits.conns}
        result = tensorneat_in_subprocess(args.tensorneat_python, args.cpu, spec)
        return result, Limits(*result["largest"])

    start = Limits(*args.first_limits)
    fit = fit_limits(run, start, TENSORNEAT_HEADROOM)
    print(f"  TensorNEAT {fit.describe(TENSORNEAT_HEADROOM)}", flush=True)
    fitted_ms = tensorneat_row("TensorNEAT, fitted limits", fit.result, fit.limits, args.warmup)
    first = "default" if fit.first_limits == TENSORNEAT_DEFAULT_LIMITS else "first-pass"
    first_ms = tensorneat_row(f"TensorNEAT, {first} limits", fit.first, fit.first_limits, args.warmup)
    return fitted_ms, first_ms, first


def load() -> str:
    """The 1-minute load average, to judge how busy the shared machine was."""
    return f"load {os.getloadavg()[0]:.2f}"


def neatify_rows(task: str, size: int, generations: int, species: int,
                 args: argparse.Namespace) -> dict[str, float]:
    """NEATify matched (and, unless ``--no-variants``, its variant rows); returns each row's ms by label."""
    neatify_task, _, inputs = fitness_of(task, args.seed)
    variants = {} if args.no_variants else NEATIFY_VARIANTS
    rows = {"": {}, **{f", {name}": changes for name, changes in variants.items()}}
    times = {}
    for name, changes in rows.items():
        config = {**NEATIFY_MATCHED, "target_species": species, **changes}
        run = in_own_process(pinned, args.cpu, neatify_run, size, generations, args.seed, config, neatify_task,
                             inputs.get("num_inputs", 2))
        times[f"NEATify{name}"] = run_row(f"NEATify{name}", run, args.warmup)
    return times


def compare_matched(task: str, size: int, generations: int, args: argparse.Namespace) -> None:
    """NEATify, TensorNEAT (if an interpreter was given) and neat-python on ``task`` at one size, matched."""
    from neatify.config import auto_target_species

    species = auto_target_species(size)
    print(f"{task} pop {size:,}, matched settings, {generations} generations "
          f"(median of those after {args.warmup}); species target/cap {species}; {load()}", flush=True)
    times = neatify_rows(task, size, generations, species, args)
    ours, ratios = times["NEATify"], []
    if args.tensorneat_python:
        fitted_ms, first_ms, first = tensorneat_rows(task, size, generations, species, args)
        ratios += [f"NEATify/TensorNEAT fitted {ours / fitted_ms:.3f}", f"{first} {ours / first_ms:.3f}"]
        fixed = times.get("NEATify, fixed threshold")
        if fixed is not None:
            ratios.append(f"NEATify fixed threshold/TensorNEAT fitted {fixed / fitted_ms:.3f}")
    else:
        print("  TensorNEAT   skipped: no --tensorneat-python")
    if task == "xor" or size <= args.cartpole_neat_python_max:
        _, neat_python_task, inputs = fitness_of(task, args.seed)
        py = in_own_process(pinned, args.cpu, neat_python_run, size, generations, args.seed, {},
                            neat_python_matched(inputs), neat_python_task)
        ratios.append(f"NEATify/neat-python {ours / run_row('neat-python', py, args.warmup):.3f}")
    else:
        print(f"  neat-python  skipped: above --cartpole-neat-python-max {args.cartpole_neat_python_max:,}")
    print(f"  ratios: {', '.join(ratios) or '-'}; {load()}", flush=True)


def compare_defaults(size: int, args: argparse.Namespace) -> None:
    """NEATify's ``EvolutionConfig()`` against neat-python's documented XOR config at one size."""
    print(f"xor pop {size:,}, default configs (NEATify EvolutionConfig(), neat-python's documented XOR config); "
          f"{load()}", flush=True)
    mine = in_own_process(pinned, args.cpu, neatify_run, size, args.generations, args.seed, {})
    ours = run_row("NEATify", mine, args.warmup)
    py = in_own_process(pinned, args.cpu, neat_python_run, size, args.generations, args.seed, {})
    print(f"  ratio NEATify/neat-python {ours / run_row('neat-python', py, args.warmup):.3f}; {load()}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[1_000, 10_000], help="XOR population sizes")
    parser.add_argument("--generations", type=int, default=12, help="XOR generations per run")
    parser.add_argument("--cartpole-sizes", type=int, nargs="*", default=[1_000])
    parser.add_argument("--cartpole-generations", type=int, default=10)
    parser.add_argument("--cartpole-neat-python-max", type=int, default=1_000,
                        help="largest cart-pole population neat-python runs (one network call per cart step)")
    parser.add_argument("--warmup", type=int, default=4, help="first generations left out of the median")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cpu", type=int, default=max(os.sched_getaffinity(0)), help="the core every run is held to")
    parser.add_argument("--tensorneat-python", help="an interpreter that can import tensorneat (see the docstring)")
    parser.add_argument("--no-default-row", action="store_true", help="skip the default-config comparison")
    parser.add_argument("--no-variants", action="store_true", help="skip NEATify's rows measuring unmatched settings")
    parser.add_argument("--first-limits", type=int, nargs=2, metavar=("NODES", "CONNS"),
                        default=[TENSORNEAT_DEFAULT_LIMITS.nodes, TENSORNEAT_DEFAULT_LIMITS.conns],
                        help="TensorNEAT's limits in the first pass (default: its own, 50 x 100; smaller where "
                             "a run at its defaults takes too long; they are doubled while they bind)")
    parser.add_argument("--tensorneat-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.tensorneat_child:
        print(json.dumps(tensorneat_run(**json.loads(args.tensorneat_child))))
        return
    print(f"one core (cpu {args.cpu}) per run, one thread each; seed {args.seed}", flush=True)
    for size in args.sizes:
        compare_matched("xor", size, args.generations, args)
    for size in args.cartpole_sizes:
        compare_matched("cartpole", size, args.cartpole_generations, args)
    if args.sizes and not args.no_default_row:
        compare_defaults(max(args.sizes), args)


if __name__ == "__main__":
    sys.exit(main())
