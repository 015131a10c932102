"""neatify.gym.mujoco: Hopper-v5, HalfCheetah-v5 and InvertedDoublePendulum-v5 stepped natively equal gymnasium's
to the bit."""

from __future__ import annotations

import numpy as np
import pytest

gymnasium = pytest.importorskip("gymnasium")
pytest.importorskip("mujoco")

from neatify.gym import GymEvaluator  # noqa: E402
from neatify.gym.mujoco import HalfCheetahBank, HopperBank, InvertedDoublePendulumBank  # noqa: E402
from test_gym import population_genomes  # noqa: E402


@pytest.mark.parametrize("bank_class", [HopperBank, HalfCheetahBank, InvertedDoublePendulumBank])
def test_native_bank_steps_equal_gymnasiums(bank_class) -> None:
    seeds, steps = [4, 9, 4], 60
    bank = bank_class()
    observations = bank.reset(seeds)
    references = [gymnasium.make(bank.name) for _ in seeds]
    starts = [env.reset(seed=seed)[0] for env, seed in zip(references, seeds)]
    assert np.array_equal(observations, np.stack(starts))
    rng = np.random.default_rng(0)
    running = np.arange(len(seeds))
    for _ in range(steps):
        actions = rng.uniform(-1.0, 1.0, (len(running), bank.action_space.shape[0]))
        result = bank.step(running, actions)
        for k, i in enumerate(running.tolist()):
            observation, reward, terminated, _, _ = references[i].step(actions[k])
            assert np.array_equal(result.observations[k], observation)
            assert (result.rewards[k], bool(result.done[k])) == (reward, terminated)
        running = running[~result.done]
        if len(running) == 0:
            break
    assert not result.errors


@pytest.mark.parametrize("env_id, bank_class, shape", [("Hopper-v5", HopperBank, (11, 3)),
                                                        ("HalfCheetah-v5", HalfCheetahBank, (17, 6)),
                                                        ("InvertedDoublePendulum-v5", InvertedDoublePendulumBank, (9, 1))])
def test_fitness_native_equals_gymnasium_envs(env_id, bank_class, shape) -> None:
    genomes = population_genomes(*shape, 8)
    native = GymEvaluator(env_id, episodes=2, max_steps=80, seed=1)
    plain = GymEvaluator(env_id, episodes=2, max_steps=80, seed=1, native=False)
    assert isinstance(native.bank(), bank_class) and not isinstance(plain.bank(), bank_class)
    assert native.run(genomes).returns.tolist() == plain.run(genomes).returns.tolist()
