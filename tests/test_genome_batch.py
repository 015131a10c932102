"""GenomeBatch: genes of many genomes as flat arrays, and Genome views over its rows."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from neatify import Population
from neatify.genome.batch import GenomeBatch


def _evolved(pop_size: int = 200, generations: int = 6, seed: int = 3) -> list:
    pop = Population(pop_size=pop_size, num_inputs=3, num_outputs=2, seed=seed)

    def fitness(genomes):
        for g in genomes:
            g.fitness = sum(c.weight for c in g.connections.values() if c.enabled)

    for _ in range(generations):
        pop.run_generation(fitness)
    return pop.genomes


def _genes(genome) -> tuple:
    nodes = sorted(n.to_list() for n in genome.nodes.values())
    conns = sorted(c.to_list() for c in genome.connections.values())
    return genome.id, nodes, conns


def test_views_hold_the_genes_they_were_read_from():
    genomes = _evolved()
    batch = GenomeBatch.from_genomes(genomes)
    assert [_genes(v) for v in batch.views()] == [_genes(g) for g in genomes]
    hidden, enabled = batch.sizes()
    assert list(zip(hidden.tolist(), enabled.tolist())) == [g.size() for g in genomes]


def test_rows_are_sorted_and_offsets_consistent():
    batch = GenomeBatch.from_genomes(_evolved())
    assert batch.node_start[-1] == len(batch.node_id) and batch.conn_start[-1] == len(batch.conn_innovation)
    for row in range(len(batch)):
        ids = batch.node_id[batch.node_start[row]:batch.node_start[row + 1]]
        innovations = batch.conn_innovation[batch.conn_start[row]:batch.conn_start[row + 1]]
        assert (np.diff(ids) > 0).all() and (np.diff(innovations) > 0).all()


def test_a_view_stays_one_when_read_and_owns_its_genes_once_changed():
    genomes = _evolved()
    batch = GenomeBatch.from_genomes(genomes)
    views = batch.views()
    assert all(v.batch_row() == (batch, row) for row, v in enumerate(views))
    read = views[5]
    conn = next(iter(read.connections.values()))
    assert read.batch_row() == (batch, 5), "reading leaves a view a view"
    assert GenomeBatch.from_genomes(views) is batch, "so its genes are not read back"
    conn.weight = 123.0  # a changed gene is what the next batch holds
    assert read.batch_row() == (None, -1)
    again = GenomeBatch.from_genomes(views[::-1])
    assert 123.0 in again.conn_weight.tolist()
    assert [_genes(v) for v in again.views()] == [_genes(v) for v in views[::-1]]


def test_take_and_concat_keep_every_row_and_rename():
    batch = GenomeBatch.from_genomes(_evolved())
    rows = np.array([4, 4, 0, 7])
    taken = batch.take(rows, ids=np.array([90, 91, 92, 93]))
    views = batch.views()
    for new, row in zip(taken.views(), rows.tolist()):
        assert _genes(new)[1:] == _genes(views[row])[1:]
    assert taken.ids.tolist() == [90, 91, 92, 93]
    joined = GenomeBatch.concat([batch, taken])
    assert [_genes(v) for v in joined.views()] == [_genes(v) for v in batch.views() + taken.views()]


def test_concat_recodes_activations():
    genomes = _evolved(pop_size=50, generations=3)
    for node in genomes[0].nodes.values():
        node.activation = "tanh"
    mixed = GenomeBatch.concat([GenomeBatch.from_genomes(genomes[:1]), GenomeBatch.from_genomes(genomes[1:])])
    assert [_genes(v) for v in mixed.views()] == [_genes(g) for g in genomes]


def test_mixed_shapes_are_refused_naming_the_genome():
    a = Population(pop_size=5, num_inputs=2, num_outputs=1, seed=1).genomes
    b = Population(pop_size=5, num_inputs=3, num_outputs=1, seed=1).genomes
    b[0].id = 77
    with pytest.raises(ValueError, match="genome 77 has 3 inputs"):
        GenomeBatch.from_genomes(a + b[:1])


def test_a_run_through_the_population_module_builds_no_gene_objects():
    torch = pytest.importorskip("torch")
    from neatify.nn import NeatPopulationModule

    x = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])

    def fitness(genomes):
        out = NeatPopulationModule(genomes)(x)
        for genome, value in zip(genomes, out.sum(dim=(1, 2)).tolist()):
            genome.fitness = value

    pop = Population(pop_size=300, num_inputs=2, num_outputs=1, seed=5)
    for _ in range(4):
        pop.run_generation(fitness)
    batches = {g.batch_row()[0] for g in pop.genomes}
    assert len(batches) == 1 and None not in batches, "every genome an unread view of one batch"
    assert pop.best_genome is not None and pop.best_genome.batch_row()[0] is None


def test_genes_a_fitness_function_changed_are_what_the_next_generation_breeds_from():
    pop = Population(pop_size=60, num_inputs=2, num_outputs=1, seed=6)

    def fitness(genomes):
        for genome in genomes:
            genome.fitness = float(genome.id % 7)
        for conn in genomes[0].connections.values():  # read, then changed
            conn.weight = 17.25

    pop.run_generation(fitness)
    changed = pop.genomes[0]
    for batch in (GenomeBatch.from_genomes(pop.genomes), pop.batch):
        assert batch.conn_weight[:len(changed.connections)].tolist() == [17.25] * len(changed.connections)
    pop.config.elitism_count = 60  # every species' members all copied: the changed genome is among them
    pop.config.elitism_min_species_size = 0
    children = pop.ask()  # bred, nothing changed since
    assert any(g.connections and all(c.weight == 17.25 for c in g.connections.values()) for g in children)



def test_plain_genomes_equal_each_genomes_own_plain_data():
    from neatify.genome.batch import plain_genomes

    genomes = _evolved()
    views = GenomeBatch.from_genomes(genomes).views()
    for view, genome in zip(views, genomes):
        view.fitness = genome.fitness
    assert plain_genomes(views) == [v.to_dict() for v in views]
    assert all(v.batch_row()[0] is not None for v in views), "nothing was read"
    views[3].connections  # one read genome: every genome's own to_dict
    assert plain_genomes(views) == [v.to_dict() for v in views]


def test_offsets_that_do_not_fit_the_gene_arrays_are_refused():
    batch = GenomeBatch.from_genomes(Population(pop_size=6, num_inputs=2, num_outputs=1, seed=3).genomes)
    with pytest.raises(ValueError, match="conn_start must be 7 non-decreasing offsets"):
        replace(batch, conn_start=batch.conn_start + 1)
    with pytest.raises(ValueError, match="node_start must be 7"):
        replace(batch, node_id=batch.node_id[:-1])
    with pytest.raises(ValueError, match="conn_start must be 7"):
        replace(batch, conn_start=batch.conn_start[::-1])
    with pytest.raises(ValueError, match="node_activation must index the 1 activation name"):
        replace(batch, node_activation=batch.node_activation - 1)
    assert len(replace(batch)) == 6


@pytest.mark.parametrize("odd", ["bad", 2 ** 1100, float("nan")])
def test_a_view_set_back_to_none_has_no_fitness_and_no_odd_value_left(odd):
    views = GenomeBatch.from_genomes(_evolved(pop_size=20, generations=1)).views()
    views[0].fitness, views[1].fitness = odd, 1.5
    views[0].fitness = views[1].fitness = None
    assert views[0].fitness is None and views[1].fitness is None
    views[0].fitness = 2  # a real number again: read back as a float
    assert views[0].fitness == 2.0 and type(views[0].fitness) is float
