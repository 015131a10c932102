"""Observation normalisation: a running mean and variance over every observation seen, as plain data."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class ObservationNormalizer:
    """Running mean and variance of observations (merged batch by batch, Chan's parallel formula).

    ``normalize`` maps observations to ``(obs - mean) / std``, clipped to ``clip`` standard deviations;
    with no observation seen yet it leaves them as they are. ``to_dict``/``from_dict`` keep it as JSON
    data, so a champion can be deployed with the statistics it was evolved under.
    """

    size: int
    clip: float = 5.0
    count: float = 0.0
    mean: np.ndarray = field(default=None)  # type: ignore[assignment]
    m2: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        self.mean = np.zeros(self.size) if self.mean is None else np.asarray(self.mean, np.float64)
        self.m2 = np.zeros(self.size) if self.m2 is None else np.asarray(self.m2, np.float64)

    def update(self, count: float, total: np.ndarray, total_sq: np.ndarray) -> None:
        """Merge a batch given by its count, sum and sum of squares."""
        if count <= 0:
            return
        batch_mean = total / count
        batch_m2 = np.maximum(total_sq - count * batch_mean ** 2, 0.0)
        merged = self.count + count
        delta = batch_mean - self.mean
        self.mean = self.mean + delta * count / merged
        self.m2 = self.m2 + batch_m2 + delta ** 2 * self.count * count / merged
        self.count = merged

    def normalize(self, observations: np.ndarray) -> np.ndarray:
        """``observations`` (any leading shape, last axis ``size``) standardised by the statistics so far."""
        if self.count < 2:
            return observations
        std = np.sqrt(self.m2 / self.count) + 1e-8
        return np.clip((observations - self.mean) / std, -self.clip, self.clip)

    def to_dict(self) -> dict[str, Any]:
        """The statistics as JSON-ready data."""
        return {"size": self.size, "clip": self.clip, "count": self.count, "mean": self.mean.tolist(),
                "m2": self.m2.tolist()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ObservationNormalizer:
        """The normaliser ``to_dict`` wrote."""
        return cls(int(data["size"]), float(data["clip"]), float(data["count"]), np.asarray(data["mean"]),
                   np.asarray(data["m2"]))

    def load(self, data: dict[str, Any]) -> None:
        """Take the statistics ``to_dict`` wrote, in place: evaluators sharing this normaliser (``held_out``
        copies) see them too."""
        loaded = ObservationNormalizer.from_dict(data)
        if loaded.size != self.size:
            raise ValueError(f"observation statistics of size {loaded.size} for observations of size {self.size}")
        self.clip, self.count, self.mean, self.m2 = loaded.clip, loaded.count, loaded.mean, loaded.m2
