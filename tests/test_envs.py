"""The batched torch environments: CartPole against gymnasium and its former step, ``rollout``, DoublePole's physics."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch

from neatify import EvolutionConfig, Genome, Population
from neatify.envs import CartPole, DoublePole, rollout
from neatify.envs.cartpole import (CART_MASS, FORCE, GRAVITY, POLE_HALF_LENGTH, POLE_MASS, TAU, THETA_LIMIT,
                                   X_LIMIT)
from neatify.envs.double_pole import derivatives
from neatify.nn import NeatPopulationModule


def test_cartpole_matches_gymnasium_step_for_step() -> None:
    gym = pytest.importorskip("gymnasium")
    env = CartPole(3, dtype=torch.float64, seed=0)
    start = env.reset()
    actions = torch.Generator().manual_seed(1)
    references = []
    for i in range(3):
        ref = gym.make("CartPole-v1").unwrapped
        ref.reset(seed=i)
        ref.state = start[i].numpy().copy()
        references.append(ref)
    finished = [False] * 3
    for _ in range(60):
        action = torch.randint(0, 2, (3,), generator=actions)
        obs, done = env.step(action)
        for i, ref in enumerate(references):
            if not finished[i]:
                ref_obs, _, finished[i], _, _ = ref.step(int(action[i]))
                torch.testing.assert_close(obs[i], torch.tensor(ref_obs, dtype=torch.float64), rtol=1e-5, atol=1e-6)
                assert bool(done[i]) == finished[i]
    assert any(finished)


def test_cartpole_done_environments_stay_frozen_and_count_steps() -> None:
    env = CartPole(4, max_steps=5, seed=0)
    env.reset()
    for _ in range(8):
        obs, done = env.step(torch.ones(4, dtype=torch.long))
    assert done.all()
    assert env.steps.tolist() == [5, 5, 5, 5]
    frozen = env.state.clone()
    env.step(torch.zeros(4, dtype=torch.long))
    assert torch.equal(env.state, frozen)


def former_step(env: CartPole, action: torch.Tensor) -> None:
    """``CartPole.step`` as it was before the in-place rewrite: the reference its numbers must equal."""
    x, x_dot, theta, theta_dot = env.state.unbind(1)
    force = torch.where(action.reshape(-1).bool(), FORCE, -FORCE).to(env.state.dtype)
    cos, sin = torch.cos(theta), torch.sin(theta)
    total_mass, pole_moment = CART_MASS + POLE_MASS, POLE_MASS * POLE_HALF_LENGTH
    temp = (force + pole_moment * theta_dot**2 * sin) / total_mass
    theta_acc = (GRAVITY * sin - cos * temp) / (POLE_HALF_LENGTH * (4.0 / 3.0 - POLE_MASS * cos**2 / total_mass))
    x_acc = temp - pole_moment * theta_acc * cos / total_mass
    new = torch.stack([x + TAU * x_dot, x_dot + TAU * x_acc, theta + TAU * theta_dot, theta_dot + TAU * theta_acc], 1)
    running = ~env.done
    env.state = torch.where(running.unsqueeze(1), new, env.state)
    env.steps += running.long()
    failed = (new[:, 0].abs() > X_LIMIT) | (new[:, 2].abs() > THETA_LIMIT)
    env.done |= running & (failed | (env.steps >= env.max_steps))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cartpole_step_equals_the_former_step_bit_for_bit(dtype: torch.dtype) -> None:
    env, reference = (CartPole(400, max_steps=150, dtype=dtype, seed=3) for _ in range(2))
    torch.testing.assert_close(env.reset(), reference.reset(), rtol=0, atol=0)
    actions = torch.Generator().manual_seed(4)
    for _ in range(160):
        push = torch.rand(400, generator=actions) < 0.5 + 0.4 * torch.sign(reference.state[:, 2])  # lean-following
        obs, done = env.step(push.long() if dtype == torch.float32 else push)  # 0/1 or bools
        former_step(reference, push)
        assert torch.equal(obs, reference.state) and torch.equal(done, reference.done)
        assert torch.equal(env.steps, reference.steps)
    assert reference.done.all() and 0 < (reference.steps == 150).sum() < 400  # some fell, some lasted


@pytest.fixture(scope="module")
def cart_controllers() -> list[Genome]:
    """300 genomes of 4 inputs and 2 outputs grown with random fitness and fast structural mutation, cycles allowed."""
    config = EvolutionConfig(prob_add_node=0.4, prob_add_connection=0.6, allow_recurrent=True,
                             activation_options=["tanh", "relu", "identity", "sigmoid"], prob_mutate_activation=0.3)
    population = Population(300, 4, 2, config=config, seed=2)
    rng = random.Random(2)
    for _ in range(5):
        population.run_generation(lambda genomes: [setattr(g, "fitness", rng.random()) for g in genomes])
    assert sum(g.is_recurrent() for g in population.genomes) >= 10
    return population.genomes


def push_right_if_first_wins(outputs: torch.Tensor) -> torch.Tensor:
    return outputs[..., 0] > outputs[..., 1]


@pytest.mark.parametrize("synchronous", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_rollout_equals_stepping_every_cart_to_the_end(cart_controllers: list[Genome], dtype: torch.dtype,
                                                       synchronous: bool) -> None:
    """Dropping finished genomes changes no step count, no final state, float32 included, feed-forward
    and recurrent (the selected module carries its node values)."""
    genomes = cart_controllers
    module = NeatPopulationModule(genomes, dtype=dtype, synchronous=synchronous)
    reference = CartPole(300 * 3, max_steps=120, dtype=dtype, seed=5)
    obs = reference.reset()
    while not reference.done.all():
        former_step(reference, push_right_if_first_wins(module(obs.view(300, 3, 4))))
        obs = reference.state
    env = CartPole(300 * 3, max_steps=120, dtype=dtype, seed=5)
    steps = rollout(module, env, push_right_if_first_wins, check_every=1, shrink=0.9)
    assert torch.equal(steps, reference.steps.view(300, 3))
    assert torch.equal(env.state, reference.state) and env.done.all()
    lasted = steps.max(dim=1).values
    assert (lasted == 120).sum() >= 3 and len(lasted.unique()) > 20  # a long tail to drop genomes from


def test_rollout_refuses_a_cart_count_that_is_not_whole_episodes() -> None:
    genomes = Population(4, 4, 2, seed=1).genomes
    with pytest.raises(ValueError, match="10 environments for 4 genomes"):
        rollout(NeatPopulationModule(genomes), CartPole(10))


def test_double_pole_falls_without_control_and_is_mirror_symmetric() -> None:
    env = DoublePole.standard(1)
    mirrored = DoublePole(-env.state)
    for _ in range(100):
        env.step(torch.tensor([0.7], dtype=torch.float64))
        mirrored.step(np.array([0.3]))
        np.testing.assert_allclose(mirrored.state, -env.state, rtol=1e-9, atol=1e-12)
    assert not env.alive.any() and 0 < env.steps[0] < 100


def test_double_pole_equilibrium_and_failure_limits() -> None:
    upright = np.zeros((2, 6))
    assert (derivatives(upright, np.zeros(2)) == 0).all()
    pushed = derivatives(upright, np.array([10.0, -10.0]))
    assert pushed[0, 1] > 0 > pushed[1, 1]  # the cart accelerates with the force
    assert pushed[0, 3] < 0 and pushed[0, 5] < 0  # and the poles tip back
    state = np.zeros((3, 6))
    state[0, 0], state[1, 2], state[2, 4] = 2.5, 0.7, -0.7
    env = DoublePole(state)
    assert not env.step(np.full(3, 0.5)).any()
    assert env.steps.tolist() == [0, 0, 0]


def test_double_pole_generalisation_starts_and_observations() -> None:
    env = DoublePole.generalisation()
    assert env.state.shape == (625, 6) and len({tuple(s) for s in env.state.tolist()}) == 625
    assert env.state[:, 0].max() == pytest.approx(0.9 * 2.16)
    assert env.state[:, 2].min() == pytest.approx(-0.9 * 3.6 * math.pi / 180)
    assert (env.state[:, 4:] == 0).all()
    with_velocity, without = env.observe(True), env.observe(False)
    assert isinstance(without, torch.Tensor) and without.dtype == torch.float64
    assert with_velocity.shape == (625, 7) and without.shape == (625, 4)
    assert (with_velocity[:, -1] == 0.5).all() and (without[:, -1] == 0.5).all()
    np.testing.assert_allclose(without[:, 1].numpy(), env.state[:, 2] / 0.52)
