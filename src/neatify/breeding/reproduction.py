"""Breeding the next generation: stagnation, fitness sharing, offspring allocation, elitism, mating."""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Callable

import numpy as np

from neatify.breeding.operators import CHILD, ELITE, VARIANT, Offspring, breed_batch
from neatify.config import EvolutionConfig
from neatify.genome.batch import GenomeBatch, row_offsets
from neatify.genome.innovation import InnovationTracker
from neatify.speciation.species import Species


def focused(config: EvolutionConfig, population_staleness: int) -> bool:
    """Whether this generation only the two best species breed (the NEAT paper's "delta coding"):
    the whole population's best fitness has not risen for a multiple of ``population_stagnation``
    generations."""
    period = config.population_stagnation
    return period > 0 and population_staleness > 0 and population_staleness % period == 0


def surviving_species(species: list[Species], current_best: list[float], config: EvolutionConfig,
                      focus: bool = False) -> list[int]:
    """Indices of the species allowed to reproduce: not stagnant, or among the ``species_elitism`` best.
    With ``focus``, only the two whose best current member (``current_best``, one per species) is
    fittest, stagnant or not."""
    if focus:
        return sorted(range(len(species)), key=lambda k: (-current_best[k], species[k].id))[:2]
    ranked = sorted(range(len(species)), key=lambda k: (-species[k].best_fitness, species[k].id))
    protected = set(ranked[:config.species_elitism])
    alive = [k for k, s in enumerate(species) if k in protected or s.staleness < config.max_stagnation]
    return alive or ranked[:1]


def shared_fitness(member_fitness: list[np.ndarray]) -> list[float]:
    """Explicit fitness sharing: each species' mean member fitness (``member_fitness``, one array per
    species), rescaled to [0, 1] over all members so that negative fitness values work too."""
    values = np.concatenate(member_fitness)
    lo, hi = float(values.min()), float(values.max())
    span = hi - lo
    if span <= 0.0:
        return [1.0] * len(member_fitness)
    # element by element and summed in order, as a Python loop over the members would (seeded runs stay put)
    return [sum(((f - lo) / span).tolist()) / len(f) for f in member_fitness]


def allocate_offspring(shares: list[float], pop_size: int, min_size: int) -> list[int]:
    """Split ``pop_size`` offspring in proportion to ``shares``, each at least ``min_size``.

    Rounds by largest remainder (ties to the earlier species), so the counts always add up to
    ``pop_size`` exactly. When the minimums alone exceed it, the earliest species keep them.
    """
    n = len(shares)
    if n * min_size >= pop_size:
        counts = [0] * n
        for i in range(n):
            counts[i] = min(min_size, pop_size - sum(counts))
        counts[0] += pop_size - sum(counts)
        return counts
    total = sum(shares)
    raw = [s / total * pop_size for s in shares] if total > 0 else [pop_size / n] * n
    counts = [max(min_size, math.floor(r)) for r in raw]
    # One at a time, to the species furthest below its share (above it, for a surplus; over the
    # minimum only), the earlier on a tie: a heap keyed (distance, index) picks it in log n.
    below = [(counts[k] - raw[k], k) for k in range(n)]
    heapq.heapify(below)
    for _ in range(pop_size - sum(counts)):
        i = below[0][1]
        counts[i] += 1
        heapq.heapreplace(below, (counts[i] - raw[i], i))
    above = [(raw[k] - counts[k], k) for k in range(n) if counts[k] > min_size]
    heapq.heapify(above)
    for _ in range(sum(counts) - pop_size):
        i = heapq.heappop(above)[1]
        counts[i] -= 1
        if counts[i] > min_size:
            heapq.heappush(above, (raw[i] - counts[i], i))
    return counts


def reproduce(species: list[Species], rows: list[np.ndarray], generation: GenomeBatch, fitness: np.ndarray,
              config: EvolutionConfig, pop_size: int, rng: random.Random, tracker: InnovationTracker,
              new_id: Callable[[], int], population_staleness: int = 0) -> tuple[GenomeBatch, list[Species]]:
    """The next generation's genes, bred from the evaluated ``generation`` (its genes and ``fitness``, by
    row) and its ``species`` (``rows[k]``: the rows of species ``k``'s members, in member order), and the
    species that bred them (stagnant ones dropped), whose representatives seed the next speciation.

    Who breeds with whom is decided here, species by species; the genes are made for all offspring at
    once over the parents' rows of ``generation`` (``neatify.breeding.operators.breed_batch``), with a
    numpy generator seeded from ``rng``, so ``rng`` stays the run's one source of randomness.

    ``population_staleness``: generations since the population's best fitness last rose. When it
    reaches a multiple of ``config.population_stagnation``, the two best species get half the
    offspring each, all of them an exact copy or a mutated copy of that species' champion, and
    their stagnation clocks restart (see ``focused``).
    """
    generator = np.random.default_rng(rng.getrandbits(64))
    focus = focused(config, population_staleness)
    keep = surviving_species(species, [float(fitness[r].max()) for r in rows], config, focus)
    alive = [species[k] for k in keep]
    if focus:
        for s in alive:
            s.last_improved += s.staleness
            s.staleness = 0
    pool = np.concatenate([rows[k] for k in keep])
    parents = generation.take(pool)
    plan = _OffspringPlan(parents, fitness[pool])
    shares = [1.0] * len(alive) if focus else shared_fitness([fitness[rows[k]] for k in keep])
    counts = allocate_offspring(shares, pop_size, config.min_species_size)
    sizes = [len(rows[k]) for k in keep]
    ranked = [plan.ranked(int(first), size) for first, size in zip(row_offsets(sizes), sizes)]
    parents_of = [r[:max(2, math.ceil(config.survival_threshold * len(r)))] for r in ranked]
    for k, count in enumerate(counts):
        if focus:  # delta coding: a search around each of the two champions
            kind = np.full(count, VARIANT)
            kind[:1] = ELITE
            plan.add(np.full(count, ranked[k][0]), np.full(count, -1), kind)
            continue
        n_elites = min(count, len(ranked[k]),
                       config.elitism_count if len(ranked[k]) > config.elitism_min_species_size else 0)
        plan.add(ranked[k][:n_elites], np.full(n_elites, -1), np.full(n_elites, ELITE))
        mother, father = _mates(k, parents_of, count - n_elites, config, generator)
        plan.add(mother, father, np.full(count - n_elites, CHILD))
    offspring = plan.offspring(new_id)
    return breed_batch(parents, offspring, config, generator, tracker), alive


def _mates(k: int, parents_of: list[np.ndarray], n: int, config: EvolutionConfig,
           generator: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the mother and father (-1: none, a mutated copy) of ``n`` children of species ``k``: a
    uniform parent each; with ``prob_crossover`` a second parent, from another species with
    ``interspecies_mating_rate``."""
    own = parents_of[k]
    mother = own[generator.integers(len(own), size=n)]
    crossing = generator.random(n) < config.prob_crossover
    father = own[generator.integers(len(own), size=n)]
    if len(parents_of) > 1:
        abroad = np.flatnonzero(crossing & (generator.random(n) < config.interspecies_mating_rate))
        others = generator.integers(len(parents_of) - 1, size=len(abroad))
        others += others >= k  # any species but k
        picks = generator.random(len(abroad))
        father[abroad] = [parents_of[o][int(u * len(parents_of[o]))] for o, u in zip(others.tolist(), picks.tolist())]
    return mother, np.where(crossing & (father != mother), father, -1)


class _OffspringPlan:
    """The offspring being planned: parents' rows in order, with the fitter of two parents first."""

    def __init__(self, parents: GenomeBatch, fitness: np.ndarray) -> None:
        self.ids = parents.ids
        self.fitness = fitness
        # a parent's rank: fitter first; on equal fitness the smaller genome, then the lower id
        order = np.lexsort((parents.ids, np.diff(parents.conn_start), -fitness))
        self.rank = np.empty(len(parents), dtype=np.int64)
        self.rank[order] = np.arange(len(parents))
        self.parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def ranked(self, first: int, count: int) -> np.ndarray:
        """Rows ``first .. first + count - 1`` (a species' members), best first, ties by id
        (``Species.ranked_members``)."""
        rows = np.arange(first, first + count)
        return rows[np.lexsort((self.ids[rows], -self.fitness[rows]))]

    def add(self, mother: np.ndarray, father: np.ndarray, kind: np.ndarray) -> None:
        self.parts.append((np.asarray(mother, np.int64), np.asarray(father, np.int64), np.asarray(kind, np.int8)))

    def offspring(self, new_id: Callable[[], int]) -> Offspring:
        mother, father, kind = (np.concatenate([p[i] for p in self.parts]) for i in range(3))
        swap = (father >= 0) & (self.rank[np.maximum(father, 0)] < self.rank[mother])
        mother, father = np.where(swap, father, mother), np.where(swap, mother, father)
        ids = np.array([new_id() for _ in range(len(kind))], dtype=np.int64)
        return Offspring(ids, mother, father, kind)
