"""Export a feed-forward genome's network to TorchScript or ONNX, for use without neatify.

Both exports record the network at its current weights (the genome is fixed); the batch size
stays dynamic. Input ``(batch, num_inputs)`` float32, output ``(batch, num_outputs)``.
"""

from __future__ import annotations

import copy
import logging
import warnings
from pathlib import Path

import torch

from neatify.genome.genome import Genome
from neatify.nn.module import NeatModule

logger = logging.getLogger("neatify.nn.export")


def _frozen_module(module_or_genome: NeatModule | Genome) -> tuple[NeatModule, torch.Tensor]:
    """A private eval-mode copy of the network, already run once, and an example input."""
    if isinstance(module_or_genome, Genome):
        module = NeatModule(module_or_genome)
    elif isinstance(module_or_genome, NeatModule):
        module = copy.deepcopy(module_or_genome)
    else:
        raise TypeError(f"expected a NeatModule or a Genome, got {type(module_or_genome).__name__}")
    if module.is_recurrent:
        raise ValueError("cannot export a recurrent network: its state between calls is not traceable; "
                         "export feed-forward genomes only")
    module = module.float().eval()
    for p in module.parameters():
        p.requires_grad_(False)
    example = torch.zeros(2, module.num_inputs)
    module(example)  # fills the dense-matrix cache with real tensors, recorded as constants
    return module, example


def export_torchscript(module_or_genome: NeatModule | Genome, path: str | Path) -> None:
    """Trace the network and save it for ``torch.jit.load``."""
    module, example = _frozen_module(module_or_genome)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the traced shape checks are constant for a fixed genome
        traced = torch.jit.trace(module, example)
    traced.save(str(path))
    logger.info("saved TorchScript network to %s", path)


def export_onnx(module_or_genome: NeatModule | Genome, path: str | Path, opset_version: int | None = None) -> None:
    """Save the network as an ONNX model with input ``"input"`` and output ``"output"``, batch dynamic."""
    module, example = _frozen_module(module_or_genome)
    registration = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registration.level
    registration.setLevel(logging.ERROR)  # "torchvision is not installed. Skipping torchvision::nms", ...
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(module, (example,), str(path), input_names=["input"], output_names=["output"],
                              dynamic_shapes=({0: torch.export.Dim("batch")},), opset_version=opset_version,
                              dynamo=True, external_data=False, verbose=False)  # one file, no empty .data
    finally:
        registration.setLevel(level)
    logger.info("saved ONNX network to %s", path)
