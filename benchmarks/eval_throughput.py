"""Evaluation throughput: NeatPopulationModule against neat-python's FeedForwardNetwork.activate.

The same genomes (5-10 hidden nodes each, relu/identity/clamped activations, which neat-python
does not rescale) are built in neatify, converted to neat-python genomes with identical weights
and biases, and run on the same input rows. Outputs are checked equal (float64), then both are
timed side by side in this one run and genome-activations per second are printed.

    python benchmarks/eval_throughput.py [--genomes 1000] [--rows 1000] [--threads N] [--device cuda]

On a GPU (``--device cuda``), neat-python's rate can be taken on the first ``--neat-python-genomes``
genomes only (its time grows linearly with the genome count, so the rate is the same); neatify
runs, and is checked against neat-python on, those genomes and times the whole population.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import neat
import torch

from grown_genomes import ACTIVATIONS, NUM_INPUTS, NUM_OUTPUTS, make_genomes
from neatify import Genome
from neatify.nn.population_module import NeatPopulationModule

NEAT_PYTHON_CONFIG = f"""
[NEAT]
fitness_criterion = max
fitness_threshold = 1.0
pop_size = 10
reset_on_extinction = False
no_fitness_termination = False

[DefaultGenome]
activation_default = identity
activation_mutate_rate = 0.0
activation_options = {" ".join(ACTIVATIONS)}
aggregation_default = sum
aggregation_mutate_rate = 0.0
aggregation_options = sum
bias_init_mean = 0.0
bias_init_stdev = 1.0
bias_max_value = 30.0
bias_min_value = -30.0
bias_mutate_power = 0.5
bias_mutate_rate = 0.7
bias_replace_rate = 0.1
compatibility_disjoint_coefficient = 1.0
compatibility_weight_coefficient = 0.5
conn_add_prob = 0.5
conn_delete_prob = 0.5
enabled_default = True
enabled_mutate_rate = 0.01
feed_forward = True
initial_connection = full
node_add_prob = 0.2
node_delete_prob = 0.2
num_hidden = 0
num_inputs = {NUM_INPUTS}
num_outputs = {NUM_OUTPUTS}
response_init_mean = 1.0
response_init_stdev = 0.0
response_max_value = 30.0
response_min_value = -30.0
response_mutate_power = 0.0
response_mutate_rate = 0.0
response_replace_rate = 0.0
weight_init_mean = 0.0
weight_init_stdev = 1.0
weight_max_value = 30
weight_min_value = -30
weight_mutate_power = 0.5
weight_mutate_rate = 0.8
weight_replace_rate = 0.1

[DefaultSpeciesSet]
compatibility_threshold = 3.0

[DefaultStagnation]
species_fitness_func = max
max_stagnation = 20
species_elitism = 2

[DefaultReproduction]
elitism = 2
survival_threshold = 0.2
"""


def neat_python_config() -> neat.Config:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config"
        path.write_text(NEAT_PYTHON_CONFIG)
        return neat.Config(neat.DefaultGenome, neat.DefaultReproduction, neat.DefaultSpeciesSet,
                           neat.DefaultStagnation, str(path))


def to_neat_python(genome: Genome) -> neat.DefaultGenome:
    """The same network as a neat-python genome: inputs -1..-n, outputs 0..m-1, response 1."""
    def key(node_id: int) -> int:
        if node_id < NUM_INPUTS:
            return -1 - node_id
        return node_id - NUM_INPUTS if node_id < NUM_INPUTS + NUM_OUTPUTS else node_id

    converted = neat.DefaultGenome(genome.id)
    for node in genome.nodes.values():
        gene = neat.genes.DefaultNodeGene(key(node.id))
        gene.bias, gene.response, gene.activation, gene.aggregation = node.bias, 1.0, node.activation, "sum"
        gene.time_constant = 1.0
        converted.nodes[gene.key] = gene
    for conn in genome.connections.values():
        gene = neat.genes.DefaultConnectionGene((key(conn.in_node), key(conn.out_node)), innovation=conn.innovation)
        gene.weight, gene.enabled = conn.weight, conn.enabled
        converted.connections[gene.key] = gene
    return converted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--genomes", type=int, default=1000)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=5, help="neatify forward passes timed (best taken)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--device", default="cpu", help="torch device for NeatPopulationModule")
    parser.add_argument("--neat-python-genomes", type=int, default=0,
                        help="time neat-python on this many of the genomes only (0: all)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    genomes = make_genomes(args.genomes, args.seed)
    hidden = sum(g.size()[0] for g in genomes) / len(genomes)
    rows = torch.rand(args.rows, NUM_INPUTS, generator=torch.Generator().manual_seed(args.seed),
                      dtype=torch.float64) * 2 - 1
    row_lists = rows.tolist()
    print(f"{len(genomes)} genomes (mean {hidden:.2f} hidden nodes), {args.rows} input rows, "
          f"torch threads {torch.get_num_threads()}")

    checked = genomes[:args.neat_python_genomes or len(genomes)]
    config = neat_python_config()
    networks = [neat.nn.FeedForwardNetwork.create(to_neat_python(g), config) for g in checked]
    start, cpu_start = time.perf_counter(), time.process_time()
    reference = [[net.activate(row) for row in row_lists] for net in networks]
    neat_python = (time.perf_counter() - start, time.process_time() - cpu_start)

    device = torch.device(args.device)
    synchronize = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    start = time.perf_counter()
    module = NeatPopulationModule(genomes, device=device)
    synchronize()
    build_time = time.perf_counter() - start
    rows32 = rows.float().to(device)
    module(rows32)  # warm-up
    synchronize()
    ours = (float("inf"), float("inf"))
    for _ in range(args.repeats):
        start, cpu_start = time.perf_counter(), time.process_time()
        module(rows32)
        synchronize()
        ours = (min(ours[0], time.perf_counter() - start), min(ours[1], time.process_time() - cpu_start))

    expected = torch.tensor(reference, dtype=torch.float64)
    module64 = NeatPopulationModule(checked, device=device, dtype=torch.float64)
    error64 = (module64(rows.to(device)).cpu() - expected).abs().max().item()
    error32 = (module(rows32)[:len(checked)].double().cpu() - expected).abs().max().item()
    scale = expected.abs().max().item()
    if error64 > 1e-9 * max(1.0, scale):
        raise SystemExit(f"outputs differ from neat-python: max abs error {error64:.3g}")
    print(f"outputs equal to neat-python: max abs error float64 {error64:.2e}, float32 {error32:.2e} "
          f"(max |output| {scale:.3g})")

    rates = {}
    for label, count, (wall, cpu) in (("neat-python FeedForwardNetwork.activate", len(checked), neat_python),
                                      (f"neatify NeatPopulationModule on {device.type}", len(genomes), ours)):
        activations = count * args.rows
        rates[label] = (activations / wall, activations / cpu)
        print(f"{label:<40}: {count:>6,} genomes, {activations / wall:>14,.0f} genome-activations/s wall "
              f"({wall * 1e3:8.1f} ms), {activations / cpu:>14,.0f} per CPU-second")
    (theirs_wall, theirs_cpu), (ours_wall, ours_cpu) = rates.values()
    print(f"ratio: {ours_wall / theirs_wall:,.0f}x wall clock, {ours_cpu / theirs_cpu:,.0f}x CPU time")
    with_build = len(genomes) * args.rows / (ours[0] + build_time)
    print(f"module build (once per generation): {build_time * 1e3:.0f} ms; ratio with the build included: "
          f"{with_build / theirs_wall:,.1f}x wall clock")


if __name__ == "__main__":
    main()
