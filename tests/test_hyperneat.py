"""HyperNEAT: CPPN configs, substrates, and the batched decoder held equal to the one-genome reference."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings, strategies as st

from helpers import make_genome
from neatify import Population
from neatify.activations import ACTIVATIONS
from neatify.genome.batch import GenomeBatch
from neatify.hyperneat import CPPN_ACTIVATIONS, HyperNEAT, Substrate, cppn_config, grid_coordinates
from neatify.hyperneat.reference import reference_connections
from neatify.network.network import Network
from neatify.nn import NeatModule
from neatify.nn.activations import torch_activation
from neatify.nn.export import export_torchscript
from strategies import genome_lists

SUBSTRATE = Substrate.grid((3, 3), (2, 2), [(2, 3)])


def cppns(hyperneat: HyperNEAT, count: int = 12, seed: int = 3, generations: int = 3):
    """Grown CPPN genomes for ``hyperneat``'s substrate (a few generations on a made-up fitness)."""
    pop = Population(pop_size=count, num_inputs=hyperneat.cppn_inputs, num_outputs=hyperneat.cppn_outputs,
                     config=cppn_config(prob_add_node=0.5, target_species=2), seed=seed)
    for _ in range(generations):
        pop.run_generation(lambda genomes: [setattr(g, "fitness", float(len(g.connections))) for g in genomes])
    return pop.ask()


def test_every_cppn_activation_has_matching_scalar_and_torch_functions():
    x = torch.linspace(-4.0, 4.0, 81, dtype=torch.float64)
    for name in CPPN_ACTIVATIONS:
        expected = torch.tensor([ACTIVATIONS[name](v) for v in x.tolist()], dtype=torch.float64)
        assert torch.allclose(torch_activation(name)(x), expected, atol=1e-12), name
    assert ACTIVATIONS["step"](0.0) == 0.0 and ACTIVATIONS["step"](1e-9) == 1.0


def test_cppn_config_evolves_hidden_activations_from_the_cppn_set_and_takes_overrides():
    config = cppn_config(population_size=30)
    assert config.population_size == 30 and config.prob_mutate_activation > 0
    genomes = cppns(HyperNEAT(SUBSTRATE), count=30, generations=6)
    hidden = {n.activation for g in genomes for n in g.nodes.values() if n.kind == "hidden"}
    assert len(hidden) >= 3 and hidden <= set(CPPN_ACTIVATIONS)


def test_grid_coordinates_are_row_major_over_the_range():
    assert grid_coordinates(2, 3) == ((-1.0, -1.0), (0.0, -1.0), (1.0, -1.0), (-1.0, 1.0), (0.0, 1.0), (1.0, 1.0))
    assert grid_coordinates(1, 1, z=0.5) == ((0.0, 0.0, 0.5),)


def test_substrate_ids_layers_and_run_file_table_round_trip():
    assert [ids.tolist() for ids in SUBSTRATE.layer_ids()] == [list(range(9)), list(range(13, 19)), [9, 10, 11, 12]]
    assert SUBSTRATE.dimensions == 3 and SUBSTRATE.num_hidden == 6
    assert Substrate.from_dict(SUBSTRATE.to_dict()) == SUBSTRATE
    assert Substrate.from_dict({"grid": {"inputs": [3, 3], "outputs": [2, 2], "hidden": [[2, 3]]}}) == SUBSTRATE
    one_layer = Substrate([[0, 0], [1, 0]], [[0, 1]], hidden=[[0.5, 0.5], [0.2, 0.5]])
    assert one_layer.hidden == (((0.5, 0.5), (0.2, 0.5)),)


@pytest.mark.parametrize("kwargs, message", [
    ({"inputs": [[0, 0], [0, 0]], "outputs": [[1, 1]]}, r"duplicate substrate coordinate \(0.0, 0.0\) in inputs"),
    ({"inputs": [[0, 0]], "outputs": [[1, 1]], "hidden": [[0, 0], [0.5, 0], [0, 0]]}, r"\(0.0, 0.0\) in hidden\[0\]"),
    ({"inputs": [[0, 0]], "outputs": [[1, 1, 1]]}, "must all be 2D or all 3D, got dimensions \\[2, 3\\]"),
    ({"inputs": [], "outputs": [[1, 1]]}, "substrate inputs has no coordinates"),
    ({"inputs": [[0, "a"]], "outputs": [[1, 1]]}, "substrate inputs must be a list of coordinate lists"),
    ({"inputs": [[0, math.inf]], "outputs": [[1, 1]]}, "not finite"),
])
def test_bad_substrates_are_refused_naming_the_problem(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Substrate(**kwargs)


def test_bad_substrate_tables_and_task_shapes_are_named():
    with pytest.raises(ValueError, match="unknown substrate key.*input"):
        Substrate.from_dict({"input": [[0, 0]], "outputs": [[1, 1]]})
    with pytest.raises(ValueError, match="needs inputs"):
        Substrate.from_dict({"outputs": [[1, 1]]})
    with pytest.raises(ValueError, match="grid table needs inputs = .* got {'inputs': \\[3, 3\\]}"):
        Substrate.from_dict({"grid": {"inputs": [3, 3]}})
    with pytest.raises(ValueError, match="the substrate has 9 input coordinates but boxes has 121 inputs"):
        SUBSTRATE.check_task(121, 4, "boxes")


def test_a_cppn_with_the_wrong_inputs_or_a_bad_setting_is_refused_by_name():
    wrong = make_genome(4, 1, [(4, 0.0, "tanh")], [], genome_id=17)
    with pytest.raises(ValueError, match="CPPN genome 17 has 4 inputs and 1 outputs; a 3D substrate needs 6 inputs"):
        HyperNEAT(SUBSTRATE).phenotypes([wrong])
    with pytest.raises(ValueError, match="with LEO needs 6 inputs .* and 2 output"):
        HyperNEAT(SUBSTRATE, leo=True).phenotypes([make_genome(6, 1, [(6, 0.0, "tanh")], [])])
    with pytest.raises(ValueError, match=r"has 4 inputs .* needs 7 inputs \(x1, y1, x2, y2, dx, dy, distance\)"):
        HyperNEAT(Substrate([[0, 0]], [[1, 1]]), deltas=True, distance=True).phenotypes([wrong])
    for bad in ({"threshold": 1.0}, {"max_weight": 0.0}, {"max_connections": -1}, {"output_activation": "sigmod"}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            HyperNEAT(SUBSTRATE, **bad)


def test_the_cppn_reads_the_deltas_and_the_distance_after_the_coordinates_when_asked():
    substrate = Substrate([[0.0, 0.5], [1.0, 0.0]], [[-1.0, 0.5]])
    assert HyperNEAT(substrate).pairs.inputs.tolist() == [[0.0, 0.5, -1.0, 0.5], [1.0, 0.0, -1.0, 0.5]]
    both = HyperNEAT(substrate, deltas=True, distance=True)
    assert both.cppn_input_names == ["x1", "y1", "x2", "y2", "dx", "dy", "distance"] and both.cppn_inputs == 7
    assert both.pairs.inputs.tolist() == [[0.0, 0.5, -1.0, 0.5, -1.0, 0.0, 1.0],
                                          [1.0, 0.0, -1.0, 0.5, -2.0, 0.5, math.sqrt(4.25)]]
    assert HyperNEAT(SUBSTRATE, distance=True).cppn_input_names == ["x1", "y1", "z1", "x2", "y2", "z2", "distance"]


coordinate = st.integers(-4, 4).map(lambda v: v / 4)


@st.composite
def substrates(draw, dimensions: int):
    """A substrate of distinct random lattice points: 1-4 inputs and outputs, 0-2 hidden layers."""
    points = draw(st.lists(st.tuples(*[coordinate] * dimensions), min_size=14, max_size=14, unique=True))
    sizes = [draw(st.integers(1, 4)), draw(st.integers(1, 4))] + draw(st.lists(st.integers(1, 3), max_size=2))
    layers, start = [], 0
    for size in sizes:
        layers.append(points[start:start + size])
        start += size
    return Substrate(layers[0], layers[1], tuple(layers[2:]))


@st.composite
def decodings(draw):
    """A HyperNEAT setting, in float64, and random CPPNs of the shape it needs."""
    dimensions, leo = draw(st.sampled_from([2, 3])), draw(st.booleans())
    hyperneat = HyperNEAT(draw(substrates(dimensions)), threshold=draw(st.sampled_from([0.0, 0.2, 0.5])),
                          max_weight=draw(st.sampled_from([1.0, 5.0])), leo=leo, deltas=draw(st.booleans()),
                          distance=draw(st.booleans()), max_connections=draw(st.none() | st.integers(0, 6)),
                          dtype=torch.float64)
    genomes = draw(genome_lists(5, activations=CPPN_ACTIVATIONS, num_inputs=hyperneat.cppn_inputs,
                                num_outputs=2 if leo else 1))
    return hyperneat, genomes


def undecided(genome, hyperneat: HyperNEAT) -> set[tuple[int, int]]:
    """Pairs whose CPPN output lies within rounding of the expression boundary (either side is right)."""
    cppn, pairs = Network(genome), hyperneat.pairs
    close = set()
    for src, dst, row in zip(pairs.src.tolist(), pairs.dst.tolist(), pairs.inputs.tolist()):
        cppn.reset()
        out = cppn.activate(row)
        edge = abs(out[1]) if hyperneat.leo else abs(abs(out[0]) - hyperneat.threshold)
        if edge < 1e-9:
            close.add((src, dst))
    return close


@settings(max_examples=60)
@given(decodings())
def test_batched_decoding_equals_the_one_genome_reference(case):
    hyperneat, genomes = case
    batch = hyperneat.phenotypes(genomes)
    assert batch.ids.tolist() == [g.id for g in genomes]
    for row, genome in enumerate(genomes):
        expected = reference_connections(genome, hyperneat)
        got = {(c.in_node, c.out_node): c.weight for c in batch.genes(row)[1].values()}
        close = set() if hyperneat.max_connections is not None else undecided(genome, hyperneat)
        assert set(got) - close == set(expected) - close, f"genome {genome.id}"
        for pair in set(got) & set(expected):
            assert got[pair] == pytest.approx(expected[pair], abs=1e-9), (genome.id, pair)


def test_the_cap_keeps_the_strongest_connections_and_counts_what_it_dropped():
    free = HyperNEAT(SUBSTRATE, dtype=torch.float64)
    genomes = cppns(free)
    sizes = free.phenotypes(genomes).sizes()[1]
    capped = HyperNEAT(SUBSTRATE, max_connections=10, dtype=torch.float64)
    batch = capped.phenotypes(genomes)
    assert batch.sizes()[1].tolist() == [min(10, int(n)) for n in sizes]
    assert capped.capped.phenotypes == int((sizes > 10).sum()) > 0
    assert capped.capped.connections == int((sizes - 10).clip(min=0).sum())
    for row, genome in enumerate(genomes):
        kept = {(c.in_node, c.out_node): c.weight for c in batch.genes(row)[1].values()}
        assert kept == pytest.approx(reference_connections(genome, capped), abs=1e-9)


def test_phenotypes_run_as_a_population_module_and_one_exports_like_any_genome(tmp_path):
    hyperneat = HyperNEAT(SUBSTRATE)
    genomes = cppns(hyperneat)
    module, views = hyperneat.decode(genomes), hyperneat.phenotypes(genomes).views()
    x = torch.rand(5, 9, generator=torch.Generator().manual_seed(0))
    batched = module(x)
    assert batched.shape == (len(genomes), 5, 4)
    for i, view in enumerate(views):
        assert torch.allclose(NeatModule(view)(x), batched[i], atol=1e-5)
    export_torchscript(views[0], tmp_path / "champion.pt")
    assert torch.allclose(torch.jit.load(str(tmp_path / "champion.pt"))(x), batched[0], atol=1e-5)


def test_a_cppn_expressing_nothing_gives_a_network_of_its_output_biases():
    silent = make_genome(6, 1, [(6, 0.0, "tanh")], [], genome_id=5)  # output tanh(0) = 0: below any threshold
    batch = HyperNEAT(SUBSTRATE).phenotypes(GenomeBatch.from_genomes([silent]))
    assert batch.sizes()[1].tolist() == [0]
    out = HyperNEAT(SUBSTRATE, output_activation="identity").decode([silent])(torch.ones(2, 9))
    assert out.abs().max().item() == 0.0


@pytest.mark.parametrize("options", [{}, {"leo": True}, {"max_connections": 20, "hidden_activation": "tanh"}])
def test_dense_networks_compute_what_the_decoded_population_module_computes(options):
    hyperneat = HyperNEAT(SUBSTRATE, dtype=torch.float64, **options)
    genomes = cppns(hyperneat, seed=8)
    x = torch.rand(6, 9, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    expected = hyperneat.decode(genomes)(x)
    assert expected.abs().sum() > 0
    assert torch.allclose(hyperneat.networks(genomes)(x), expected, atol=1e-12)
    own = torch.rand(len(genomes), 6, 9, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    assert torch.allclose(hyperneat.networks(genomes)(own), hyperneat.decode(genomes)(own), atol=1e-12)


def test_fitness_in_chunks_of_max_genomes_equals_fitness_in_one_go():
    hyperneat = HyperNEAT(SUBSTRATE, dtype=torch.float64)
    genomes = cppns(hyperneat)
    x = torch.rand(4, 9, generator=torch.Generator().manual_seed(3), dtype=torch.float64)

    def task(module):
        return module(x).sum(dim=(1, 2))

    hyperneat.fitness(task)(genomes)
    whole = [g.fitness for g in genomes]
    hyperneat.fitness(task, max_genomes=5)(genomes)
    assert [g.fitness for g in genomes] == pytest.approx(whole, abs=1e-12) and len(set(whole)) > 1
    with pytest.raises(ValueError, match="max_genomes must be at least 1, got 0"):
        hyperneat.fitness(task, max_genomes=0)
    with pytest.raises(ValueError, match="the task returned 1 fitness values for 12 genomes"):
        hyperneat.fitness(lambda module: [0.0])(genomes)


def test_sheets_on_one_grid_are_queried_once_and_decode_as_the_reference_does():
    sheet = grid_coordinates(3, 3)
    hyperneat = HyperNEAT(Substrate(sheet, sheet, (sheet,)), dtype=torch.float64)
    rows, pair_row = hyperneat.pairs.distinct
    assert len(rows) == 81 and len(pair_row) == 162 and (pair_row[81:] == pair_row[:81]).all()
    genomes = cppns(hyperneat, count=6)
    batch = hyperneat.phenotypes(genomes)
    for row, genome in enumerate(genomes):
        got = {(c.in_node, c.out_node): c.weight for c in batch.genes(row)[1].values()}
        assert got == pytest.approx(reference_connections(genome, hyperneat), abs=1e-9)
