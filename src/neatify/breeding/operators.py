"""The NEAT breeding operators over a whole ``GenomeBatch``: crossover, mutation, delta-coding variants
and elite copies of every child of a generation in array operations, with no Python loop per child or gene.

Each operator means what its per-genome counterpart in ``neatify.genome.reference`` (the specification the
tests hold it to) means; delta-coding variants, which have no per-genome counterpart, are defined here
(``VARIANT``). Only the random numbers differ: they all come from one numpy ``Generator``, drawn in a
fixed order, so the same seed gives the same batch. An operator that is off
(probability 0) draws nothing. Operators never change a batch in place (``Genome`` views read it); they
return a new one with its rows in the same order, each row's genes still sorted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from neatify.runtime.compiled import compiled
from neatify.config import EvolutionConfig
from neatify.genome.batch import GenomeBatch, ragged_index, row_offsets
from neatify.genome.innovation import InnovationTracker

ELITE, CHILD, VARIANT = 0, 1, 2
"""Offspring kinds: an exact copy of the mother; a crossover (or copy) then every mutation; a
delta-coding variant of the mother (its weights perturbed, or one new connection: ``_MutationPlan.draw``)."""

VARIANT_TWEAK_SHARE = 0.8
"""Share of variants whose weights (and biases) are perturbed; the others get one new connection."""

Operator = Callable[[GenomeBatch, np.ndarray, EvolutionConfig, np.random.Generator], GenomeBatch]


@dataclass(frozen=True)
class Offspring:
    """The next generation's plan, one entry per child, in order."""

    ids: np.ndarray
    """int64 child genome ids."""
    mother: np.ndarray
    """int64 row in the parents' batch (the fitter parent when father >= 0)."""
    father: np.ndarray
    """int64 row of the weaker parent, or -1 (a copy of mother). Crossing a row with itself is a real
    crossover (disabled genes may come back); ``reproduction`` copies instead, so a plan gives -1 then."""
    kind: np.ndarray
    """int8 ELITE (exact copy), CHILD (crossover/copy then every mutation), VARIANT."""

    def check(self, num_parents: int) -> None:
        """Raise ValueError naming the first child whose entry cannot be bred from ``num_parents`` rows."""
        n = len(self.ids)
        for name in ("mother", "father", "kind"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"Offspring.{name} has {len(getattr(self, name))} entries, ids {n}")
        bad = ((self.mother < 0) | (self.mother >= num_parents) | (self.father < -1) | (self.father >= num_parents)
               | ~np.isin(self.kind, (ELITE, CHILD, VARIANT)) | ((self.father >= 0) & (self.kind != CHILD)))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"child {int(self.ids[i])}: mother {int(self.mother[i])}, father {int(self.father[i])}, "
                             f"kind {int(self.kind[i])} (rows must be below {num_parents}, father -1 or a row, "
                             "a father only for kind CHILD)")


def breed_batch(parents: GenomeBatch, offspring: Offspring, config: EvolutionConfig,
                rng: np.random.Generator, tracker: InnovationTracker) -> GenomeBatch:
    """The children ``offspring`` describes, bred from ``parents`` in bulk as ``reproduction`` breeds them
    one by one: inheritance first, then each child's mutations in the order of ``Genome.mutate``."""
    names = set(parents.activations) | set(config.activation_options) | {config.activation_default}
    parents = parents.with_activations(tuple(sorted(names)))
    children = inherit(parents, offspring, config, rng)
    return _MutationPlan.draw(offspring.kind, config, rng).apply(children, config, rng, tracker)


# --- inheritance ---
def inherit(parents: GenomeBatch, offspring: Offspring, config: EvolutionConfig,
            rng: np.random.Generator) -> GenomeBatch:
    """Each child's genes: its mother's, where its father has the same gene either parent's (as in
    ``Genome.crossover``). Draws, in order: a weight draw for every shared connection gene, then an
    enabled draw for every one, then a draw for every shared node gene (children in order)."""
    crossing = Crossing.of(parents, offspring)
    shared_conns, shared_nodes = len(crossing.conn_at), len(crossing.node_at)
    return crossing.child(config.prob_inherit_disabled, rng.random(shared_conns), rng.random(shared_conns),
                          rng.random(shared_nodes))


def _shared(start: np.ndarray, key: np.ndarray, child_start: np.ndarray, child_key: np.ndarray,
            father: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(child genes whose father has a gene with the same key, that gene's index in the parents'
    arrays), children in order, genes in key order."""
    ours, theirs = np.empty(len(child_key), np.int64), np.empty(len(child_key), np.int64)
    found = _merge_shared(start, key, child_start, child_key, father, ours, theirs)
    return ours[:found], theirs[:found]


@compiled
def _merge_shared(start: np.ndarray, key: np.ndarray, child_start: np.ndarray, child_key: np.ndarray,
                  father: np.ndarray, ours: np.ndarray, theirs: np.ndarray) -> int:
    """Fill ``ours``/``theirs`` (see ``_shared``) by merging each crossed child's sorted keys with its
    father's; returns how many pairs were found."""
    found = 0
    for child in range(len(father)):
        if father[child] < 0:
            continue
        i, our_end = child_start[child], child_start[child + 1]
        j, their_end = start[father[child]], start[father[child] + 1]
        while i < our_end and j < their_end:
            if child_key[i] == key[j]:
                ours[found], theirs[found] = i, j
                found += 1
                i += 1
                j += 1
            elif child_key[i] < key[j]:
                i += 1
            else:
                j += 1
    return found


@dataclass(frozen=True)
class Crossing:
    """The children as copies of their mothers, and which of their genes their fathers share."""

    parents: GenomeBatch
    mothers: GenomeBatch
    """Row i: child i's mother's genes under child i's id."""
    conn_at: np.ndarray
    """Connection genes of ``mothers`` that the child's father also has (same innovation)..."""
    conn_father: np.ndarray
    """...and the father's gene of each, as an index into ``parents``' connection arrays."""
    node_at: np.ndarray
    """Likewise node genes (same id)."""
    node_father: np.ndarray

    @classmethod
    def of(cls, parents: GenomeBatch, offspring: Offspring) -> Crossing:
        """The mothers' genes and the genes shared with the fathers of ``offspring``'s children (the plan
        checked first: the compiled merge reads the fathers' rows unchecked)."""
        offspring.check(len(parents))
        mothers = parents.take(offspring.mother, offspring.ids)
        conn_at, conn_father = _shared(parents.conn_start, parents.conn_innovation, mothers.conn_start,
                                       mothers.conn_innovation, offspring.father)
        node_at, node_father = _shared(parents.node_start, parents.node_id, mothers.node_start, mothers.node_id,
                                       offspring.father)
        return cls(parents, mothers, conn_at, conn_father, node_at, node_father)

    def child(self, prob_inherit_disabled: float, weight_draw: np.ndarray, enabled_draw: np.ndarray,
              node_draw: np.ndarray) -> GenomeBatch:
        """The children, given a draw per shared gene: a shared connection takes the father's weight
        where ``weight_draw >= 0.5``, and is enabled where both parents' genes are or ``enabled_draw >=
        prob_inherit_disabled``; a shared node takes the father's bias and activation where ``node_draw >= 0.5``."""
        parents, mothers = self.parents, self.mothers
        weight, enabled = mothers.conn_weight.copy(), mothers.conn_enabled.copy()
        fathers = weight_draw >= 0.5
        weight[self.conn_at[fathers]] = parents.conn_weight[self.conn_father[fathers]]
        enabled[self.conn_at] = ((enabled[self.conn_at] & parents.conn_enabled[self.conn_father])
                                 | (enabled_draw >= prob_inherit_disabled))
        bias, activation = mothers.node_bias.copy(), mothers.node_activation.copy()
        fathers = node_draw >= 0.5
        bias[self.node_at[fathers]] = parents.node_bias[self.node_father[fathers]]
        activation[self.node_at[fathers]] = parents.node_activation[self.node_father[fathers]]
        return replace(mothers, conn_weight=weight, conn_enabled=enabled, node_bias=bias, node_activation=activation)


# --- the mutation plan ---
@dataclass(frozen=True)
class _MutationPlan:
    """Rows (sorted) each mutation applies to, in the order ``Genome.mutate`` applies them."""

    add_node: np.ndarray
    add_connection: np.ndarray
    delete_node: np.ndarray
    delete_connection: np.ndarray
    weights: np.ndarray
    biases: np.ndarray
    activations: np.ndarray
    toggle: np.ndarray

    @classmethod
    def draw(cls, kind: np.ndarray, config: EvolutionConfig, rng: np.random.Generator) -> _MutationPlan:
        """CHILD rows each get every mutation with its probability (one draw per row and mutation);
        VARIANT rows get their weights and maybe biases perturbed, or one new connection."""
        children, variants = kind == CHILD, kind == VARIANT

        def chosen(among: np.ndarray, p: float) -> np.ndarray:
            """A mask of the rows of ``among`` that a draw below ``p`` picks (no draws when ``p`` is 0)."""
            mask = np.zeros(len(kind), dtype=bool)
            if p:
                rows = np.flatnonzero(among)
                mask[rows[rng.random(len(rows)) < p]] = True
            return mask

        add_node = chosen(children, config.prob_add_node)
        add_connection = chosen(children, config.prob_add_connection)
        delete_node = chosen(children, config.prob_delete_node)
        delete_connection = chosen(children, config.prob_delete_connection)
        weights = chosen(children, config.prob_mutate_weight)
        biases = chosen(children, config.prob_mutate_bias)
        tweaked = chosen(variants, VARIANT_TWEAK_SHARE) if config.prob_add_connection else variants
        biases |= chosen(tweaked, config.prob_mutate_bias)
        masks = (add_node, add_connection | (variants & ~tweaked), delete_node, delete_connection, weights | tweaked,
                 biases, children & bool(config.prob_mutate_activation), children & bool(config.prob_toggle_enable))
        return cls(*(np.flatnonzero(mask) for mask in masks))

    def apply(self, batch: GenomeBatch, config: EvolutionConfig, rng: np.random.Generator,
              tracker: InnovationTracker) -> GenomeBatch:
        """``batch`` (the inherited children) with every planned mutation, each drawing from ``rng``."""
        if len(self.add_node) or len(self.add_connection):
            from neatify.breeding.structure import add_connections, add_nodes  # structure mutations live there

            if len(self.add_node):
                batch = add_nodes(batch, self.add_node, config, rng, tracker)
            if len(self.add_connection):
                batch = add_connections(batch, self.add_connection, config, rng, tracker)
        steps: tuple[tuple[np.ndarray, Operator], ...] = (
            (self.delete_node, delete_nodes), (self.delete_connection, delete_connections),
            (self.weights, mutate_weights), (self.biases, mutate_biases),
            (self.activations, mutate_activations), (self.toggle, toggle_enabled))
        for rows, operator in steps:
            if len(rows):
                batch = operator(batch, rows, config, rng)
        return batch


# --- mutations of given rows; each draws through its public function and applies given draws in a private one ---
def _count(start: np.ndarray, rows: np.ndarray) -> int:
    return int((start[rows + 1] - start[rows]).sum())


def _hidden_of(batch: GenomeBatch, rows: np.ndarray) -> np.ndarray:
    """Hidden node genes of ``rows``, in row order."""
    genes, _ = ragged_index(batch.node_start, rows)
    return genes[batch.hidden()[genes]]


@dataclass(frozen=True)
class GeneValue:
    """A number genes carry and a mutation perturbs: where it lies in a batch, and the prefix of its
    config fields (``prob_replace_<p>``, ``<p>_mutation_power``, ``<p>_init_stdev``, ``<p>_min_value``...)."""

    start: str
    values: str
    prefix: str


WEIGHT = GeneValue("conn_start", "conn_weight", "weight")
BIAS = GeneValue("node_start", "node_bias", "bias")


def mutate_weights(batch: GenomeBatch, rows: np.ndarray, config: EvolutionConfig,
                   rng: np.random.Generator) -> GenomeBatch:
    """``Genome.mutate_weights`` on each of ``rows``."""
    return _mutate_values(batch, rows, config, rng, WEIGHT)


def mutate_biases(batch: GenomeBatch, rows: np.ndarray, config: EvolutionConfig,
                  rng: np.random.Generator) -> GenomeBatch:
    """``Genome.mutate_biases`` on each of ``rows``."""
    return _mutate_values(batch, rows, config, rng, BIAS)


def _mutate_values(batch: GenomeBatch, rows: np.ndarray, config: EvolutionConfig, rng: np.random.Generator,
                   what: GeneValue) -> GenomeBatch:
    """Per gene of ``rows`` a draw, then a standard normal; see ``values_mutated``."""
    n = _count(getattr(batch, what.start), rows)
    return values_mutated(batch, rows, config, what, rng.random(n), rng.standard_normal(n))


def values_mutated(batch: GenomeBatch, rows: np.ndarray, config: EvolutionConfig, what: GeneValue,
                   replace_draw: np.ndarray, normal: np.ndarray) -> GenomeBatch:
    """``rows``' values, gene by gene in row order, redrawn as ``normal * <p>_init_stdev`` where
    ``replace_draw < prob_replace_<p>``, else moved by ``normal * <p>_mutation_power``; then clamped to
    [<p>_min_value, <p>_max_value] as ``genome._mutated`` clamps."""
    genes, _ = ragged_index(getattr(batch, what.start), rows)
    values = getattr(batch, what.values)

    def setting(name: str) -> float:
        return getattr(config, name.format(what.prefix))

    moved = values[genes]
    moved += normal * setting("{}_mutation_power")
    redrawn = np.flatnonzero(replace_draw < setting("prob_replace_{}"))
    moved[redrawn] = normal[redrawn] * setting("{}_init_stdev")
    np.maximum(moved, setting("{}_min_value"), out=moved)
    np.minimum(moved, setting("{}_max_value"), out=moved)
    out = values.copy()
    out[genes] = moved
    return replace(batch, **{what.values: out})


def delete_nodes(batch: GenomeBatch, rows: np.ndarray, config: EvolutionConfig,
                 rng: np.random.Generator) -> GenomeBatch:
    """``Genome.mutate_delete_node`` on each of ``rows``: one uniform pick among its hidden nodes (rows
    without any draw nothing)."""
    counts = np.bincount(batch.node_owner()[batch.hidden()], minlength=len(batch))[rows]
    return nodes_deleted(batch, rows[counts > 0], rng.integers(0, counts[counts > 0]))


def nodes_deleted(batch: GenomeBatch, rows: np.ndarray, pick: np.ndarray) -> GenomeBatch:
    """Without the ``pick[i]``-th hidden node (by id) of each of ``rows`` and every connection touching it."""
    hidden = np.flatnonzero(batch.hidden())
    first = np.searchsorted(hidden, batch.node_start[rows])  # each row's first hidden gene among ``hidden``
    doomed = hidden[first + pick]
    victim = np.full(len(batch), -1, dtype=np.int64)
    victim[rows] = batch.node_id[doomed]
    keep_node = np.ones(len(batch.node_id), dtype=bool)
    keep_node[doomed] = False
    touching = victim[batch.conn_owner()]
    return _kept(batch, keep_node, (batch.conn_in != touching) & (batch.conn_out != touching))


def delete_connections(batch: GenomeBatch, rows: np.ndarray, config: EvolutionConfig,
                       rng: np.random.Generator) -> GenomeBatch:
    """``Genome.mutate_delete_connection`` on each of ``rows``: one uniform pick among its connection
    genes (rows without any draw nothing)."""
    counts = np.diff(batch.conn_start)[rows]
    return connections_deleted(batch, rows[counts > 0], rng.integers(0, counts[counts > 0]))


def connections_deleted(batch: GenomeBatch, rows: np.ndarray, pick: np.ndarray) -> GenomeBatch:
    """Without the ``pick[i]``-th connection gene (by innovation) of each of ``rows``."""
    keep = np.ones(len(batch.conn_innovation), dtype=bool)
    keep[batch.conn_start[rows] + pick] = False
    return _kept(batch, np.ones(len(batch.node_id), dtype=bool), keep)


def _kept(batch: GenomeBatch, keep_node: np.ndarray, keep_conn: np.ndarray) -> GenomeBatch:
    """The batch with only the genes marked kept (rows stay, offsets follow)."""
    return replace(batch, node_start=_kept_offsets(batch.node_start, keep_node), node_id=batch.node_id[keep_node],
                   node_bias=batch.node_bias[keep_node], node_activation=batch.node_activation[keep_node],
                   conn_start=_kept_offsets(batch.conn_start, keep_conn),
                   conn_innovation=batch.conn_innovation[keep_conn], conn_in=batch.conn_in[keep_conn],
                   conn_out=batch.conn_out[keep_conn], conn_weight=batch.conn_weight[keep_conn],
                   conn_enabled=batch.conn_enabled[keep_conn])


def _kept_offsets(start: np.ndarray, keep: np.ndarray) -> np.ndarray:
    return row_offsets(keep)[start]


def mutate_activations(batch: GenomeBatch, rows: np.ndarray, config: EvolutionConfig,
                       rng: np.random.Generator) -> GenomeBatch:
    """``Genome.mutate_activations`` on each of ``rows``: a draw per hidden node, then a uniform pick of
    ``activation_options`` for each one that changes."""
    draw = rng.random(len(_hidden_of(batch, rows)))
    changed = int((draw < config.prob_mutate_activation).sum())
    return activations_mutated(batch, rows, config, draw, rng.integers(0, len(config.activation_options), changed))


def activations_mutated(batch: GenomeBatch, rows: np.ndarray, config: EvolutionConfig, draw: np.ndarray,
                        pick: np.ndarray) -> GenomeBatch:
    """Hidden nodes of ``rows`` (row order) whose ``draw < prob_mutate_activation`` take
    ``activation_options[pick[k]]``, the k-th of them."""
    names = tuple(sorted(set(batch.activations) | set(config.activation_options)))
    batch = batch.with_activations(names)
    code = np.array([names.index(name) for name in config.activation_options], dtype=np.int16)
    genes = _hidden_of(batch, rows)[draw < config.prob_mutate_activation]
    activation = batch.node_activation.copy()
    activation[genes] = code[pick]
    return replace(batch, node_activation=activation)


def toggle_enabled(batch: GenomeBatch, rows: np.ndarray, config: EvolutionConfig,
                   rng: np.random.Generator) -> GenomeBatch:
    """``Genome.mutate_toggle_enable`` on each of ``rows``: a draw per connection gene."""
    return toggled(batch, rows, config, rng.random(_count(batch.conn_start, rows)))


def toggled(batch: GenomeBatch, rows: np.ndarray, config: EvolutionConfig, draw: np.ndarray) -> GenomeBatch:
    """``rows``' connection genes (row order) flipped where ``draw < prob_toggle_enable``."""
    genes, _ = ragged_index(batch.conn_start, rows)
    flipped = genes[draw < config.prob_toggle_enable]
    enabled = batch.conn_enabled.copy()
    enabled[flipped] = ~enabled[flipped]
    return replace(batch, conn_enabled=enabled)
