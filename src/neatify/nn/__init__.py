"""PyTorch execution of genomes: one genome as an ``nn.Module``, or a whole population at once."""

from neatify.nn.export import export_onnx, export_torchscript
from neatify.nn.module import NeatModule
from neatify.nn.population_module import NeatPopulationModule

__all__ = ["NeatModule", "NeatPopulationModule", "export_onnx", "export_torchscript"]
