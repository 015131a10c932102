"""ask/tell: the generation as arrays, asked for and told its fitness, equal to run_generation."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from neatify import Checkpoint, ConnectionGene, EvolutionConfig, FitnessError, Network, Population, Reporter
from neatify.genome.batch import GenomeBatch

# focus (population_stagnation), interspecies mating, several activations, structural mutations
CONFIG = EvolutionConfig(population_size=80, prob_add_node=0.2, prob_add_connection=0.6, population_stagnation=3,
                         interspecies_mating_rate=0.2, activation_options=["neat_sigmoid", "tanh", "relu"],
                         prob_mutate_activation=0.2, initial_connection="partial 0.5", target_species=6)


def score(genome) -> float:
    """Deterministic, structure- and weight-dependent, capped so that the population stagnates."""
    return min(3.0, sum(c.weight for c in genome.connections.values() if c.enabled) - 0.1 * len(genome.nodes))


def set_scores(genomes) -> None:
    for genome in genomes:
        genome.fitness = score(genome)


def run_state(pop: Population) -> dict:
    """Everything a run is: genomes (ids, genes, fitness), species, history, rng, tracker, champion."""
    state = pop.state_dict()
    del state["config"]
    return state


def test_an_ask_tell_loop_is_run_generation():
    told = Population(num_inputs=3, num_outputs=2, config=CONFIG, seed=9)
    run = Population(num_inputs=3, num_outputs=2, config=CONFIG, seed=9)
    for generation in range(12):
        genomes = told.ask()
        told.tell([score(g) for g in genomes])
        run.run_generation(set_scores)
        assert run_state(told) == run_state(run), f"generation {generation}"
    assert [h.best_fitness for h in told.history] == [h.best_fitness for h in run.history]
    assert len({h.num_species for h in told.history}) > 1 and told.generation == 11


def test_tell_takes_an_array_in_the_order_asked_and_the_genomes_read_it():
    pop = Population(pop_size=30, seed=4)
    genomes = pop.ask()
    assert [g.id for g in genomes] == pop.batch.ids.tolist() and np.isnan(pop.fitness).all()
    fitness = np.arange(30, dtype=np.float32) / 4  # float32 and ints are numbers too
    pop.tell(fitness)
    assert [g.fitness for g in genomes] == (np.arange(30) / 4).tolist() == pop.fitness.tolist()
    assert pop.best_genome.id == genomes[-1].id and pop.history[-1].mean_fitness == pytest.approx(29 / 8)
    with pytest.raises(ValueError, match="read-only"):
        pop.fitness[0] = 1.0
    pop.ask()
    pop.tell(list(range(30)))
    assert pop.history[-1].best_fitness == 29.0


def test_asking_again_before_telling_returns_the_same_generation_unevaluated():
    pop = Population(pop_size=25, seed=2)
    pop.run_generation(set_scores)
    first = pop.ask()
    rng = pop.rng.getstate()
    first[0].fitness = 1.0
    again = pop.ask()
    assert [g.id for g in again] == [g.id for g in first] and all(a is b for a, b in zip(again, first))
    assert again[0].fitness is None, "asked again: no fitness yet"
    assert pop.rng.getstate() == rng and pop.generation == 1, "nothing bred"


def test_telling_without_asking_is_refused():
    pop = Population(pop_size=10, seed=1)
    with pytest.raises(RuntimeError, match=r"needs a generation from ask\(\)"):
        pop.tell([1.0] * 10)
    pop.run_generation(set_scores)
    with pytest.raises(RuntimeError, match=r"needs a generation from ask\(\)"):
        pop.tell([1.0] * 10)
    pop.ask()
    pop.tell([1.0] * 10)
    with pytest.raises(RuntimeError, match=r"needs a generation from ask\(\)"):
        pop.tell([1.0] * 10)  # each generation is told once
    assert len(pop.history) == 2


@pytest.mark.parametrize("bad, words", [(None, "has no fitness"), (float("nan"), "non-finite"),
                                        (float("inf"), "non-finite"), ("3", "expected a float"),
                                        (True, "expected a float"), ([1.0], "expected a float"),
                                        (10**400, "too large for a float")])
def test_a_bad_told_value_names_its_genome_and_the_generation_can_be_told_again(bad, words):
    told = Population(pop_size=20, seed=3)
    run = Population(pop_size=20, seed=3)
    run.run_generation(set_scores)
    told.run_generation(set_scores)
    run.run_generation(set_scores)
    genomes = told.ask()
    values: list = [score(g) for g in genomes]
    values[7] = bad
    with pytest.raises(FitnessError, match=rf"genome {genomes[7].id}\b.*{words}") as error:
        told.tell(values)
    assert error.value.genome_id == genomes[7].id
    assert told.generation == 1 and len(told.history) == 1 and told.genomes[7].fitness is None, "nothing told"
    told.tell([score(g) for g in genomes])
    assert run_state(told) == run_state(run)


def test_a_told_sequence_of_the_wrong_length_is_refused():
    pop = Population(pop_size=12, seed=5)
    pop.ask()
    with pytest.raises(ValueError, match="11 fitness values for the 12 genomes asked"):
        pop.tell([1.0] * 11)
    with pytest.raises(ValueError, match="13 fitness values for the 12 genomes asked"):
        pop.tell(np.ones(13))
    pop.tell(np.ones(12))
    assert pop.history[-1].best_fitness == 1.0


def test_a_checkpoint_between_ask_and_tell_resumes_exactly_once_asked_again(tmp_path):
    straight = Population(num_inputs=3, num_outputs=2, config=CONFIG, seed=5)
    saved = Population(num_inputs=3, num_outputs=2, config=CONFIG, seed=5)
    for _ in range(3):
        straight.run_generation(set_scores)
        saved.run_generation(set_scores)
    asked = saved.ask()
    Checkpoint.save(saved, tmp_path / "asked.json")
    resumed = Checkpoint.load(tmp_path / "asked.json")
    with pytest.raises(RuntimeError, match="loaded from a checkpoint asks again"):
        resumed.tell([score(g) for g in asked])
    again = resumed.ask()
    assert [g.to_dict() for g in again] == [g.to_dict() for g in asked], "the same generation, unevaluated"
    resumed.tell([score(g) for g in again])
    straight.run_generation(set_scores)
    for _ in range(3):
        resumed.tell([score(g) for g in resumed.ask()])
        straight.run_generation(set_scores)
    assert run_state(resumed) == run_state(straight)


class Calls(Reporter):
    """Records which reporter calls came, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def start_generation(self, population) -> None:
        self.calls.append(("start", population.generation))

    def end_generation(self, population, stats) -> None:
        self.calls.append(("end", stats.generation))


def test_reporters_hear_of_each_ask_and_of_the_tell():
    pop = Population(pop_size=10, seed=1)
    pop.add_reporter(reporter := Calls())
    pop.tell([1.0] * len(pop.ask()))
    pop.ask()
    pop.ask()
    pop.tell([2.0] * 10)
    pop.run_generation(set_scores)
    assert reporter.calls == [("start", 0), ("end", 0), ("start", 1), ("start", 1), ("end", 1), ("start", 2),
                              ("end", 2)]


def test_reading_genes_leaves_the_genomes_views_and_nothing_is_read_back(monkeypatch):
    conversions = []
    real = GenomeBatch.from_genomes.__func__
    monkeypatch.setattr(GenomeBatch, "from_genomes",
                        classmethod(lambda cls, genomes: conversions.append(len(genomes)) or real(cls, genomes)))

    def network_fitness(genomes):
        for genome in genomes:
            genome.fitness = sum(Network(genome).activate([1.0, 0.5]))

    pop = Population(pop_size=60, seed=8)
    conversions.clear()
    for _ in range(5):
        pop.run_generation(network_fitness)
    assert all(g.batch_row() == (pop.batch, row) for row, g in enumerate(pop.genomes)), "read, and views still"
    assert conversions == [], "no generation went from gene objects back to arrays"


def test_genes_changed_by_hand_reach_the_batch_whatever_the_way():
    pop = Population(pop_size=40, seed=6)
    pop.run_generation(set_scores)
    genomes = pop.ask()
    before = pop.batch
    added, removed, replaced = genomes[1], genomes[2], genomes[3]
    innovation = max(added.connections) + 1000
    added.connections[innovation] = ConnectionGene(innovation, 0, 2, 0.75, True)
    del removed.connections[next(iter(removed.connections))]
    replaced.nodes = {k: copy.copy(n) for k, n in replaced.nodes.items()}
    next(iter(replaced.nodes.values())).bias = 9.5  # a plain gene of its own now: taken in all the same
    untouched = genomes[4].connections  # read only
    assert [g.batch_row()[0] for g in genomes[1:5]] == [None, None, None, before]
    pop.tell([score(g) for g in genomes])
    assert pop.batch is not before
    for row in (1, 2, 3, 4):
        view = GenomeBatch.from_genomes([pop.genomes[row]])
        assert pop.batch.take(np.array([row])).genes(0) == view.genes(0)
    assert 9.5 in pop.batch.node_bias.tolist() and 0.75 in pop.batch.conn_weight.tolist()
    assert untouched == before.genes(4)[1]


def test_a_genome_put_in_place_of_one_asked_leaves_that_one_without_fitness():
    pop = Population(pop_size=10, seed=1)

    def replacing(genomes):
        genomes[4] = genomes[4].copy(genomes[4].id)  # the generation's genome is no longer in the list ...
        set_scores(genomes)  # ... so the fitness set on its copy is not the generation's

    with pytest.raises(FitnessError, match=rf"genome {pop.genomes[4].id} has no fitness"):
        pop.run_generation(replacing)
    pop.run_generation(set_scores)
    assert pop.generation == 0 and len(pop.history) == 1


def test_a_view_s_genes_equal_copy_and_print_as_plain_genes():
    pop = Population(pop_size=10, seed=2)
    pop.run_generation(set_scores)
    pop.run_generation(set_scores)
    view = pop.genomes[0]
    own = view.copy(view.id)
    assert view.connections == own.connections and view.nodes == own.nodes
    assert list(own.connections.values()) == list(view.connections.values())  # either side of ==
    gene = next(iter(view.connections.values()))
    assert repr(gene).startswith("ConnectionGene(") and type(copy.copy(gene)) is ConnectionGene
    plain = copy.deepcopy(view.connections)
    assert type(plain) is dict and plain == view.connections
    next(iter(plain.values())).weight = 55.0  # a copy is the copier's: the view is untouched
    assert view.batch_row() == (pop.batch, 0) and 55.0 not in pop.batch.conn_weight.tolist()


def test_weights_trained_in_a_fitness_function_and_written_back_are_bred_from():
    torch = pytest.importorskip("torch")
    from neatify.nn import NeatModule

    config = EvolutionConfig(population_size=30, elitism_count=30, elitism_min_species_size=0)
    pop = Population(config=config, seed=3)
    pop.run_generation(set_scores)
    untrained, trained = {}, {}

    def train_then_score(genomes):
        for genome in genomes:
            untrained[genome.id] = tuple(sorted(c.weight for c in genome.connections.values()))
            module = NeatModule(genome, trainable=True)
            with torch.no_grad():
                module.weight.add_(0.5)  # stands for a few optimizer steps
            module.update_genome_weights()
            trained[genome.id] = tuple(sorted(c.weight for c in genome.connections.values()))
        set_scores(genomes)

    pop.run_generation(train_then_score)
    rows = {g.id: row for row, g in enumerate(pop.genomes)}
    for genome_id, weights in trained.items():
        assert weights != untrained[genome_id]
        assert tuple(sorted(pop.batch.take(np.array([rows[genome_id]])).conn_weight.tolist())) == weights
    children = {tuple(sorted(c.weight for c in g.connections.values())) for g in pop.ask()}
    assert children & set(trained.values()), "the elites are copies of trained parents"
    assert not children & set(untrained.values()), "no child has its parent's weights from before training"


@pytest.mark.parametrize("change", [
    lambda conns, key: conns.pop(key), lambda conns, key: conns.popitem(), lambda conns, key: conns.clear(),
    lambda conns, key: conns.update({key: copy.copy(conns[key])}), lambda conns, key: conns.__ior__({}),
    lambda conns, key: conns.setdefault(key + 10_000, ConnectionGene(key + 10_000, 0, 2, 1.0)),
    lambda conns, key: setattr(conns[key], "enabled", not conns[key].enabled),
])
def test_every_way_of_changing_a_view_s_genes_tells_it(change):
    pop = Population(pop_size=12, seed=4)
    pop.run_generation(set_scores)
    genomes = pop.ask()
    conns = genomes[5].connections
    assert genomes[5].batch_row() == (pop.batch, 5)
    change(conns, next(iter(conns)))
    assert genomes[5].batch_row() == (None, -1) and [g.batch_row()[0] is None for g in genomes].count(True) == 1
    pop.tell([score(g) for g in genomes])
    assert pop.batch.take(np.array([5])).genes(0)[1] == conns



def test_a_fitness_too_large_for_a_float_set_on_a_view_is_named_by_the_check_not_raised_on_setting():
    pop = Population(pop_size=10, seed=1)
    culprit = pop.ask()[3].id

    def fitness(genomes):
        for genome in genomes:
            genome.fitness = 10**400 if genome.id == culprit else 1.0  # setting it raises nothing

    with pytest.raises(FitnessError, match=rf"genome {culprit} .*too large for a float"):
        pop.run_generation(fitness)
