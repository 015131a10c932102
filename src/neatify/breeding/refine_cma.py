"""CMA-ES (Hansen's standard update) over a vector of numbers, full or diagonal covariance.

A full covariance learns how the numbers move together (the strong choice for a few dozen weights); a
diagonal one (sep-CMA-ES, Ros & Hansen 2008) learns one step size per number at linear cost, for large
genomes. ``Strategy`` holds only numbers: sampling takes a numpy generator, updating takes the samples
and their fitness (higher is better), and the state is plain data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Rates:
    """CMA-ES learning rates for λ samples over ``n`` numbers (Hansen's defaults; for a diagonal
    covariance the covariance rates are scaled by (n + 2) / 3, as sep-CMA-ES does)."""

    weights: np.ndarray
    mu_eff: float
    c_sigma: float
    d_sigma: float
    c_c: float
    c_1: float
    c_mu: float
    chi_n: float

    @classmethod
    def of(cls, n: int, samples: int, diagonal: bool) -> Rates:
        mu = samples // 2
        raw = math.log(mu + 0.5) - np.log(np.arange(1, mu + 1))
        weights = raw / raw.sum()
        mu_eff = 1.0 / float((weights**2).sum())
        c_sigma = (mu_eff + 2) / (n + mu_eff + 5)
        d_sigma = 1 + 2 * max(0.0, math.sqrt((mu_eff - 1) / (n + 1)) - 1) + c_sigma
        c_c = (4 + mu_eff / n) / (n + 4 + 2 * mu_eff / n)
        scale = (n + 2) / 3 if diagonal else 1.0
        c_1 = min(1.0, scale * 2 / ((n + 1.3) ** 2 + mu_eff))
        c_mu = min(1 - c_1, scale * 2 * (mu_eff - 2 + 1 / mu_eff) / ((n + 2) ** 2 + mu_eff))
        chi_n = math.sqrt(n) * (1 - 1 / (4 * n) + 1 / (21 * n * n))
        return cls(weights, mu_eff, c_sigma, d_sigma, c_c, c_1, c_mu, chi_n)


@dataclass
class Strategy:
    """One CMA-ES: ``mean``, step size ``sigma``, ``covariance`` (an n x n matrix, or its diagonal as a
    vector), the two evolution paths and how many updates it has made."""

    mean: np.ndarray
    sigma: float
    covariance: np.ndarray
    path_sigma: np.ndarray
    path_c: np.ndarray
    updates: int = 0

    @classmethod
    def start(cls, mean: np.ndarray, sigma: float, full: bool) -> Strategy:
        """A fresh strategy at ``mean``: identity covariance (a matrix when ``full``), zero paths."""
        n = len(mean)
        covariance = np.eye(n) if full else np.ones(n)
        return cls(mean.astype(np.float64), sigma, covariance, np.zeros(n), np.zeros(n))

    @property
    def diagonal(self) -> bool:
        return self.covariance.ndim == 1

    def _roots(self) -> tuple[np.ndarray, np.ndarray]:
        """(B, D): ``covariance = B diag(D**2) B^T`` (B the identity's diagonal, ones, when diagonal)."""
        if self.diagonal:
            return np.ones_like(self.covariance), np.sqrt(self.covariance)
        values, vectors = np.linalg.eigh(self.covariance)
        return vectors, np.sqrt(np.maximum(values, 1e-300))

    def draw(self, count: int, generator: np.random.Generator) -> np.ndarray:
        """``count`` samples, one a row: ``mean + sigma * B D z``."""
        z = generator.standard_normal((count, len(self.mean)))
        basis, roots = self._roots()
        steps = z * roots if self.diagonal else (z * roots) @ basis.T
        return self.mean + self.sigma * steps

    def _whiten(self, y: np.ndarray) -> np.ndarray:
        """``C^(-1/2) y``."""
        basis, roots = self._roots()
        return y / roots if self.diagonal else basis @ ((basis.T @ y) / roots)

    def update(self, samples: np.ndarray, fitness: np.ndarray) -> None:
        """One CMA-ES step from ``samples`` (rows, ties broken by row) and their ``fitness``."""
        n = len(self.mean)
        rates = Rates.of(n, len(samples), self.diagonal)
        order = np.lexsort((np.arange(len(fitness)), -fitness))[:len(rates.weights)]
        y = (samples[order] - self.mean) / self.sigma
        y_w = rates.weights @ y
        self.path_sigma = ((1 - rates.c_sigma) * self.path_sigma
                           + math.sqrt(rates.c_sigma * (2 - rates.c_sigma) * rates.mu_eff) * self._whiten(y_w))
        self.mean = self.mean + self.sigma * y_w
        self.updates += 1
        norm = float(np.linalg.norm(self.path_sigma))
        settled = norm / math.sqrt(1 - (1 - rates.c_sigma) ** (2 * self.updates)) < (1.4 + 2 / (n + 1)) * rates.chi_n
        self.path_c = ((1 - rates.c_c) * self.path_c
                       + settled * math.sqrt(rates.c_c * (2 - rates.c_c) * rates.mu_eff) * y_w)
        lost = (1 - settled) * rates.c_c * (2 - rates.c_c) * self.covariance
        if self.diagonal:
            rank_one, rank_mu = self.path_c**2, rates.weights @ y**2
        else:
            rank_one, rank_mu = np.outer(self.path_c, self.path_c), (y.T * rates.weights) @ y
        covariance = ((1 - rates.c_1 - rates.c_mu) * self.covariance + rates.c_1 * (rank_one + lost)
                      + rates.c_mu * rank_mu)
        self.covariance = covariance if self.diagonal else (covariance + covariance.T) / 2
        self.sigma *= math.exp(rates.c_sigma / rates.d_sigma * (norm / rates.chi_n - 1))

    def to_dict(self) -> dict[str, Any]:
        return {"mean": self.mean.tolist(), "sigma": self.sigma, "covariance": self.covariance.tolist(),
                "path_sigma": self.path_sigma.tolist(), "path_c": self.path_c.tolist(), "updates": self.updates}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Strategy:
        arrays = {k: np.array(data[k], dtype=np.float64) for k in ("mean", "covariance", "path_sigma", "path_c")}
        return cls(sigma=float(data["sigma"]), updates=int(data["updates"]), **arrays)
