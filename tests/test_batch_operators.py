"""batch_operators: each bulk operator against a plain loop over Genome objects making the same decisions
with the same draws; then breed_batch's determinism, elites, invariants and rates on 10,000 children."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from neatify import EvolutionConfig, Genome, Population
from neatify.breeding.operators import (
    BIAS, CHILD, ELITE, VARIANT, WEIGHT, Crossing, Offspring, activations_mutated, breed_batch, connections_deleted,
    inherit, nodes_deleted, toggled, values_mutated)
from neatify.genome.batch import GenomeBatch
from neatify.genome.innovation import InnovationTracker

OPTIONS = ["neat_sigmoid", "tanh", "relu"]
NO_STRUCTURE = dict(prob_add_node=0.0, prob_add_connection=0.0)
N = 10_000
"""Children in the tests of rates."""


@pytest.fixture(scope="module")
def parents() -> GenomeBatch:
    """An evolved population: hidden nodes, disabled genes, several activations, shared and own genes."""
    config = EvolutionConfig(prob_add_node=0.3, activation_options=OPTIONS, prob_mutate_activation=0.3)
    pop = Population(pop_size=200, num_inputs=3, num_outputs=2, config=config, seed=5)

    def fitness(genomes):
        for g in genomes:
            g.fitness = sum(c.weight for c in g.connections.values() if c.enabled) + random.Random(g.id).random()

    for _ in range(6):
        pop.run_generation(fitness)
    batch = GenomeBatch.from_genomes(pop.genomes)
    assert batch.sizes()[0].sum() > 50 and (~batch.conn_enabled).sum() > 50
    return batch


class Scripted:
    """A ``random.Random`` stand-in for the plain Genome operators that hands out given numbers:
    ``random()`` the next draw, ``gauss(mu, sigma)`` mu + sigma * the next normal, ``choice(seq)``
    ``seq`` at the next pick."""

    def __init__(self, draws=(), normals=(), picks=()) -> None:
        self._draws, self._normals, self._picks = iter(draws), iter(normals), iter(picks)

    def random(self) -> float:
        return float(next(self._draws))

    def gauss(self, mu: float, sigma: float) -> float:
        return mu + sigma * float(next(self._normals))

    def choice(self, seq):
        return seq[int(next(self._picks))]

    def spent(self) -> bool:
        return all(next(it, None) is None for it in (self._draws, self._normals, self._picks))


def _genes(genome: Genome) -> tuple:
    return (genome.id, sorted(n.to_list() for n in genome.nodes.values()),
            sorted(c.to_list() for c in genome.connections.values()))


def _rows(batch: GenomeBatch) -> list[tuple]:
    return [_genes(v) for v in batch.views()]


def _some_rows(batch: GenomeBatch, seed: int) -> np.ndarray:
    return np.flatnonzero(np.random.default_rng(seed).random(len(batch)) < 0.6)


def _plain(batch: GenomeBatch, rows: np.ndarray, mutate) -> list[tuple]:
    """Rows of ``batch`` after ``mutate(genome)`` on the Genome of each of ``rows``, in row order."""
    views = batch.views()
    for row in rows.tolist():
        mutate(views[row])
    return [_genes(v) for v in views]


def _snapshot(batch: GenomeBatch) -> list[np.ndarray]:
    return [getattr(batch, f).copy() for f in ("node_id", "node_bias", "node_activation", "conn_innovation",
                                                "conn_weight", "conn_enabled", "node_start", "conn_start")]


def _unchanged(batch: GenomeBatch, snapshot: list[np.ndarray]) -> bool:
    return all(np.array_equal(a, b) for a, b in zip(_snapshot(batch), snapshot))


# --- each operator against the plain loop ---
def _offspring(parents: GenomeBatch, n: int, seed: int, kind: int = CHILD, crossed: float = 0.75) -> Offspring:
    rng = np.random.default_rng(seed)
    father = np.where(rng.random(n) < crossed, rng.integers(0, len(parents), n), -1)
    return Offspring(np.arange(n, dtype=np.int64) + 10_000, rng.integers(0, len(parents), n), father,
                     np.full(n, kind, dtype=np.int8))


def _plain_crossover(views: list[Genome], offspring: Offspring, prob_inherit_disabled: float,
                     weight_draw, enabled_draw, node_draw) -> list[tuple]:
    """Genome.crossover's decisions, a shared connection taking the next weight and enabled draws, a
    shared node the next node draw."""
    weights, enableds, nodes = iter(weight_draw), iter(enabled_draw), iter(node_draw)
    children = []
    for child_id, mother, father in zip(offspring.ids.tolist(), offspring.mother.tolist(), offspring.father.tolist()):
        child = views[mother].copy(child_id)
        if father >= 0:
            other = views[father]
            for key in sorted(child.connections):
                c1, c2 = child.connections[key], other.connections.get(key)
                if c2 is not None:
                    w, e = next(weights), next(enableds)
                    c1.weight = c1.weight if w < 0.5 else c2.weight
                    c1.enabled = True if c1.enabled and c2.enabled else e >= prob_inherit_disabled
            for key in sorted(child.nodes):
                n1, n2 = child.nodes[key], other.nodes.get(key)
                if n2 is not None and next(nodes) >= 0.5:
                    n1.bias, n1.activation = n2.bias, n2.activation
        children.append(_genes(child))
    assert next(weights, None) is None and next(enableds, None) is None and next(nodes, None) is None
    return children


def test_inheritance_matches_genome_crossover(parents):
    offspring = _offspring(parents, 300, seed=1)
    before = _snapshot(parents)
    crossing = Crossing.of(parents, offspring)
    draws = np.random.default_rng(2)
    shared_conns, shared_nodes = len(crossing.conn_at), len(crossing.node_at)
    weight, enabled, node = draws.random(shared_conns), draws.random(shared_conns), draws.random(shared_nodes)
    bulk = crossing.child(0.75, weight, enabled, node)
    assert shared_conns > 500 and shared_nodes > 200
    assert _rows(bulk) == _plain_crossover(parents.views(), offspring, 0.75, weight, enabled, node)
    assert _unchanged(parents, before)


def test_weights_and_biases_match_genome_mutate(parents):
    config = EvolutionConfig(prob_replace_weight=0.3, prob_replace_bias=0.4, weight_min_value=-2.0,
                             weight_max_value=1.5, bias_min_value=-1.0, bias_max_value=1.0)
    rows = _some_rows(parents, 3)
    draws = np.random.default_rng(4)
    n_conns = int(np.diff(parents.conn_start)[rows].sum())
    n_nodes = int(np.diff(parents.node_start)[rows].sum())
    before = _snapshot(parents)
    u, z = draws.random(n_conns), 2.0 * draws.standard_normal(n_conns)
    scripted = Scripted(u, z)
    assert _rows(values_mutated(parents, rows, config, WEIGHT, u, z)) == _plain(
        parents, rows, lambda g: g.mutate_weights(config, scripted))
    assert scripted.spent()
    u, z = draws.random(n_nodes), 2.0 * draws.standard_normal(n_nodes)
    scripted = Scripted(u, z)
    assert _rows(values_mutated(parents, rows, config, BIAS, u, z)) == _plain(
        parents, rows, lambda g: g.mutate_biases(config, scripted))
    assert scripted.spent()
    assert _unchanged(parents, before)


def _picks(batch: GenomeBatch, rows: np.ndarray, choices, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows with something to pick, a uniform pick among ``choices(genome)`` for each)."""
    rng = random.Random(seed)
    views = batch.views()
    counts = [len(choices(views[row])) for row in rows.tolist()]
    picked = [row for row, count in zip(rows.tolist(), counts) if count]
    return np.array(picked, dtype=np.int64), np.array([rng.randrange(c) for c in counts if c], dtype=np.int64)


def test_deleting_nodes_matches_genome_mutate_delete_node(parents):
    rows, pick = _picks(parents, _some_rows(parents, 5),
                        lambda g: [n for n in g.nodes.values() if n.kind == "hidden"], seed=6)
    scripted = Scripted(picks=pick)
    assert len(rows) > 20
    assert _rows(nodes_deleted(parents, rows, pick)) == _plain(parents, rows, lambda g: g.mutate_delete_node(scripted))
    assert scripted.spent()


def test_deleting_connections_matches_genome_mutate_delete_connection(parents):
    rows, pick = _picks(parents, _some_rows(parents, 7), lambda g: g.connections, seed=8)
    scripted = Scripted(picks=pick)
    assert _rows(connections_deleted(parents, rows, pick)) == _plain(
        parents, rows, lambda g: g.mutate_delete_connection(scripted))
    assert scripted.spent()


def test_activations_and_toggles_match_genome_mutate(parents):
    config = EvolutionConfig(activation_options=["gauss", "tanh", "sin"], prob_mutate_activation=0.4,
                             prob_toggle_enable=0.2)
    rows = _some_rows(parents, 9)
    draws = np.random.default_rng(10)
    hidden = int(parents.sizes()[0][rows].sum())
    u = draws.random(hidden)
    pick = draws.integers(0, 3, int((u < 0.4).sum()))
    scripted = Scripted(u, picks=pick)
    mutated = activations_mutated(parents, rows, config, u, pick)
    assert _rows(mutated) == _plain(parents, rows, lambda g: g.mutate_activations(config, scripted))
    assert scripted.spent() and {"gauss", "sin"} <= set(mutated.activations)
    u = draws.random(int(np.diff(parents.conn_start)[rows].sum()))
    scripted = Scripted(u)
    assert _rows(toggled(parents, rows, config, u)) == _plain(
        parents, rows, lambda g: g.mutate_toggle_enable(config, scripted))
    assert scripted.spent()


# --- breed_batch ---
def _mixed(parents: GenomeBatch, n: int, seed: int) -> Offspring:
    """Children of every kind: a tenth elites, a fifth variants, the rest CHILD (three in four crossed)."""
    plan = _offspring(parents, n, seed)
    kind = np.random.default_rng(seed + 1).choice(np.array([ELITE, VARIANT, CHILD], np.int8), n, p=[0.1, 0.2, 0.7])
    return Offspring(plan.ids, plan.mother, np.where(kind == CHILD, plan.father, -1), kind)


def _every_operator(**changes) -> EvolutionConfig:
    return EvolutionConfig(**{**NO_STRUCTURE, "prob_delete_node": 0.2, "prob_delete_connection": 0.1,
                              "prob_toggle_enable": 0.05, "prob_mutate_activation": 0.2,
                              "activation_options": ["neat_sigmoid", "gauss"], **changes})


def _breed(parents: GenomeBatch, offspring: Offspring, config: EvolutionConfig, seed: int) -> GenomeBatch:
    tracker = InnovationTracker(int(parents.conn_innovation.max(initial=-1)) + 1, int(parents.node_id.max()) + 1)
    return breed_batch(parents, offspring, config, np.random.default_rng(seed), tracker)


def _assert_invariants(batch: GenomeBatch) -> None:
    """Offsets consistent, rows sorted with no repeated gene, every output present, every connection
    between an input and a node of its row or two nodes of its row."""
    for start, keys in ((batch.node_start, batch.node_id), (batch.conn_start, batch.conn_innovation)):
        assert start[0] == 0 and start[-1] == len(keys) and (np.diff(start) >= 0).all()
        owner = np.repeat(np.arange(len(batch)), np.diff(start))
        assert ((np.diff(keys) > 0) | (np.diff(owner) > 0)).all()
    span = int(max(batch.node_id.max(), batch.conn_in.max(initial=0), batch.conn_out.max(initial=0))) + 1
    nodes = batch.node_owner() * span + batch.node_id
    outputs = np.arange(batch.num_inputs, batch.num_inputs + batch.num_outputs)
    assert np.isin(np.arange(len(batch))[:, None] * span + outputs, nodes).all()
    conn_owner = batch.conn_owner()
    assert np.isin(conn_owner * span + batch.conn_out, nodes).all()
    assert ((batch.conn_in < batch.num_inputs) | np.isin(conn_owner * span + batch.conn_in, nodes)).all()


def test_breed_batch_is_deterministic_and_keeps_elites_and_invariants(parents):
    offspring = _mixed(parents, 2000, seed=11)
    before = _snapshot(parents)
    children = _breed(parents, offspring, _every_operator(), seed=12)
    assert _rows(children) == _rows(_breed(parents, offspring, _every_operator(), seed=12))
    assert _rows(children) != _rows(_breed(parents, offspring, _every_operator(), seed=13))
    assert children.ids.tolist() == offspring.ids.tolist()
    _assert_invariants(children)
    elites = np.flatnonzero(offspring.kind == ELITE)
    assert _rows(children.take(elites)) == _rows(parents.take(offspring.mother[elites], offspring.ids[elites]))
    assert _unchanged(parents, before)


def test_breed_batch_with_structure_mutations(parents):
    pytest.importorskip("neatify.breeding.structure")
    offspring = _mixed(parents, 2000, seed=14)
    children = _breed(parents, offspring, EvolutionConfig(prob_add_node=0.2), seed=15)
    assert _rows(children) == _rows(_breed(parents, offspring, EvolutionConfig(prob_add_node=0.2), seed=15))
    _assert_invariants(children)
    variants = _offspring(parents, N, seed=28, kind=VARIANT, crossed=0.0)
    children = _breed(parents, variants, EvolutionConfig(prob_mutate_bias=1.0), seed=29)
    mothers = parents.take(variants.mother)  # add-connection leaves node genes alone: biases change iff tweaked
    _rate(np.bitwise_or.reduceat(children.node_bias != mothers.node_bias, children.node_start[:-1]), 0.8)


def test_breed_batch_refuses_a_bad_plan(parents):
    good = _offspring(parents, 5, seed=16, crossed=1.0)
    with pytest.raises(ValueError, match="child 10002: mother"):
        bad_mother = good.mother.copy()
        bad_mother[2] = len(parents)
        _breed(parents, Offspring(good.ids, bad_mother, good.father, good.kind), EvolutionConfig(), seed=0)
    with pytest.raises(ValueError, match="a father only for kind CHILD"):
        _breed(parents, Offspring(good.ids, good.mother, good.father, np.full(5, VARIANT, np.int8)),
               EvolutionConfig(), seed=0)
    with pytest.raises(ValueError, match="Offspring.kind has 4 entries, ids 5"):
        _breed(parents, Offspring(good.ids, good.mother, good.father, good.kind[:4]), EvolutionConfig(), seed=0)


def test_inheritance_refuses_a_father_outside_the_parents(parents):
    """The compiled merge reads the father's gene offsets unchecked: a row past the parents (2**40 once
    crashed the process) is refused by name before it runs, by ``inherit`` as by ``breed_batch``."""
    good = _offspring(parents, 3, seed=17, crossed=1.0)
    for father in (len(parents), 2**40, -2):
        bad = Offspring(good.ids, good.mother, np.array([0, father, 1]), good.kind)
        with pytest.raises(ValueError, match=f"child 10001: mother .*, father {father}"):
            inherit(parents, bad, EvolutionConfig(), np.random.default_rng(0))
        with pytest.raises(ValueError, match=f"child 10001: mother .*, father {father}"):
            Crossing.of(parents, bad)


# --- rates on 10,000 children ---
def _rate(hits: np.ndarray, expected: float) -> None:
    assert len(hits) > 1000 and abs(hits.mean() - expected) < 0.025, (hits.mean(), expected)


def test_copies_mutate_at_the_configured_rates(parents):
    config = EvolutionConfig(**NO_STRUCTURE)  # weights 0.8, biases 0.3
    for kind, weight_rate in ((CHILD, 0.8), (VARIANT, 1.0)):
        offspring = _offspring(parents, N, seed=17, kind=kind, crossed=0.0)
        mothers = parents.take(offspring.mother)
        children = _breed(parents, offspring, config, seed=18)
        changed = np.bitwise_or.reduceat(children.conn_weight != mothers.conn_weight, children.conn_start[:-1])
        _rate(changed[np.diff(children.conn_start) > 0], weight_rate)
        _rate(np.bitwise_or.reduceat(children.node_bias != mothers.node_bias, children.node_start[:-1]), 0.3)


def test_structure_and_flag_mutations_at_the_configured_rates(parents):
    offspring = _offspring(parents, N, seed=19, crossed=0.0)
    mothers = parents.take(offspring.mother)
    mother_hidden, mother_conns = mothers.sizes()[0], np.diff(mothers.conn_start)
    config = EvolutionConfig(**NO_STRUCTURE, prob_delete_node=0.3, prob_mutate_weight=0.0, prob_mutate_bias=0.0)
    _rate((_breed(parents, offspring, config, 20).sizes()[0] < mother_hidden)[mother_hidden > 0], 0.3)
    config = config.replace(prob_delete_node=0.0, prob_delete_connection=0.2)
    _rate((np.diff(_breed(parents, offspring, config, 21).conn_start) < mother_conns)[mother_conns > 0], 0.2)
    config = config.replace(prob_delete_connection=0.0, prob_toggle_enable=0.1)
    _rate(_breed(parents, offspring, config, 22).conn_enabled != mothers.conn_enabled, 0.1)
    config = config.replace(prob_toggle_enable=0.0, prob_mutate_activation=0.3, activation_options=OPTIONS)
    children = _breed(parents, offspring, config, 23)
    hidden = mothers.node_id >= mothers.num_inputs + mothers.num_outputs
    names = np.array(children.activations)[children.node_activation] != np.array(mothers.activations)[
        mothers.node_activation]
    _rate(names[hidden], 0.3 * 2 / 3)


def test_inheritance_takes_each_parent_half_the_time(parents):
    offspring = _offspring(parents, N, seed=24, crossed=1.0)
    crossing = Crossing.of(parents, offspring)
    children = inherit(parents, offspring, EvolutionConfig(prob_inherit_disabled=0.6), np.random.default_rng(25))
    at, father = crossing.conn_at, crossing.conn_father
    mother_weight, father_weight = crossing.mothers.conn_weight[at], parents.conn_weight[father]
    differ = mother_weight != father_weight
    _rate(children.conn_weight[at][differ] == father_weight[differ], 0.5)
    either_disabled = ~(crossing.mothers.conn_enabled[at] & parents.conn_enabled[father])
    _rate(children.conn_enabled[at][either_disabled], 0.4)
    assert children.conn_enabled[at][~either_disabled].all()
    at, father = crossing.node_at, crossing.node_father
    differ = crossing.mothers.node_bias[at] != parents.node_bias[father]
    _rate(children.node_bias[at][differ] == parents.node_bias[father][differ], 0.5)


def test_breed_batch_of_genomes_without_hidden_nodes_or_connections():
    config = EvolutionConfig(initial_connection="none", **NO_STRUCTURE, prob_delete_node=0.5,
                             prob_delete_connection=0.5, prob_toggle_enable=0.5, prob_mutate_activation=0.5)
    tracker = InnovationTracker(0, 5)
    parents = GenomeBatch.from_genomes([Genome.initial(i, 3, 2, config, random.Random(i), tracker) for i in range(4)])
    offspring = _mixed(parents, 50, seed=26)
    children = _breed(parents, offspring, config, seed=27)
    assert len(children.conn_innovation) == 0 and len(children.node_id) == 100
    _assert_invariants(children)


@pytest.mark.slow
def test_benchmark_script_prints_each_time():
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run([sys.executable, "benchmarks/batch_breeding.py", "--pop-size", "100", "--generations", "1",
                             "--repeats", "2"], cwd=root, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(root / "src")})
    assert result.returncode == 0, result.stderr
    times = [line.split()[:2] for line in result.stdout.splitlines()[1:]]
    assert [name for name, _ in times] == ["breed_batch", "inherit", "weights", "biases"]
    assert all(float(ms) > 0 for _, ms in times)
