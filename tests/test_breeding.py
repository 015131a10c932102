"""Breeding stays what it is: seeded runs hash to recorded values (the same random draws, the same
genes), and the per-genome operators equal their plain definitions bit for bit.

The digests were recorded on 2026-11-29 when breeding moved to whole-generation array operators
(``neatify.breeding.operators``), whose random numbers come from a numpy generator seeded by the run's
``random.Random``; a change that alters them alters every seeded run and must say so."""

import copy
import hashlib
import json
import math
import random

import pytest
from hypothesis import example, given, settings, strategies as st

from helpers import make_genome
from strategies import FAR, genomes, units
from neatify import EvolutionConfig, Genome, Population
from neatify.genome.genes import ConnectionGene, NodeGene
from neatify.genome.reference import new_weight
from neatify.genome.graph import creates_cycle
from neatify.genome.innovation import InnovationTracker
from neatify.breeding.reproduction import allocate_offspring

SEEDS = st.integers(0, 2**32 - 1)
"""Seeds of the ``random.Random`` both sides of a comparison draw from."""

# Every field that shapes a run, pinned, so that a change of the defaults elsewhere leaves these
# runs alone. No threshold steering (target_species 0): its rule is not breeding's to guard.
PINNED = dict(
    elitism_count=1, elitism_min_species_size=5, survival_threshold=0.2, min_species_size=2, prob_crossover=0.75,
    interspecies_mating_rate=0.001, prob_inherit_disabled=0.75, compatibility_threshold=3.0, target_species=0,
    compatibility_threshold_step=0.3, compatibility_threshold_min=0.3,
    c1=1.0, c2=1.0, c3=0.4, normalize_min_genes=20, max_stagnation=15, species_elitism=1, population_stagnation=0,
    prob_mutate_weight=0.8, prob_replace_weight=0.1, weight_mutation_power=1.0, weight_init_stdev=1.0,
    weight_min_value=-30.0, weight_max_value=30.0, prob_mutate_bias=0.3, prob_replace_bias=0.1,
    bias_mutation_power=0.5, bias_init_stdev=1.0, bias_min_value=-30.0, bias_max_value=30.0,
    prob_add_connection=0.5, prob_add_node=0.05, prob_delete_connection=0.0, prob_delete_node=0.0,
    prob_toggle_enable=0.0, prob_mutate_activation=0.0, activation_default="neat_sigmoid",
    activation_options=["neat_sigmoid"], initial_connection="full", allow_recurrent=False,
    add_connection_attempts=20,
)
EVERY_OPERATOR = dict(
    prob_add_node=0.2, prob_add_connection=0.8, prob_delete_node=0.05, prob_delete_connection=0.05,
    prob_toggle_enable=0.05, prob_mutate_activation=0.2, activation_options=["neat_sigmoid", "tanh", "relu"],
    interspecies_mating_rate=0.2, population_stagnation=3, compatibility_threshold=1.5,
    initial_connection="partial 0.5", max_stagnation=4,
)
RUNS = {
    "defaults": (dict(), 2, 1,
                 "a733470c5d40e8082c6a74e407c5ff3db2ed8565047165c16a8df6b2ade9e637"),
    "every_operator": (EVERY_OPERATOR, 3, 2,
                       "0a2a08e32bd7f3c258f00fb6e4875361cbadf26dfbfaba2bd9343b646872f458"),
    "recurrent": ({**EVERY_OPERATOR, "allow_recurrent": True}, 3, 2,
                  "bcafd86599d3c96079d77bfeab0826367b855774b2b0f801ea0004b274f03a24"),
}


def saturating_fitness(genomes):
    """Deterministic, structure- and weight-dependent, capped so that the population can stagnate."""
    for g in genomes:
        g.fitness = min(4.0, sum(c.weight for c in g.connections.values() if c.enabled) - 0.1 * len(g.nodes))


def run_digest(overrides: dict, num_inputs: int, num_outputs: int) -> str:
    """SHA-256 of every genome (genes in order), species, tracker and rng state after 10 seeded generations."""
    config = EvolutionConfig(population_size=150, **{**PINNED, **overrides})
    pop = Population(num_inputs=num_inputs, num_outputs=num_outputs, config=config, seed=2026)
    for _ in range(10):
        pop.run_generation(saturating_fitness)
    pop._breed()
    state = pop.state_dict()
    del state["config"]  # fields added later must not change the digest
    return hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()


@pytest.mark.parametrize("name", sorted(RUNS))
def test_seeded_runs_breed_exactly_the_recorded_genomes(name):
    overrides, num_inputs, num_outputs, expected = RUNS[name]
    assert run_digest(overrides, num_inputs, num_outputs) == expected


def dense(enabled: bool) -> Genome:
    """Two outputs fed by every input, by each other and by themselves: every pair a try can draw is a gene."""
    pairs = [(src, dst) for src in range(5) for dst in (3, 4)]
    return make_genome(3, 2, [(3, 0.0, "tanh"), (4, 0.0, "tanh")],
                       [(k, src, dst, 1.0, enabled) for k, (src, dst) in enumerate(pairs)])


def plain_add_connection(genome, config, rng, tracker):
    """The add-connection operator as first written: every try looks up the pair among all genes
    (the last gene wins) and asks ``creates_cycle`` on its own."""
    for _ in range(config.add_connection_attempts):
        src, dst = rng.choice(genome.input_ids + sorted(genome.nodes)), rng.choice(sorted(genome.nodes))
        same = [c for c in genome.connections.values() if (c.in_node, c.out_node) == (src, dst)]
        if same:
            if not same[-1].enabled:
                same[-1].enabled = True
                return True
            continue
        edges = [(c.in_node, c.out_node) for c in genome.connections.values()]
        if not config.allow_recurrent and creates_cycle(edges, (src, dst)):
            continue
        genome._add_connection(tracker.connection(src, dst), src, dst, new_weight(rng, config))
        return True
    return False


@pytest.mark.parametrize("allow_recurrent", [False, True])
def test_add_connection_draws_and_adds_as_the_plain_definition(allow_recurrent):
    config = EvolutionConfig(allow_recurrent=allow_recurrent, add_connection_attempts=5)
    outcomes = set()

    @settings(max_examples=50)
    @given(genomes(cyclic=allow_recurrent), SEEDS)
    @example(dense(enabled=True), 0)  # every pair a try can draw is an enabled gene: it gives up
    @example(dense(enabled=False), 0)  # the first try re-enables a gene
    def draws_and_adds_as_the_plain_definition(genome, seed):
        fast, plain, before = copy.deepcopy(genome), copy.deepcopy(genome), len(genome.connections)
        fast_rng, plain_rng = random.Random(seed), random.Random(seed)
        fast_tracker, plain_tracker = InnovationTracker(500, FAR + 5), InnovationTracker(500, FAR + 5)
        result = fast.mutate_add_connection(config, fast_rng, fast_tracker)
        assert result == plain_add_connection(plain, config, plain_rng, plain_tracker)
        assert fast.to_dict() == plain.to_dict()
        assert fast_rng.getstate() == plain_rng.getstate()
        assert fast_tracker.to_dict() == plain_tracker.to_dict()
        outcomes.add("added" if len(fast.connections) > before else "re-enabled" if result else "gave up")

    draws_and_adds_as_the_plain_definition()
    assert outcomes == {"added", "re-enabled", "gave up"}


def plain_mutate(genes, field, rng, prob_replace, stdev, power, lo, hi):
    """Weight or bias mutation as first written: a fresh or perturbed value, ``min(hi, max(lo, ...))``."""
    for gene in genes:
        if rng.random() < prob_replace:
            value = rng.gauss(0.0, stdev)
        else:
            value = getattr(gene, field) + rng.gauss(0.0, power)
        setattr(gene, field, min(hi, max(lo, value)))


def test_weight_and_bias_mutation_equal_the_plain_definition_bit_for_bit():
    config = EvolutionConfig(prob_replace_weight=0.3, weight_min_value=-0.5, weight_max_value=0.0,
                             prob_replace_bias=0.3, bias_min_value=0.0, bias_max_value=0.3)
    clamped = []

    @settings(max_examples=50)
    @given(genomes(), SEEDS)
    def mutates_as_the_plain_definition(genome, seed):
        plain = copy.deepcopy(genome)
        fast_rng, plain_rng = random.Random(seed), random.Random(seed)
        genome.mutate_weights(config, fast_rng)
        genome.mutate_biases(config, fast_rng)
        plain_mutate(plain.connections.values(), "weight", plain_rng, 0.3, config.weight_init_stdev,
                     config.weight_mutation_power, -0.5, 0.0)
        plain_mutate(plain.nodes.values(), "bias", plain_rng, 0.3, config.bias_init_stdev,
                     config.bias_mutation_power, 0.0, 0.3)
        assert repr(genome.to_dict()) == repr(plain.to_dict())  # repr: tells -0.0 from 0.0
        assert fast_rng.getstate() == plain_rng.getstate()
        clamped.extend(c.weight in (-0.5, 0.0) for c in genome.connections.values())

    mutates_as_the_plain_definition()
    assert sum(clamped) > 100, "the bounds were hit"


def plain_crossover(parent1, parent2, child_id, config, rng):
    """Crossover as first written: one gene chosen per innovation, then its enabled flag."""
    child = Genome(child_id, parent1.num_inputs, parent1.num_outputs)
    for key, c1 in parent1.connections.items():
        c2 = parent2.connections.get(key)
        gene = c1 if c2 is None or rng.random() < 0.5 else c2
        enabled = gene.enabled
        if c2 is not None and not (c1.enabled and c2.enabled):
            enabled = rng.random() >= config.prob_inherit_disabled
        child.connections[key] = ConnectionGene(key, c1.in_node, c1.out_node, gene.weight, enabled)
    for key, n1 in parent1.nodes.items():
        n2 = parent2.nodes.get(key)
        gene = n1 if n2 is None or rng.random() < 0.5 else n2
        child.nodes[key] = NodeGene(key, n1.kind, gene.bias, gene.activation)
    return child


def test_crossover_equals_the_plain_definition_bit_for_bit():
    config = EvolutionConfig(prob_inherit_disabled=0.6)
    parents = genomes(activations=("tanh", "relu"), innovations=20)  # few innovations: many genes match
    matching = []

    @settings(max_examples=40)
    @given(parents, parents, SEEDS)
    @example(dense(enabled=True), dense(enabled=False), 0)  # every gene matches
    def crosses_as_the_plain_definition(a, b, seed):
        fast_rng, plain_rng = random.Random(seed), random.Random(seed)
        fast = Genome.crossover(a, b, 7, config, fast_rng)
        assert fast.to_dict() == plain_crossover(a, b, 7, config, plain_rng).to_dict()
        assert fast_rng.getstate() == plain_rng.getstate()
        matching.append(len(set(a.connections) & set(b.connections)))

    crosses_as_the_plain_definition()
    assert sum(matching) > len(matching), "parents had genes in common (more than one a pair on average)"


def plain_allocation(shares, pop_size, min_size):
    """Largest-remainder rounding as first written: a full scan for every offspring moved."""
    n = len(shares)
    total = sum(shares)
    raw = [s / total * pop_size for s in shares] if total > 0 else [pop_size / n] * n
    counts = [max(min_size, math.floor(r)) for r in raw]
    while sum(counts) < pop_size:
        counts[max(range(n), key=lambda k: (raw[k] - counts[k], -k))] += 1
    while sum(counts) > pop_size:
        counts[max((k for k in range(n) if counts[k] > min_size), key=lambda k: (counts[k] - raw[k], -k))] -= 1
    return counts


SHARES = st.lists(units | st.sampled_from([0.0, 0.5, 1.0]) | st.floats(0.0, 1e6), min_size=1, max_size=60)
"""Species' fitness shares: uniform, few distinct values (ties), or spread over many magnitudes."""


@settings(max_examples=100)
@given(SHARES, st.data())
def test_offspring_allocation_equals_the_plain_rounding(shares, data):
    pop_size = data.draw(st.integers(len(shares) * 2 + 1, 3000), label="pop_size")
    min_size = data.draw(st.integers(0, 2), label="min_size")
    assert allocate_offspring(shares, pop_size, min_size) == plain_allocation(shares, pop_size, min_size)
