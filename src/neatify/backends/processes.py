"""Evaluate a generation in local worker processes: ``pop.run_generation(ParallelEvaluator(fn, workers=4))``.

Genomes travel to the workers as packed columns (``neatify.io.columns``, what TCP workers get too) and
each batch comes back as checked float fitness values or per-genome errors (``neatify.evaluation``), so
the result is exactly what serial evaluation gives as long as a genome's fitness does not depend on which
other genomes share its batch.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import numpy as np

from neatify.evaluation import (
    NO_STATE, BatchResult, EvaluationError, apply_results, check_error_fitness, evaluate_batch, generation_context,
)
from neatify.genome.genome import Genome
from neatify.io.columns import ColumnEncoder, GenomeColumns, decode_columns
from neatify.population import FitnessFunction, NeatPythonFitnessError, neat_python_hint

logger = logging.getLogger("neatify.backends.processes")

SetupFunction = Callable[[], Any]
"""Run once per worker; its result is passed to the fitness function as a second argument."""


def split_batches(items: Sequence[Any], num_batches: int) -> list[list[Any]]:
    """Split ``items`` into at most ``num_batches`` contiguous, near-equal, non-empty batches."""
    num_batches = max(1, min(num_batches, len(items)))
    size, extra = divmod(len(items), num_batches)
    batches, start = [], 0
    for k in range(num_batches):
        end = start + size + (1 if k < extra else 0)
        batches.append(list(items[start:end]))
        start = end
    return batches


def column_batches(genomes: list[Genome], num_batches: int) -> list[GenomeColumns]:
    """``genomes`` packed once, as at most ``num_batches`` contiguous, near-equal batches of columns."""
    encoder = ColumnEncoder.of(genomes)
    return [encoder.columns(np.asarray(rows)) for rows in split_batches(range(len(genomes)), num_batches)]


def evaluate_columns(fitness_fn: Callable[..., Any], columns: GenomeColumns, state: Any = NO_STATE,
                     generation: int | None = None, context: Any = None) -> BatchResult:
    """Decode a batch of genome columns (checked) and evaluate its genomes under the one contract
    (``evaluate_batch``, told the batch's ``generation`` and ``context``)."""
    return evaluate_batch(fitness_fn, decode_columns(columns).views(), state, generation, context)


# Per-process globals of a pool worker, set once by _init_worker.
_worker: dict[str, Any] = {}


def _init_worker(fitness_fn: FitnessFunction, setup: SetupFunction | None, ready: Any) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group: the parent decides
    _worker["fitness_fn"] = fitness_fn
    _worker["state"] = setup() if setup is not None else NO_STATE
    with ready.get_lock():
        ready.value += 1


def _run_batch(columns: GenomeColumns, generation: int | None, context: Any) -> BatchResult:
    return evaluate_columns(_worker["fitness_fn"], columns, _worker["state"], generation, context)


class ParallelEvaluator:
    """A fitness function that spreads each generation over a persistent pool of local processes.

    ``fitness_fn(genomes)`` (or ``fitness_fn(genomes, state)`` when ``setup`` is given) has the
    usual contract: set ``genome.fitness`` on every genome. It, and ``setup``, must be picklable
    (defined at module top level). A genome the fitness function fails on (it raises, or leaves a bad
    fitness) raises ``EvaluationError`` naming it, with the worker's traceback; with ``error_fitness``
    the genome gets that value instead (logged) and the generation goes on. Use as a context manager,
    or call ``close()``. A worker that
    dies, or a ``setup`` that fails, raises ``concurrent.futures.process.BrokenProcessPool`` (saying
    so when the workers die at start-up); a batch slower than ``timeout`` seconds, ``TimeoutError``.
    """

    def __init__(self, fitness_fn: FitnessFunction, workers: int | None = None,
                 setup: SetupFunction | None = None, batches_per_worker: int = 4,
                 start_method: str = "spawn", timeout: float | None = None,
                 error_fitness: float | None = None) -> None:
        self.workers = workers if workers is not None else os.cpu_count() or 1
        if self.workers < 1:
            raise ValueError(f"workers must be at least 1, got {self.workers}")
        if batches_per_worker < 1:
            raise ValueError(f"batches_per_worker must be at least 1, got {batches_per_worker}")
        self.batches_per_worker = batches_per_worker
        self.start_method = start_method
        self.timeout = timeout
        """Seconds to wait for each batch's result (None: no bound)."""
        self.error_fitness = check_error_fitness(error_fitness)
        """Fitness given to a genome the fitness function failed on; None raises ``EvaluationError``."""
        self.generation: int | None = None
        """The generation sent with each batch, set by the ``Population`` (``set_generation``)."""
        self.context: Any = None
        """Sent with each batch: the local ``fitness_fn``'s ``generation_context()`` when the generation was set."""
        self._local = fitness_fn
        self._fitness_fn = None if setup is not None else fitness_fn  # checked for neat-python's convention
        hint = None if setup is not None else neat_python_hint(fitness_fn, [], TypeError())
        if hint is not None:  # a function written for neat-python: said before any process starts
            raise NeatPythonFitnessError(hint)
        context = multiprocessing.get_context(start_method)
        self._ready = context.Value("i", 0)  # workers through their start-up (imports and setup)
        self._pool: ProcessPoolExecutor | None = ProcessPoolExecutor(
            self.workers, mp_context=context, initializer=_init_worker, initargs=(fitness_fn, setup, self._ready))
        logger.info("started %d %s worker processes", self.workers, start_method)

    def set_generation(self, generation: int) -> None:
        """The generation of the next batches, told to the fitness function in each worker before its batch
        with the local fitness function's ``generation_context()`` (``neatify.evaluation.generation_context``)."""
        self.generation, self.context = generation, generation_context(self._local)

    def __call__(self, genomes: list[Genome]) -> None:
        """Evaluate ``genomes`` in the pool and set each one's fitness."""
        if self._pool is None:
            raise RuntimeError("ParallelEvaluator is closed")
        batches = column_batches(genomes, self.workers * self.batches_per_worker)
        # submit, not map: map cancels the queued batches when interrupted, which Python < 3.12's
        # pool then trips over (InvalidStateError in its thread) when the workers are killed
        futures = [self._pool.submit(_run_batch, batch, self.generation, self.context) for batch in batches]
        by_id = {genome.id: genome for genome in genomes}
        for number, future in enumerate(futures):  # fitness lands batch by batch, as results arrive
            try:
                apply_results(by_id, self._result(future, number, len(batches)), "a pool worker process",
                              self.error_fitness)
            except EvaluationError as exc:
                for queued in futures:  # the generation has failed: its batches not yet started never run
                    queued.cancel()
                raise self._with_hint(exc, genomes) from None

    def _with_hint(self, exc: EvaluationError, genomes: list[Genome]) -> EvaluationError:
        """``exc``, followed by what to write instead when the fitness function was written for neat-python."""
        hint = None if self._fitness_fn is None else neat_python_hint(self._fitness_fn, genomes, exc)
        if hint is None:
            return exc
        return EvaluationError(exc.genome_id, exc.where, f"{exc.remote_traceback.rstrip()}\n{hint}")

    def _result(self, future: Future[BatchResult], number: int, total: int) -> BatchResult:
        """A batch's results; on a timeout or a pool that died the pool is stopped and the error
        says what happened (workers that died before any finished its start-up: a missing main guard)."""
        try:
            return future.result(timeout=self.timeout)
        except FutureTimeout:
            self.close(terminate=True)
            raise TimeoutError(f"batch {number + 1} of {total} took over {self.timeout} s "
                               f"({self.workers} worker processes); the pool is stopped") from None
        except BrokenProcessPool as exc:
            self.close()  # the broken pool has stopped its processes itself
            if self._ready.value == 0:
                raise BrokenProcessPool(
                    f"the worker processes died at start-up ({exc}). With the {self.start_method!r} start method "
                    f"each worker imports your main module: put the code that starts the run under "
                    f"'if __name__ == \"__main__\":'; or setup() failed (its traceback is above)") from exc
            raise

    def close(self, terminate: bool = False) -> None:
        """Stop the worker processes (idempotent): let running batches finish, or with ``terminate``
        kill them at once (what an interrupted run needs)."""
        if self._pool is None:
            return
        pool, self._pool = self._pool, None
        if terminate:  # the stdlib's ProcessPoolExecutor.terminate_workers() comes with Python 3.14
            processes = list((pool._processes or {}).values())
            for process in processes:
                process.terminate()
            for process in processes:
                process.join(5.0)
                if process.is_alive():  # a fitness function that ignores SIGTERM
                    process.kill()
                    process.join()
        pool.shutdown(wait=True, cancel_futures=not terminate)  # killed workers fail what is queued

    def __enter__(self) -> ParallelEvaluator:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        """Leaving on an exception (an interruption, a timeout) kills the pool at once; after a failed
        generation (``EvaluationError``) the batches already running finish first: its queued batches are
        cancelled, and killing their processes would make Python < 3.12's pool thread fail on them
        (``InvalidStateError: CANCELLED``, printed by that thread)."""
        self.close(terminate=exc_type is not None and not issubclass(exc_type, EvaluationError))
