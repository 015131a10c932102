"""Evaluate generations on Ray actors: ``pop.run_generation(RayEvaluator(fn, num_actors=8))``.

Needs Ray (``pip install '.[ray]'``). Each actor runs the optional ``setup()`` once and keeps
its result (an environment, a dataset, a model) for every batch it evaluates; the fitness function
is then called as ``fitness_fn(genomes, state)`` instead of ``fitness_fn(genomes)``. Genomes travel
as packed columns (``neatify.io.columns``, as to pool processes and TCP workers) and each batch comes
back as checked float fitness values or per-genome errors (``neatify.evaluation``), so results equal
serial evaluation. A batch whose actor dies is evaluated
again on another actor, up to ``max_retries`` times; a fitness function failing on a genome is not retried.
With ``num_actors=None`` the actors follow the cluster: before each generation actors start on nodes that
joined and those on nodes that left are dropped; with a fixed ``num_actors`` a dead actor is replaced.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any

from neatify.evaluation import NO_STATE, BatchResult, apply_results, check_error_fitness, generation_context
from neatify.backends.processes import SetupFunction, column_batches, evaluate_columns
from neatify.genome.genome import Genome
from neatify.io.columns import GenomeColumns
from neatify.population import FitnessFunction
from neatify.runtime.extras import require

logger = logging.getLogger("neatify.backends.ray")


def _import_ray() -> Any:
    return require("ray", "neatify.backends.ray", "ray")


class _BatchActor:
    """Holds the fitness function and the per-actor state; evaluates batches of genome columns."""

    def __init__(self, fitness_fn: FitnessFunction, setup: SetupFunction | None) -> None:
        self.fitness_fn = fitness_fn
        self.state = setup() if setup is not None else NO_STATE

    def evaluate(self, columns: GenomeColumns, generation: int | None, context: Any) -> BatchResult:
        return evaluate_columns(self.fitness_fn, columns, self.state, generation, context)

    def node_id(self) -> str:
        """The Ray node this actor runs on, to drop it when that node leaves the cluster."""
        return _import_ray().get_runtime_context().get_node_id()


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
    unless ``actor_options`` says otherwise); left at None, the count is checked again before each
    generation, so nodes that join get actors and actors on nodes that leave are dropped.
    ``timeout`` bounds the wait for any one batch (seconds; None: no bound). A genome the fitness
    function fails on raises ``EvaluationError`` naming it, with the actor's traceback, or with
    ``error_fitness`` gets that value (logged).
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
        self._actors: dict[int, Any] | None = None
        actor_options = self._actor_options = {"num_cpus": 1, **(actor_options or {})}
        self._follows_cluster = num_actors is None
        self.num_actors = self._schedulable(num_actors)
        """Actors in the pool at the start of the last generation (with ``num_actors=None``, what the cluster held)."""
        self.batches_per_actor = batches_per_actor
        self.max_retries = max_retries
        self.timeout = timeout
        self.actor_failures = 0
        """Actors lost so far (their batches retried on other actors)."""
        self.generation: int | None = None
        """The generation sent with each batch, set by the ``Population`` (``set_generation``)."""
        self.context: Any = None
        """Sent with each batch: the local ``fitness_fn``'s ``generation_context()`` when the generation was set."""
        self._local = fitness_fn
        self._actor_cls = ray.remote(_BatchActor).options(**actor_options)
        self._args = (fitness_fn, setup)
        self._actors, self._nodes, self._started = {}, {}, 0
        for _ in range(self.num_actors):
            self._new_actor()
        logger.info("started %d Ray actors", self.num_actors)

    def _capacity(self) -> tuple[int, str]:
        """Actors the cluster's resources hold at once, and the limiting resource in words."""
        cluster = self._ray.cluster_resources()
        fit, limit = actors_that_fit(self._actor_options, cluster)
        return (fit, limit) if fit is not None else (max(1, int(cluster.get("CPU", 1))), limit)

    def _schedulable(self, num_actors: int | None) -> int:
        """``num_actors`` capped at what the cluster can run at once: more would wait forever for resources."""
        fit, limit = self._capacity()
        if fit == 0:
            self.close()
            raise ValueError(f"no Ray actor can start: Ray has {limit}")
        if num_actors is None:
            return fit
        if limit and num_actors > fit:
            logger.warning("num_actors=%d but Ray has %s: starting %d actors", num_actors, limit, fit)
            return fit
        return num_actors

    def _new_actor(self) -> int:
        """Start an actor; returns its number (the name logs and errors give it)."""
        number, self._started = self._started, self._started + 1
        actor = self._actors[number] = self._actor_cls.remote(*self._args)
        self._nodes[number] = actor.node_id.remote()
        return number

    def _drop(self, number: int) -> None:
        """Stop actor ``number`` and forget it."""
        self._ray.kill(self._actors.pop(number), no_restart=True)
        del self._nodes[number]

    def _follow_cluster(self) -> None:
        """Drop the actors whose node left the cluster, then start or stop actors to fill what it holds now."""
        ray, before = self._ray, self.num_actors
        alive = {node["NodeID"] for node in ray.nodes() if node["Alive"]}
        answered = set(ray.wait(list(self._nodes.values()), num_returns=len(self._nodes), timeout=0)[0])
        for number in [n for n, ref in self._nodes.items() if ref in answered and self._node_of(ref) not in alive]:
            self._drop(number)
        wanted = max(1, self._capacity()[0])
        while len(self._actors) < wanted:
            self._new_actor()
        while len(self._actors) > wanted:
            self._drop(max(self._actors))
        self.num_actors = wanted
        if wanted != before:
            logger.info("Ray cluster %s: %d -> %d actors", "grew" if wanted > before else "shrank", before, wanted)

    def _node_of(self, ref: Any) -> str | None:
        """The node an actor answered it runs on; None for an actor that died."""
        try:
            return self._ray.get(ref)
        except self._ray.exceptions.RayActorError:
            return None

    def _after_death(self, number: int) -> list[int]:
        """Stop a dead actor; returns its replacement, none when the pool follows the cluster and others remain."""
        self._drop(number)
        return [] if self._follows_cluster and self._actors else [self._new_actor()]

    def set_generation(self, generation: int) -> None:
        """The generation of the next batches, told to the fitness function on each actor before its batch
        with the local fitness function's ``generation_context()`` (``neatify.evaluation.generation_context``)."""
        self.generation, self.context = generation, generation_context(self._local)

    def __call__(self, genomes: list[Genome]) -> None:
        """Evaluate ``genomes`` on the actors and set each one's fitness."""
        if self._actors is None:
            raise RuntimeError("RayEvaluator is closed")
        if self._follows_cluster:
            self._follow_cluster()
        ray, actors = self._ray, self._actors
        batches = column_batches(genomes, self.num_actors * self.batches_per_actor)
        by_id = {genome.id: genome for genome in genomes}
        attempts = [0] * len(batches)
        pending, idle = deque(range(len(batches))), sorted(actors, reverse=True)
        in_flight: dict[Any, tuple[int, int]] = {}
        while pending or in_flight:
            while pending and idle:
                actor, batch = idle.pop(), pending.popleft()
                in_flight[actors[actor].evaluate.remote(batches[batch], self.generation, self.context)] = (actor, batch)
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
                logger.warning("actor %d died (%s); retrying its batch", actor, type(exc).__name__)
                pending.appendleft(batch)
                idle.extend(self._after_death(actor))
            else:
                apply_results(by_id, result, f"Ray actor {actor}", self.error_fitness)
                idle.append(actor)

    def close(self) -> None:
        """Stop the actors, and Ray itself if this evaluator started it (idempotent)."""
        for actor in (self._actors or {}).values():
            self._ray.kill(actor)
        self._actors = None
        if self._owns_ray:
            self._owns_ray = False
            self._ray.shutdown()

    def __enter__(self) -> RayEvaluator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
