"""Public import path of the plots (``from neatify.plot import plot_fitness``); the code lives in
``neatify.reporting.plot``."""

from neatify.reporting.plot import draw_genome, genome_figure, plot_elites, plot_fitness, plot_species

__all__ = ["draw_genome", "genome_figure", "plot_elites", "plot_fitness", "plot_species"]
