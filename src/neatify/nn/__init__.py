"""PyTorch execution of genomes: one genome as an ``nn.Module``, or a whole population at once."""

from neatify.nn.module import NeatModule

__all__ = ["NeatModule"]
