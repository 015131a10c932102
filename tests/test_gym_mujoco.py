"""neatify.gym.mujoco: Hopper-v5 stepped natively equals gymnasium's Hopper-v5 to the bit."""

from __future__ import annotations

import numpy as np
import pytest

gymnasium = pytest.importorskip("gymnasium")
pytest.importorskip("mujoco")

from neatify.gym import GymEvaluator  # noqa: E402
from neatify.gym.mujoco import HopperBank  # noqa: E402
from test_gym import population_genomes  # noqa: E402


def test_hopper_bank_steps_equal_gymnasiums_hopper() -> None:
    seeds, steps = [4, 9, 4], 60
    bank = HopperBank()
    observations = bank.reset(seeds)
    references = [gymnasium.make("Hopper-v5") for _ in seeds]
    starts = [env.reset(seed=seed)[0] for env, seed in zip(references, seeds)]
    assert np.array_equal(observations, np.stack(starts))
    rng = np.random.default_rng(0)
    running = np.arange(len(seeds))
    for _ in range(steps):
        actions = rng.uniform(-1.0, 1.0, (len(running), 3))
        result = bank.step(running, actions)
        for k, i in enumerate(running.tolist()):
            observation, reward, terminated, _, _ = references[i].step(actions[k])
            assert np.array_equal(result.observations[k], observation)
            assert (result.rewards[k], bool(result.done[k])) == (reward, terminated)
        running = running[~result.done]
        if len(running) == 0:
            break
    assert not result.errors


def test_hopper_fitness_native_equals_gymnasium_envs() -> None:
    genomes = population_genomes(11, 3, 8)
    native = GymEvaluator("Hopper-v5", episodes=2, max_steps=80, seed=1)
    plain = GymEvaluator("Hopper-v5", episodes=2, max_steps=80, seed=1, native=False)
    assert isinstance(native.bank(), HopperBank) and not isinstance(plain.bank(), HopperBank)
    assert native.run(genomes).returns.tolist() == plain.run(genomes).returns.tolist()
