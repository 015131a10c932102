"""The signal NEAT selects on, when it is not fitness alone: novelty, a Pareto ranking of several objectives,
or a blend of them; and the archives kept beside a run that reports behaviours.

The signal is one number per genome, higher better, that takes fitness's place inside NEAT's speciation:
each species' share of the offspring (fitness sharing), which members breed and which are copied as elites,
and species stagnation all read it. What is reported (``best_fitness``, the champion) stays the real fitness.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import numpy as np

from neatify.config import EvolutionConfig
from neatify.config.objectives import BEHAVIOUR_OBJECTIVE
from neatify.objectives.elites import EliteArchive
from neatify.objectives.novelty import NoveltyArchive
from neatify.objectives.pareto import pareto_scores


def uses_novelty(config: EvolutionConfig) -> bool:
    """Whether the run's selection signal needs novelty (and so a novelty archive)."""
    return config.selection == "novelty" or (config.selection in ("pareto", "blend") and "novelty" in config.objectives)


def objective_matrix(names: list[str], fitness: np.ndarray, novelty: np.ndarray | None, sizes: np.ndarray,
                     behaviours: np.ndarray | None) -> np.ndarray:
    """One column per objective of ``names``, one row per genome, every column maximised."""
    columns = []
    for name in names:
        if name == "fitness":
            columns.append(fitness)
        elif name == "novelty":
            columns.append(novelty)
        elif name == "size":
            columns.append(-sizes.astype(np.float64))
        else:
            columns.append(behaviours[:, int(BEHAVIOUR_OBJECTIVE.match(name).group(1))])  # type: ignore[index, union-attr]
    return np.column_stack(columns) if columns else np.zeros((len(fitness), 0))


def blend_scores(objectives: np.ndarray, weights: list[float]) -> np.ndarray:
    """The weighted sum of the objectives, each first rescaled to [0, 1] over the generation (a constant
    objective counts 0), so that objectives of any units blend."""
    low, high = objectives.min(axis=0), objectives.max(axis=0)
    span = np.where(high > low, high - low, 1.0)
    return ((objectives - low) / span) @ np.asarray(weights, dtype=np.float64)


class Selection:
    """A run's selection signal and archives, built from its config; plain data through ``to_dict``/``load``."""

    def __init__(self, config: EvolutionConfig) -> None:
        self.config = config
        self.archive = NoveltyArchive(config.behaviour_size, config) if uses_novelty(config) else None
        self.elites = EliteArchive(_bounds(config), config.elite_cells) if config.elite_cells else None
        self.novelty: np.ndarray | None = None
        """The last generation's novelty (None without a novelty archive)."""

    def scores(self, fitness: np.ndarray, behaviours: np.ndarray | None, sizes: np.ndarray, ids: np.ndarray,
               genome_at: Callable[[int], dict[str, Any]], rng: random.Random) -> np.ndarray:
        """A told generation's selection signal; its novelty goes into the archive and its genomes into the
        archive of elites on the way. A genome whose evaluation failed (a row of NaN in ``behaviours``) is no
        one's neighbour and enters neither archive; its novelty, and each behaviour value it lacks as an
        objective, is the generation's worst."""
        config = self.config
        rows = np.arange(len(fitness)) if behaviours is None else np.flatnonzero(np.isfinite(behaviours).all(axis=1))
        if self.archive is not None:
            found = self.archive.score(behaviours[rows])  # type: ignore[index]
            self.archive.update(behaviours[rows], found, rng)  # type: ignore[index]
            self.novelty = _worst_elsewhere(found, rows, len(fitness))
        if self.elites is not None:
            self.elites.update(fitness[rows], behaviours[rows], ids[rows],  # type: ignore[index]
                               lambda row: genome_at(int(rows[row])))
        if config.selection == "fitness":
            return fitness
        if config.selection == "novelty":
            return self.novelty  # type: ignore[return-value]
        known = None if behaviours is None else \
            np.column_stack([_worst_elsewhere(column[rows], rows, len(fitness)) for column in behaviours.T])
        objectives = objective_matrix(config.objectives, fitness, self.novelty, sizes, known)
        if config.selection == "pareto":
            return pareto_scores(objectives)
        return blend_scores(objectives, config.blend_weights or [1.0] * len(config.objectives))

    def to_dict(self) -> dict[str, Any]:
        return {"novelty": None if self.novelty is None else self.novelty.tolist(),
                "archive": None if self.archive is None else self.archive.to_dict(),
                "elites": None if self.elites is None else self.elites.to_dict()}

    def load(self, data: dict[str, Any]) -> None:
        """Take the state ``to_dict`` saved (for the archives this config keeps)."""
        self.novelty = None if data["novelty"] is None else np.asarray(data["novelty"], dtype=np.float64)
        if self.archive is not None and data["archive"] is not None:
            self.archive.load(data["archive"])
        if self.elites is not None and data["elites"] is not None:
            self.elites = EliteArchive.from_dict(data["elites"])


def _worst_elsewhere(values: np.ndarray, rows: np.ndarray, size: int) -> np.ndarray:
    """``size`` values: ``values`` at ``rows``, the lowest of them (0 when there are none) everywhere else."""
    full = np.full(size, values.min() if len(values) else 0.0)
    full[rows] = values
    return full


def _bounds(config: EvolutionConfig) -> list[tuple[float, float]]:
    """``elite_bounds`` as (low, high) pairs, [0, 1] for each dimension when it is empty."""
    flat = config.elite_bounds or [0.0, 1.0] * config.behaviour_size
    return [(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]
