"""The batched torch environments: CartPole against gymnasium, DoublePole's physics and test set-up."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from neatify.envs import CartPole, DoublePole
from neatify.envs.double_pole import derivatives


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
