"""The compiled cart-pole rollout against the torch loop it replaces on the CPU (``neatify.envs.cartpole_compiled``)."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from neatify import EvolutionConfig, Genome, Population
from neatify.envs import CartPole, rollout
from neatify.envs.cartpole_compiled import _CONSTANTS, _advance
from neatify.nn import NeatPopulationModule
from neatify.nn.flat import ACTIVATION_CODES, FlatNetworks


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """The torch loop's small sparse products on one thread: on a busy 2-core machine two threads wait on each
    other (seconds instead of tens of milliseconds)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def grown(recurrent: bool) -> list[Genome]:
    """200 genomes of 4 inputs and 1 output grown with random fitness: hidden nodes, every compiled activation."""
    config = EvolutionConfig(prob_add_node=0.4, prob_add_connection=0.6, allow_recurrent=recurrent,
                             activation_options=list(ACTIVATION_CODES), prob_mutate_activation=0.3)
    population = Population(200, 4, 1, config=config, seed=3)
    rng = random.Random(3)
    for _ in range(6):
        population.run_generation(lambda genomes: [setattr(g, "fitness", rng.random()) for g in genomes])
    return population.genomes


@pytest.fixture(scope="module")
def controllers() -> list[Genome]:
    return grown(recurrent=False)


def test_flat_networks_give_each_genome_its_own_rows_in_layer_order(controllers: list[Genome]) -> None:
    module = NeatPopulationModule(controllers)
    flat = FlatNetworks.of(module)
    assert flat is not None
    owner = module._row_genomes().numpy()
    assert sorted(flat.rows.tolist()) == list(range(module._num_nodes))
    for g in range(len(controllers)):
        rows = flat.rows[flat.genome_start[g]:flat.genome_start[g + 1]]
        assert (owner[rows] == g).all() and (np.diff(rows) > 0).all()
        assert flat.outputs[g, 0] in rows
    assert len(set(flat.activation.tolist())) >= 8  # many activations in play


def test_compiled_rollout_equals_the_torch_loop_in_float64(controllers: list[Genome]) -> None:
    """Same steps and final states: the loop differs only in rounding, which float64 makes negligible."""
    genomes = controllers
    module = NeatPopulationModule(genomes, dtype=torch.float64)
    runs = []
    for compiled in (False, True):
        env = CartPole(len(genomes) * 3, max_steps=200, dtype=torch.float64, seed=7)
        runs.append((rollout(module, env, compiled=compiled).clone(), env))
    (steps, env), (ours, our_env) = runs
    same = steps == ours
    assert same.float().mean() >= 0.99
    assert (steps >= 100).sum() >= 2 and len(steps.unique()) > 20  # long and short episodes
    carts = same.reshape(-1)
    torch.testing.assert_close(our_env.state[carts], env.state[carts], rtol=1e-9, atol=1e-12)
    assert our_env.done.all() and torch.equal(our_env.steps, ours.reshape(-1))


def test_a_selected_module_runs_as_one_built_from_its_genomes(controllers: list[Genome]) -> None:
    """``select`` renumbers rows and skips emptied layers: the flattened networks, and so the episodes (float32,
    bit for bit), are those of a module built from the selected genomes."""
    index = list(range(3, len(controllers), 4))
    selected = NeatPopulationModule(controllers).select(index)
    built = NeatPopulationModule([controllers[i] for i in index])
    runs = []
    for module in (selected, built):
        env = CartPole(len(index) * 3, max_steps=150, seed=9)
        runs.append((rollout(module, env).clone(), env.state.clone()))
    assert torch.equal(runs[0][0], runs[1][0]) and torch.equal(runs[0][1], runs[1][1])
    assert len(runs[0][0].unique()) > 10


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_compiled_step_is_cartpole_advance(dtype: torch.dtype) -> None:
    """One step from random states and pushes: ``CartPole.advance``'s numbers, to the rounding of sin and cos."""
    env = CartPole(2000, dtype=dtype, seed=1)
    env.reset()
    env.state.copy_(torch.randn(2000, 4, generator=torch.Generator().manual_seed(2), dtype=dtype) * 0.2)
    push = torch.rand(2000, generator=torch.Generator().manual_seed(3)) < 0.5
    start = env.state.clone().numpy()
    env.advance(push)
    constants = tuple(np.array(_CONSTANTS, dtype=start.dtype))
    ours = np.array([_advance(*row, right, constants) for row, right in zip(start, push.tolist())], start.dtype)
    tolerance = {"rtol": 1e-6, "atol": 1e-6} if dtype == torch.float32 else {"rtol": 1e-12, "atol": 1e-14}
    torch.testing.assert_close(torch.from_numpy(ours), env.state, **tolerance)


def test_a_module_in_another_dtype_than_the_carts_keeps_the_torch_loop(controllers: list[Genome]) -> None:
    """A float64 module drives float32 carts as the torch loop does: networks in float64, physics in float32."""
    module = NeatPopulationModule(controllers[:40], dtype=torch.float64)
    runs = [rollout(module, CartPole(80, max_steps=60, seed=2), compiled=compiled) for compiled in (False, True)]
    assert torch.equal(runs[0], runs[1])


class HeavyCartPole(CartPole):
    """Carts stepped by physics of their own (each step's change half as large again): the compiled loop does not
    know them."""

    def advance(self, action: torch.Tensor) -> None:
        before = self.state.clone()
        super().advance(action)
        self.state += (self.state - before) * 0.5 * (~self.done).unsqueeze(1)


def test_other_environments_keep_the_torch_loop(controllers: list[Genome]) -> None:
    module = NeatPopulationModule(controllers[:40])
    runs = [rollout(module, HeavyCartPole(80, max_steps=60, seed=2), compiled=compiled) for compiled in (False, True)]
    plain = rollout(module, CartPole(80, max_steps=60, seed=2))
    assert torch.equal(runs[0], runs[1]) and not torch.equal(runs[0], plain)


@pytest.mark.parametrize("inputs", [2, 6])
def test_a_module_of_other_than_four_inputs_is_refused_as_the_torch_loop_refuses_it(inputs: int) -> None:
    population = Population(10, inputs, 1, config=EvolutionConfig(prob_add_connection=0.6), seed=1)
    for compiled in (False, True):
        with pytest.raises(ValueError, match=f"{inputs}"):
            rollout(NeatPopulationModule(population.genomes), CartPole(20, max_steps=30, seed=0), compiled=compiled)


def test_recurrent_networks_and_other_policies_keep_the_torch_loop() -> None:
    genomes = grown(recurrent=True)[:80]
    module = NeatPopulationModule(genomes)
    assert module.is_recurrent and FlatNetworks.of(module) is None
    results = []
    for compiled in (False, True):
        env = CartPole(len(genomes) * 2, max_steps=60, seed=4)
        results.append((rollout(module, env, compiled=compiled), env.state))
    assert torch.equal(results[0][0], results[1][0]) and torch.equal(results[0][1], results[1][1])



def _ratio(x: float, y: float) -> float:
    return x / y


def _checked_ratio(x: float, y: float) -> float:  # a function of its own: numba's disk cache ignores the options
    return x / y


def test_unchecked_division_gives_infinity_where_the_checked_loop_raises() -> None:
    from neatify.runtime.compiled import compiled, compiled_unchecked_division

    unchecked, checked = compiled_unchecked_division(_ratio), compiled(_checked_ratio)
    assert unchecked(1.0, 0.0) == float("inf")
    assert unchecked(1.0, 4.0) == checked(1.0, 4.0) == 0.25
    with pytest.raises(ZeroDivisionError):
        checked(1.0, 0.0)
