"""``GymEvaluator``: a fitness function for any gymnasium environment, the whole batch evaluated at once.

Pass it wherever a fitness function goes (``Population.run``, ``ParallelEvaluator``, ``RayEvaluator``,
``neatify worker``): each evaluates the batch it is given with one ``NeatPopulationModule``, so every
backend vectorises its own batch. A genome's fitness does not depend on its batch, so a run is the
same whatever evaluates it; with ``normalize`` the observation statistics are learnt by the local evaluator
(added as a reporter) and sent to every evaluator with the generation (``generation_context``).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from neatify.evaluation import check_error_fitness, give_error_fitness
from neatify.genome.genome import Genome
from neatify.gym.envs import EnvFactory, GymEnvs
from neatify.gym.normalize import ObservationNormalizer
from neatify.gym.rollout import EnvBank, Episodes, run_episodes
from neatify.gym.spaces import ActionAdapter
from neatify.nn.population_module import NeatPopulationModule
from neatify.runtime.extras import require

logger = logging.getLogger("neatify.gym")


class GymEvaluationError(RuntimeError):
    """An environment raised or returned NaN while evaluating a genome (named, with the episode and step)."""


@dataclass(frozen=True)
class GenomeEpisodes:
    """One genome's episodes, what a ``behaviour`` function is given: ``returns`` and ``steps`` ``(episodes,)``,
    ``final`` observations ``(episodes, obs)``."""

    returns: np.ndarray
    steps: np.ndarray
    final: np.ndarray


BehaviourFunction = Callable[[GenomeEpisodes], Sequence[float]]
"""A genome's behaviour vector (for novelty search) from its episodes."""


def fittest(population: Any, top: int) -> list[Genome]:
    """The ``top`` genomes of ``population``'s generation by fitness (the lowest row first on a tie)."""
    rows = np.argsort(-population.fitness, kind="stable")[:top].tolist()
    return [population.genomes[row] for row in rows]


def episode_seeds(seed: int, generation: int, episodes: int) -> list[int]:
    """The seeds of a generation's episodes: the same for every genome, derived from the run's seed and the
    generation only (numpy's SeedSequence), so any process computes the same ones."""
    return [int(s) for s in np.random.SeedSequence([seed, generation]).generate_state(episodes)]


@contextmanager
def _torch_threads(threads: int | None) -> Iterator[None]:
    """torch's intra-op threads set to ``threads`` for the block (None: left alone). One thread by default: the
    per-step products are tiny, and spare threads spinning on a busy machine cost more than they give."""
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _gymnasium() -> Any:
    return require("gymnasium", "neatify.gym", "gym")


class GymEvaluator:
    """Mean episode return of each genome on a gymnasium environment, as ``genome.fitness``.

    ``env`` is an environment id (made with ``gymnasium.make(env, **env_kwargs)``) or a factory
    returning an environment (a module-level function, so that the evaluator pickles for process pools).
    Each genome runs ``episodes`` episodes of at most ``max_steps`` steps (default: the environment's own
    limit, else 1000) with ``episode_seeds(seed, generation, episodes)``: the same for every genome.
    ``generation`` stays 0 (the same episodes every generation) unless ``resample`` is set: then every
    backend tells it the generation before evaluating a batch (``set_generation``), so each generation
    draws new episodes and the run stays the same wherever it is evaluated.

    Outputs become actions by ``ActionAdapter`` (``output_range``: the output activation's range).
    ``normalize`` standardises observations by a running mean and variance, learnt only where the evaluator is
    added as a reporter (``population.add_reporter``): after each generation it reruns that generation's
    ``normalize_top`` fittest genomes on their episodes and adds what they observed. A process pool or Ray sends
    those statistics to their copies with each generation (``generation_context``/``set_generation``), so the
    run is the one serial evaluation gives (TCP workers: from the master's copy given to
    ``DistributedPopulation.run_generation``); an evaluator that gets none refuses to go on.
    ``threads``: torch's threads while stepping (None leaves torch's setting).
    ``behaviour`` maps a genome's ``GenomeEpisodes`` to ``genome.behaviour``. A genome whose environment
    raises or returns NaN gets ``error_fitness`` when given; otherwise ``GymEvaluationError`` names it
    (under a backend, that backend's ``error_fitness`` then applies to that genome only).
    """

    def __init__(self, env: str | EnvFactory, episodes: int = 1, max_steps: int | None = None, seed: int = 0,
                 env_kwargs: dict[str, Any] | None = None, normalize: bool = False,
                 behaviour: BehaviourFunction | None = None, output_range: tuple[float, float] = (0.0, 1.0),
                 error_fitness: float | None = None, resample: bool = False, native: bool | None = None,
                 threads: int | None = 1, normalize_top: int = 5) -> None:
        if episodes < 1:
            raise ValueError(f"episodes must be at least 1, got {episodes}")
        if normalize_top < 1:
            raise ValueError(f"normalize_top must be at least 1, got {normalize_top}")
        if max_steps is not None and max_steps < 1:
            raise ValueError(f"max_steps must be at least 1, got {max_steps}")
        self.env, self.env_kwargs = env, dict(env_kwargs or {})
        self.episodes, self.max_steps, self.seed = episodes, max_steps, seed
        self.behaviour, self.output_range, self.resample = behaviour, tuple(output_range), resample
        self.error_fitness = check_error_fitness(error_fitness)
        self.native, self.threads = native, threads
        self.generation = 0
        self.normalizer: ObservationNormalizer | None = None
        self._normalize, self.normalize_top = normalize, normalize_top
        self._has_statistics = False  # learnt as a reporter, or received from the local evaluator
        self._bank: EnvBank | None = None
        self._adapter: ActionAdapter | None = None

    @property
    def name(self) -> str:
        """The environment's id, or its factory's name."""
        return self.env if isinstance(self.env, str) else getattr(self.env, "__name__", repr(self.env))

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_bank": None, "_adapter": None}

    def bank(self) -> EnvBank:
        """The environments (made on first use in each process): MuJoCo's native stepper where one exists."""
        if self._bank is None:
            self._bank = self._make_bank()
        if self._adapter is None:
            self._adapter = ActionAdapter.for_space(self._bank.action_space, self.name, self.output_range)
            if self._normalize and self.normalizer is None:
                self.normalizer = ObservationNormalizer(self._bank.obs_size)
        return self._bank

    def _make_bank(self) -> EnvBank:
        from neatify.gym.mujoco import native_bank

        bank = native_bank(self.env, self.env_kwargs) if self.native is not False else None
        if bank is None and self.native:
            raise ValueError(f"{self.name}: no native MuJoCo stepper for this environment")
        if bank is not None:
            return bank
        if isinstance(self.env, str):
            gymnasium, env_id, kwargs = _gymnasium(), self.env, self.env_kwargs
            return GymEnvs(lambda: gymnasium.make(env_id, **kwargs), env_id)
        return GymEnvs(self.env, self.name)

    def shape(self) -> tuple[int, int]:
        """(inputs, outputs) a genome needs for this environment."""
        bank = self.bank()
        assert self._adapter is not None
        return bank.obs_size, self._adapter.num_outputs

    def set_generation(self, generation: int, context: dict[str, Any] | None = None) -> None:
        """With ``resample``, the next episodes are ``generation``'s (called by every backend before a batch);
        ``context`` (from the local evaluator's ``generation_context``) brings the observation statistics."""
        if self.resample:
            self.generation = generation
        if context is not None and context.get("normalizer") is not None:
            self.bank()
            if self.normalizer is None:
                self.normalizer = ObservationNormalizer.from_dict(context["normalizer"])
            else:  # in place: a held_out copy validating beside it shares the statistics
                self.normalizer.load(context["normalizer"])
            self._has_statistics = True
        elif self._normalize and generation > 0 and not self._has_statistics:
            raise ValueError(f"{self.name}: normalize=True, yet generation {generation} came without observation "
                             f"statistics: add the local evaluator as a reporter (population.add_reporter), and "
                             f"evaluate locally, on a process pool or on Ray, or on TCP workers with it given to "
                             f"DistributedPopulation.run_generation")

    def generation_context(self) -> dict[str, Any] | None:
        """What every evaluator of the next generation needs besides its number: the observation statistics."""
        if not self._normalize:
            return None
        self.bank()
        assert self.normalizer is not None
        return {"normalizer": self.normalizer.to_dict()}

    def start_generation(self, population: Any) -> None:
        """As a reporter: nothing to do before a generation."""

    def end_generation(self, population: Any, stats: Any) -> None:
        """As a reporter, with ``normalize``: add the observations of the generation's ``normalize_top`` fittest
        genomes, rerun on the generation's episodes, to the statistics."""
        if not self._normalize:
            return
        if self.resample:  # under a pool or Ray only their copies were told the generation
            self.generation = population.generation
        episodes = self.run(fittest(population, self.normalize_top))
        assert self.normalizer is not None and episodes.observed is not None
        self.normalizer.update(*episodes.observed)
        self._has_statistics = True

    def held_out(self, episodes: int, seed: int, statistics: dict[str, Any] | None = None) -> GymEvaluator:
        """A copy on ``episodes`` fixed episodes of its own ``seed`` (never resampled), to validate or test genomes
        on episodes training did not use; it reads this evaluator's normaliser (updated in place), or with
        ``statistics`` (``ObservationNormalizer.to_dict``) a fixed one of its own."""
        if episodes < 1:
            raise ValueError(f"episodes must be at least 1, got {episodes}")
        self.bank()  # the normaliser, if any, exists before the copy shares it
        held = copy.copy(self)
        held.episodes, held.seed, held.resample, held.generation = episodes, seed, False, 0
        held._has_statistics = True  # its original's, shared, or its own
        if statistics is not None:
            held.normalizer = ObservationNormalizer.from_dict(statistics)
        return held

    def run(self, genomes: Sequence[Genome]) -> Episodes:
        """Every genome's episodes, stepped together (nothing set on the genomes)."""
        bank = self.bank()
        assert self._adapter is not None
        num_inputs, num_outputs = self.shape()
        for genome in genomes:
            if (genome.num_inputs, genome.num_outputs) != (num_inputs, num_outputs):
                raise ValueError(f"genome {genome.id} has {genome.num_inputs} inputs and {genome.num_outputs} "
                                 f"outputs; {self.name} needs {num_inputs} and {num_outputs}")
        limit = self.max_steps or getattr(bank, "max_episode_steps", None) or 1000
        with _torch_threads(self.threads):
            episodes = run_episodes(NeatPopulationModule(list(genomes)), bank, self._adapter,
                                    episode_seeds(self.seed, self.generation, self.episodes), limit, self.normalizer)
        return episodes

    def __call__(self, genomes: list[Genome]) -> None:
        """Set ``fitness`` (the mean return) and, with ``behaviour``, ``behaviour`` on every genome."""
        if not genomes:
            return
        episodes = self.run(genomes)
        failed = []
        for k, genome in enumerate(genomes):
            if k in episodes.errors:
                failed.append(k)
                continue
            genome.fitness = float(episodes.returns[k].mean())
            if self.behaviour is not None:
                ran = GenomeEpisodes(episodes.returns[k], episodes.steps[k], episodes.final[k])
                genome.behaviour = [float(v) for v in self.behaviour(ran)]
        for k in failed:
            message = f"genome {genomes[k].id}: {episodes.errors[k]}"
            if self.error_fitness is None:
                raise GymEvaluationError(message)
            logger.warning("%s; giving it error_fitness %r", message, self.error_fitness)
            give_error_fitness(genomes[k], self.error_fitness)
