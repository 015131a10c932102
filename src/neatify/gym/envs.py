"""Banks of environments stepped together: one per episode being run, kept and reused between calls.

A bank resets ``n`` environments with one seed each and steps any subset of them with one action each;
a step that raises or returns a non-finite observation or reward is reported for that environment
(and the environment is made anew before its next episode), never raised.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from neatify.gym.spaces import observation_encoder, observation_size

EnvFactory = Callable[[], Any]
"""Makes one gymnasium environment (``lambda: gymnasium.make("CartPole-v1")``, or any callable)."""


@dataclass
class StepResult:
    """What a step of some environments gave: per environment stepped, in the order asked."""

    observations: np.ndarray
    rewards: np.ndarray
    done: np.ndarray
    errors: dict[int, str] = field(default_factory=dict)
    """Position (in the order asked) -> what went wrong: the environment raised, or returned NaN/infinity."""


class GymEnvs:
    """Gymnasium environments made by ``factory``, stepped one after another in Python (any environment)."""

    def __init__(self, factory: EnvFactory, name: str) -> None:
        self.factory, self.name = factory, name
        self._envs: list[Any] = []
        probe = self._make()
        self.observation_space, self.action_space = probe.observation_space, probe.action_space
        self.obs_size = observation_size(self.observation_space, name)
        self._encode = observation_encoder(self.observation_space)
        self._envs.append(probe)

    def _make(self) -> Any:
        env = self.factory()
        if not hasattr(env, "step") or not hasattr(env, "reset"):
            raise TypeError(f"{self.name}: the environment factory returned {type(env).__name__}, not an environment")
        return env

    def reset(self, seeds: list[int]) -> np.ndarray:
        """Reset environment ``i`` with ``seeds[i]`` (making environments as needed); their first observations."""
        while len(self._envs) < len(seeds):
            self._envs.append(self._make())
        observations = []
        for i, seed in enumerate(seeds):
            if self._envs[i] is None:  # it failed in an earlier episode
                self._envs[i] = self._make()
            observation, _ = self._envs[i].reset(seed=int(seed))
            observations.append(self._encode(observation))
        return np.stack(observations)

    def step(self, index: np.ndarray, actions: np.ndarray) -> StepResult:
        """Step environments ``index`` with ``actions`` (row by row)."""
        observations, rewards, done, errors = [], np.zeros(len(index)), np.zeros(len(index), bool), {}
        for k, (i, action) in enumerate(zip(index.tolist(), actions)):
            try:
                observation, reward, terminated, truncated, _ = self._envs[i].step(action)
                observation, rewards[k] = self._encode(observation), float(reward)
                if not (np.isfinite(observation).all() and math.isfinite(rewards[k])):
                    raise FloatingPointError(f"non-finite observation or reward ({observation}, {reward})")
                done[k] = terminated or truncated
            except Exception as exc:  # noqa: BLE001 - an environment's failure is its genome's, not the run's
                errors[k] = f"{type(exc).__name__}: {exc}"
                self._envs[i], observation, done[k] = None, np.zeros(self.obs_size), True
            observations.append(observation)
        stacked = np.stack(observations) if observations else np.zeros((0, self.obs_size))
        return StepResult(stacked, rewards, done, errors)

    @property
    def max_episode_steps(self) -> int | None:
        """Steps after which the environment itself ends an episode (its TimeLimit), if it says."""
        spec = getattr(self._envs[0], "spec", None) if self._envs and self._envs[0] is not None else None
        return getattr(spec, "max_episode_steps", None)
