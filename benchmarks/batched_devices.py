"""NeatPopulationModule on CPU and GPU side by side, at population 1,000 and 10,000.

For each population size and device: the module build (once per generation), one forward pass
over 1,000 input rows shared by all genomes (genome-activations per second), and one cart-pole
fitness evaluation as in ``examples/cartpole_batched.py`` (every genome drives 5 carts for up to
500 steps, per-genome inputs, ``neatify.envs.rollout``: one module call per step for the genomes
still running; build included). Outputs and fitness are compared across devices. The genomes are
``grown_genomes.make_genomes``' (5-10 hidden nodes).

    python benchmarks/batched_devices.py [--sizes 1000 10000] [--devices cpu cuda] [--threads N]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch

from grown_genomes import NUM_INPUTS, make_genomes
from neatify import Genome
from neatify.envs import CartPole, rollout
from neatify.nn import NeatPopulationModule

EPISODES, MAX_STEPS = 5, 500


def timed(fn: Callable[[], object], device: torch.device, repeats: int) -> tuple[float, object]:
    """Best wall time of ``repeats`` calls after one warm-up, and the last result."""
    result, best = fn(), float("inf")
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        result = fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best, result


def cartpole_steps(genomes: list[Genome], device: torch.device) -> torch.Tensor:
    """Steps balanced by each genome's carts (genomes, episodes); a genome pushes right when its
    first output beats its second."""
    module = NeatPopulationModule(genomes, device=device)
    env = CartPole(len(genomes) * EPISODES, MAX_STEPS, device=device, seed=0)
    return rollout(module, env, lambda out: out[..., 0] > out[..., 1]).cpu()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--devices", nargs="+", default=["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = [torch.device(d) for d in args.devices]
    names = {d: torch.cuda.get_device_name(d) if d.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
             for d in devices}
    print(f"torch {torch.__version__}; devices: " + "; ".join(f"{d}: {n}" for d, n in names.items()))
    rows = torch.rand(args.rows, NUM_INPUTS, generator=torch.Generator().manual_seed(0)) * 2 - 1
    for size in args.sizes:
        genomes = make_genomes(size, seed=size)
        hidden = sum(g.size()[0] for g in genomes) / size
        print(f"\npopulation {size:,} (mean {hidden:.2f} hidden nodes), {args.rows:,} shared rows, "
              f"cart-pole {EPISODES} episodes x up to {MAX_STEPS} steps")
        results = {}
        for device in devices:
            build, module = timed(lambda: NeatPopulationModule(genomes, device=device), device, args.repeats)
            x = rows.to(device)
            forward, out = timed(lambda: module(x), device, args.repeats)
            cart, balanced = timed(lambda: cartpole_steps(genomes, device), device, 1)
            results[device] = (out.cpu(), balanced)
            print(f"  {str(device):>6}: build {build * 1e3:8.1f} ms | forward {forward * 1e3:8.2f} ms = "
                  f"{size * args.rows / forward:>15,.0f} genome-activations/s | cart-pole evaluation "
                  f"{cart:7.2f} s ({int(balanced.max())} time steps, {int(balanced.sum()):,} cart-steps balanced)")
        if len(devices) > 1:
            (base, base_out), *others = results.items()
            for device, (out, balanced) in others:
                error = (out - base_out[0]).abs().max().item()
                differ = (balanced != base_out[1]).any(dim=1).sum().item()
                print(f"  {device} vs {base}: max abs output difference {error:.2e}; "
                      f"{differ} of {size:,} genomes' cart-pole steps differ (float rounding at a decision)")


if __name__ == "__main__":
    main()
