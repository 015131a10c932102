"""One evaluation contract for every backend: a batch of genomes in, per genome a fitness or an error out.

The evaluating side (a pool process, a Ray actor, a TCP worker) calls ``evaluate_batch``; its result
is plain data, ``([[id, fitness], ...], [[id, error], ...])``, fit to cross any process boundary (it is
the FITNESS_REPORT's format); a genome given a behaviour reports ``[id, fitness, behaviour]``. The driving side calls ``apply_results``: it sets each fitness and, for a
failure, raises ``EvaluationError`` naming the genome, or gives the genome ``error_fitness``.
"""

from __future__ import annotations

import inspect
import logging
import math
import numbers
import reprlib
import traceback
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from neatify.genome.genome import Genome

logger = logging.getLogger("neatify.evaluation")

BatchResult = tuple[list[list[Any]], list[list[Any]]]
"""``([[genome_id, fitness], ...], [[genome_id, error], ...])``: every genome of a batch exactly once (a
genome with a behaviour: ``[genome_id, fitness, behaviour]``, the behaviour a list of floats)."""

NO_STATE: Any = object()
"""Marks a fitness function called without state (no ``setup``): ``fitness_fn(genomes)``."""


class FitnessError(ValueError):
    """A fitness function left a genome without a finite numeric fitness (``genome_id`` names it)."""

    def __init__(self, message: str, genome_id: int | None = None) -> None:
        super().__init__(message)
        self.genome_id = genome_id


class EvaluationError(FitnessError):
    """The fitness function failed on a genome evaluated in another process: it raised, or left a bad
    fitness. Carries ``genome_id``, ``where`` it ran and ``remote_traceback`` (or the validation message)."""

    def __init__(self, genome_id: int, where: str, remote_traceback: str) -> None:
        super().__init__(f"fitness function failed on {where} for genome {genome_id}:\n{remote_traceback.rstrip()}",
                         genome_id)
        self.where = where
        self.remote_traceback = remote_traceback


def check_fitness(genome_id: int, value: Any) -> float:
    """``value`` as a float fitness for genome ``genome_id``; ``FitnessError`` saying what is wrong otherwise
    (None, a non-number such as a bool or a tensor, NaN, infinity, or a number too large for a float)."""
    if type(value) is not float:  # a float, the usual case, skips the slower type checks
        value = _as_float(genome_id, value)
    if not math.isfinite(value):
        raise FitnessError(f"genome {genome_id} has non-finite fitness {value}", genome_id)
    return value


def _as_float(genome_id: int, value: Any) -> float:
    """``value``, a fitness other than a float, as a float; ``FitnessError`` if it is None or not a real number
    (a bool is not), or too large for a float."""
    if value is None:
        raise FitnessError(f"genome {genome_id} has no fitness: the fitness function must set "
                           f"genome.fitness on every genome it is given", genome_id)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        hint = " (use .item() on a tensor)" if hasattr(value, "item") else ""
        raise FitnessError(f"genome {genome_id} has fitness {value!r} of type {type(value).__name__}; "
                           f"expected a float{hint}", genome_id)
    try:
        return float(value)
    except OverflowError:  # an int (or Fraction) beyond float's range: not printed, it may have millions of digits
        raise FitnessError(f"genome {genome_id} has a fitness of type {type(value).__name__} too large for a "
                           f"float", genome_id) from None


def check_behaviour(genome_id: int, value: Any, size: int | None = None) -> list[float]:
    """``value`` as genome ``genome_id``'s behaviour, a list of floats (``size`` of them, when given);
    ``FitnessError`` saying what is wrong otherwise (none set, not a flat vector of real numbers, the wrong
    length, a NaN or an infinity)."""
    if value is None:
        raise FitnessError(f"genome {genome_id} has no behaviour: the run declares behaviour_size {size}, so the "
                           f"fitness function must set genome.behaviour on every genome it is given", genome_id)
    try:
        array = np.asarray(value)
    except (TypeError, ValueError, RuntimeError) as exc:  # a GPU tensor, a ragged list
        raise FitnessError(f"genome {genome_id} has behaviour {reprlib.repr(value)} that is not a vector of floats "
                           f"({exc})", genome_id) from None
    if array.ndim != 1 or array.dtype.kind not in "iuf":
        raise FitnessError(f"genome {genome_id} has behaviour {reprlib.repr(value)}; expected a flat vector of real "
                           f"numbers", genome_id)
    if size is not None and len(array) != size:
        raise FitnessError(f"genome {genome_id} has a behaviour of {len(array)} values; the run declares "
                           f"behaviour_size {size}", genome_id)
    floats = array.astype(np.float64)
    if not np.isfinite(floats).all():
        raise FitnessError(f"genome {genome_id} has non-finite behaviour {reprlib.repr(floats.tolist())}", genome_id)
    return floats.tolist()


def check_error_fitness(value: float | None) -> float | None:
    """An evaluator's ``error_fitness`` as a float (None stays None: failures raise); refuses anything else."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"error_fitness must be a finite number or None, got {value!r}")
    return float(value)


def tell_generation(fitness_fn: Callable[..., Any], generation: int | None, context: Any = None) -> None:
    """Tell ``fitness_fn`` the generation it is about to evaluate, when it has a ``set_generation(generation)``
    method (looked up through ``functools.wraps`` wrappers); every backend calls this before each batch, so a
    fitness that changes with the generation (new episodes each one) is the same wherever it runs. A ``context``
    (the master's ``generation_context``, not None) is passed too: ``set_generation(generation, context)``."""
    hook = None if generation is None else getattr(inspect.unwrap(fitness_fn), "set_generation", None)
    if hook is not None:
        hook(generation) if context is None else hook(generation, context)


def generation_context(fitness_fn: Callable[..., Any]) -> Any:
    """What the master's ``fitness_fn`` hands every evaluator of the next generation (its ``generation_context()``,
    plain data such as observation statistics; None without one): a process pool or Ray sends it with each batch."""
    method = getattr(inspect.unwrap(fitness_fn), "generation_context", None)
    return None if method is None else method()


def evaluate_batch(fitness_fn: Callable[..., Any], genomes: list[Genome], state: Any = NO_STATE,
                   generation: int | None = None, context: Any = None) -> BatchResult:
    """Run ``fitness_fn(genomes)`` (or ``fitness_fn(genomes, state)``) and report each genome's checked
    fitness (and behaviour, when it has one: its length is the population's to check) or error. The batch's
    ``generation`` (None: not known) and ``context`` are told to the fitness function first (``tell_generation``).

    If the call raises, the genomes it left without a fitness are evaluated one at a time, so a
    failure is pinned to its genome and the others still get their fitness whatever the batch.
    """
    args = () if state is NO_STATE else (state,)
    tell_generation(fitness_fn, generation, context)
    for genome in genomes:
        genome.fitness = None
    errors: dict[int, str] = {}
    first_trace = None
    try:
        fitness_fn(genomes, *args)
    except Exception:
        first_trace = traceback.format_exc()
    if first_trace is not None:  # retried outside the handler, so a genome's traceback is its own, not chained
        for genome in genomes:
            if genome.fitness is None:
                try:
                    fitness_fn([genome], *args)
                except Exception:
                    errors[genome.id] = traceback.format_exc()
        if not errors and genomes:  # the batch raised, yet each genome alone passed: pin it to the first left unset
            unset = next((g for g in genomes if g.fitness is None), genomes[0])
            errors[unset.id] = first_trace
    fitness: list[list[Any]] = []
    for genome in genomes:
        if genome.id in errors:
            continue
        try:
            fitness.append(_reported(genome))
        except FitnessError as exc:
            errors[genome.id] = f"FitnessError: {exc}"
    return fitness, [[genome_id, error] for genome_id, error in errors.items()]


def _reported(genome: Genome) -> list[Any]:
    """A genome's entry in a batch's result: ``[id, fitness]``, checked, with its behaviour when it has one."""
    entry = [genome.id, check_fitness(genome.id, genome.fitness)]
    if genome.behaviour is not None:
        entry.append(check_behaviour(genome.id, genome.behaviour))
    return entry


def apply_results(genomes: Mapping[int, Genome], result: BatchResult, where: str,
                  error_fitness: float | None = None) -> None:
    """Set the fitness a batch reported on the genomes (by id); a failed genome raises ``EvaluationError``
    or, with ``error_fitness``, gets that value (logged with the error) and is marked ``failed``."""
    fitness, errors = result
    for genome_id, value, *behaviour in fitness:
        genomes[genome_id].fitness = value
        if behaviour:
            genomes[genome_id].behaviour = behaviour[0]
    if errors and error_fitness is None:
        genome_id, error = errors[0]
        raise EvaluationError(genome_id, where, error)
    for genome_id, error in errors:
        logger.warning("fitness function failed on %s for genome %d; giving it error_fitness %r:\n%s",
                       where, genome_id, error_fitness, error.rstrip())
        give_error_fitness(genomes[genome_id], error_fitness)


def give_error_fitness(genome: Genome, value: float) -> None:
    """Give ``genome``, whose evaluation failed, the fitness ``value`` and mark it ``failed``: it has no behaviour
    (novelty search leaves it out instead of stopping the run for want of one)."""
    genome.fitness = value
    genome.behaviour = None
    genome.failed = True
