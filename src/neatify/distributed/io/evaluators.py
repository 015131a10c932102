"""A worker's local evaluator processes (``WorkerNode(processes=N)``): one connection to the master, N processes.

Each task is cut into contiguous chunks of its genomes' columns (``neatify.io.columns``, as a local
``ParallelEvaluator`` sends them), one per evaluator, and the chunks of every task in hand go to the evaluators
as they come free, over one pipe each; a task is reported once all its chunks are back. An evaluator that dies is
started again and only the genomes of the chunk it held are evaluated again, one genome at a time from then on:
a genome that kills its evaluator ``DEATHS_ALONE`` times alone is reported as that genome's error. The master
sees a slower worker, never a lost one.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

import numpy as np

from neatify.backends.processes import evaluate_columns, split_batches
from neatify.distributed.io.supervisor import describe_exit
from neatify.evaluation import NO_STATE, BatchResult
from neatify.genome.batch import GenomeBatch
from neatify.io.columns import ColumnEncoder

logger = logging.getLogger("neatify.distributed.io.worker")

DEATHS_ALONE = 2
"""Deaths of an evaluator holding one genome alone after which that genome is reported as failed."""
STOP_GRACE = 5.0
"""Seconds ``close`` gives the evaluators to exit before killing them."""
MAX_STILLBORN = 5
"""Evaluators in a row that may die before they are ready (a fitness function that does not import, say)
before the pool gives up."""
_TICK = 1.0
"""Longest wait of the feeding thread between two looks at its evaluators."""
_PR_SET_PDEATHSIG = 1

Done = Callable[[int, BatchResult, float], None]
"""Called with a task's key, its results and the seconds it took, once all its genomes are evaluated."""


def _die_with_parent() -> None:
    """Have Linux kill this evaluator when its worker process dies (a worker killed outright leaves none behind)."""
    try:
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (AttributeError, OSError):  # not Linux: the evaluator still ends at its pipe's end of file
        pass


def _evaluator_main(conn: Connection, fitness_function: Callable[..., Any],
                    setup: Callable[[], Any] | None) -> None:
    """An evaluator process: run ``setup`` once, then evaluate each (chunk of columns, generation, context) received
    until None or EOF."""
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group: the worker decides
    problem, state = None, NO_STATE
    try:
        state = setup() if setup is not None else NO_STATE
    except Exception:
        problem = f"the worker's setup failed in its evaluator:\n{traceback.format_exc()}"
    conn.send(None)  # ready: its fitness function unpickled (imported) and its setup ran
    while True:
        try:
            columns = conn.recv()
        except EOFError:
            return
        if columns is None:
            return
        columns, generation, context = columns
        ids = np.frombuffer(columns.ids, np.int64).tolist()
        try:
            result = ([], [[i, problem] for i in ids]) if problem else evaluate_columns(fitness_function, columns,
                                                                                        state, generation, context)
        except Exception:
            trace = traceback.format_exc()
            result = ([], [[i, trace] for i in ids])
        conn.send(result)


@dataclass(eq=False)
class _Task:
    """A task being evaluated: the chunks not back yet, and the results of those that are."""

    key: int
    encoder: ColumnEncoder
    done: Done
    started: float
    generation: int | None = None
    """The generation its genomes belong to, told to the fitness function (``neatify.evaluation.tell_generation``)."""
    context: Any = None
    """The master's generation context that came with it, told likewise."""
    left: int = 0
    dropped: bool = False
    """Its master is gone (``forget``): its results go nowhere."""
    fitness: list[list[Any]] = field(default_factory=list)
    errors: list[list[Any]] = field(default_factory=list)


@dataclass(eq=False)
class _Chunk:
    """Rows of a task handed to one evaluator; ``deaths``: evaluators that died holding it alone."""

    task: _Task
    rows: np.ndarray
    deaths: int = 0


@dataclass(eq=False)
class _Evaluator:
    """One evaluator process (numbered from 1; a replacement keeps the number), its pipe and the chunk it holds."""

    number: int
    process: Any
    conn: Connection
    chunk: _Chunk | None = None
    ready: bool = False
    """It said it unpickled its fitness function and ran its setup (an evaluator that dies before is stillborn)."""


class EvaluatorPool:
    """``processes`` evaluator processes fed by one thread: ``submit`` a task's genomes, ``done`` is called with
    its results. ``close`` ends them all (and the thread); none outlives its worker."""

    def __init__(self, fitness_function: Callable[..., Any], processes: int, name: str,
                 setup: Callable[[], Any] | None = None, start_method: str = "spawn") -> None:
        if processes < 1:
            raise ValueError(f"processes must be at least 1, got {processes}")
        self.name = name
        self._context = multiprocessing.get_context(start_method)
        self._target = (fitness_function, setup)
        self._queue: deque[_Chunk] = deque()
        self._lock = threading.Lock()
        self._wake_read, self._wake_write = os.pipe()
        self._closing = False
        self.broken: str | None = None
        """Why no evaluator is started any more (each died before it was ready): the worker must end."""
        self._stillborn = 0
        self._evaluators = [self._start(number) for number in range(1, processes + 1)]
        self._thread = threading.Thread(target=self._feed, name=f"neatify-{name}-evaluators", daemon=True)
        self._thread.start()

    def submit(self, key: int, genome_batch: GenomeBatch, done: Done, generation: int | None = None,
               context: Any = None) -> None:
        """Evaluate ``genome_batch`` (at least one genome, of ``generation``, with its ``context``) in chunks, one per
        evaluator at most; ``done`` is called from the feeding thread."""
        task = _Task(key, ColumnEncoder(genome_batch), done, time.monotonic(), generation, context)
        chunks = [_Chunk(task, np.asarray(rows, dtype=np.int64))
                  for rows in split_batches(range(len(genome_batch)), len(self._evaluators))]
        task.left = len(chunks)
        with self._lock:
            self._queue.extend(chunks)
        self._wake()

    def drain(self, poll: float = 0.05) -> None:
        """Wait until every task in hand is evaluated and reported (or the pool broke)."""
        while self.broken is None and not self._closing:
            with self._lock:
                if not self._queue and all(evaluator.chunk is None for evaluator in self._evaluators):
                    return
            time.sleep(poll)

    def forget(self) -> None:
        """Drop the tasks in hand (their master is gone): queued chunks are not evaluated, and no ``done`` is
        called for a task submitted so far."""
        with self._lock:
            self._queue.clear()
            for evaluator in self._evaluators:
                if evaluator.chunk is not None:
                    evaluator.chunk.task.dropped = True

    def close(self, grace: float = STOP_GRACE) -> None:
        """Stop the feeding thread, ask every evaluator to exit, kill those still running after ``grace``."""
        self._closing = True
        self._wake()
        self._thread.join(grace)
        for evaluator in self._evaluators:
            try:
                evaluator.conn.send(None)
            except OSError:
                pass
        deadline = time.monotonic() + grace
        for evaluator in self._evaluators:
            evaluator.process.join(max(deadline - time.monotonic(), 0.0))
            if evaluator.process.is_alive():
                logger.warning("%s: evaluator %d (pid %d) still running %.0fs after it was asked to exit; killing it",
                               self.name, evaluator.number, evaluator.process.pid, grace)
                evaluator.process.kill()
                evaluator.process.join()
            evaluator.conn.close()
        os.close(self._wake_read)
        os.close(self._wake_write)

    def kill(self) -> None:
        """Kill every evaluator at once (the worker exits without waiting for a hung fitness function)."""
        for evaluator in self._evaluators:
            evaluator.process.kill()

    def _wake(self) -> None:
        try:
            os.write(self._wake_write, b"x")
        except OSError:  # closed: nothing to wake
            pass

    def _start(self, number: int) -> _Evaluator:
        ours, theirs = self._context.Pipe()
        process = self._context.Process(target=_evaluator_main, args=(theirs, *self._target),
                                        name=f"{self.name}-evaluator-{number}", daemon=True)
        process.start()
        theirs.close()  # only the evaluator holds its end: its death is this end's EOF
        logger.info("%s: evaluator %d started (pid %d)", self.name, number, process.pid)
        return _Evaluator(number, process, ours)

    def _feed(self) -> None:
        """The feeding thread: hand queued chunks to free evaluators, take their results, replace the dead; should it
        fail, the pool is ``broken`` (the worker ends) rather than silently holding its tasks."""
        try:
            self._feed_loop()
        except Exception as exc:
            self.broken = f"{self.name}: the evaluators' feeding thread failed: {exc!r}"
            self._closing = True
            logger.exception("%s", self.broken)

    def _feed_loop(self) -> None:
        while not self._closing:
            self._assign()
            ready = wait([self._wake_read, *(e.conn for e in self._evaluators)], _TICK)
            if self._wake_read in ready:
                os.read(self._wake_read, 4096)
            for evaluator in list(self._evaluators):
                if evaluator.conn in ready and not self._closing:
                    self._receive(evaluator)

    def _assign(self) -> None:
        with self._lock:
            for evaluator in self._evaluators:
                if evaluator.chunk is None and self._queue:
                    chunk = self._queue.popleft()
                    evaluator.chunk = chunk
                    try:
                        evaluator.conn.send((chunk.task.encoder.columns(chunk.rows), chunk.task.generation,
                                             chunk.task.context))
                    except OSError:  # it died meanwhile: its EOF comes next
                        pass

    def _receive(self, evaluator: _Evaluator) -> None:
        try:
            message = evaluator.conn.recv()
        except (EOFError, OSError):
            self._replace(evaluator)
            return
        if message is None:
            evaluator.ready, self._stillborn = True, 0
            return
        fitness, errors = message
        if evaluator.chunk is not None:  # reported before the evaluator counts as free: see ``drain``
            self._finish(evaluator.chunk, fitness, errors)
        with self._lock:
            evaluator.chunk = None

    def _finish(self, chunk: _Chunk, fitness: list[list[Any]], errors: list[list[Any]]) -> None:
        """A chunk's results: the task is reported once it has all of them."""
        task = chunk.task
        task.fitness += fitness
        task.errors += errors
        task.left -= 1
        if task.left == 0 and not task.dropped:
            task.done(task.key, (task.fitness, task.errors), time.monotonic() - task.started)

    def _replace(self, dead: _Evaluator) -> None:
        """An evaluator died: start another in its place; its chunk's genomes go back in front, one by one."""
        dead.process.join(STOP_GRACE)
        how = describe_exit(dead.process.exitcode if dead.process.exitcode is not None else -signal.SIGKILL)
        dead.conn.close()
        chunk = dead.chunk
        held = "nothing" if chunk is None else f"{len(chunk.rows)} genome(s)"
        logger.warning("%s: evaluator %d (pid %d) %s holding %s; starting another", self.name, dead.number,
                       dead.process.pid, how, held)
        self._stillborn = 0 if dead.ready else self._stillborn + 1
        if self._stillborn > MAX_STILLBORN:
            self._closing = True
            self.broken = (f"{self.name}: {self._stillborn} evaluators in a row died before they were ready "
                           f"(the last {how}); no more are started")
            logger.error("%s", self.broken)
            return
        self._evaluators[dead.number - 1] = self._start(dead.number)
        if chunk is not None:
            self._retry(chunk, f"evaluator process (pid {dead.process.pid}) {how}")

    def _retry(self, chunk: _Chunk, how: str) -> None:
        """Queue a dead evaluator's genomes again, each alone; one that died alone ``DEATHS_ALONE`` times fails."""
        task = chunk.task
        if len(chunk.rows) > 1:
            singles = [_Chunk(task, chunk.rows[i:i + 1]) for i in range(len(chunk.rows))]
            task.left += len(singles) - 1
            with self._lock:
                self._queue.extendleft(reversed(singles))
            return
        chunk.deaths += 1
        if chunk.deaths < DEATHS_ALONE:
            with self._lock:
                self._queue.appendleft(chunk)
            return
        genome_id = int(task.encoder.ids[chunk.rows[0]])
        self._finish(chunk, [], [[genome_id, f"EvaluatorDied: genome {genome_id} ended its {how}, "
                                              f"{chunk.deaths} time(s) evaluated alone"]])
