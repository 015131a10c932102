"""Novelty search (Lehman & Stanley 2011): how far a behaviour lies from the others seen, and the archive
of past behaviours that keeps the search from circling back.

``novelty(behaviours, archive, k)`` works on its own (behaviours in, novelty out) for a loop of one's own;
``NoveltyArchive`` adds the archive's rules and its plain-data state, as ``Population`` uses them.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np

from neatify.config import EvolutionConfig
from neatify.objectives.knn import mean_knn_distance


def as_behaviours(values: Any, name: str = "behaviours") -> np.ndarray:
    """``values`` as a 2-D float array (one behaviour per row); ValueError unless it is one, finite."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 1 and array.size == 0:
        array = array.reshape(0, 0)
    if array.ndim != 2:
        raise ValueError(f"{name} must be one behaviour vector per row (2-D), got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} must be finite; row {int(np.argwhere(~np.isfinite(array))[0, 0])} is not")
    return array


def novelty(behaviours: Any, archive: Any = None, k: int = 15) -> np.ndarray:
    """Each behaviour's novelty: the mean distance to its ``k`` nearest neighbours among the other
    behaviours and the ``archive``'s (all of them when there are fewer than ``k``)."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    current = as_behaviours(behaviours)
    if archive is None or len(archive) == 0:
        return mean_knn_distance(current, np.arange(len(current)), k)
    past = as_behaviours(archive, "archive")
    if past.shape[1] != current.shape[1]:
        raise ValueError(f"archive behaviours have {past.shape[1]} values each, the behaviours {current.shape[1]}")
    return mean_knn_distance(np.vstack([current, past]), np.arange(len(current)), k)


class NoveltyArchive:
    """Past behaviours novelty is measured against, and the rule that adds to them, as ``config`` sets it
    (``novelty_k``, ``novelty_archive`` and the threshold's keys; ``EvolutionConfig()``'s by default).

    ``threshold`` rule: a behaviour whose novelty exceeds ``threshold`` (from ``novelty_threshold``) is added;
    after ``novelty_stall_generations`` generations in a row with none added the threshold falls by 5 %, and
    after a generation adding more than ``novelty_raise_count`` it rises by 20 % (never below
    ``novelty_threshold_min``). ``random`` rule: each behaviour is added with probability ``prob_archive_add``,
    drawn from the run's one random generator."""

    def __init__(self, size: int, config: EvolutionConfig | None = None) -> None:
        self.size = size
        self.config = config if config is not None else EvolutionConfig()
        self.threshold = self.config.novelty_threshold
        self.stalled = 0
        """Generations in a row that added nothing."""
        self.behaviours = np.zeros((0, size))

    def __len__(self) -> int:
        return len(self.behaviours)

    def score(self, behaviours: Any) -> np.ndarray:
        """The novelty of a generation's ``behaviours`` against each other and the archive."""
        return novelty(behaviours, self.behaviours, self.config.novelty_k)

    def update(self, behaviours: Any, scores: np.ndarray, rng: random.Random) -> np.ndarray:
        """Add the behaviours the rule picks (``scores``: their novelty) and adapt the threshold; returns the
        rows added. The ``random`` rule draws one number per behaviour from ``rng``; the others draw none."""
        current, rule = as_behaviours(behaviours), self.config.novelty_archive
        if rule == "random":
            chance = self.config.prob_archive_add
            rows = np.array([r for r in range(len(current)) if rng.random() < chance], dtype=np.int64)
        elif rule == "threshold":
            rows = np.flatnonzero(np.asarray(scores) > self.threshold)
            self._adapt(len(rows))
        else:
            rows = np.zeros(0, dtype=np.int64)
        self.behaviours = np.vstack([self.behaviours, current[rows]])
        return rows

    def _adapt(self, added: int) -> None:
        """The paper's dynamic threshold: lowered after a stall, raised after a generation adding many."""
        self.stalled = 0 if added else self.stalled + 1
        if self.stalled >= self.config.novelty_stall_generations:
            self.threshold = max(self.config.novelty_threshold_min, self.threshold * 0.95)
            self.stalled = 0
        if added > self.config.novelty_raise_count:
            self.threshold *= 1.2

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON floats round-trip exactly); ``load`` restores it."""
        return {"threshold": self.threshold, "stalled": self.stalled, "behaviours": self.behaviours.tolist()}

    def load(self, data: dict[str, Any]) -> None:
        """Take the state ``to_dict`` saved (the rule's settings come from the run's config)."""
        self.threshold = float(data["threshold"])
        self.stalled = int(data["stalled"])
        self.behaviours = np.asarray(data["behaviours"], dtype=np.float64).reshape(-1, self.size)
