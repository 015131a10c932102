"""Small gymnasium environments for the neatify.gym tests (module level, so process pools can pickle them)."""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces


class Corridor(gymnasium.Env):
    """Walk a corridor: observation (position, 1), reward 1 a step; action 1 at step ``fail_at`` raises
    (``fail="raise"``) or returns a NaN reward (``fail="nan"``); ``action_space`` as given."""

    def __init__(self, action_space: Any = None, observation_space: Any = None, fail: str | None = None,
                 fail_at: int = 3, length: int = 20) -> None:
        self.action_space = action_space if action_space is not None else spaces.Discrete(2)
        self.observation_space = observation_space if observation_space is not None else spaces.Box(
            -np.inf, np.inf, (2,), np.float64)
        self.fail, self.fail_at, self.length = fail, fail_at, length
        self.actions: list[Any] = []

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.t, self.position = 0, float(self.np_random.uniform(-1.0, 1.0))
        return np.array([self.position, 1.0]), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        self.actions.append(action)
        self.t += 1
        pushed = np.ndim(action) == 0 and int(action) == 1
        if self.fail == "raise" and pushed and self.t == self.fail_at:
            raise RuntimeError("the corridor collapsed")
        reward = float("nan") if self.fail == "nan" and pushed and self.t == self.fail_at else 1.0
        self.position += 0.1 if pushed else -0.05
        return np.array([self.position, 1.0]), reward, self.t >= self.length, False, {}


def raising_corridor() -> Corridor:
    return Corridor(fail="raise")


def nan_corridor() -> Corridor:
    return Corridor(fail="nan")


def resampled_cartpole() -> Any:
    """The resampling CartPole task of tests/test_gym_resample.py (a factory: the workers import this module)."""
    from neatify.gym import GymEvaluator

    return GymEvaluator("CartPole-v1", episodes=2, max_steps=60, seed=5, resample=True)


def normalized_cartpole() -> Any:
    """That task with observation normalisation, learnt from each generation's 3 fittest."""
    from neatify.gym import GymEvaluator

    return GymEvaluator("CartPole-v1", episodes=2, max_steps=60, seed=5, resample=True, normalize=True, normalize_top=3)


resampled_cartpole_task = resampled_cartpole()
"""That task as ``neatify worker gym_envs:resampled_cartpole_task`` loads it."""
normalized_cartpole_task = normalized_cartpole()
"""The normalised one as ``neatify worker gym_envs:normalized_cartpole_task`` loads it."""
