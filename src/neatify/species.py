"""Species: groups of genomes within a compatibility distance of a representative."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from neatify.config import EvolutionConfig
from neatify.genome import Genome


@dataclass
class Species:
    """A niche of similar genomes, with the bookkeeping stagnation needs."""

    id: int
    representative: Genome
    created: int
    members: list[Genome] = field(default_factory=list)
    best_fitness: float = -math.inf
    """Best member fitness this species ever reached."""
    last_improved: int = 0
    """Generation in which best_fitness last rose."""
    staleness: int = 0
    """Generations since best_fitness last rose."""

    def __repr__(self) -> str:
        return (f"Species(id={self.id}, members={len(self.members)}, best_fitness={self.best_fitness}, "
                f"staleness={self.staleness})")

    def update_fitness(self, generation: int) -> None:
        """Record this generation's best member fitness and how long the species has stalled."""
        best = max(g.fitness for g in self.members)
        if best > self.best_fitness:
            self.best_fitness = best
            self.last_improved = generation
        self.staleness = generation - self.last_improved

    def ranked_members(self) -> list[Genome]:
        """Members best first; ties by id, so the order never depends on evaluation order."""
        return sorted(self.members, key=lambda g: (-g.fitness, g.id))

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "representative": self.representative.to_dict(),
            "created": self.created,
            "members": [g.id for g in self.members],
            "best_fitness": None if self.best_fitness == -math.inf else self.best_fitness,
            "last_improved": self.last_improved,
            "staleness": self.staleness,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], genomes_by_id: dict[int, Genome]) -> Species:
        best = data["best_fitness"]
        return cls(
            id=int(data["id"]),
            representative=Genome.from_dict(data["representative"]),
            created=int(data["created"]),
            members=[genomes_by_id[int(i)] for i in data["members"]],
            best_fitness=-math.inf if best is None else float(best),
            last_improved=int(data["last_improved"]),
            staleness=int(data["staleness"]),
        )


class DistanceCache:
    """Memoises compatibility distances by genome id pair for one speciation pass."""

    def __init__(self, config: EvolutionConfig) -> None:
        self.config = config
        self._cache: dict[tuple[int, int], float] = {}

    def __call__(self, a: Genome, b: Genome) -> float:
        key = (a.id, b.id) if a.id < b.id else (b.id, a.id)
        d = self._cache.get(key)
        if d is None:
            d = self._cache[key] = a.distance(b, self.config)
        return d


def speciate(genomes: list[Genome], previous: list[Species], threshold: float, config: EvolutionConfig,
             generation: int, next_species_id: int) -> tuple[list[Species], int]:
    """Assign every genome to a species; returns the new species list and the next free species id.

    Each surviving species first takes as its new representative the genome closest to its old
    one (within the threshold); a species whose old representative now lies within the threshold
    of an older species' is merged into it, so a rising threshold really reduces the count. Every
    other genome joins the species whose representative is closest, or founds a new species.
    Species left without members disappear.
    """
    distance = DistanceCache(config)
    unassigned = {g.id: g for g in genomes}
    species: list[Species] = []
    kept: list[Genome] = []
    for old in sorted(previous, key=lambda s: s.id):
        if any(distance(rep, old.representative) < threshold for rep in kept):
            continue
        kept.append(old.representative)
        best, best_d = None, threshold
        for g in unassigned.values():
            d = distance(old.representative, g)
            if d < best_d:
                best, best_d = g, d
        if best is None:
            continue
        del unassigned[best.id]
        species.append(Species(old.id, best, old.created, [best], old.best_fitness, old.last_improved,
                               old.staleness))
    for g in sorted(unassigned.values(), key=lambda g: g.id):
        best_s, best_d = None, threshold
        for s in species:
            d = distance(s.representative, g)
            if d < best_d:
                best_s, best_d = s, d
        if best_s is None:
            species.append(Species(next_species_id, g, generation, [g], last_improved=generation))
            next_species_id += 1
        else:
            best_s.members.append(g)
    return species, next_species_id


def adapt_threshold(threshold: float, species_count: int, config: EvolutionConfig) -> float:
    """Move the compatibility threshold one step toward ``config.target_species`` species."""
    if config.target_species <= 0:
        return threshold
    if species_count < config.target_species:
        threshold -= config.compatibility_threshold_step
    elif species_count > config.target_species:
        threshold += config.compatibility_threshold_step
    return max(config.compatibility_threshold_min, threshold)
