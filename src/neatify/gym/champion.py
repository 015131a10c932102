"""The champion picked on held-out episodes, not on the training episodes that selected it.

The genome with the best training fitness is often the one that was luckiest on its few episodes (most of
all with ``resample``, where every generation draws new ones): re-evaluating the few best on more episodes,
never used in training, picks the one that generalises and says how well it does.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from neatify.genome.genome import Genome
from neatify.gym.evaluator import GymEvaluator, fittest


class HeldOutChampion:
    """A reporter (``population.add_reporter``) that, after each generation, runs the ``top`` genomes by training
    fitness on ``validation``'s episodes (``GymEvaluator.held_out``) and keeps the best mean so far: ``genome``,
    ``score`` and ``stderr``, the standard error of that mean (a genome whose environment failed there scores -inf).
    ``evaluations`` counts the episodes run. With normalisation, ``statistics`` holds the observation statistics
    the champion was validated with (``ObservationNormalizer.to_dict``): it is only as good as it was with them,
    so test and deploy it with them (``GymEvaluator.held_out(..., statistics=champion.statistics)``). Add it
    before the training evaluator, so that a generation is validated with the statistics it was trained with."""

    def __init__(self, validation: GymEvaluator, top: int = 5) -> None:
        if top < 1:
            raise ValueError(f"top must be at least 1, got {top}")
        self.validation, self.top = validation, top
        self.genome: Genome | None = None
        self.score, self.stderr = -math.inf, math.inf
        self.evaluations = 0
        self.statistics: dict[str, Any] | None = None

    def start_generation(self, population: Any) -> None:
        """As a reporter: nothing to do before a generation."""

    def end_generation(self, population: Any, stats: Any) -> None:
        """Validate the generation's ``top`` genomes (the fittest first, the lowest row on a tie)."""
        genomes = fittest(population, self.top)
        episodes = self.validation.run(genomes)
        self.evaluations += len(genomes) * self.validation.episodes
        scores = [-math.inf if k in episodes.errors else float(episodes.returns[k].mean()) for k in range(len(genomes))]
        best = int(np.argmax(scores))
        if scores[best] > self.score:
            self.score, self.genome = scores[best], genomes[best].copy(genomes[best].id)
            self.genome.fitness = genomes[best].fitness
            normalizer = self.validation.normalizer
            self.statistics = None if normalizer is None else normalizer.to_dict()
            returns = episodes.returns[best]
            self.stderr = float(returns.std(ddof=1) / math.sqrt(len(returns))) if len(returns) > 1 else math.inf
