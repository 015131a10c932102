"""Weight refinement: a CMA-ES over the champion's weights, its samples part of every generation.

Topology comes from NEAT, weights from an evolution strategy (``refine_cma``: a full covariance for at
most ``refine_full_limit`` numbers, a diagonal one above). With ``refine_samples = λ > 0`` each
generation holds ``population_size - λ`` NEAT offspring and λ copies of one genome's topology (the
champion's) whose weights and biases the strategy draws. The samples are ordinary genomes: evaluated by
the same fitness function or backend, counted as evaluations, speciated, and parents of NEAT offspring.
After each generation the strategy moves toward its best samples and adapts its step sizes. When a NEAT
offspring beats the best fitness of the run, the search moves onto it (a new topology gets fresh step
sizes; the same topology keeps them); when ``refine_patience`` generations pass without a sample better
by more than ``refine_tolerance``, it starts afresh from random weights, with ``refine_growth`` times the
samples (IPOP-CMA-ES; the generation grows with them). Every draw comes from a numpy generator seeded
from the run's ``random.Random``; the state is plain data for checkpoints.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from neatify.breeding.refine_cma import Strategy
from neatify.config import EvolutionConfig
from neatify.genome.batch import GenomeBatch
from neatify.genome.genome import Genome


@dataclass
class Search:
    """One CMA-ES over the weights of ``template``'s topology."""

    template: GenomeBatch
    """One row: the topology searched, and the genes not searched (disabled weights, activations)."""
    strategy: Strategy
    best: float
    """The best fitness the search has seen (its samples, or the genome it started on)."""
    samples: int
    """How many samples a generation draws (``refine_samples``, times ``refine_growth`` at each restart)."""
    stalled: int = 0
    """Updates since ``best`` last rose by more than ``refine_tolerance``."""

    @classmethod
    def start(cls, template: GenomeBatch, best: float, config: EvolutionConfig,
              mean: np.ndarray | None = None, samples: int | None = None) -> Search:
        """A fresh search around ``mean`` (default: ``template``'s own numbers), step size ``refine_sigma``,
        ``samples`` a generation (default ``refine_samples``); a full covariance for at most
        ``refine_full_limit`` numbers."""
        mean = vector(template, 0) if mean is None else mean
        strategy = Strategy.start(mean, config.refine_sigma, full=len(mean) <= config.refine_full_limit)
        return cls(template, strategy, best, samples or config.refine_samples)

    def restarted(self, template: GenomeBatch, best: float, config: EvolutionConfig) -> Search:
        """The search moved to ``template``: same topology, its step sizes kept; another, a fresh start."""
        if structure(template, 0) != structure(self.template, 0):
            return Search.start(template, best, config, samples=self.samples)
        return replace(self, template=template, strategy=replace(self.strategy, mean=vector(template, 0)),
                       best=best)

    def draw(self, count: int, generator: np.random.Generator, config: EvolutionConfig) -> np.ndarray:
        """``count`` weight vectors, one a row, inside the config's weight and bias bounds."""
        return np.clip(self.strategy.draw(count, generator), *bounds(self.template, config))

    def update(self, samples: np.ndarray, fitness: np.ndarray, tolerance: float = 0.0) -> None:
        """One CMA-ES step from evaluated ``samples`` (rows) and their ``fitness`` (higher is better); a rise
        of the best by at most ``tolerance`` times its size counts as no progress."""
        self.strategy.update(samples, fitness)
        top = float(fitness.max())
        margin = tolerance * abs(self.best) if math.isfinite(self.best) else 0.0
        self.stalled = 0 if top > self.best + margin else self.stalled + 1
        self.best = max(self.best, top)

    def restart(self, template: GenomeBatch, config: EvolutionConfig, generator: np.random.Generator) -> Search:
        """A stalled search begun afresh: ``template``'s topology, random weights, step size ``refine_sigma``,
        ``refine_growth`` times the samples (IPOP-CMA-ES doubles them), at most ``refine_max_samples``."""
        samples = min(max(round(self.samples * config.refine_growth), self.samples), config.refine_max_samples)
        return Search.start(template, -math.inf, config, random_vector(template, config, generator), samples)

    def to_dict(self) -> dict[str, Any]:
        return {"template": self.template.views()[0].to_dict(), "strategy": self.strategy.to_dict(),
                "best": _plain(self.best), "samples": self.samples, "stalled": self.stalled}

    @classmethod
    def from_dict(cls, data: dict[str, Any], config: EvolutionConfig) -> Search:
        """The search ``to_dict`` saved (a checkpoint from before ``samples`` was saved: ``refine_samples``)."""
        template = GenomeBatch.from_genomes([Genome.from_dict(data["template"])])
        return cls(template, Strategy.from_dict(data["strategy"]), _number(data["best"]),
                   int(data.get("samples", config.refine_samples)), int(data["stalled"]))


class Refiner:
    """The population's weight search: which rows of the generation are its samples, the search, and the
    best fitness any genome of the run has had (``record``)."""

    def __init__(self, config: EvolutionConfig, search: Search | None = None, pending: int = 0,
                 record: float = -math.inf) -> None:
        self.config = config
        self.search = search
        self.pending = pending
        """How many rows at the end of the generation are the search's samples (0: none yet)."""
        self.record = record

    @classmethod
    def of(cls, config: EvolutionConfig, state: dict[str, Any] | None = None) -> Refiner | None:
        """The refiner ``config`` asks for (None when ``refine_samples`` is 0), from ``to_dict`` state if given."""
        if config.refine_samples == 0:
            return None
        if state is None:
            return cls(config)
        search = None if state["search"] is None else Search.from_dict(state["search"], config)
        return cls(config, search, int(state["pending"]), _number(state["record"]))

    def to_dict(self) -> dict[str, Any]:
        return {"search": None if self.search is None else self.search.to_dict(), "pending": self.pending,
                "record": _plain(self.record)}

    def extend(self, offspring: GenomeBatch, evaluated: GenomeBatch, fitness: np.ndarray, rng: random.Random,
               new_id: Callable[[], int]) -> GenomeBatch:
        """``offspring`` followed by the search's samples (``refine_samples``, more after restarts when
        ``refine_growth`` > 1), the search first told the evaluated generation (``evaluated`` and its
        ``fitness``, by row)."""
        generator = np.random.default_rng(rng.getrandbits(64))
        search = self._learn(evaluated, fitness, generator)
        count = search.samples
        ids = np.array([new_id() for _ in range(count)], dtype=np.int64)
        samples = with_vectors(search.template.take(np.zeros(count, np.int64), ids),
                               search.draw(count, generator, self.config))
        self.pending = count
        return GenomeBatch.concat([offspring, samples])

    def _learn(self, evaluated: GenomeBatch, fitness: np.ndarray, generator: np.random.Generator) -> Search:
        """Update the search from its samples' fitness; move it onto a NEAT genome that beat the record,
        or start it afresh from random weights when it has stalled."""
        search, first = self.search, len(evaluated) - self.pending
        if search is not None and self.pending:
            rows = np.arange(first, len(evaluated))
            shape = structure(search.template, 0)
            rows = rows[[structure(evaluated, int(r)) == shape for r in rows]]  # genes changed by hand drop out
            if len(rows) >= 2:
                search.update(np.stack([vector(evaluated, int(r)) for r in rows]), fitness[rows],
                              self.config.refine_tolerance)
        top = np.flatnonzero(fitness == fitness.max())
        row = int(top[np.argmin(evaluated.ids[top])])
        best, template, config = float(fitness[row]), evaluated.take(np.array([row])), self.config
        if search is None:
            search = Search.start(template, best, config)
        elif best > self.record and row < first:
            search = search.restarted(template, best, config)
        elif search.stalled >= config.refine_patience:
            search = search.restart(template, config, generator)
        self.record = max(self.record, best)
        self.search = search
        return search


def _plain(value: float) -> float | None:
    """``value`` for JSON: None for minus infinity (nothing seen yet)."""
    return value if math.isfinite(value) else None


def _number(value: float | None) -> float:
    return -math.inf if value is None else float(value)


def _slices(batch: GenomeBatch, row: int) -> tuple[slice, slice]:
    return (slice(int(batch.node_start[row]), int(batch.node_start[row + 1])),
            slice(int(batch.conn_start[row]), int(batch.conn_start[row + 1])))


def structure(batch: GenomeBatch, row: int) -> tuple[bytes, bytes, bytes]:
    """What a row's topology is: its node ids, connection innovations and enabled flags."""
    nodes, conns = _slices(batch, row)
    return batch.node_id[nodes].tobytes(), batch.conn_innovation[conns].tobytes(), batch.conn_enabled[conns].tobytes()


def vector(batch: GenomeBatch, row: int) -> np.ndarray:
    """The numbers the search moves: a row's enabled connection weights, then its node biases."""
    nodes, conns = _slices(batch, row)
    return np.concatenate([batch.conn_weight[conns][batch.conn_enabled[conns]], batch.node_bias[nodes]])


def bounds(template: GenomeBatch, config: EvolutionConfig) -> tuple[np.ndarray, np.ndarray]:
    """Per number of ``vector``: the least and greatest value the config allows."""
    weights, biases = int(template.conn_enabled.sum()), len(template.node_id)
    low = np.repeat([config.weight_min_value, config.bias_min_value], [weights, biases])
    high = np.repeat([config.weight_max_value, config.bias_max_value], [weights, biases])
    return low, high


def random_vector(template: GenomeBatch, config: EvolutionConfig, generator: np.random.Generator) -> np.ndarray:
    """New numbers for ``template``'s ``vector``, drawn as a new genome's weights and biases are."""
    weights, biases = int(template.conn_enabled.sum()), len(template.node_id)
    stdev = np.repeat([config.weight_init_stdev, config.bias_init_stdev], [weights, biases])
    return np.clip(generator.standard_normal(weights + biases) * stdev, *bounds(template, config))


def with_vectors(copies: GenomeBatch, vectors: np.ndarray) -> GenomeBatch:
    """``copies`` (rows of one topology) with each row's searched numbers set from ``vectors`` (one a row)."""
    enabled = copies.conn_enabled.reshape(len(copies), -1)
    weights = copies.conn_weight.reshape(len(copies), -1).copy()
    count = int(enabled[0].sum())
    weights[enabled] = vectors[:, :count].reshape(-1)
    return replace(copies, conn_weight=weights.reshape(-1), node_bias=vectors[:, count:].reshape(-1).copy())
