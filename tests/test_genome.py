import random

import pytest
from hypothesis import given, settings, strategies as st

from helpers import make_genome
from strategies import genome_lists
from neatify import EvolutionConfig, Genome
from neatify.genome.graph import creates_cycle
from neatify.genome.innovation import InnovationTracker

CONFIG = EvolutionConfig()


def fresh(config=CONFIG, seed=0, num_inputs=2, num_outputs=1):
    rng = random.Random(seed)
    tracker = InnovationTracker(0, num_inputs + num_outputs)
    return Genome.initial(0, num_inputs, num_outputs, config, rng, tracker), rng, tracker


def test_initial_genome_is_fully_connected_with_shared_innovations():
    a, rng, tracker = fresh()
    b = Genome.initial(1, 2, 1, CONFIG, rng, tracker)
    assert sorted((c.in_node, c.out_node) for c in a.connections.values()) == [(0, 2), (1, 2)]
    assert sorted(a.connections) == sorted(b.connections) == [0, 1]
    assert set(a.nodes) == {2} and a.nodes[2].kind == "output"


def test_add_node_splits_a_connection():
    genome, rng, tracker = fresh()
    old = {k: (c.in_node, c.out_node, c.weight) for k, c in genome.connections.items()}
    assert genome.mutate_add_node(CONFIG, rng, tracker)
    disabled = [c for c in genome.connections.values() if not c.enabled]
    assert len(disabled) == 1
    split = disabled[0]
    (new_node,) = [n for n in genome.nodes.values() if n.kind == "hidden"]
    into = [c for c in genome.connections.values() if c.out_node == new_node.id]
    out_of = [c for c in genome.connections.values() if c.in_node == new_node.id]
    assert [(c.in_node, c.weight) for c in into] == [(split.in_node, 1.0)]
    assert [(c.out_node, c.weight) for c in out_of] == [(split.out_node, old[split.innovation][2])]


def test_same_split_in_one_generation_gets_same_numbers():
    a, rng, tracker = fresh()
    b = a.copy(1)
    a.connections[1].enabled = False  # force both to split connection 0
    b.connections[1].enabled = False
    a.mutate_add_node(CONFIG, rng, tracker)
    b.mutate_add_node(CONFIG, rng, tracker)
    assert set(a.nodes) == set(b.nodes)
    assert set(a.connections) == set(b.connections)
    tracker.new_generation()
    c = fresh()[0]
    c.connections[1].enabled = False
    c.mutate_add_node(CONFIG, rng, tracker)
    assert set(c.nodes) - set(a.nodes), "a split in a later generation gets a new node id"


def test_add_connection_adds_a_new_gene_with_known_innovation():
    genome, rng, tracker = fresh()
    genome.mutate_add_node(CONFIG, rng, tracker)
    before = set(genome.connections)
    added = False
    for _ in range(50):
        if genome.mutate_add_connection(CONFIG, rng, tracker) and set(genome.connections) != before:
            added = True
            break
    assert added
    (new,) = set(genome.connections) - before
    conn = genome.connections[new]
    assert tracker.connection(conn.in_node, conn.out_node) == new


def test_feed_forward_genome_never_gains_a_cycle():
    config = EvolutionConfig(prob_add_connection=1.0, prob_add_node=0.5, prob_toggle_enable=0.2)
    genome, rng, tracker = fresh(config)
    for _ in range(200):
        genome.mutate(config, rng, tracker)
        edges = [(c.in_node, c.out_node) for c in genome.connections.values()]
        for i, edge in enumerate(edges):
            assert not creates_cycle(edges[:i] + edges[i + 1:], edge)
    assert not genome.is_recurrent()


def test_recurrent_config_allows_cycles():
    config = EvolutionConfig(prob_add_connection=1.0, prob_add_node=0.5, allow_recurrent=True)
    genome, rng, tracker = fresh(config)
    for _ in range(100):
        genome.mutate(config, rng, tracker)
    assert genome.is_recurrent()


def test_weight_mutation_perturbs_within_bounds():
    config = EvolutionConfig(weight_min_value=-1.0, weight_max_value=1.0, weight_mutation_power=5.0,
                             prob_replace_weight=0.0)
    genome, rng, _ = fresh(config)
    before = [c.weight for c in genome.connections.values()]
    genome.mutate_weights(config, rng)
    after = [c.weight for c in genome.connections.values()]
    assert after != before
    assert all(-1.0 <= w <= 1.0 for w in after)


def test_bias_and_activation_mutation():
    config = EvolutionConfig(prob_mutate_activation=1.0, activation_options=["tanh"])
    genome, rng, tracker = fresh(config)
    genome.mutate_add_node(config, rng, tracker)
    bias = genome.nodes[2].bias
    genome.mutate_biases(config, rng)
    genome.mutate_activations(config, rng)
    assert genome.nodes[2].bias != bias
    hidden = [n for n in genome.nodes.values() if n.kind == "hidden"]
    assert [n.activation for n in hidden] == ["tanh"]
    assert genome.nodes[2].activation == "neat_sigmoid", "outputs keep their activation"


def test_toggle_and_delete_mutations():
    genome, rng, tracker = fresh()
    genome.mutate_toggle_enable(EvolutionConfig(prob_toggle_enable=1.0), rng)
    assert not any(c.enabled for c in genome.connections.values())
    genome, rng, tracker = fresh()
    genome.mutate_add_node(CONFIG, rng, tracker)
    assert genome.mutate_delete_node(rng)
    assert all(n.kind == "output" for n in genome.nodes.values())
    assert all(c.in_node in (0, 1) and c.out_node == 2 for c in genome.connections.values())
    n = len(genome.connections)
    assert genome.mutate_delete_connection(rng)
    assert len(genome.connections) == n - 1


def test_crossover_aligns_by_innovation():
    fitter = make_genome(2, 1, [(2, 0.5, "tanh"), (3, 0.1, "relu")],
                         [(0, 0, 2, 1.0, True), (1, 1, 2, 2.0, False), (2, 0, 3, 3.0, True), (3, 3, 2, 4.0, True)])
    weaker = make_genome(2, 1, [(2, -0.5, "tanh"), (4, 0.0, "relu")],
                         [(0, 0, 2, -1.0, True), (1, 1, 2, -2.0, True), (5, 0, 4, 9.0, True), (6, 4, 2, 9.0, True)],
                         genome_id=1)
    config = EvolutionConfig(prob_inherit_disabled=1.0)
    seen_weights = set()
    for seed in range(40):
        child = Genome.crossover(fitter, weaker, 2, config, random.Random(seed))
        assert sorted(child.connections) == [0, 1, 2, 3], "disjoint/excess genes come from the fitter parent"
        assert set(child.nodes) == {2, 3}
        assert child.connections[2].weight == 3.0 and child.connections[3].weight == 4.0
        assert not child.connections[1].enabled, "disabled in a parent -> disabled at rate 1.0"
        seen_weights.add(child.connections[0].weight)
    assert seen_weights == {1.0, -1.0}, "matching genes come from either parent"
    config = EvolutionConfig(prob_inherit_disabled=0.0)
    child = Genome.crossover(fitter, weaker, 2, config, random.Random(0))
    assert child.connections[1].enabled


def test_compatibility_distance_counts_excess_disjoint_and_weights():
    a = make_genome(2, 1, [(2, 0.0, "tanh")], [(0, 0, 2, 1.0, True), (1, 1, 2, 1.0, True), (3, 0, 2, 0.0, True)])
    b = make_genome(2, 1, [(2, 0.0, "tanh")], [(0, 0, 2, 2.0, True), (2, 1, 2, 0.0, True), (4, 0, 2, 0.0, True),
                                                (5, 0, 2, 0.0, True)], genome_id=1)
    # matching {0}: W = 1.0; disjoint {1, 2, 3}; excess {4, 5}; N = 1 (fewer than 20 genes)
    config = EvolutionConfig(c1=1.0, c2=2.0, c3=0.5)
    assert a.distance(b, config) == pytest.approx(1.0 * 2 + 2.0 * 3 + 0.5 * 1.0)
    assert a.distance(b, config) == b.distance(a, config)
    assert a.distance(a, config) == 0.0
    big = EvolutionConfig(c1=1.0, c2=2.0, c3=0.5, normalize_min_genes=1)
    assert a.distance(b, big) == pytest.approx((2 + 6) / 4 + 0.5)


def test_to_dict_round_trip_is_exact_plain_data():
    genome, rng, tracker = fresh()
    for _ in range(10):
        genome.mutate(EvolutionConfig(prob_add_node=0.5, prob_add_connection=0.5), rng, tracker)
    genome.fitness = 1.25
    data = genome.to_dict()
    assert all(isinstance(v, (int, float, list, type(None))) for v in data.values())
    clone = Genome.from_dict(data)
    assert clone.to_dict() == data


@settings(max_examples=30)
@given(genome_lists(max_size=5, innovations=30),
       st.sampled_from([CONFIG, EvolutionConfig(normalize_min_genes=1, c1=0.5, c2=2.0, c3=1.5)]))
def test_vectorised_distances_equal_the_pairwise_reference(genomes, config):
    """Hypothesis's genomes (a failure shrinks to the smallest ones), few innovations so that many genes match."""
    import numpy as np

    from neatify.speciation.species import GeneTable

    genomes.append(Genome(99, 3, 2))  # no connections at all
    table = GeneTable(genomes, config)
    for ref in genomes:
        expected = [ref.distance(g, config) for g in genomes]
        assert np.allclose(table.distances(ref), expected, rtol=1e-12, atol=1e-12)


def test_every_gene_is_excess_against_a_genome_without_genes():
    """Negative innovation numbers (hand-made genes) too: nothing lies before an empty genome's last
    gene, so the table's merge and the pairwise reference both count every gene as excess."""
    from neatify.speciation.species import GeneTable

    empty = Genome(0, 2, 1)
    negative = make_genome(2, 1, [(2, 0.0, "neat_sigmoid")], [(-5, 0, 2, 1.0, True), (3, 1, 2, 1.0, True)], 1)
    config = EvolutionConfig(c1=2.0, c2=0.5, normalize_min_genes=1)
    assert empty.distance(negative, config) == negative.distance(empty, config) == 2.0
    assert GeneTable([empty, negative], config).distances(empty).tolist() == [0.0, 2.0]


@pytest.mark.parametrize("mode, count", [("full", 12), ("partial 0.5", 6), ("partial 0", 0), ("none", 0),
                                         ("fs_neat", 3)])
def test_initial_connection_modes(mode, count):
    genome, _, _ = fresh(CONFIG.replace(initial_connection=mode), num_inputs=4, num_outputs=3)
    pairs = [(c.in_node, c.out_node) for c in genome.connections.values()]
    assert len(pairs) == len(set(pairs)) == count
    assert all(i in genome.input_ids and o in genome.output_ids for i, o in pairs)
    if mode == "fs_neat":
        assert len({i for i, _ in pairs}) == 1 and {o for _, o in pairs} == set(genome.output_ids)


@pytest.mark.parametrize("mode", ["partial", "partial 1.5", "partial x", "fs-neat", "full 0.5"])
def test_bad_initial_connection_modes_are_refused(mode):
    with pytest.raises(ValueError, match="initial_connection must be 'full', 'partial P'"):
        EvolutionConfig(initial_connection=mode)


def test_distances_over_innovation_numbers_far_apart_equal_the_pairwise_reference():
    """Hand-made genes may number innovations sparsely (up to 2**40 here): the table searches instead of
    sizing a lookup by the largest number (8 TiB)."""
    import numpy as np

    from neatify.speciation.species import GeneTable, speciate

    rng = random.Random(3)
    numbers = [rng.randrange(2**40) for _ in range(30)] + list(range(10))
    genomes = [make_genome(2, 1, [(2, 0.0, "neat_sigmoid")],
                           [(k, 0, 2, rng.gauss(0.0, 1.0), True) for k in rng.sample(numbers, rng.randrange(8))],
                           genome_id=i) for i in range(12)]
    table = GeneTable(genomes, CONFIG)
    for ref in genomes + [make_genome(2, 1, [(2, 0.0, "neat_sigmoid")], [(2**41, 0, 2, 1.0, True)], genome_id=99)]:
        expected = [ref.distance(g, CONFIG) for g in genomes]
        assert np.allclose(table.distances(ref), expected, rtol=1e-12, atol=1e-12)
    species, _ = speciate(genomes, [], 1.0, CONFIG, 0, 0)
    assert sorted(g.id for s in species for g in s.members) == list(range(12))
