"""ES-HyperNEAT: the batched decoder against the one-genome reference on random CPPNs, substrates and settings;
the phenotypes run as NEATify networks; bad input named; oversized phenotypes capped."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from helpers import doc_snippet, make_genome
from neatify.activations import ACTIVATIONS, BUILT_IN, register_activation
from neatify.hyperneat import es_quadtree
from neatify.hyperneat.es_batched import ESHyperNEAT
from neatify.hyperneat.es_params import ESParams
from neatify.hyperneat.es_reference import ReferenceES
from neatify.network.network import Network
from neatify.nn.module import NeatModule
from strategies import genome_lists

CPPN_ACTIVATIONS = ("sin", "gauss", "sigmoid", "tanh", "abs", "identity")
XOR_LIKE = ([(-1.0, -1.0), (0.0, -1.0), (1.0, -1.0)], [(0.0, 1.0)])
"""Three inputs along the bottom, one output on top: PUREPLES's XOR substrate."""

on_grid = st.tuples(st.integers(-4, 4), st.integers(-4, 4)).map(lambda p: (p[0] / 4, p[1] / 4))
"""Points that quadtree centres can coincide with (found points equal to inputs or outputs)."""
anywhere = st.tuples(st.floats(-1.0, 1.0), st.floats(-1.0, 1.0))


@st.composite
def substrates(draw: st.DrawFn) -> tuple[list, list]:
    """2 to 5 distinct points, split into inputs and outputs."""
    points = draw(st.lists(on_grid | anywhere, min_size=2, max_size=5, unique=True))
    split = draw(st.integers(1, len(points) - 1))
    return points[:split], points[split:]


@st.composite
def es_params(draw: st.DrawFn) -> ESParams:
    """Settings over their whole range, small trees and caps that bite. Thresholds are not 0 (a variance of
    equal weights is 0 or a rounding error, depending on the order of the sum)."""
    max_depth = draw(st.integers(1, 3))
    return ESParams(
        initial_depth=draw(st.integers(0, max_depth)), max_depth=max_depth,
        division_threshold=draw(st.sampled_from([0.001, 0.03, 0.3, 1.0])),
        variance_threshold=draw(st.sampled_from([0.001, 0.03, 0.3])),
        band_threshold=draw(st.sampled_from([0.01, 0.1, 0.3, 1.0])),
        iteration_level=draw(st.integers(0, 2)), max_weight=draw(st.sampled_from([1.0, 5.0])),
        weight_threshold=draw(st.sampled_from([0.0, 0.2, 0.5])), feed_forward=draw(st.booleans()),
        max_hidden=draw(st.sampled_from([0, 2, 6, 256])), max_connections=draw(st.sampled_from([0, 3, 12, 4096])),
        cppn_output=draw(st.integers(0, 1)))


def cppn_lists(max_size: int = 4):
    """Feed-forward CPPN genomes of 4 inputs and 2 outputs, random structure and activations."""
    return genome_lists(max_size, activations=CPPN_ACTIVATIONS, num_inputs=4, num_outputs=2, cyclic=False)


def wave(genome_id: int, frequency: float = 9.0) -> object:
    """A CPPN whose weight is sin(2 sin(f (x1 + x2) + f/2 (y1 + y2) + 0.5)): a dense pattern that expresses many
    points both from a source and into a target."""
    nodes = [(4, 0.0, "sin"), (5, 0.0, "identity"), (6, 0.5, "sin")]
    connections = [(k, source, 6, frequency if source % 2 == 0 else frequency / 2, True) for k, source in
                   enumerate(range(4))]
    return make_genome(4, 2, nodes, connections + [(4, 6, 4, 2.0, True), (5, 0, 5, 1.0, True)], genome_id)


def silent(genome_id: int) -> object:
    """A CPPN of weight 0 everywhere."""
    return make_genome(4, 2, [(4, 0.0, "identity"), (5, 0.0, "identity")], [], genome_id)


@settings(max_examples=25)
@given(cppns=cppn_lists(), substrate=substrates(), params=es_params())
def test_batched_phenotypes_equal_the_reference(cppns, substrate, params):
    inputs, outputs = substrate
    reference = ReferenceES(inputs, outputs, params)
    decoded = ESHyperNEAT(inputs, outputs, params).phenotypes(cppns)
    views = decoded.batch.views()
    for row, cppn in enumerate(cppns):
        expected = reference.decode(cppn)
        hidden = decoded.hidden_points[decoded.hidden_start[row]:decoded.hidden_start[row + 1]]
        assert list(map(tuple, hidden.tolist())) == expected.hidden
        got = sorted((c.in_node, c.out_node, c.weight) for c in views[row].connections.values())
        assert [(s, d) for s, d, _ in got] == [(s, d) for s, d, _ in expected.connections]
        assert np.allclose([w for *_, w in got], [w for *_, w in expected.connections], rtol=1e-9, atol=1e-12)
        assert bool(decoded.capped[row]) == expected.capped
        assert len(expected.hidden) <= params.max_hidden and len(expected.connections) <= params.max_connections


@settings(max_examples=10)
@given(cppns=cppn_lists(), substrate=substrates())
def test_batched_phenotypes_compute_what_the_reference_networks_compute(cppns, substrate):
    inputs, outputs = substrate
    params = ESParams(initial_depth=1, max_depth=2, division_threshold=0.03, band_threshold=0.1)
    module = ESHyperNEAT(inputs, outputs, params).decode(cppns, dtype=torch.float64)
    rows = np.random.default_rng(0).uniform(-1.0, 1.0, (5, len(inputs)))
    out = module(torch.from_numpy(rows)).numpy()
    reference = ReferenceES(inputs, outputs, params)
    for k, cppn in enumerate(cppns):
        net = Network(reference.decode(cppn).genome(cppn.id))
        assert np.allclose(out[k], [net.activate(list(row)) for row in rows], atol=1e-9)


def test_a_dense_pattern_grows_hidden_nodes_that_run_as_a_neat_module():
    params = ESParams(initial_depth=2, max_depth=3, division_threshold=0.03, variance_threshold=0.03,
                      band_threshold=0.1)
    decoded = ESHyperNEAT(*XOR_LIKE, params).phenotypes([wave(7)])
    hidden, connections = decoded.sizes()
    assert hidden[0] > 0 and connections[0] > hidden[0]
    assert decoded.batch.ids.tolist() == [7]
    genome = decoded.batch.views()[0]
    assert genome.size() == (hidden[0], connections[0])
    xs = torch.tensor([[0.0, 1.0, 0.5], [1.0, -1.0, 0.0]])
    single = NeatModule(genome)(xs)
    batched = ESHyperNEAT(*XOR_LIKE, params).decode([wave(7)])(xs)[0]
    assert torch.allclose(single, batched, atol=1e-6)
    points = decoded.hidden_points
    assert (np.abs(points) < 1.0).all() and len({tuple(p) for p in points.tolist()}) == len(points)


def test_connections_go_up_unless_feed_forward_is_off():
    for feed_forward in (True, False):
        params = ESParams(initial_depth=2, max_depth=3, band_threshold=0.1, feed_forward=feed_forward)
        decoded = ESHyperNEAT(*XOR_LIKE, params).phenotypes([wave(0), wave(1, 5.0)])
        batch = decoded.batch
        y = {}
        for row in range(len(batch)):
            points = decoded.hidden_points[decoded.hidden_start[row]:decoded.hidden_start[row + 1]]
            y[row] = [p[1] for p in XOR_LIKE[0] + XOR_LIKE[1]] + points[:, 1].tolist()
        owner = batch.conn_owner()
        rising = [y[r][a] < y[r][b] for r, a, b in zip(owner, batch.conn_in, batch.conn_out)]
        assert all(rising) if feed_forward else not all(rising)


def test_phenotypes_past_the_caps_are_cut_and_counted():
    free = ESParams(initial_depth=2, max_depth=3, band_threshold=0.1)
    hidden, connections = ESHyperNEAT(*XOR_LIKE, free).phenotypes([wave(0)]).sizes()
    assert hidden[0] > 3 and connections[0] > 5
    capped = ESHyperNEAT(*XOR_LIKE, ESParams(initial_depth=2, max_depth=3, band_threshold=0.1, max_hidden=3,
                                             max_connections=5)).phenotypes([wave(0), silent(1)])
    hidden, connections = capped.sizes()
    assert hidden[0] <= 3 and connections[0] <= 5
    assert capped.capped.tolist() == [True, False]  # the empty CPPN expresses nothing and loses nothing


def test_with_no_expressed_weight_the_phenotype_is_its_outputs_alone():
    flat = make_genome(4, 1, [(4, 0.1, "identity")], [], 3)  # weight 0.1: below the expression threshold
    decoded = ESHyperNEAT(*XOR_LIKE).phenotypes([flat])
    assert decoded.sizes()[0].tolist() == [0] and decoded.sizes()[1].tolist() == [0]
    # 4 trees (3 inputs, 1 output), none divided past the root's 4 children (equal weights); a child of
    # weight 0 expresses nothing whatever its neighbours, so none is queried
    assert decoded.queries == 4 * 4
    assert ESHyperNEAT(*XOR_LIKE).decode([flat])(torch.zeros(2, 3)).tolist() == [[[0.5], [0.5]]]  # sigmoid(0)


@pytest.mark.parametrize("changes, named", [
    ({"initial_depth": -1}, "initial_depth"), ({"max_depth": 0}, "max_depth"), ({"max_depth": 11}, "max_depth"),
    ({"initial_depth": 4, "max_depth": 3}, "initial_depth"), ({"division_threshold": -0.1}, "division_threshold"),
    ({"variance_threshold": math.nan}, "variance_threshold"), ({"band_threshold": -1.0}, "band_threshold"),
    ({"iteration_level": -1}, "iteration_level"), ({"max_weight": 0.0}, "max_weight"),
    ({"weight_threshold": 1.0}, "weight_threshold"), ({"activation": "nope"}, "activation"),
    ({"max_hidden": -1}, "max_hidden"), ({"max_connections": -5}, "max_connections"),
    ({"cppn_output": -1}, "cppn_output"), ({"max_depth": 2.5}, "max_depth"), ({"feed_forward": 1}, "feed_forward"),
])
def test_parameters_out_of_range_are_named(changes, named):
    with pytest.raises((ValueError, TypeError), match=f"ESParams.{named}"):
        ESParams(**changes)


@pytest.mark.parametrize("inputs, outputs, named", [
    ([], [(0.0, 1.0)], "inputs"), ([(0.0, 0.0)], [], "outputs"),
    ([(0.0, 0.0), (0.5, 1.5)], [(0.0, 1.0)], r"inputs\[1\]"), ([(0.0, 0.0)], [(math.inf, 0.0)], r"outputs\[0\]"),
    ([(0.0, 0.0, 1.0)], [(0.0, 1.0)], r"inputs\[0\]"), ([(0.0, 0.0), (0.0, 0.0)], [(0.0, 1.0)], r"inputs\[1\]"),
    ([(0.0, 0.5)], [(1.0, 1.0), (0.0, 0.5)], r"outputs\[1\].*repeats inputs\[0\]"),
])
def test_bad_substrate_points_are_named(inputs, outputs, named):
    for decoder in (ESHyperNEAT, ReferenceES):
        with pytest.raises(ValueError, match=named):
            decoder(inputs, outputs)


def test_cppns_of_the_wrong_shape_are_named():
    wrong_inputs = make_genome(3, 1, [(3, 0.0, "sin")], [], 12)
    too_few_outputs = make_genome(4, 1, [(4, 0.0, "sin")], [], 13)
    recurrent = make_genome(4, 1, [(4, 0.0, "sin"), (5, 0.0, "tanh")],
                            [(0, 0, 5, 1.0, True), (1, 5, 5, 0.5, True), (2, 5, 4, 1.0, True)], 14)
    cases = [([wrong_inputs], ESParams(), "genome 12 has 3 inputs"),
             ([too_few_outputs], ESParams(cppn_output=1), "genome 13 has 1 outputs"),
             ([recurrent], ESParams(), "genome 14 is recurrent")]
    for cppns, params, message in cases:
        with pytest.raises(ValueError, match=message):
            ESHyperNEAT(*XOR_LIKE, params).phenotypes(cppns)
        with pytest.raises(ValueError, match=message):
            ReferenceES(*XOR_LIKE, params).decode(cppns[0])
    with pytest.raises(ValueError, match="at least one CPPN"):
        ESHyperNEAT(*XOR_LIKE).phenotypes([])


def test_a_cppn_with_an_activation_the_compiled_evaluator_lacks_is_named():
    register_activation("es_test_softsign", lambda x: x / (1.0 + abs(x)))
    cppn = make_genome(4, 2, [(4, 0.0, "es_test_softsign"), (5, 0.0, "identity")], [(0, 0, 4, 1.0, True)], 15)
    ReferenceES(*XOR_LIKE).decode(cppn)  # the one-genome reference runs any activation
    with pytest.raises(ValueError, match="CPPN genome 15 uses activation 'es_test_softsign'"):
        ESHyperNEAT(*XOR_LIKE).phenotypes([wave(1), cppn])


@pytest.mark.slow
def test_the_worked_example_runs_as_written():
    namespace: dict = {}
    exec(doc_snippet("docs/es_hyperneat.md", "es = ESHyperNEAT(inputs, outputs"), namespace)
    best, champion, hidden = namespace["best"], namespace["champion"], namespace["hidden"]
    assert 0.0 < best.fitness <= 4.0 and champion.size()[0] == hidden[0] == len(namespace["points"])
    decoded = namespace["es"].decode([best])(namespace["cases"])[0]
    assert torch.allclose(NeatModule(champion)(namespace["cases"]), decoded, atol=1e-6)


def test_levels_wider_than_a_query_batch_equal_the_reference():
    params = ESParams(initial_depth=5, max_depth=5, band_threshold=0.1, iteration_level=0)
    assert 4 ** 4 > es_quadtree.BATCH  # the deepest level of every tree takes several batches
    cppns = [wave(k, 3.0 + k) for k in range(2)]
    decoded = ESHyperNEAT(*XOR_LIKE, params).phenotypes(cppns)
    reference = ReferenceES(*XOR_LIKE, params)
    assert decoded.sizes()[1].sum() > 0
    for row, (cppn, genome) in enumerate(zip(cppns, decoded.batch.views())):
        expected = reference.decode(cppn)
        got = sorted((c.in_node, c.out_node, c.weight) for c in genome.connections.values())
        assert [(s, d) for s, d, _ in got] == [(s, d) for s, d, _ in expected.connections]
        assert np.allclose([w for *_, w in got], [w for *_, w in expected.connections], rtol=1e-9, atol=1e-12)


def test_trees_grown_one_at_a_time_give_the_same_phenotypes(monkeypatch):
    params = ESParams(initial_depth=1, max_depth=3, band_threshold=0.1, division_threshold=0.03)
    cppns = [wave(k, 3.0 + k) for k in range(3)]
    together = ESHyperNEAT(*XOR_LIKE, params).phenotypes(cppns)
    monkeypatch.setattr(es_quadtree, "GROUP_SQUARES", 1)  # one tree per group
    alone = ESHyperNEAT(*XOR_LIKE, params).phenotypes(cppns)
    assert together.batch.sizes()[1].sum() > 0 and together.queries == alone.queries
    for name in ("node_start", "conn_start", "conn_in", "conn_out", "conn_weight"):
        assert np.array_equal(getattr(together.batch, name), getattr(alone.batch, name))
    assert np.array_equal(together.hidden_points, alone.hidden_points)


def test_the_compiled_activations_compute_what_neatify_activations_compute():
    assert set(es_quadtree.ACTIVATION_CODES) == BUILT_IN
    xs = np.array([-100.0, -3.5, -1.0, -0.3, 0.0, 0.2, 0.7, 2.0, 3.5, 61.0])
    for name, code in es_quadtree.ACTIVATION_CODES.items():
        values = xs[None, :].copy()
        es_quadtree._activate(code, values, 0, len(xs))
        assert np.allclose(values[0], [ACTIVATIONS[name](x) for x in xs.tolist()], rtol=1e-12, atol=0.0), name
