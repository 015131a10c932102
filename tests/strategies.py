"""Hypothesis strategies for the differential tests: genomes, lists of them and GenomeBatches of random structure.

A test drawing from these gets a failing case shrunk to a smallest genome (fewest nodes and genes, weights 0.0)
instead of one of thousands of seeded draws. The Hypothesis profiles (derandomised in CI) are in conftest.py.
"""

from __future__ import annotations

from hypothesis import note, strategies as st

from helpers import make_genome
from neatify import Genome
from neatify.genome.batch import GenomeBatch

FAR = 10**6
"""Some hidden node ids lie this far up: sparse ids, as hand-made genes have."""

values = st.floats(-3.0, 3.0, allow_nan=False)
"""Weights and biases: shrink to 0.0, and take -0.0, tiny and boundary values as well."""

units = st.floats(0.0, 1.0, exclude_max=True)
"""Uniform draws in [0, 1), as ``random.random()`` gives them."""


@st.composite
def genomes(draw: st.DrawFn, activations: tuple[str, ...] = ("tanh",), num_inputs: int = 3, num_outputs: int = 2,
            cyclic: bool | None = None, genome_id: int = 0, max_hidden: int = 8, max_connections: int = 18,
            innovations: int = 500):
    """A genome of random structure: hidden ids far apart, disabled genes, nodes that reach no output or have no
    inputs, innovations out of gene order (drawn below ``innovations``), repeated node pairs. ``cyclic`` True
    allows any edge (self-loops, cycles), False only edges forward in a random node order, None draws which."""
    outputs = list(range(num_inputs, num_inputs + num_outputs))
    hidden = draw(st.lists(st.integers(outputs[-1] + 1, outputs[-1] + 36) | st.integers(FAR, FAR + 4), unique=True,
                           max_size=max_hidden))
    order = list(range(num_inputs)) + draw(st.permutations(outputs + hidden))  # feed-forward edges go right
    nodes = _node_genes(draw, outputs + hidden, activations)
    cyclic = draw(st.booleans()) if cyclic is None else cyclic
    ends = st.tuples(st.integers(0, len(order) - 1), st.integers(num_inputs, len(order) - 1))
    genes = draw(_some(st.tuples(st.integers(0, innovations - 1), ends, values, st.booleans()), max_connections))
    connections = [(innovation, order[src], order[dst], weight, enabled)
                   for innovation, (src, dst), weight, enabled in genes if cyclic or src < dst]
    return _shown(make_genome(num_inputs, num_outputs, nodes, connections, genome_id))


@st.composite
def genome_lists(draw: st.DrawFn, max_size: int = 8, of=genomes, min_size: int = 1, **options):
    """``min_size`` to ``max_size`` genomes drawn from ``of(genome_id=k, **options)``, numbered 0, 1, ... in order."""
    return [draw(of(genome_id=k, **options)) for k in range(draw(st.integers(min_size, max_size)))]


def genome_batches(max_size: int = 8, **options) -> st.SearchStrategy[GenomeBatch]:
    """A GenomeBatch of ``genome_lists(max_size, **options)``."""
    return genome_lists(max_size, **options).map(GenomeBatch.from_genomes)


@st.composite
def hostile_genomes(draw: st.DrawFn, genome_id: int = 0, activations: tuple[str, ...] = ("relu", "tanh", "identity")):
    """A hand-made genome of 2 inputs and 2 outputs with what evolution never makes: genes into inputs, a node gene
    with an input's id, genes from or to nodes it lacks, self-loops, repeated pairs, cycles through outputs, a huge
    id, sometimes an output's gene missing."""
    hidden = draw(st.lists(st.integers(4, 29), unique=True, max_size=8)) + draw(
        st.lists(st.sampled_from([0, 1, 2**40]), max_size=1))
    kept = draw(st.sampled_from([[2, 3]] * 30 + [[2], [3]]))  # one time in 16 an output's gene is missing
    nodes = _node_genes(draw, kept + hidden, activations)
    ends = [0, 1, 2, 3] + hidden
    sources = st.sampled_from(ends * 4 + [-1, 99])  # about one time in 2 * len(ends) from a node no genome has
    targets = st.sampled_from(ends + [77])
    genes = draw(_some(st.tuples(st.integers(0, 99), sources, targets, st.sampled_from([False] * 9 + [True]), values,
                                 st.booleans()), 30))
    connections = [(innovation, src, src if loop else dst, weight, enabled)
                   for innovation, src, dst, loop, weight, enabled in genes]  # a loop one time in ten
    if draw(st.booleans()):  # a cycle through both outputs
        connections += [(100, 2, 3, draw(values), True), (101, 3, 2, draw(values), True)]
    return _shown(make_genome(2, 2, nodes, connections, genome_id))


def _shown(genome: Genome) -> Genome:
    """``genome``, its genes noted for Hypothesis to print with a failing example (a Genome's repr has no genes)."""
    note(f"genome {genome.id}: {genome.to_dict()}")
    return genome


def _node_genes(draw: st.DrawFn, ids: list[int], activations: tuple[str, ...]) -> list[tuple[int, float, str]]:
    """(id, bias, activation) node genes for ``ids``."""
    drawn = draw(st.lists(st.tuples(values, st.sampled_from(activations)), min_size=len(ids), max_size=len(ids)))
    return [(node, bias, activation) for node, (bias, activation) in zip(ids, drawn)]


def _some(genes: st.SearchStrategy, most: int) -> st.SearchStrategy:
    """0 to ``most`` of ``genes``, their innovations (first fields) unique; half the time at least ``most // 2``
    (a plain list strategy draws mostly short lists, and dense genomes are where cycles are)."""
    count = st.integers(0, most) | st.integers(most // 2, most)
    return count.flatmap(lambda n: st.lists(genes, min_size=n, max_size=n, unique_by=lambda g: g[0]))
