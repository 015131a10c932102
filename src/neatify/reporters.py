"""Reporters: objects a Population calls around each generation (progress, statistics, checkpoints)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from neatify.population import GenerationStats, Population


class Reporter:
    """Base class; override what you need. Add one with ``population.add_reporter(reporter)``."""

    def start_generation(self, population: Population) -> None:
        """Called before the generation's genomes are evaluated."""

    def end_generation(self, population: Population, stats: GenerationStats) -> None:
        """Called once every genome of the generation has its fitness."""
