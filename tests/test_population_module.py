"""NeatPopulationModule equals NeatModule genome by genome, for every input form and over time."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from helpers import random_genomes

from neatify import EvolutionConfig, Genome, Population
from neatify.activations import register_activation
from neatify.nn import NeatModule, NeatPopulationModule

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                              reason="no CUDA device"))]
ACTIVATIONS = ["neat_sigmoid", "sigmoid", "tanh", "relu", "identity", "sin", "gauss", "abs", "clamped"]
# Registered names sort before the built-ins (upper case first): rows group by activation name.
register_activation("Upper_softsign", lambda x: x / (1.0 + abs(x)), torch.nn.functional.softsign)
register_activation("a_half", lambda x: 0.5 * x, lambda x: 0.5 * x)


def evolved_genomes(recurrent: bool, seed: int = 3, generations: int = 8) -> list[Genome]:
    """A population grown with random fitness and fast structural mutation: varied shapes and activations."""
    config = EvolutionConfig(prob_add_node=0.4, prob_add_connection=0.6, allow_recurrent=recurrent,
                             prob_toggle_enable=0.02, activation_options=ACTIVATIONS, prob_mutate_activation=0.3)
    population = Population(30, 3, 2, config=config, seed=seed)
    rng = random.Random(seed)

    def random_fitness(genomes: list[Genome]) -> None:
        for genome in genomes:
            genome.fitness = rng.random()

    for _ in range(generations):
        population.run_generation(random_fitness)
    return population.genomes


@pytest.fixture(scope="module")
def feed_forward() -> list[Genome]:
    return evolved_genomes(recurrent=False)


@pytest.fixture(scope="module")
def recurrent() -> list[Genome]:
    genomes = evolved_genomes(recurrent=True)
    assert sum(g.is_recurrent() for g in genomes) >= 5
    return genomes


def reference(genomes: list[Genome], x: torch.Tensor, modules: list[NeatModule] | None = None) -> torch.Tensor:
    modules = modules or [NeatModule(g, dtype=torch.float64) for g in genomes]
    return torch.stack([m(x if x.dim() == 2 else x[i]) for i, m in enumerate(modules)])


def test_population_is_varied(feed_forward: list[Genome]) -> None:
    hidden = [g.size()[0] for g in feed_forward]
    activations = {n.activation for g in feed_forward for n in g.nodes.values()}
    assert max(hidden) >= 3 and min(hidden) < max(hidden)
    assert len(activations) >= 5


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("per_genome", [False, True])
def test_feed_forward_matches_neat_module(feed_forward: list[Genome], per_genome: bool, device: str) -> None:
    module = NeatPopulationModule(feed_forward, device=device, dtype=torch.float64)
    shape = (len(feed_forward), 17, 3) if per_genome else (17, 3)
    x = torch.randn(*shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    out = module(x.to(device))
    assert out.shape == (len(feed_forward), 17, 2) and out.device.type == device
    out = out.cpu()
    torch.testing.assert_close(out, reference(feed_forward, x), rtol=1e-12, atol=1e-12)


def test_float32_and_chunked_batches_match(feed_forward: list[Genome]) -> None:
    module = NeatPopulationModule(feed_forward)
    x = torch.randn(50, 3, generator=torch.Generator().manual_seed(1))
    whole = module(x)
    module.chunk_elements = 1  # one batch column at a time
    torch.testing.assert_close(module(x), whole)
    torch.testing.assert_close(whole.double(), reference(feed_forward, x.double()), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("per_genome", [False, True])
@pytest.mark.parametrize("genomes, synchronous", [("recurrent", False), ("recurrent", True), ("feed_forward", True)])
def test_recurrent_steps_and_reset_match_neat_module(genomes: str, synchronous: bool, per_genome: bool, device: str,
                                                     request: pytest.FixtureRequest) -> None:
    population: list[Genome] = request.getfixturevalue(genomes)
    module = NeatPopulationModule(population, device=device, dtype=torch.float64, synchronous=synchronous)
    modules = [NeatModule(g, dtype=torch.float64, synchronous=synchronous) for g in population]
    assert module.is_recurrent
    gen = torch.Generator().manual_seed(2)
    shape = (len(population), 5, 3) if per_genome else (5, 3)
    steps = [torch.randn(*shape, dtype=torch.float64, generator=gen) for _ in range(6)]
    outputs = []
    for x in steps:
        outputs.append(module(x.to(device)).cpu())
        torch.testing.assert_close(outputs[-1], reference(population, x, modules), rtol=1e-12, atol=1e-12)
    assert not torch.equal(module(steps[0].to(device)).cpu(), outputs[0])  # the state carried over
    module.reset()
    torch.testing.assert_close(module(steps[0].to(device)).cpu(), outputs[0], rtol=0, atol=0)


@pytest.mark.parametrize("per_genome", [False, True])
@pytest.mark.parametrize("synchronous", [False, True])
@pytest.mark.parametrize("cyclic_share", [0.0, 0.3])
def test_random_structures_match_neat_module(cyclic_share: float, synchronous: bool, per_genome: bool) -> None:
    """Disabled genes, nodes that reach no output or have no inputs, repeated node pairs, cycles, custom activations."""
    genomes = random_genomes(80, cyclic_share, ACTIVATIONS + ["Upper_softsign", "a_half"], seed=5)
    module = NeatPopulationModule(genomes, dtype=torch.float64, synchronous=synchronous)
    modules = [NeatModule(g, dtype=torch.float64, synchronous=synchronous) for g in genomes]
    gen = torch.Generator().manual_seed(3)
    for _ in range(4):
        x = torch.randn(*((len(genomes), 6, 3) if per_genome else (6, 3)), dtype=torch.float64, generator=gen)
        torch.testing.assert_close(module(x), reference(genomes, x, modules), rtol=1e-12, atol=1e-12)


def test_recurrent_batch_change_needs_reset(recurrent: list[Genome]) -> None:
    module = NeatPopulationModule(recurrent)
    module(torch.zeros(4, 3))
    with pytest.raises(ValueError, match="reset"):
        module(torch.zeros(5, 3))
    module.reset()
    assert module(torch.zeros(5, 3)).shape == (len(recurrent), 5, 2)


def test_feed_forward_has_no_state(feed_forward: list[Genome]) -> None:
    module = NeatPopulationModule(feed_forward)
    assert not module.is_recurrent
    x = torch.randn(3, 3)
    torch.testing.assert_close(module(x), module(x), rtol=0, atol=0)
    assert module(torch.randn(7, 3)).shape == (len(feed_forward), 7, 2)


def test_bias_only_output_and_single_genome() -> None:
    config = EvolutionConfig(initial_connection="none")
    population = Population(2, 2, 1, config=config, seed=0)
    genome = population.genomes[0]
    out = NeatPopulationModule([genome])(torch.randn(4, 2))
    expected = torch.sigmoid(torch.tensor(4.9 * genome.nodes[2].bias))
    torch.testing.assert_close(out, expected.expand(1, 4, 1))


@pytest.mark.parametrize("shape", [(3,), (4, 2), (30, 4, 4), (2, 4, 3), (1, 30, 4, 3)])
def test_wrong_input_shape_is_refused(feed_forward: list[Genome], shape: tuple[int, ...]) -> None:
    assert len(feed_forward) == 30
    with pytest.raises(ValueError, match="expects input of shape"):
        NeatPopulationModule(feed_forward)(torch.zeros(*shape))


def test_empty_or_mixed_populations_are_refused(feed_forward: list[Genome]) -> None:
    with pytest.raises(ValueError, match="at least one genome"):
        NeatPopulationModule([])
    other = Population(2, 4, 2, seed=0).genomes[0]
    with pytest.raises(ValueError, match="inputs"):
        NeatPopulationModule([feed_forward[0], other])


def test_device_and_dtype(recurrent: list[Genome]) -> None:
    device = "cuda" if torch.cuda.is_available() else "cpu"
    module = NeatPopulationModule(recurrent, device=device)
    x = torch.randn(3, 3)
    expected = reference(recurrent, x.double()).float()
    out = module(x.to(device))
    assert out.device.type == device and out.dtype == torch.float32
    torch.testing.assert_close(out.cpu(), expected, rtol=1e-4, atol=1e-5)
    module.reset()
    module.to(torch.float64)  # cached matrices follow the buffers
    out64 = module(x.double().to(device))
    assert out64.dtype == torch.float64
    torch.testing.assert_close(out64.cpu(), expected.double(), rtol=1e-4, atol=1e-5)


def assert_same_module(module: NeatPopulationModule, built: NeatPopulationModule) -> None:
    """Same rows, activation runs and buffers, tensor for tensor (dtypes included)."""
    assert (module.num_genomes, module._num_nodes) == (built.num_genomes, built._num_nodes)
    assert (module._layer_rows, module._segments) == (built._layer_rows, built._segments)
    ours, theirs = dict(module.named_buffers()), dict(built.named_buffers())
    assert ours.keys() == theirs.keys()
    for name, tensor in ours.items():
        assert tensor.dtype == theirs[name].dtype and torch.equal(tensor, theirs[name]), name


@pytest.mark.parametrize("synchronous", [False, True])
@pytest.mark.parametrize("cyclic_share", [0.0, 0.3])
def test_select_equals_a_module_of_those_genomes(cyclic_share: float, synchronous: bool) -> None:
    genomes = random_genomes(60, cyclic_share, ACTIVATIONS + ["Upper_softsign", "a_half"], seed=7)
    module = NeatPopulationModule(genomes, synchronous=synchronous)
    keep = sorted(random.Random(1).sample(range(60), 25))
    selected = module.select(keep)
    assert_same_module(selected, NeatPopulationModule([genomes[i] for i in keep], synchronous=synchronous))
    again = [1, 2, 3, 10, 24]  # a selection of a selection
    assert_same_module(selected.select(torch.tensor(again)),
                       NeatPopulationModule([genomes[keep[i]] for i in again], synchronous=synchronous))
    x = torch.randn(60, 4, 3, generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(selected(x[keep]), module(x)[keep])  # float32: the sparse kernel's sums may differ
    module.to(torch.float64)
    torch.testing.assert_close(module.select(keep)(x[keep]), module(x)[keep], rtol=0, atol=0)


def test_select_keeps_the_recurrent_state(recurrent: list[Genome]) -> None:
    module = NeatPopulationModule(recurrent, dtype=torch.float64)
    gen = torch.Generator().manual_seed(5)
    steps = [torch.randn(len(recurrent), 3, 3, dtype=torch.float64, generator=gen) for _ in range(4)]
    keep = [i for i, g in enumerate(recurrent) if g.is_recurrent()][:4] + [len(recurrent) - 1]
    module(steps[0])
    selected = module.select(keep)
    for x in steps[1:]:  # the sparse kernel may sum a row's terms in another order: last bits only
        torch.testing.assert_close(selected(x[keep]), module(x)[keep], rtol=1e-12, atol=1e-15)
    selected.reset()
    fresh = NeatPopulationModule([recurrent[i] for i in keep], dtype=torch.float64)
    torch.testing.assert_close(selected(steps[0][keep]), fresh(steps[0][keep]), rtol=0, atol=0)


@pytest.mark.parametrize("index", [[], [3, 3], [4, 2], [-1], [30]])
def test_select_refuses_bad_indices(feed_forward: list[Genome], index: list[int]) -> None:
    with pytest.raises(ValueError, match="increasing genome indices in 0..29"):
        NeatPopulationModule(feed_forward).select(index)


def test_a_module_built_from_a_batch_equals_the_module_of_its_genomes(recurrent: list[Genome]) -> None:
    from neatify.genome.batch import GenomeBatch
    batch = GenomeBatch.from_genomes(recurrent)
    x = torch.randn(30, 6, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    from_batch = NeatPopulationModule.from_batch(batch, dtype=torch.float64)
    of_genomes = NeatPopulationModule(recurrent, dtype=torch.float64)
    for _ in range(3):  # recurrent: a few time steps
        assert torch.equal(from_batch(x), of_genomes(x))
    with pytest.raises(ValueError, match="at least one genome"):
        NeatPopulationModule.from_batch(batch.take(np.array([], dtype=np.int64)))
