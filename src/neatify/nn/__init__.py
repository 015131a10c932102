"""PyTorch execution of genomes: one genome as an ``nn.Module``, or a whole population at once."""

from neatify.nn.module import NeatModule
from neatify.nn.population_module import NeatPopulationModule

__all__ = ["NeatModule", "NeatPopulationModule"]
