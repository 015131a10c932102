"""Custom activation functions registered by name work everywhere a built-in name does."""

from __future__ import annotations

import math

import pytest
import torch

from helpers import doc_snippet, serial_and_parallel_fitness
from neatify import EvolutionConfig, Network, Population
from neatify.activations import register_activation
from neatify.io.schema import genome_dict_problem
from neatify.distributed.wire.columns import WireGenomes, decode_genomes
from neatify.distributed.wire.framing import decode_message, encode_frame
from neatify.nn import NeatModule, NeatPopulationModule
from neatify.nn.export import export_torchscript

register_activation("softsign", lambda x: x / (1.0 + abs(x)), torch.nn.functional.softsign)  # workers import it too
register_activation("scalar_only", math.atan)

CONFIG = EvolutionConfig(population_size=20, activation_default="softsign", activation_options=["softsign", "tanh"],
                         prob_mutate_activation=0.5, prob_add_node=0.5)
INPUTS = [[0.5, -1.0], [2.0, 0.25], [-3.0, 1.5]]


def outputs(genomes):
    return [[Network(g).activate(x)[0] for x in INPUTS] for g in genomes]


def output_fitness(genomes):
    for genome in genomes:
        genome.fitness = sum(Network(genome).activate(x)[0] for x in INPUTS)


def grown_genomes():
    population = Population(num_inputs=2, num_outputs=1, config=CONFIG, seed=4)
    for _ in range(4):
        population.run_generation(output_fitness)
    return population.genomes


def test_a_registered_activation_works_in_configs_networks_modules_export_and_the_wire_check(tmp_path):
    genomes = grown_genomes()
    assert {n.activation for g in genomes for n in g.nodes.values()} == {"softsign", "tanh"}
    expected = torch.tensor(outputs(genomes))
    x = torch.tensor(INPUTS)
    assert torch.allclose(torch.stack([NeatModule(g)(x)[:, 0] for g in genomes]), expected, atol=1e-6)
    assert torch.allclose(NeatPopulationModule(genomes)(x)[:, :, 0], expected, atol=1e-6)
    export_torchscript(genomes[0], tmp_path / "net.pt")
    assert torch.allclose(torch.jit.load(str(tmp_path / "net.pt"))(x)[:, 0], expected[0], atol=1e-6)
    assert all(genome_dict_problem(g.to_dict()) is None for g in genomes)  # checkpoints take them
    frame = encode_frame(WireGenomes.of(genomes).task(1, 0))
    decoded = decode_genomes(decode_message(frame[4], frame[5:]))
    assert [g.to_dict() for g in decoded] == [{**g.to_dict(), "fitness": None} for g in genomes]


@pytest.mark.slow
def test_worker_processes_know_a_name_registered_where_the_fitness_function_lives():
    serial, parallel = serial_and_parallel_fitness(output_fitness, 2, 1, CONFIG, seed=4)
    assert parallel == serial


def test_registration_errors_are_clear():
    with pytest.raises(ValueError, match="'tanh' is a built-in activation"):
        register_activation("tanh", math.tanh)
    genome = Population(num_inputs=2, num_outputs=1, config=CONFIG.replace(activation_default="scalar_only"),
                        seed=1).genomes[0]
    assert Network(genome).activate([1.0, 1.0])  # the scalar function is enough for Network
    with pytest.raises(ValueError, match="'scalar_only' was registered without a torch_function"):
        NeatModule(genome)(torch.zeros(1, 2))
    with pytest.raises(ValueError, match="unknown activation 'nope'"):
        EvolutionConfig(activation_default="nope")


def test_usage_doc_snippet_runs_as_written():
    namespace: dict = {}
    exec(doc_snippet("docs/usage.md", 'register_activation("softsign"'), namespace)
    assert namespace["config"].activation_options == ["softsign", "tanh"]
