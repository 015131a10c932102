"""``run_episodes``: every genome's episodes stepped together, one ``NeatPopulationModule`` call per step.

Python's per-step cost (the module call, the action mapping, the bookkeeping) is paid once per
population step, not once per genome; the environments themselves are stepped by their bank. Finished
episodes are no longer stepped, and once at most ``shrink`` of the genomes being run have an episode
left, the others are cut from the module (``select``), so the long tail of a few good genomes costs
only theirs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch

from neatify.gym.envs import StepResult
from neatify.gym.normalize import ObservationNormalizer
from neatify.gym.spaces import ActionAdapter
from neatify.nn.population_module import NeatPopulationModule


class EnvBank(Protocol):
    """Environments reset and stepped together (``neatify.gym.envs.GymEnvs``, ``neatify.gym.mujoco``)."""

    name: str
    obs_size: int
    action_space: Any

    def reset(self, seeds: list[int]) -> np.ndarray: ...

    def step(self, index: np.ndarray, actions: np.ndarray) -> StepResult: ...


@dataclass
class Episodes:
    """Every episode of a call, genome-major: ``returns``/``steps`` ``(genomes, episodes)``, ``final`` observations
    ``(genomes, episodes, obs)``, and ``errors``: genome index -> why its evaluation failed."""

    returns: np.ndarray
    steps: np.ndarray
    final: np.ndarray
    errors: dict[int, str] = field(default_factory=dict)
    observed: tuple[float, np.ndarray, np.ndarray] | None = None
    """Count, sum and sum of squares of the observations the networks saw, when normalising (else None)."""


def run_episodes(module: NeatPopulationModule, bank: EnvBank, adapter: ActionAdapter, seeds: list[int],
                 max_steps: int, normalizer: ObservationNormalizer | None = None, shrink: float = 0.5) -> Episodes:
    """Run ``len(seeds)`` episodes per genome of ``module`` (episode ``e`` of every genome with ``seeds[e]``)
    to their ends or ``max_steps``."""
    genomes, episodes = module.num_genomes, len(seeds)
    obs = bank.reset(seeds * genomes)
    returns, steps = np.zeros(genomes * episodes), np.zeros(genomes * episodes, np.int64)
    done, errors = np.zeros(genomes * episodes, bool), {}
    totals = [0.0, np.zeros(bank.obs_size), np.zeros(bank.obs_size)]
    running, net = np.arange(genomes), module
    module.reset()
    while True:
        envs = (running[:, None] * episodes + np.arange(episodes)).reshape(-1)
        live_mask = ~done[envs]
        if normalizer is not None:
            _observe(totals, obs[envs[live_mask]])
        seen = obs[envs] if normalizer is None else normalizer.normalize(obs[envs])
        inputs = torch.from_numpy(seen.astype(np.float32)).view(len(running), episodes, -1)
        outputs = net(inputs).reshape(len(envs), -1).numpy()
        live = envs[live_mask]
        result = bank.step(live, adapter.actions(outputs[live_mask]))
        obs[live], returns[live], steps[live] = result.observations, returns[live] + result.rewards, steps[live] + 1
        done[live] = result.done | (steps[live] >= max_steps)
        for k, message in result.errors.items():
            genome, episode = divmod(int(live[k]), episodes)
            errors.setdefault(genome, f"{bank.name} episode {episode} (seed {seeds[episode]}) step "
                                      f"{steps[live[k]]}: {message}")
            done[genome * episodes:(genome + 1) * episodes] = True
        left = np.flatnonzero(~done[envs].reshape(len(running), episodes).all(axis=1))
        if len(left) == 0:
            break
        if len(left) <= shrink * len(running):
            running, net = running[left], net.select(torch.from_numpy(left))
    observed = None if normalizer is None else (totals[0], totals[1], totals[2])
    return Episodes(returns.reshape(genomes, episodes), steps.reshape(genomes, episodes),
                    obs.reshape(genomes, episodes, -1), errors, observed)


def _observe(totals: list, observations: np.ndarray) -> None:
    """Add observations to the running count, sum and sum of squares."""
    totals[0] += len(observations)
    totals[1] += observations.sum(axis=0)
    totals[2] += (observations ** 2).sum(axis=0)
