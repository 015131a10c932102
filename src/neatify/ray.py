"""Evaluate generations on Ray actors: ``pop.run_generation(RayEvaluator(fn, num_actors=8))``.

Needs Ray (``pip install 'neatify-neat[ray]'``). Each actor runs the optional ``setup()`` once and keeps
its result (an environment, a dataset, a model) for every batch it evaluates; the fitness function
is then called as ``fitness_fn(genomes, state)`` instead of ``fitness_fn(genomes)``. Genomes
travel as plain data and each batch comes back as checked float fitness values or per-genome errors
(``neatify.evaluation``), so results equal serial evaluation. A batch whose actor dies is evaluated
again on a fresh actor, up to ``max_retries`` times; a fitness function failing on a genome is not retried.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any

from neatify.evaluation import NO_STATE, BatchResult, apply_results, check_error_fitness
from neatify.genome import Genome
from neatify.parallel import SetupFunction, evaluate_dicts, split_batches
from neatify.population import FitnessFunction

logger = logging.getLogger("neatify.ray")


def _import_ray() -> Any:
    try:
        import ray  # the Ray package: absolute import, not this module
    except ImportError:
        raise ImportError("neatify.ray needs Ray: pip install 'neatify-neat[ray]'") from None
    return ray


class _BatchActor:
    """Holds the fitness function and the per-actor state; evaluates batches of genome dicts."""

    def __init__(self, fitness_fn: FitnessFunction, setup: SetupFunction | None) -> None:
        self.fitness_fn = fitness_fn
        self.state = setup() if setup is not None else NO_STATE

    def evaluate(self, genome_dicts: list[dict[str, Any]]) -> BatchResult:
        return evaluate_dicts(self.fitness_fn, genome_dicts, self.state)


def actors_that_fit(actor_options: dict[str, Any], cluster: dict[str, float]) -> tuple[int | None, str]:
    """How many actors with these options the cluster's resources can hold at once (None: no limit),
    and the limiting resource in words, e.g. ``"2 CPU (1 per actor)"``."""
    needs = {"CPU": actor_options.get("num_cpus", 1), "GPU": actor_options.get("num_gpus", 0),
             **actor_options.get("resources", {})}
    limits = [(int(cluster.get(name, 0) // amount), f"{cluster.get(name, 0):g} {name} ({amount:g} per actor)")
              for name, amount in needs.items() if amount]
    return min(limits) if limits else (None, "")


class RayEvaluator:
    """A fitness function that spreads each generation over Ray actors.

    Connects to the cluster at ``address`` (``"auto"``, ``"ray://host:10001"``, ...) unless Ray is
    already initialised; with neither, starts a local Ray. ``num_actors`` defaults to, and is
    capped at (with a warning), the actors the cluster's resources hold at once (one CPU each
    unless ``actor_options`` says otherwise). ``timeout`` bounds the wait for any one batch
    (seconds; None: no bound). A genome the fitness function fails on raises ``EvaluationError``
    naming it, with the actor's traceback, or with ``error_fitness`` gets that value (logged).
    """

    def __init__(self, fitness_fn: FitnessFunction, num_actors: int | None = None,
                 setup: SetupFunction | None = None, address: str | None = None, batches_per_actor: int = 2,
                 max_retries: int = 3, timeout: float | None = 300.0,
                 actor_options: dict[str, Any] | None = None, error_fitness: float | None = None) -> None:
        if (num_actors is not None and num_actors < 1) or batches_per_actor < 1 or max_retries < 0:
            raise ValueError("num_actors and batches_per_actor must be at least 1, max_retries at least 0")
        self.error_fitness = check_error_fitness(error_fitness)
        """Fitness given to a genome the fitness function failed on; None raises ``EvaluationError``."""
        ray = self._ray = _import_ray()
        self._owns_ray = not ray.is_initialized()
        if self._owns_ray:
            ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING)
        self._actors: list[Any] | None = None
        actor_options = {"num_cpus": 1, **(actor_options or {})}
        self.num_actors = self._schedulable(num_actors, actor_options)
        self.batches_per_actor = batches_per_actor
        self.max_retries = max_retries
        self.timeout = timeout
        self.actor_failures = 0
        """Actors lost so far (each replaced by a fresh one)."""
        self._actor_cls = ray.remote(_BatchActor).options(**actor_options)
        self._args = (fitness_fn, setup)
        self._actors = [self._new_actor() for _ in range(self.num_actors)]
        logger.info("started %d Ray actors", self.num_actors)

    def _schedulable(self, num_actors: int | None, actor_options: dict[str, Any]) -> int:
        """``num_actors`` capped at what the cluster can run at once: more would wait forever for resources."""
        cluster = self._ray.cluster_resources()
        fit, limit = actors_that_fit(actor_options, cluster)
        if fit == 0:
            self.close()
            raise ValueError(f"no Ray actor can start: Ray has {limit}")
        if num_actors is None:
            return fit if fit is not None else max(1, int(cluster.get("CPU", 1)))
        if fit is not None and num_actors > fit:
            logger.warning("num_actors=%d but Ray has %s: starting %d actors", num_actors, limit, fit)
            return fit
        return num_actors

    def _new_actor(self) -> Any:
        return self._actor_cls.remote(*self._args)

    def __call__(self, genomes: list[Genome]) -> None:
        """Evaluate ``genomes`` on the actors and set each one's fitness."""
        if self._actors is None:
            raise RuntimeError("RayEvaluator is closed")
        ray, actors = self._ray, self._actors
        batches = split_batches([g.to_dict() for g in genomes], self.num_actors * self.batches_per_actor)
        by_id = {genome.id: genome for genome in genomes}
        attempts = [0] * len(batches)
        pending, idle = deque(range(len(batches))), list(range(len(actors)))
        in_flight: dict[Any, tuple[int, int]] = {}
        while pending or in_flight:
            while pending and idle:
                actor, batch = idle.pop(), pending.popleft()
                in_flight[actors[actor].evaluate.remote(batches[batch])] = (actor, batch)
            done, _ = ray.wait(list(in_flight), num_returns=1, timeout=self.timeout)
            if not done:
                raise TimeoutError(f"no batch finished within {self.timeout} s ({self.num_actors} actors; Ray "
                                   f"has {self._ray.available_resources()} free of {self._ray.cluster_resources()})")
            actor, batch = in_flight.pop(done[0])
            try:
                result = ray.get(done[0])
            except ray.exceptions.RayActorError as exc:
                attempts[batch] += 1
                self.actor_failures += 1
                if attempts[batch] > self.max_retries:
                    raise RuntimeError(f"batch {batch} lost its actor {attempts[batch]} times; giving up") from exc
                logger.warning("actor %d died (%s); retrying its batch on a fresh actor", actor, type(exc).__name__)
                ray.kill(actors[actor], no_restart=True)
                actors[actor] = self._new_actor()
                pending.appendleft(batch)
            else:
                apply_results(by_id, result, f"Ray actor {actor}", self.error_fitness)
            idle.append(actor)

    def close(self) -> None:
        """Stop the actors, and Ray itself if this evaluator started it (idempotent)."""
        for actor in self._actors or ():
            self._ray.kill(actor)
        self._actors = None
        if self._owns_ray:
            self._owns_ray = False
            self._ray.shutdown()

    def __enter__(self) -> RayEvaluator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
