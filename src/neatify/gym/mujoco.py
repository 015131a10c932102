"""MuJoCo environments stepped natively: physics by ``mujoco.mj_step`` on each episode's ``MjData``, the
observations, rewards and ends of all episodes computed at once in numpy.

Gymnasium's ``Hopper-v5.step`` spends about as long in Python (observation, reward, health check,
wrappers) as in the physics; here that Python runs once per population step. Episodes start from
the very states gymnasium's own ``reset(seed=...)`` gives, and each step equals gymnasium's to the bit
(tests/test_gym_mujoco.py checks it), so a genome's fitness is the same either way.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from neatify.gym.envs import StepResult


class MujocoBank(ABC):
    """A gymnasium MuJoCo environment (default options) for many episodes at once: a subclass names it and gives
    its observation and its rewards and ends, computed for all stepped episodes at once."""

    name = ""

    def __init__(self) -> None:
        import gymnasium
        import mujoco

        self._mujoco = mujoco
        self._reference = gymnasium.make(self.name)  # resets (its reset noise) and the spaces
        env = self._reference.unwrapped
        self.model, self.frame_skip = env.model, env.frame_skip
        self.observation_space, self.action_space = env.observation_space, env.action_space
        self.obs_size = int(self.observation_space.shape[0])
        self.max_episode_steps = self._reference.spec.max_episode_steps
        self.dt = self.model.opt.timestep * self.frame_skip
        self._data: list[Any] = []

    def reset(self, seeds: list[int]) -> np.ndarray:
        """Start episode ``i`` where ``gymnasium.make(name).reset(seed=seeds[i])`` starts."""
        mujoco, env = self._mujoco, self._reference.unwrapped
        while len(self._data) < len(seeds):
            self._data.append(mujoco.MjData(self.model))
        starts: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for i, seed in enumerate(seeds):
            if seed not in starts:
                self._reference.reset(seed=int(seed))
                starts[seed] = env.data.qpos.copy(), env.data.qvel.copy()
            data = self._data[i]
            mujoco.mj_resetData(self.model, data)
            data.qpos[:], data.qvel[:] = starts[seed]
            mujoco.mj_forward(self.model, data)
        index = list(range(len(seeds)))
        return self._observe(index, *self._state(index))

    def _state(self, index: Any) -> tuple[np.ndarray, np.ndarray]:
        data = self._data
        return np.array([data[i].qpos for i in index]), np.array([data[i].qvel for i in index])

    @abstractmethod
    def _observe(self, index: list[int], qpos: np.ndarray, qvel: np.ndarray) -> np.ndarray:
        """The observations of episodes ``index`` in these states (one row each)."""

    @abstractmethod
    def _outcome(self, index: list[int], velocity: np.ndarray, qpos: np.ndarray, qvel: np.ndarray,
                 actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rewards and terminations of episodes ``index``'s step that moved ``qpos[0]`` at ``velocity`` into these
        states."""

    def step(self, index: np.ndarray, actions: np.ndarray) -> StepResult:
        """Step episodes ``index`` with ``actions``: the physics per episode, the rest for all at once."""
        mujoco, model, skip = self._mujoco, self.model, self.frame_skip
        before = np.array([self._data[i].qpos[0] for i in index.tolist()])
        for i, action in zip(index.tolist(), actions):
            data = self._data[i]
            data.ctrl[:] = action
            mujoco.mj_step(model, data, nstep=skip)
        stepped = index.tolist()
        qpos, qvel = self._state(stepped)
        rewards, terminated = self._outcome(stepped, (qpos[:, 0] - before) / self.dt, qpos, qvel, actions)
        observations = self._observe(stepped, qpos, qvel)
        finite = np.isfinite(observations).all(axis=1) & np.isfinite(rewards)
        errors = {int(k): f"FloatingPointError: non-finite state after the step (rewards {rewards[k]})"
                  for k in np.flatnonzero(~finite)}
        return StepResult(observations, rewards, terminated | ~finite, errors)


class HopperBank(MujocoBank):
    """Hopper-v5: a hop forward rewarded, with 1 a step while healthy; an unhealthy hopper ends its episode."""

    name = "Hopper-v5"

    def _observe(self, index: list[int], qpos: np.ndarray, qvel: np.ndarray) -> np.ndarray:
        return np.concatenate([qpos[:, 1:], np.clip(qvel, -10.0, 10.0)], axis=1)

    def _outcome(self, index: list[int], velocity: np.ndarray, qpos: np.ndarray, qvel: np.ndarray,
                 actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        z, angle, state = qpos[:, 1], qpos[:, 2], np.concatenate([qpos[:, 2:], qvel], axis=1)
        healthy = ((state > -100.0) & (state < 100.0)).all(axis=1) & (z > 0.7) & (angle > -0.2) & (angle < 0.2)
        return velocity + healthy - 1e-3 * np.square(actions).sum(axis=1), ~healthy


class HalfCheetahBank(MujocoBank):
    """HalfCheetah-v5: forward velocity less a control cost; no episode ends before the step limit."""

    name = "HalfCheetah-v5"

    def _observe(self, index: list[int], qpos: np.ndarray, qvel: np.ndarray) -> np.ndarray:
        return np.concatenate([qpos[:, 1:], qvel], axis=1)

    def _outcome(self, index: list[int], velocity: np.ndarray, qpos: np.ndarray, qvel: np.ndarray,
                 actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return velocity - 0.1 * np.square(actions).sum(axis=1), np.zeros(len(velocity), bool)


class InvertedDoublePendulumBank(MujocoBank):
    """InvertedDoublePendulum-v5: 10 a step while the tip stays above 1, less distance and velocity penalties;
    the episode ends when the tip falls to 1."""

    name = "InvertedDoublePendulum-v5"

    def _observe(self, index: list[int], qpos: np.ndarray, qvel: np.ndarray) -> np.ndarray:
        constraint = np.array([self._data[i].qfrc_constraint[:1] for i in index])
        return np.concatenate([qpos[:, :1], np.sin(qpos[:, 1:]), np.cos(qpos[:, 1:]), np.clip(qvel, -10, 10),
                               np.clip(constraint, -10, 10)], axis=1)

    def _outcome(self, index: list[int], velocity: np.ndarray, qpos: np.ndarray, qvel: np.ndarray,
                 actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        tip = np.array([self._data[i].site_xpos[0] for i in index])
        x, y = tip[:, 0], tip[:, 2]
        terminated = y <= 1
        penalties = 0.01 * x ** 2 + (y - 2) ** 2, 1e-3 * qvel[:, 1] ** 2 + 5e-3 * qvel[:, 2] ** 2
        return 10 * ~terminated - penalties[0] - penalties[1], terminated


NATIVE: dict[str, type[MujocoBank]] = {"Hopper-v5": HopperBank, "HalfCheetah-v5": HalfCheetahBank,
                                        "InvertedDoublePendulum-v5": InvertedDoublePendulumBank}
"""Environment ids with a native stepper (with their default options)."""


def native_bank(env: Any, env_kwargs: dict[str, Any]) -> MujocoBank | None:
    """The native stepper of ``env`` (an id with no options), or None where there is none or MuJoCo is missing."""
    if not isinstance(env, str) or env not in NATIVE or env_kwargs:
        return None
    try:
        import mujoco  # noqa: F401
    except ImportError:
        return None
    return NATIVE[env]()

