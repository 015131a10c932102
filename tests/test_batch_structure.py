"""Bulk add-node and add-connection over a GenomeBatch: for given random choices, every row ends as the
plain per-genome operators leave it (same genes, same tracker numbers), and the batch stays well formed."""

from __future__ import annotations

import random
from functools import lru_cache

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from helpers import doc_snippet, make_genome
from strategies import FAR, genome_batches, values
from neatify import EvolutionConfig, Genome, Population
from neatify.breeding.structure import add_connections, add_nodes, connect, split_connections
from neatify.genome.genes import ConnectionGene
from neatify.genome.batch import GenomeBatch
from neatify.genome.graph import closes_cycle, evaluation_plan, successor_map
from neatify.genome.innovation import InnovationTracker

GROWING = dict(prob_add_node=0.3, prob_add_connection=0.8, prob_toggle_enable=0.05, target_species=0)


@lru_cache(maxsize=None)
def _evolved(recurrent: bool, seed: int) -> tuple[GenomeBatch, dict]:
    """A batch of an evolved population (seeded fitness) and its tracker's state."""
    config = EvolutionConfig(allow_recurrent=recurrent, **GROWING)
    pop = Population(pop_size=120, num_inputs=3, num_outputs=2, config=config, seed=seed)

    def fitness(genomes):
        for g in genomes:
            g.fitness = random.Random(seed * 100_003 + g.id).random()

    for _ in range(6):
        pop.run_generation(fitness)
    return GenomeBatch.from_genomes(pop.genomes), pop.tracker.to_dict()


def _chains(copies: int) -> tuple[GenomeBatch, dict]:
    """Hand-made genomes: a long chain with ids far apart, a disabled back-door and a repeated pair, and
    a ladder of diamonds (many paths to every node)."""
    hidden = [10**9 + 7 * k for k in range(60)]
    path = [0] + hidden + [2]
    chain = [(k, a, b, 0.5, True) for k, (a, b) in enumerate(zip(path, path[1:]))]
    chain += [(100, 1, hidden[30], 0.1, False), (101, hidden[40], hidden[45], 0.2, True),
              (102, hidden[40], hidden[45], 0.3, False)]
    rungs = [10 + 2 * k for k in range(20)] + [11 + 2 * k for k in range(20)]
    ladder = [(200 + k, a, b, 1.0, k % 3 > 0) for k, (a, b) in enumerate(
        [(10 + 2 * i + x, 10 + 2 * i + 2 + y) for i in range(19) for x in (0, 1) for y in (0, 1)])]
    ladder += [(300, 0, 10, 1.0, True), (301, 1, 11, 1.0, True), (302, 48, 2, 1.0, True), (303, 49, 2, 1.0, True)]
    genomes = []
    for k in range(copies):
        nodes, conns = ([2] + hidden, chain) if k % 2 else ([2] + rungs, ladder)
        genomes.append(make_genome(2, 1, [(n, 0.0, "neat_sigmoid") for n in nodes], conns, genome_id=k))
    return GenomeBatch.from_genomes(genomes), InnovationTracker(400, 10**9 + 1000).to_dict()


def _genes(batch: GenomeBatch, row: int) -> tuple:
    nodes, conns = batch.genes(row)
    return sorted(n.to_list() for n in nodes.values()), sorted(c.to_list() for c in conns.values())


def _genome_genes(genome: Genome) -> tuple:
    return (sorted(n.to_list() for n in genome.nodes.values()),
            sorted(c.to_list() for c in genome.connections.values()))


def _plain_connect(genome: Genome, sources: list[int], targets: list[int], weight: float,
                   config: EvolutionConfig, tracker: InnovationTracker) -> None:
    """``Genome.mutate_add_connection``'s walk over given tries (local indices)."""
    nodes = sorted(genome.nodes)
    candidates = genome.input_ids + nodes
    existing = {(c.in_node, c.out_node): c for c in genome.connections.values()}
    successors = successor_map(existing)
    for s, t in zip(sources, targets):
        src, dst = candidates[s], candidates[t]
        conn = existing.get((src, dst))
        if conn is not None:
            if not conn.enabled:
                conn.enabled = True
                return
            continue
        if not config.allow_recurrent and closes_cycle(successors, (src, dst)):
            continue
        innovation = tracker.connection(src, dst)
        genome.connections[innovation] = ConnectionGene(innovation, src, dst, weight, True)
        return


def _assert_well_formed(batch: GenomeBatch, feed_forward: bool) -> None:
    assert batch.node_start[-1] == len(batch.node_id) and batch.conn_start[-1] == len(batch.conn_innovation)
    assert (np.diff(batch.node_start) >= 0).all() and (np.diff(batch.conn_start) >= 0).all()
    for row in range(len(batch)):
        ids = batch.node_id[batch.node_start[row]:batch.node_start[row + 1]]
        lo, hi = batch.conn_start[row], batch.conn_start[row + 1]
        assert (np.diff(ids) > 0).all() and (np.diff(batch.conn_innovation[lo:hi]) > 0).all()
        if feed_forward:
            edges = list(zip(batch.conn_in[lo:hi].tolist(), batch.conn_out[lo:hi].tolist()))
            outputs = list(range(batch.num_inputs, batch.num_inputs + batch.num_outputs))
            assert not evaluation_plan(edges, list(range(batch.num_inputs)), outputs).is_recurrent


def _frozen(batch: GenomeBatch) -> list:
    return [getattr(batch, name).copy() for name in ("node_id", "node_bias", "conn_innovation", "conn_enabled",
                                                     "conn_weight", "conn_start")]


BATCHES = [pytest.param(lambda: _evolved(False, 1), False, id="feed-forward"),
           pytest.param(lambda: _evolved(True, 2), True, id="recurrent"),
           pytest.param(lambda: _chains(16), False, id="chains")]


@pytest.mark.parametrize("make, recurrent", BATCHES)
def test_connect_equals_the_plain_walk_over_the_same_tries(make, recurrent):
    batch, tracker_state = make()
    config = EvolutionConfig(allow_recurrent=recurrent, add_connection_attempts=12)
    draw = np.random.default_rng(5)
    rows = np.flatnonzero(draw.random(len(batch)) < 0.7)
    nodes = np.diff(batch.node_start)[rows]
    sources = draw.integers(0, (nodes + batch.num_inputs)[:, None], (len(rows), 12))
    targets = batch.num_inputs + draw.integers(0, nodes[:, None], (len(rows), 12))
    weights = draw.normal(size=len(rows))
    before = _frozen(batch)
    tracker = InnovationTracker.from_dict(tracker_state)
    result = connect(batch, rows, sources, targets, weights, config, tracker)

    plain_tracker = InnovationTracker.from_dict(tracker_state)
    views = batch.views()
    for k, row in enumerate(rows.tolist()):
        _plain_connect(views[row], sources[k].tolist(), targets[k].tolist(), weights[k], config, plain_tracker)
    assert [_genes(result, row) for row in range(len(batch))] == [_genome_genes(v) for v in views]
    assert tracker.to_dict() == plain_tracker.to_dict()
    assert (result.ids == batch.ids).all()
    assert all((a == b).all() for a, b in zip(before, _frozen(batch)))  # the input batch is untouched
    _assert_well_formed(result, not recurrent)


def _drawn_tries(data: st.DataObject, batch: GenomeBatch, rows: np.ndarray, width: int) -> tuple[np.ndarray, ...]:
    """``width`` tries for each of ``rows``, as ``connect`` takes them: a source among the row's inputs and nodes,
    a target among its nodes (indices into inputs then nodes by id)."""
    ends = (batch.num_inputs + np.diff(batch.node_start)[rows]).tolist()  # each row's inputs and nodes
    tries = [st.lists(st.integers(low, n - 1), min_size=width, max_size=width)
             for low in (0, batch.num_inputs) for n in ends]
    drawn = np.array([data.draw(one) for one in tries], np.int64)
    return drawn[:len(rows)], drawn[len(rows):]


@pytest.mark.parametrize("recurrent", [False, True])
def test_connect_equals_the_plain_walk_on_hypothesis_batches(recurrent):
    """Any batch Hypothesis draws (a failure shrinks to the fewest genomes, genes and tries), any tries."""
    config = EvolutionConfig(allow_recurrent=recurrent)

    @settings(max_examples=30)
    @given(genome_batches(max_size=4, cyclic=recurrent), st.data())
    def connects_as_the_plain_walk(batch, data):
        rows = np.array(sorted(data.draw(st.sets(st.integers(0, len(batch) - 1), min_size=1), label="rows")))
        sources, targets = _drawn_tries(data, batch, rows, data.draw(st.integers(1, 4), label="tries a row"))
        weights = np.array(data.draw(st.lists(values, min_size=len(rows), max_size=len(rows)), label="weights"))
        tracker, plain_tracker = InnovationTracker(500, FAR + 5), InnovationTracker(500, FAR + 5)
        result = connect(batch, rows, sources, targets, weights, config, tracker)
        views = batch.views()
        for k, row in enumerate(rows.tolist()):
            _plain_connect(views[row], sources[k].tolist(), targets[k].tolist(), weights[k], config, plain_tracker)
        assert [_genes(result, row) for row in range(len(batch))] == [_genome_genes(v) for v in views]
        assert tracker.to_dict() == plain_tracker.to_dict()
        _assert_well_formed(result, not recurrent)

    connects_as_the_plain_walk()


@pytest.mark.parametrize("make, recurrent", BATCHES)
def test_split_connections_equals_mutate_add_node(make, recurrent):
    batch, tracker_state = make()
    config = EvolutionConfig(activation_default="tanh")  # not yet in the batch: activations grow
    enabled = np.add.reduceat(batch.conn_enabled, batch.conn_start[:-1]) * (np.diff(batch.conn_start) > 0)
    rows = np.flatnonzero((np.arange(len(batch)) % 3 > 0) & (enabled > 0))
    plain_tracker = InnovationTracker.from_dict(tracker_state)
    views = batch.views()
    picks = []
    for row in rows.tolist():
        seed = 1000 + row  # the pick Genome.mutate_add_node makes from this seed, replayed
        picks.append(random.Random(seed).randrange(int(enabled[row])))
        views[row].mutate_add_node(config, random.Random(seed), plain_tracker)
    before = _frozen(batch)
    tracker = InnovationTracker.from_dict(tracker_state)
    result = split_connections(batch, rows, np.array(picks, np.int64), config, tracker)
    assert [_genes(result, row) for row in range(len(batch))] == [_genome_genes(v) for v in views]
    assert tracker.to_dict() == plain_tracker.to_dict()
    assert "tanh" in result.activations and all((a == b).all() for a, b in zip(before, _frozen(batch)))
    _assert_well_formed(result, not recurrent)


@pytest.mark.parametrize("recurrent", [False, True])
def test_random_mutations_change_only_the_given_rows_and_repeat_per_seed(recurrent):
    batch, tracker_state = _evolved(recurrent, 3)
    config = EvolutionConfig(allow_recurrent=recurrent)
    rows = np.arange(0, len(batch), 2)
    results = []
    for seed in (7, 7, 8):
        rng, tracker = np.random.default_rng(seed), InnovationTracker.from_dict(tracker_state)
        grown = add_connections(add_nodes(batch, rows, config, rng, tracker), rows, config, rng, tracker)
        results.append((grown, tracker.to_dict()))
    (first, state), (again, state_again), (other, _) = results
    assert all(np.array_equal(getattr(first, f), getattr(again, f)) for f in first.__dataclass_fields__)
    assert state == state_again
    assert any(_genes(first, r) != _genes(other, r) for r in rows.tolist())
    hidden_before, enabled_before = batch.sizes()
    hidden_after, _ = first.sizes()
    assert [_genes(first, r) for r in range(1, len(batch), 2)] == [_genes(batch, r) for r in range(1, len(batch), 2)]
    has_enabled = enabled_before[rows] > 0
    assert (hidden_after[rows] - hidden_before[rows] == has_enabled).all()
    _assert_well_formed(first, not recurrent)


def test_every_single_try_on_long_chains_and_ladders_is_decided_as_closes_cycle_decides():
    chains, tracker_state = _chains(2)
    sizes = chains.num_inputs + np.diff(chains.node_start)
    pairs = [(row, s, t) for row in (0, 1) for s in range(sizes[row]) for t in range(chains.num_inputs, sizes[row])]
    rows, sources, targets = (np.array(column) for column in zip(*pairs))
    batch = chains.take(rows, ids=np.arange(len(rows)))
    config = EvolutionConfig(add_connection_attempts=1)
    tracker = InnovationTracker.from_dict(tracker_state)
    result = connect(batch, np.arange(len(rows)), sources[:, None], targets[:, None], np.zeros(len(rows)), config,
                     tracker)
    plain_tracker = InnovationTracker.from_dict(tracker_state)
    views = batch.views()
    for k, view in enumerate(views):
        _plain_connect(view, [sources[k]], [targets[k]], 0.0, config, plain_tracker)
    assert [_genes(result, row) for row in range(len(batch))] == [_genome_genes(v) for v in views]
    assert tracker.to_dict() == plain_tracker.to_dict()
    unchanged = np.count_nonzero(result.sizes()[1] == batch.sizes()[1])
    assert 0.3 * len(rows) < unchanged < 0.7 * len(rows)  # about half the pairs would close a cycle


def test_a_pair_repeated_in_a_row_is_decided_by_its_last_gene():
    genome = make_genome(1, 1, [(1, 0.0, "neat_sigmoid")], [(0, 0, 1, 0.5, False), (1, 0, 1, 0.7, True)])
    batch = GenomeBatch.from_genomes([genome])
    config = EvolutionConfig()
    result = connect(batch, np.array([0]), np.array([[0]]), np.array([[1]]), np.array([0.0]), config,
                     InnovationTracker(5, 5))
    assert _genes(result, 0) == _genes(batch, 0)  # (0, 1) exists enabled: the try fails, as Genome's does


def test_bad_rows_and_dangling_genes_are_refused_by_name():
    batch, tracker_state = _chains(2)
    config = EvolutionConfig()
    with pytest.raises(ValueError, match="rows must be increasing"):
        add_nodes(batch, np.array([1, 0]), config, np.random.default_rng(0), InnovationTracker(0, 0))
    dangling = make_genome(1, 1, [(1, 0.0, "neat_sigmoid")], [(0, 0, 77, 0.5, True)], genome_id=42)
    with pytest.raises(ValueError, match="genome 42 .* node 77"):
        add_connections(GenomeBatch.from_genomes([dangling]), np.array([0]), config, np.random.default_rng(0),
                        InnovationTracker(5, 5))
    negative = make_genome(1, 1, [(1, 0.0, "neat_sigmoid")], [(0, -4, 1, 0.5, True)], genome_id=43)
    with pytest.raises(ValueError, match="genome 43 .* node -4"):
        add_connections(GenomeBatch.from_genomes([negative]), np.array([0]), config, np.random.default_rng(0),
                        InnovationTracker(5, 5))


def test_a_node_gene_with_an_inputs_id_is_refused_by_name():
    """The walk reads a gene's end 0 as input 0 but a try's target as the node gene 0, so it and
    ``Genome.mutate_add_connection`` (which would connect into the input) disagreed on such genomes."""
    odd = make_genome(2, 1, [(0, 0.0, "neat_sigmoid"), (2, 0.0, "neat_sigmoid")], [(0, 1, 0, 0.5, True)], genome_id=8)
    with pytest.raises(ValueError, match="genome 8 has a node gene with id 0, an input's or negative"):
        connect(GenomeBatch.from_genomes([odd]), np.array([0]), np.array([[1]]), np.array([[2]]), np.array([0.0]),
                EvolutionConfig(), InnovationTracker(5, 5))


@pytest.mark.parametrize("sources, targets", [([[0, 99]], [[2, 2]]), ([[0]], [[0]]), ([[-1]], [[2]]),
                                              ([[0]], [[2, 2]])])
def test_tries_outside_a_row_are_refused_before_the_compiled_walk_reads_them(sources, targets):
    batch, tracker_state = _chains(2)
    with pytest.raises(ValueError, match="genome 0|x tries matrices"):
        connect(batch, np.array([0]), np.array(sources), np.array(targets), np.array([0.0]), EvolutionConfig(),
                InnovationTracker.from_dict(tracker_state))


def test_docs_snippet_grows_the_population_it_was_given():
    namespace: dict = {}
    exec(doc_snippet("docs/batched.md", "batch = add_nodes(batch, rows"), namespace)
    before = GenomeBatch.from_genomes(namespace["pop"].genomes)
    hidden, enabled = namespace["batch"].sizes()
    assert (hidden - before.sizes()[0]).tolist() == [int(r in namespace["rows"]) for r in range(len(before))]
    assert (enabled >= before.sizes()[1]).all() and len(namespace["genomes"]) == len(before)


@pytest.mark.parametrize("recurrent", [False, True])
def test_genomes_without_connection_genes_gain_one_and_a_run_from_none_breeds(recurrent):
    """A batch holding no connection gene at all (``initial_connection="none"``): every try is new."""
    genomes = [make_genome(2, 1, [(2, 0.0, "neat_sigmoid")], [], genome_id=k) for k in range(3)]
    config = EvolutionConfig(allow_recurrent=recurrent)
    grown = add_connections(GenomeBatch.from_genomes(genomes), np.arange(3), config, np.random.default_rng(0),
                            InnovationTracker(0, 3))
    assert (grown.sizes()[1] == 1).all()
    pop = Population(pop_size=12, num_inputs=2, num_outputs=1, seed=0, config=EvolutionConfig(
        initial_connection="none", allow_recurrent=recurrent, prob_add_connection=1.0))
    for _ in range(2):
        pop.run_generation(lambda gs: [setattr(g, "fitness", 1.0) for g in gs])
    assert pop.history[-1].mean_connections > 0
