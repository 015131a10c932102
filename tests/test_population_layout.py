"""The array layout of a population equals laying out every genome with NetworkLayout.from_genome."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import example, given, settings

from helpers import make_genome, random_genomes
from strategies import genome_lists, hostile_genomes

from neatify import EvolutionConfig, Genome, Population
from neatify.genome.graph import evaluation_plan
from neatify.network.layout import PopulationLayout

# Names sort by code point, so upper case comes first: rows are grouped by that order.
ACTIVATIONS = ["relu", "tanh", "identity", "Upper_custom", "a_custom", "neat_sigmoid"]


def both_layouts(genomes: list[Genome], synchronous: bool) -> PopulationLayout:
    """The array layout, after checking it equals the per-genome one."""
    layout = PopulationLayout.from_genomes(genomes, synchronous)
    assert layout.equals(PopulationLayout.from_genomes(genomes, synchronous, per_genome=True))
    return layout


@pytest.mark.parametrize("synchronous", [False, True])
@pytest.mark.parametrize("cyclic_share", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("seed", [0, 1])
def test_random_populations_equal_per_genome_layouts(cyclic_share: float, synchronous: bool, seed: int) -> None:
    genomes = random_genomes(300, cyclic_share, ACTIVATIONS, seed)
    layout = both_layouts(genomes, synchronous)
    assert layout.recurrent is not None or not (synchronous or cyclic_share)
    if not synchronous:
        assert len(layout.layers) >= 4


@pytest.mark.parametrize("allow_recurrent", [False, True])
def test_evolved_populations_equal_per_genome_layouts(allow_recurrent: bool) -> None:
    config = EvolutionConfig(prob_add_node=0.4, prob_add_connection=0.6, allow_recurrent=allow_recurrent,
                             prob_toggle_enable=0.05, prob_delete_connection=0.1, prob_delete_node=0.05)
    population = Population(60, 3, 2, config=config, seed=4)
    for generation in range(10):
        population.run_generation(lambda genomes: [setattr(g, "fitness", float(g.id % 7)) for g in genomes])
        for synchronous in (False, True):
            both_layouts(population.genomes, synchronous)


def test_a_cycle_reads_the_previous_step_where_the_ordered_search_closes_it() -> None:
    # Input 0 -> 3 -> 4 -> 3 and 4 -> output 1. The search from input 0 enters 3, then 4, and finds
    # 4 -> 3 pointing back onto its stack: that edge reads the previous step; 3 is layer 1, 4 layer 2,
    # the output layer 3. Entered at 4 instead (0 -> 4), 3 -> 4 is the one pointing back.
    def looped(entry: int, genome_id: int) -> Genome:
        return make_genome(1, 1, [(1, 0.0, "relu"), (3, 0.3, "relu"), (4, 0.4, "tanh")],
                           [(0, 0, entry, 1.0, True), (1, 3, 4, 0.5, True), (2, 4, 3, 0.7, True),
                            (3, 7 - entry, 1, 0.9, True)], genome_id)

    for entry, back_weight, order in ((3, 0.7, [0.3, 0.4, 0.0]), (4, 0.5, [0.4, 0.3, 0.0])):
        layout = both_layouts([looped(entry, 0)], synchronous=False)
        assert layout.layer_rows == [(0, 1), (1, 2), (2, 3)]
        np.testing.assert_array_equal(layout.bias, order)
        assert layout.recurrent is not None and layout.recurrent[3].tolist() == [back_weight]
    plan = evaluation_plan(looped(3, 0).enabled_edges(), [0], [1])
    assert plan.recurrent_edges == [(4, 3)]


def test_depth_levels_are_longest_paths() -> None:
    # 0 -> 5 -> 6 -> 3 and 0 -> 3: output 3 at depth 3; 7 -> 4 with 7 fed by nothing (depth 1); 8 reaches no output.
    genome = make_genome(3, 2, [(3, 0.1, "relu"), (4, 0.2, "tanh"), (5, 0.3, "relu"), (6, 0.4, "relu"),
                                (7, 0.5, "tanh"), (8, 0.6, "relu")],
                         [(9, 0, 5, 1.0, True), (2, 5, 6, 1.0, True), (4, 6, 3, 1.0, True), (1, 0, 3, 1.0, True),
                          (7, 7, 4, 1.0, True), (3, 1, 4, 1.0, False), (8, 5, 8, 1.0, True)])
    layout = both_layouts([genome, genome.copy(1)], synchronous=False)
    assert layout.layer_rows == [(0, 4), (4, 8), (8, 10)]  # {5, 7}, {6, 4}, {3} of both genomes
    assert layout.segments == [[("relu", 0, 2), ("tanh", 2, 4)], [("relu", 4, 6), ("tanh", 6, 8)], [("relu", 8, 10)]]
    np.testing.assert_array_equal(layout.bias, [0.3, 0.3, 0.5, 0.5, 0.4, 0.4, 0.2, 0.2, 0.1, 0.1])
    np.testing.assert_array_equal(layout.outputs, [8, 6, 9, 7])


def test_equals_sees_any_difference() -> None:
    genomes = random_genomes(20, 0.3, ACTIVATIONS)
    layout = PopulationLayout.from_genomes(genomes)
    assert layout.equals(PopulationLayout.from_genomes(genomes))
    genomes[5].nodes[3].bias += 1e-12  # an output: always laid out
    assert not layout.equals(PopulationLayout.from_genomes(genomes))
    assert not layout.equals(PopulationLayout.from_genomes(genomes[:19]))


def test_a_genome_without_an_output_gene_is_refused() -> None:
    genomes = random_genomes(3, 0.0, ACTIVATIONS)
    del genomes[2].nodes[4]
    with pytest.raises(ValueError, match="genome 2 lacks the gene of output node 4"):
        PopulationLayout.from_genomes(genomes)


def test_a_connection_from_a_missing_node_is_refused_when_it_counts() -> None:
    unused = make_genome(1, 1, [(1, 0.5, "relu"), (2, 0.0, "relu")], [(0, 0, 1, 1.0, True), (5, 9, 2, 1.0, True)])
    both_layouts([unused], synchronous=False)  # node 2 reaches no output: the missing node 9 does not matter
    used = make_genome(1, 1, [(1, 0.5, "relu")], [(0, 0, 1, 1.0, True), (5, 9, 1, 1.0, True)], genome_id=7)
    with pytest.raises(ValueError, match="genome 7: connection 5 comes from node 9, which the genome does not have"):
        PopulationLayout.from_genomes([unused, used])


def chain(length: int, genome_id: int, cycle: bool) -> Genome:
    """Input 0 -> hidden 3 -> 4 -> ... -> output 1 through ``length`` hidden nodes, a shortcut 0 -> 1,
    and with ``cycle`` an edge from the last hidden node back to the first."""
    hidden = list(range(3, 3 + length))
    path = [0] + hidden + [1]
    connections = [(i, a, b, 0.5, True) for i, (a, b) in enumerate(zip(path, path[1:]))]
    connections.append((length + 1, 0, 1, -1.0, True))
    if cycle:
        connections.append((length + 2, hidden[-1], hidden[0], 0.3, True))
    return make_genome(1, 1, [(n, 0.1 * n, "tanh") for n in [1] + hidden], connections, genome_id)


def test_long_chains_among_small_genomes() -> None:
    genomes = [chain(2, 0, False), chain(120, 1, False), chain(3, 2, True), chain(90, 3, True), chain(1, 4, False)]
    layout = both_layouts(genomes, synchronous=False)
    assert len(layout.layers) == 121 and layout.recurrent is not None


def test_negative_node_ids_are_refused_or_ignored_and_huge_ones_laid_out() -> None:
    negative = make_genome(1, 1, [(1, 0.0, "relu"), (-3, 0.0, "relu")], [(0, 0, 1, 1.0, True)], genome_id=4)
    with pytest.raises(ValueError, match="genome 4 has node id -3"):
        PopulationLayout.from_genomes([negative])
    from_negative = make_genome(1, 1, [(1, 0.0, "relu")], [(0, 0, 1, 1.0, True), (1, -1, 1, 1.0, True)], genome_id=5)
    with pytest.raises(ValueError, match="genome 5: connection 1 comes from node -1"):
        PopulationLayout.from_genomes([from_negative])
    into_negative = make_genome(1, 1, [(1, 0.0, "relu")], [(0, 0, 1, 1.0, True), (1, 1, -1, 1.0, True)])
    both_layouts([into_negative], synchronous=False)
    huge = make_genome(1, 1, [(1, 0.0, "relu"), (2**62, 0.0, "relu")], [(0, 0, 1, 1.0, True)])
    layout = both_layouts([huge, huge.copy(1)], synchronous=False)  # ids are searched per genome: no key overflows
    assert layout.num_nodes == 2


def test_a_node_with_many_incoming_edges_and_repeated_pairs() -> None:
    """Rows longer than the insertion sort's reach are sorted another way: the same CSR order."""
    edges = [(100 - k, k % 40, 40, 0.1 * k, True) for k in range(60)]  # 60 genes into one output, 20 pairs twice
    wide = make_genome(40, 1, [(40, 0.0, "relu")], edges, genome_id=3)
    layout = both_layouts([wide, wide.copy(4)], synchronous=False)
    assert len(layout.layers[0][1]) == 120


@pytest.mark.parametrize("synchronous", [False, True])
def test_connections_into_inputs_are_left_out(synchronous: bool) -> None:
    """A gene into an input carries nothing: neither layout has it (the per-genome one once placed it
    on another genome's node)."""
    into_input = make_genome(2, 1, [(2, 0.1, "relu"), (5, 0.2, "tanh")],
                             [(0, 0, 5, 1.0, True), (1, 5, 2, 1.0, True), (2, 2, 1, 0.5, True), (3, 5, 0, 0.7, True)])
    other = make_genome(2, 1, [(2, 0.3, "relu")], [(0, 1, 2, 1.0, True)], genome_id=1)
    layout = both_layouts([other, into_input], synchronous)
    weights = [w for csr in layout.layers + [layout.recurrent or (None, (), (), [])] for w in csr[3]]
    assert sorted(weights) == [1.0, 1.0, 1.0]


@pytest.mark.parametrize("synchronous", [False, True])
def test_hostile_hand_made_genomes_lay_out_as_per_genome_or_are_refused(synchronous: bool) -> None:
    """Differential test on Hypothesis's hostile genomes (a failure shrinks to a smallest one): the compiled walk
    (no bounds checks) equals evaluation_plan's layout genome by genome, or both refuse the genomes."""
    seen: Counter[str] = Counter()

    @settings(max_examples=50)
    @given(genome_lists(max_size=3, of=hostile_genomes))
    @example([make_genome(2, 2, [(2, 0.0, "relu")], [])])  # output 3's gene is missing: refused
    @example([make_genome(2, 2, [(2, 0.0, "relu"), (3, 0.0, "relu")], [(0, 0, 2, 1.0, True)])])  # feed-forward
    @example([make_genome(2, 2, [(2, 0.0, "relu"), (3, 0.0, "relu")],
                          [(0, 0, 2, 1.0, True), (1, 2, 3, 1.0, True), (2, 3, 2, 1.0, True)])])  # a cycle
    def lays_out_as_per_genome_or_is_refused(genomes: list[Genome]) -> None:
        try:
            reference = PopulationLayout.from_genomes(genomes, synchronous, per_genome=True)
        except (KeyError, ValueError):
            with pytest.raises(ValueError, match="genome"):
                PopulationLayout.from_genomes(genomes, synchronous)
            seen["refused"] += 1
            return
        layout = PopulationLayout.from_genomes(genomes, synchronous)
        assert layout.equals(reference)
        seen["recurrent" if layout.recurrent is not None else "feed-forward"] += 1

    lays_out_as_per_genome_or_is_refused()
    assert min(seen["refused"], seen["recurrent"], seen["feed-forward"]) >= 2, seen  # every path, not only by example
