"""A genome's outputs from a ``NeatPopulationModule`` do not depend on the genomes batched beside it, bit for bit:
what lets a run through workers (which batch a generation otherwise than one local call) equal the local run."""

from __future__ import annotations

import pytest
import torch

from neatify import EvolutionConfig, Population
from neatify.nn import NeatPopulationModule
from neatify.nn.activations import TORCH_ACTIVATIONS


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_every_activation_gives_an_element_the_same_value_wherever_it_sits(dtype) -> None:
    """On CPU ``torch.sigmoid`` rounds an element by its place (vectorised body or scalar tail)."""
    x = torch.randn(1000, generator=torch.Generator().manual_seed(0), dtype=dtype) * 3.0
    for name, function in TORCH_ACTIVATIONS.items():
        apart = torch.cat([function(x[i:i + 7]) for i in range(0, len(x), 7)])
        assert torch.equal(function(x), apart), name


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_a_genome_answers_the_same_in_any_batch(dtype) -> None:
    config = EvolutionConfig(population_size=60, allow_recurrent=True)
    genomes = Population(config=config, num_inputs=11, num_outputs=2, seed=3).ask()
    x = torch.rand(len(genomes), 1, 11, generator=torch.Generator().manual_seed(1))
    whole = NeatPopulationModule(genomes, dtype=dtype)
    for size in (1, 7):
        modules = [NeatPopulationModule(genomes[i:i + size], dtype=dtype) for i in range(0, len(genomes), size)]
        for _ in range(3):  # recurrent steps too
            together = whole(x)
            apart = torch.cat([m(x[i * size:(i + 1) * size]) for i, m in enumerate(modules)])
            assert torch.equal(together, apart), size
        whole.reset()


def test_the_sigmoids_keep_torchs_values_and_gradients() -> None:
    """Within e^-60 of torch's (the exponent is held to [-60, 60], as the scalar reference holds it), and finite
    gradients far past where exp overflows (an overflowed exp's gradient is NaN)."""
    for dtype, rtol, atol in ((torch.float64, 1e-9, 1e-15), (torch.float32, 1e-4, 1e-6)):  # torch's gradient: s(1 - s)
        x = torch.linspace(-200.0, 200.0, 4001, dtype=dtype, requires_grad=True)
        for name, scale in (("sigmoid", 1.0), ("neat_sigmoid", 4.9)):
            ours = TORCH_ACTIVATIONS[name](x)
            assert torch.allclose(ours, torch.sigmoid(scale * x), rtol=1e-6, atol=1e-25), (name, dtype)
            (gradient,) = torch.autograd.grad(ours.sum(), x)
            (expected,) = torch.autograd.grad(torch.sigmoid(scale * x).sum(), x)
            assert torch.isfinite(gradient).all(), (name, dtype)
            assert torch.allclose(gradient, expected, rtol=rtol, atol=atol), (name, dtype)
