"""Species: groups of genomes within a compatibility distance of a representative."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

import numpy as np

from neatify.runtime.compiled import compiled
from neatify.config import EvolutionConfig
from neatify.genome.genome import Genome
from neatify.genome.batch import GenomeBatch, connection_genes, row_offsets


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

    def update_fitness(self, generation: int, best: float) -> None:
        """Record ``best``, this generation's best member fitness, and how long the species has stalled."""
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


_genome_id = attrgetter("id")


class GeneTable:
    """The connection genes of many genomes as flat arrays, to measure the compatibility distance
    from one genome to all of them in one compiled pass (``Genome.distance`` is the one-pair reference)."""

    def __init__(self, genomes: list[Genome], config: EvolutionConfig) -> None:
        """The table of ``genomes``, gathered genome by genome (a view's genes are a slice of its batch)."""
        genes = [connection_genes(g) for g in genomes]
        self.config = config
        self.size = len(genomes)
        self.start = row_offsets([len(innovation) for innovation, _ in genes])
        self.innovation = np.concatenate([innovation for innovation, _ in genes] or [np.zeros(0, np.int64)])
        self.weight = np.concatenate([weight for _, weight in genes] or [np.zeros(0)])

    @classmethod
    def of_batch(cls, batch: GenomeBatch, config: EvolutionConfig) -> GeneTable:
        """The table of every row of ``batch``: its own columns, nothing gathered."""
        table = cls.__new__(cls)
        table.config, table.size = config, len(batch)
        table.start, table.innovation, table.weight = batch.conn_start, batch.conn_innovation, batch.conn_weight
        return table

    def distances(self, genome: Genome) -> np.ndarray:
        """Compatibility distance from ``genome`` to every genome of the table."""
        config = self.config
        ref_innovation, ref_weight = connection_genes(genome)
        out = np.empty(self.size)
        _distances(self.start, self.innovation, self.weight, ref_innovation, ref_weight,
                   float(config.c1), float(config.c2), float(config.c3), float(config.normalize_min_genes), out)
        return out


@compiled
def _distances(start: np.ndarray, innovation: np.ndarray, weight: np.ndarray, ref_innovation: np.ndarray,
               ref_weight: np.ndarray, c1: float, c2: float, c3: float, min_genes: float, out: np.ndarray) -> None:
    """``out[i]``: the distance from the reference genes to row ``i``'s (rows' innovations ascending, as
    the reference's): one merge of the two sorted gene lists per row, as ``Genome.distance`` counts."""
    size = len(ref_innovation)
    for row in range(len(start) - 1):
        k, end, j = start[row], start[row + 1], 0
        matching = disjoint = 0
        weight_sum = 0.0
        while k < end and j < size:
            if innovation[k] == ref_innovation[j]:
                matching += 1
                weight_sum += abs(weight[k] - ref_weight[j])
                k += 1
                j += 1
            elif innovation[k] < ref_innovation[j]:
                disjoint += 1
                k += 1
            else:
                disjoint += 1
                j += 1
        excess = (end - k) + (size - j)  # the genes beyond the other side's last innovation
        genes = max(end - start[row], size)
        norm = 1.0 if genes < min_genes else max(genes, 1.0)
        mean_weight = weight_sum / matching if matching else 0.0
        out[row] = (c1 * excess + c2 * disjoint) / norm + c3 * mean_weight


def speciate(genomes: list[Genome], previous: list[Species], threshold: float, config: EvolutionConfig,
             generation: int, next_species_id: int, batch: GenomeBatch | None = None) -> tuple[list[Species], int]:
    """Assign every genome to a species; returns the new species list and the next free species id.
    ``batch``: the genomes' genes when they are its views, row for row (no gene gathered).

    Each surviving species first takes as its new representative the genome closest to its old
    one (within the threshold); a species whose old representative now lies within the threshold
    of an older species' is merged into it, so a rising threshold really reduces the count. Every
    other genome, by ascending id, joins the species whose representative is closest (the older
    species on a tie), or founds a new species. Species left without members disappear.
    """
    result = speciate_at_most(genomes, previous, threshold, config, generation, next_species_id, None, batch)
    assert result is not None  # no limit, so never given up
    return result


def speciate_at_most(genomes: list[Genome], previous: list[Species], threshold: float, config: EvolutionConfig,
                     generation: int, next_species_id: int, limit: int | None,
                     batch: GenomeBatch | None = None) -> tuple[list[Species], int] | None:
    """``speciate``, giving up (None) as soon as more than ``limit`` species form: each costs a pass
    over the whole population, so a threshold found too low costs little to try."""
    return _Speciation(genomes, previous, config, batch).at(threshold, generation, next_species_id, limit)


class _Speciation:
    """One generation's genomes and previous species, tabled once for speciating at one threshold or several
    (the tables and the old representatives' distances do not depend on the threshold)."""

    def __init__(self, genomes: list[Genome], previous: list[Species], config: EvolutionConfig,
                 batch: GenomeBatch | None = None) -> None:
        ids = np.fromiter(map(_genome_id, genomes), np.int64, len(genomes))
        order = None if (np.diff(ids) > 0).all() else np.argsort(ids, kind="stable")  # by ascending id
        self.genomes = list(genomes) if order is None else [genomes[i] for i in order.tolist()]
        if batch is None:
            self.table = GeneTable(self.genomes, config)
        else:
            self.table = GeneTable.of_batch(batch if order is None else batch.take(order), config)
        self.old_species = sorted(previous, key=lambda s: s.id)
        self.old_reps = GeneTable([s.representative for s in self.old_species], config)
        self._memo: dict[tuple[str, int], np.ndarray] = {}

    def _distances(self, i: int) -> np.ndarray:
        """Distances from genome ``i`` to every genome."""
        return self._cached(("genome", i), lambda: self.table.distances(self.genomes[i]))

    def _add_members(self, species: list[Species], joining: np.ndarray, to: np.ndarray) -> None:
        """Append genomes ``joining`` (ascending) to species ``to`` (one each), keeping their order."""
        joining = joining[np.argsort(to, kind="stable")]
        bounds = row_offsets(np.bincount(to, minlength=len(species)))
        genomes = self.genomes
        for k, s in enumerate(species):
            s.members.extend([genomes[j] for j in joining[bounds[k]:bounds[k + 1]].tolist()])

    def _between_old(self, i: int) -> np.ndarray:
        """Distances from old species ``i``'s representative to every old representative."""
        return self._cached(("old pairs", i), lambda: self.old_reps.distances(self.old_species[i].representative))

    def _from_old(self, i: int) -> np.ndarray:
        """Distances from old species ``i``'s representative to every genome."""
        return self._cached(("old", i), lambda: self.table.distances(self.old_species[i].representative))

    def _cached(self, key: tuple[str, int], compute: Callable[[], np.ndarray]) -> np.ndarray:
        """A row of distances, computed once for all the thresholds a generation tries."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def at(self, threshold: float, generation: int, next_species_id: int,
           limit: int | None) -> tuple[list[Species], int] | None:
        """The species at ``threshold`` and the next free species id (see ``speciate``); None past ``limit``."""
        genomes = self.genomes
        free = np.ones(len(genomes), dtype=bool)
        species: list[Species] = []
        rep_rows: list[np.ndarray] = []
        kept: list[int] = []
        for i, old in enumerate(self.old_species):
            if kept and (self._between_old(i)[kept] < threshold).any():
                continue
            kept.append(i)
            d = np.where(free, self._from_old(i), np.inf)
            best = int(np.argmin(d)) if len(d) else 0
            if not len(d) or d[best] >= threshold:
                continue
            free[best] = False
            species.append(Species(old.id, genomes[best], old.created, [genomes[best]], old.best_fitness,
                                   old.last_improved, old.staleness))
            rep_rows.append(self._distances(best))
        if limit is not None and len(species) > limit:
            return None
        if rep_rows:
            matrix = np.vstack(rep_rows)
            best_d, best_s = matrix.min(axis=0), matrix.argmin(axis=0)
        else:
            best_d, best_s = np.full(len(genomes), np.inf), np.zeros(len(genomes), dtype=np.int64)
        # Every free genome, by ascending id, joins its closest species within the threshold or founds
        # one: the genomes before the next founder join without a loop, then its distances come in.
        rest, joined = np.flatnonzero(free), []
        while len(rest):
            far = np.flatnonzero(best_d[rest] >= threshold)
            stop = int(far[0]) if len(far) else len(rest)
            joined.append((rest[:stop], best_s[rest[:stop]]))
            if stop == len(rest):
                break
            if limit is not None and len(species) >= limit:
                return None
            i = int(rest[stop])
            species.append(Species(next_species_id, genomes[i], generation, [genomes[i]], last_improved=generation))
            next_species_id += 1
            d = self._distances(i)
            closer = d < best_d
            best_d[closer] = d[closer]
            best_s[closer] = len(species) - 1
            rest = rest[stop + 1:]
        if joined:
            self._add_members(species, np.concatenate([j for j, _ in joined]), np.concatenate([s for _, s in joined]))
        return species, next_species_id


STEER_BAND = 1.5
"""Species counts within this factor of the target leave the threshold where it is."""
STEER_GAIN = 0.3
"""Outside it the threshold is multiplied by (count / target) ** STEER_GAIN: gently, as a small
change of the threshold can change the count several times over ..."""
STEER_LIMITS = (0.8, 2.0)
"""... bounded to these factors a generation: the threshold rises fast, as thousands of species make
the speciation of a large population slow, and falls slowly, as a threshold that fell too far splits
the population into thousands of species."""
STEER_RANGE = 2.0
"""A generation whose count is more than this factor away from the target is speciated again ..."""
STEER_TRIES = 8
"""... at other thresholds, at most this many speciations in all (``find_threshold``)."""


def adapt_threshold(threshold: float, species_count: int, config: EvolutionConfig) -> float:
    """The threshold for the next generation, moved toward ``config.species_target()`` species: by
    ``compatibility_threshold_step`` if that is positive, else by a factor growing with the count's
    distance from the target."""
    target = config.species_target()
    if target == 0:
        return threshold
    step = config.compatibility_threshold_step
    if step > 0:
        threshold += step if species_count > target else -step if species_count < target else 0.0
    elif not target / STEER_BAND <= species_count <= target * STEER_BAND:
        low, high = STEER_LIMITS
        threshold *= min(high, max(low, (species_count / target) ** STEER_GAIN))
    return max(config.compatibility_threshold_min, threshold)


def find_threshold(threshold: float, target: int, minimum: float, count_at: Callable[[float], int]) -> float:
    """A threshold at which ``count_at`` (species formed at a threshold) is within a factor
    ``STEER_RANGE`` of ``target``, searched from ``threshold``: doubled or halved until the target
    is bracketed, then bisected (geometrically). After ``STEER_TRIES`` counts, the one closest to
    the target (by ratio) wins. Steady steering cannot do this alone: in a large population a
    20 % change of the threshold can change the count tenfold."""
    low, high = target / STEER_RANGE, target * STEER_RANGE
    too_many = too_few = best = None  # the thresholds tried: highest with too many, lowest with too few
    best_miss = math.inf
    for _ in range(STEER_TRIES):
        count = count_at(threshold)
        miss = abs(math.log(max(count, 1) / target))
        if miss < best_miss:
            best, best_miss = threshold, miss
        if low <= count <= high:
            break
        if count > high:
            too_many = threshold
        elif threshold <= minimum:
            break
        else:
            too_few = threshold
        if too_many is not None and too_few is not None:
            threshold = math.sqrt(too_many * too_few)
        else:
            threshold = threshold * 2 if count > high else max(minimum, threshold / 2)
    assert best is not None
    return best


def speciate_steered(genomes: list[Genome], previous: list[Species], threshold: float, config: EvolutionConfig,
                     generation: int, next_species_id: int,
                     batch: GenomeBatch | None = None) -> tuple[list[Species], int, float]:
    """``speciate``, and with relative steering (``compatibility_threshold_step`` 0, a target) again
    at thresholds from ``find_threshold`` while the count is out of range; returns the species, the
    next free species id and the threshold used."""
    target = config.species_target()
    if target == 0 or config.compatibility_threshold_step > 0:
        return (*speciate(genomes, previous, threshold, config, generation, next_species_id, batch), threshold)
    limit = math.floor(target * STEER_RANGE)
    tabled = _Speciation(genomes, previous, config, batch)
    results: dict[float, tuple[list[Species], int] | None] = {}

    def count_at(t: float) -> int:
        results[t] = tabled.at(t, generation, next_species_id, limit)
        found = results[t]
        return limit + 1 if found is None else len(found[0])

    threshold = find_threshold(threshold, target, config.compatibility_threshold_min, count_at)
    found = results[threshold] or tabled.at(threshold, generation, next_species_id, None)
    return (*found, threshold)
