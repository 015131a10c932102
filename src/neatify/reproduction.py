"""Breeding the next generation: stagnation, fitness sharing, offspring allocation, elitism, mating."""

from __future__ import annotations

import gc
import heapq
import math
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from neatify.config import EvolutionConfig
from neatify.genome import Genome
from neatify.innovation import InnovationTracker
from neatify.species import Species


def focused(config: EvolutionConfig, population_staleness: int) -> bool:
    """Whether this generation only the two best species breed (the NEAT paper's "delta coding"):
    the whole population's best fitness has not risen for a multiple of ``population_stagnation``
    generations."""
    period = config.population_stagnation
    return period > 0 and population_staleness > 0 and population_staleness % period == 0


def surviving_species(species: list[Species], config: EvolutionConfig, focus: bool = False) -> list[Species]:
    """Species allowed to reproduce: not stagnant, or among the ``species_elitism`` best. With
    ``focus``, only the two whose best current member is fittest, stagnant or not."""
    if focus:
        return sorted(species, key=lambda s: (-max(g.fitness for g in s.members), s.id))[:2]
    ranked = sorted(species, key=lambda s: (-s.best_fitness, s.id))
    protected = {s.id for s in ranked[:config.species_elitism]}
    alive = [s for s in species if s.id in protected or s.staleness < config.max_stagnation]
    return alive or ranked[:1]


def shared_fitness(species: list[Species]) -> list[float]:
    """Explicit fitness sharing: each species' mean member fitness, rescaled to [0, 1] over all
    members so that negative fitness values work too."""
    values = [g.fitness for s in species for g in s.members]
    lo, hi = min(values), max(values)
    span = hi - lo
    if span <= 0.0:
        return [1.0] * len(species)
    return [sum((g.fitness - lo) / span for g in s.members) / len(s.members) for s in species]


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


def reproduce(species: list[Species], config: EvolutionConfig, pop_size: int, rng: random.Random,
              tracker: InnovationTracker, new_id: Callable[[], int],
              population_staleness: int = 0) -> tuple[list[Genome], list[Species]]:
    """The next generation's genomes, bred from evaluated species, and the species that bred them
    (stagnant ones dropped), whose representatives seed the next speciation.

    ``population_staleness``: generations since the population's best fitness last rose. When it
    reaches a multiple of ``config.population_stagnation``, the two best species get half the
    offspring each, all of them an exact copy or a mutated copy of that species' champion, and
    their stagnation clocks restart (see ``focused``).
    """
    with _full_collections_postponed():
        return _breed(species, config, pop_size, rng, tracker, new_id, population_staleness)


@contextmanager
def _full_collections_postponed() -> Iterator[None]:
    """No full pass of Python's cycle collector while breeding; young passes go on. Every offspring is
    new, so at pop 10,000 full passes over every live gene would come twice a generation (Python
    3.14's incremental collector ignores this third threshold and needs no such help)."""
    thresholds = gc.get_threshold()
    gc.set_threshold(thresholds[0], thresholds[1], 2**30)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)


def _breed(species: list[Species], config: EvolutionConfig, pop_size: int, rng: random.Random,
           tracker: InnovationTracker, new_id: Callable[[], int],
           population_staleness: int) -> tuple[list[Genome], list[Species]]:
    focus = focused(config, population_staleness)
    alive = surviving_species(species, config, focus)
    if focus:
        for s in alive:
            s.last_improved += s.staleness
            s.staleness = 0
    shares = [1.0] * len(alive) if focus else shared_fitness(alive)
    counts = allocate_offspring(shares, pop_size, config.min_species_size)
    ranked = {s.id: s.ranked_members() for s in alive}
    parents_of = {s.id: ranked[s.id][:max(2, math.ceil(config.survival_threshold * len(s.members)))]
                  for s in alive}
    offspring: list[Genome] = []
    for s, count in zip(alive, counts):
        members = ranked[s.id]
        if focus:  # delta coding: a search around each of the two champions
            champion = members[0]
            for i in range(count):
                child_id = new_id()
                offspring.append(_champion_variant(champion, config, rng, tracker, child_id) if i else
                                 champion.copy(child_id))
            continue
        n_elites = config.elitism_count if len(members) > config.elitism_min_species_size else 0
        n_elites = min(n_elites, count)
        for elite in members[:n_elites]:
            offspring.append(elite.copy(new_id()))
        parents = parents_of[s.id]
        for _ in range(count - n_elites):
            offspring.append(_child(s.id, parents, parents_of, alive, config, rng, tracker, new_id()))
    return offspring, alive


def _child(species_id: int, parents: list[Genome], parents_of: dict[int, list[Genome]], alive: list[Species],
           config: EvolutionConfig, rng: random.Random, tracker: InnovationTracker, child_id: int) -> Genome:
    mother = rng.choice(parents)
    if rng.random() < config.prob_crossover:
        if len(alive) > 1 and rng.random() < config.interspecies_mating_rate:
            other = rng.choice([s for s in alive if s.id != species_id])
            father = rng.choice(parents_of[other.id])
        else:
            father = rng.choice(parents)
        if father is not mother:
            fitter, weaker = sorted((mother, father), key=_parent_rank)
            child = Genome.crossover(fitter, weaker, child_id, config, rng)
        else:
            child = mother.copy(child_id)
    else:
        child = mother.copy(child_id)
    child.mutate(config, rng, tracker)
    return child


def _champion_variant(champion: Genome, config: EvolutionConfig, rng: random.Random, tracker: InnovationTracker,
                      child_id: int) -> Genome:
    """A delta-coding offspring, as the NEAT paper's source breeds its "super champion": the champion
    with its weights (and, at their usual rate, biases) perturbed, or one time in five with one new
    connection and nothing else changed."""
    child = champion.copy(child_id)
    if rng.random() < 0.8 or not config.prob_add_connection:
        child.mutate_weights(config, rng)
        if rng.random() < config.prob_mutate_bias:
            child.mutate_biases(config, rng)
    else:
        child.mutate_add_connection(config, rng, tracker)
    return child


def _parent_rank(g: Genome) -> tuple[float, int, int]:
    """Fitter first; on equal fitness the smaller genome, then the lower id."""
    return (-g.fitness, len(g.connections), g.id)
