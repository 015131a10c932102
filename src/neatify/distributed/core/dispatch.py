"""The master's registered workers and the generation they evaluate: planning batches, taking reports,
re-sending what a lost or late worker held, and handing the finished generation over as an ``Outcome``.

Planning costs O(batches sent): idle workers (and those that may take a second batch ahead) wait in ordered
sets, and the speed share of the guided batch sizes is kept in running sums (``scheduler.SpeedShare``).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from neatify.distributed.config import DistributedConfig
from neatify.distributed.core.actions import Action, Send
from neatify.distributed.core.events import Outcome
from neatify.distributed.core.peers import Connection, Peers, Worker, logger
from neatify.distributed.core.scheduler import (
    BACKED, PLAN_SENDING, GenerationJob, SentBatch, SpeedShare, batch_size, plan_shares, smoothed,
)
from neatify.distributed.errors import (
    DistributedError, ProtocolError, RemoteFitnessError, WorkerLostError, WorkerWaitTimeout,
)
from neatify.distributed.wire.messages import FitnessReport, StatusReport


@dataclass
class _Running:
    """The generation being evaluated and when it (or the wait for any worker) began."""

    job: GenerationJob
    started: float
    alone_since: float | None = None


@dataclass
class _Sending:
    """A generation's plan being sent: the workers it serves, and when its first burst was sent."""

    workers: int
    first: float | None = None


class Dispatcher:
    """Farms a generation's genomes out to the registered workers, one generation at a time."""

    def __init__(self, peers: Peers) -> None:
        self.peers = peers
        self.config: DistributedConfig = peers.config
        self.workers: dict[str, Worker] = {}
        """The registered workers by id, in the order they registered."""
        self._idle: dict[Worker, None] = {}
        """Registered workers without a batch, in the order they became idle (an ordered set)."""
        self._open: dict[Worker, None] = {}
        """Workers with one batch out, too small to amortise their round trip: a second may be sent ahead."""
        self._share = SpeedShare()
        self._planned: deque[tuple[Worker, np.ndarray]] = deque()
        """Batches of the running generation's plan (``_plan_whole``) not sent yet: (worker, rows), in sending
        order."""
        self._sending: _Sending | None = None
        """The plan being sent: when its first burst went, to measure ``_send_pace``."""
        self._send_pace = 0.0
        """Seconds this master took per worker to send its last plans (see ``_plan_whole``)."""
        self._running: _Running | None = None
        self._outcome: Outcome | None = None
        self._next_batch_id = 0
        self._generation = -1
        """The generation running, or the last one submitted (-1: none yet)."""
        self._last_rate = 0.0
        """Genomes per second of the last generation evaluated."""
        self.quarantined = 0
        """Genomes quarantined so far in this run (``GenerationJob.fault``): a STATUS_REPORT's ``quarantined``."""
        self.lost: dict[str, float] = {}
        """Worker id -> when it was lost during the run (not leaving, not at the end), until it registers again: a
        master that ends the run waits a little for those to tell them so (``MasterProtocol.awaited``)."""

    def status(self, uptime: float) -> StatusReport:
        """The STATUS_REPORT: workers and their load, genomes left in the generation, the last rate."""
        running, workers = self._running, len(self.workers)
        return StatusReport(workers=workers, busy=workers - len(self._idle), idle=len(self._idle),
                            pending=0 if running is None else running.job.unresolved, generation=self._generation,
                            evaluating=running is not None, genomes_per_s=self._last_rate, uptime=uptime,
                            quarantined=self.quarantined or None)  # absent: none

    def take_outcome(self) -> Outcome | None:
        """The generation finished since the last call, if any."""
        outcome, self._outcome = self._outcome, None
        return outcome

    # --- workers come and go ---
    def add(self, connection: Connection, worker_id: str, capacity: int, now: float, actions: list[Action],
            cores: int = 1) -> None:
        """A worker registered on ``connection`` (feeding ``cores`` evaluator processes): it takes work at once."""
        trusted = min(cores, self.config.trusted_cores)  # more once its throughput backs them (``_back``)
        worker = connection.worker = Worker(connection, worker_id, capacity, cores=trusted, claimed=cores)
        self.workers[worker_id] = worker
        self.lost.pop(worker_id, None)
        self._share.add(None, trusted)
        self._place(worker)
        logger.info("worker %s registered from %s (capacity %d, %d core(s)%s); %d worker(s) connected", worker_id,
                    connection.address, capacity, cores, f", counted as {trusted} until measured" if trusted < cores
                    else "", len(self.workers))
        self._plan(now, actions)

    def drop(self, worker: Worker, reason: str, now: float, actions: list[Action], suspect: int | None = None) -> None:
        """Forget a worker; its unfinished batches go back in the queue, batch ``suspect`` (the one it evaluated
        when it died, or the one it refused) as a failure of its genomes (``GenerationJob.fault``)."""
        if self.workers.get(worker.worker_id) is not worker:
            return
        del self.workers[worker.worker_id]
        self._idle.pop(worker, None)
        self._open.pop(worker, None)
        self._uncount(worker)
        batches, worker.batches = worker.batches, []
        self._unplan(worker)
        if not self.peers.stopping:
            logger.warning("worker %s lost (%s); %d worker(s) connected", worker.worker_id, reason, len(self.workers))
            self.lost[worker.worker_id] = now
        for batch in batches:
            if batch.timed_out:
                continue
            why = f"worker {worker.worker_id} lost ({reason})"
            if batch.id == suspect:
                self._fault(batch, why, worker.worker_id)
            else:
                self._recover(batch, why)
        self._settle(now)
        self._check_alone(now)
        self._plan(now, actions)

    # --- the generation ---
    def submit(self, job: GenerationJob, now: float, actions: list[Action], burst: int | None = None) -> None:
        """Start evaluating ``job``'s genomes (one generation at a time); ``burst``: send at most that many batches
        of its plan now, the rest by ``send_planned``."""
        assert self._running is None, "a generation is already being evaluated"
        self._running = _Running(job, now)
        self._generation = job.generation
        self._check_alone(now)
        self._plan_whole(job)
        self.send_planned(now, actions, burst)
        self._plan(now, actions)
        self._settle(now)

    @property
    def planned(self) -> bool:
        """Whether batches of the running generation's plan wait to be sent (``send_planned``)."""
        return bool(self._planned)

    def send_planned(self, now: float, actions: list[Action], burst: int | None = None) -> None:
        """Send up to ``burst`` (None: all) of the planned batches not sent yet, in the plan's order: a driver sends
        them in bursts so that the first workers start evaluating while the last batches are encoded."""
        running, sending = self._running, self._sending
        count = len(self._planned) if burst is None else min(burst, len(self._planned))
        for _ in range(count):
            worker, rows = self._planned.popleft()
            assert running is not None and self.workers.get(worker.worker_id) is worker
            self._send(worker, running.job, rows, now, actions, whole=True)
        if sending is not None and count:
            sending.first = now if sending.first is None else sending.first
            if not self._planned:  # the whole plan sent: the pace of this master's sending, for the next plan
                self._sending = None
                pace = (now - sending.first) / max(sending.workers - 1, 1)
                self._send_pace = pace if not self._send_pace else smoothed(self._send_pace, pace)

    def fail(self, error: DistributedError, now: float) -> None:
        """End the running generation, if any, with ``error``."""
        if self._running is not None and self._running.job.error is None:
            self._running.job.error = error
            self._settle(now)

    def tick(self, now: float, actions: list[Action]) -> None:
        """Time passed: late batches re-sent, the wait for any worker bounded, idle workers given work."""
        if self._running is not None:
            self._expire(now)
            self._check_alone(now)
        self._plan(now, actions)

    def on_report(self, worker: Worker, report: FitnessReport, now: float, actions: list[Action]) -> None:
        """A worker reported a batch (ProtocolError if the report does not cover exactly its genomes)."""
        batch = next((b for b in worker.batches if b.id == report.batch_id), None)
        if batch is None:
            raise ProtocolError(f"FITNESS_REPORT for batch {report.batch_id}, which this worker does not hold")
        ids, fitness = report.columns()
        behaviours = report.behaviour_rows()
        batch.check_report(ids, [pair[0] for pair in report.errors])
        if not np.isfinite(fitness).all():  # a conforming worker reports such a value as an error, never as fitness
            i = np.flatnonzero(~np.isfinite(fitness))[0]
            raise ProtocolError(f"FITNESS_REPORT for batch {batch.id} gives genome {ids[i]} the non-finite "
                                f"fitness {float(fitness[i])!r}")
        if behaviours is not None and not np.isfinite(behaviours).all():
            raise ProtocolError(f"FITNESS_REPORT for batch {batch.id} gives genome "
                                f"{ids[np.flatnonzero(~np.isfinite(behaviours).all(axis=1))[0]]} a non-finite behaviour")
        self._measure(worker, batch, report.elapsed, now)
        job = batch.job
        if job is None or job.finished:
            logger.debug("ignoring late result of batch %d from worker %s", batch.id, worker.worker_id)
        elif job.record(batch, ids, fitness, report.errors, worker.worker_id, behaviours) == 0:
            logger.info("ignoring duplicate result of batch %d from worker %s", batch.id, worker.worker_id)
        elif report.errors and self.config.error_fitness is None and job.error is None:
            genome_id, trace = report.errors[0]
            job.error = RemoteFitnessError(worker.worker_id, genome_id, trace)
        self._settle(now)
        self._plan(now, actions)

    def _measure(self, worker: Worker, batch: SentBatch, elapsed: float, now: float) -> None:
        """Take a reported batch off ``worker``, its speed (its throughput since it last went from no batch to one)
        and its pace from how long the batch took (a batch of fewer genomes than the worker's cores counted as one
        genome per core: it took as long). The batch behind the one reported at the front is evaluated from now on
        at the latest, whatever the cores: a worker's evaluators take its batches' chunks in the order sent."""
        alone = worker.cores == 1  # a worker of several cores overlaps its batches: its turnarounds count from send
        turnaround = max(now - (batch.started if alone else batch.sent_at), 1e-6)
        size = max(len(batch), worker.cores)
        front = worker.batches[0] is batch
        worker.reported += len(batch)
        rate = worker.reported / max(now - worker.busy_since, 1e-6)  # throughput: bunched reports inflate no batch
        old, worker.speed = worker.speed, smoothed(worker.speed, rate)
        if worker.counted:
            self._share.replace(old, worker.speed, worker.cores)
        self._back(worker)
        worker.pace.observe(size, elapsed, turnaround, batch.ahead and alone)
        worker.batches.remove(batch)
        worker.batches_done += 1
        if front and worker.batches:  # its lateness (``_expire``) counts from now, not from its send
            worker.batches[0].started = max(worker.batches[0].started, now)
        self._place(worker)

    def _back(self, worker: Worker) -> None:
        """Count a worker with twice its cores (up to its claim) once its throughput backs that many: at least BACKED
        of them at the mean speed per core of the other measured workers (none other: it is its own reference)."""
        if worker.cores >= worker.claimed or not worker.speed:
            return
        raised = min(worker.claimed, 2 * worker.cores)
        others = self._share.per_core(worker.speed, worker.cores) if worker.counted else self._share.per_core()
        if others is not None and worker.speed < BACKED * raised * others:
            return
        if worker.counted:
            self._share.remove(worker.speed, worker.cores)
            self._share.add(worker.speed, raised)
        logger.info("worker %s: its throughput backs %d core(s) (of %d claimed)", worker.worker_id, raised,
                    worker.claimed)
        worker.cores = raised

    def _place(self, worker: Worker) -> None:
        """File a registered worker where planning looks: idle (no batch), open (one batch a second may follow)
        or neither; one with a late batch out counts in no speed share and gets nothing until it reports."""
        late = any(batch.timed_out for batch in worker.batches)
        if late:
            self._uncount(worker)
        elif not worker.counted:
            worker.counted = True
            self._share.add(worker.speed, worker.cores)
        _mark(self._idle, worker, not late and not worker.batches)
        _mark(self._open, worker, not late and _may_take_more(worker))

    def _uncount(self, worker: Worker) -> None:
        if worker.counted:
            worker.counted = False
            self._share.remove(worker.speed, worker.cores)

    def _recover(self, batch: SentBatch, why: str) -> None:
        """Re-queue a batch of the running generation, or fail it without fault tolerance."""
        job = batch.job
        assert job is not None and not job.finished, "only batches of the running generation are recovered"
        if not self.config.enable_fault_tolerance:
            if job.error is None:
                job.error = WorkerLostError(f"{why} with batch {batch.id} unfinished and enable_fault_tolerance "
                                            "off")
            return
        if job.requeue(batch):
            logger.warning("%s: re-sending the unfinished genomes of batch %d", why, batch.id)

    def _fault(self, batch: SentBatch, why: str, worker_id: str) -> None:
        """A batch of the running generation failed as a whole: its genomes are isolated and counted (see
        ``GenerationJob.fault``), those out of attempts quarantined; without fault tolerance the generation fails."""
        job = batch.job
        assert job is not None and not job.finished, "only batches of the running generation fail"
        if not self.config.enable_fault_tolerance:
            self._recover(batch, why)
            return
        limit = self.config.max_genome_attempts
        quarantined = job.fault(batch, why, limit)
        if not quarantined:
            logger.warning("%s: re-sending the unfinished genomes of batch %d apart (halved; a genome failing alone "
                           "%d time(s) is quarantined)", why, batch.id, limit)
        for genome_id in quarantined:
            self.quarantined += 1
            logger.error("genome %d of generation %d quarantined after %d attempt(s), given %s: %s", genome_id,
                         job.generation, limit,
                         "no fitness (the generation fails)" if self.config.error_fitness is None else
                         f"error_fitness {self.config.error_fitness!r}", job.quarantined[genome_id])
            if self.config.error_fitness is None and job.error is None:
                job.error = RemoteFitnessError(worker_id, genome_id, f"quarantined: {job.quarantined[genome_id]}")

    def _expire(self, now: float) -> None:
        """Re-queue a worker's batches once the one it evaluates is older than task_timeout (the one sent ahead
        waits behind it); the worker keeps them and stops counting in the share."""
        assert self._running is not None
        job = self._running.job
        for worker in self.workers.values():
            head = worker.batches[0] if worker.batches else None
            if head is None or head.timed_out or now - head.started <= self.config.task_timeout:
                continue
            why = f"worker {worker.worker_id} exceeded task_timeout ({self.config.task_timeout:.1f}s)"
            for batch in worker.batches:
                if batch.job is not job or batch.timed_out:
                    continue
                worker.resent += 1
                if batch is head:  # the one it evaluates hangs; the one sent ahead only waits
                    self._fault(batch, why, worker.worker_id)
                else:
                    self._recover(batch, why)
            self._place(worker)
        self._settle(now)

    def _check_alone(self, now: float) -> None:
        """With no worker at all, log it once and fail after worker_wait_timeout."""
        running = self._running
        if running is None or self.workers:
            if running is not None:
                running.alone_since = None
            return
        job = running.job
        if running.alone_since is None:
            running.alone_since = now
            logger.warning("all workers gone with %d genome(s) of generation %d unevaluated; waiting for workers "
                           "on %s", job.unresolved, job.generation, self.peers.where)
        limit = self.config.worker_wait_timeout
        if limit is not None and now - running.alone_since >= limit and job.error is None:
            job.error = WorkerWaitTimeout(f"gave up after {limit:.1f}s waiting for workers on {self.peers.where} "
                                          f"with generation {job.generation} unfinished; start workers or raise "
                                          "--worker-wait-timeout (DistributedConfig.worker_wait_timeout)")
            self._settle(now)

    def _plan(self, now: float, actions: list[Action]) -> None:
        """Give a batch to idle workers, then a second to open ones, while genomes are queued: O(batches
        sent), not O(workers)."""
        running = self._running
        if running is None:
            return
        job = running.job
        while job.queued and (self._idle or self._open) and not job.finished:
            worker = next(iter(self._idle or self._open))
            cores, limit = worker.cores, worker.capacity * worker.cores
            waiting, share = job.waiting, self._share.share(worker.speed, cores)
            # no batch above its share of the generation (every worker busy; for a worker of several cores, after
            # its first batch of the generation, of the genomes left: the end is shared), unless the overhead
            # outweighs such a batch of a worker of one core (``Pace.starves``: the master's queue, of many small
            # workers); a genome for each core at least
            later = cores > 1 and worker.generation == job.generation
            worker.generation = job.generation
            fair = math.ceil((waiting if later else len(job.genomes)) * min(share, 1.0))
            floor = worker.pace.floor(limit)
            starves = cores == 1 and worker.pace.starves(fair)
            floor = max(floor if starves else min(floor, fair), min(cores, limit))
            size = batch_size(waiting, limit, share, self.config.batch_size_per_worker * cores, floor)
            rows = job.take(size)
            if not rows.size:
                break
            self._send(worker, job, rows, now, actions, whole=size >= fair)

    def _plan_whole(self, job: GenerationJob) -> None:
        """Once every idle worker's speed is measured, plan to give each its whole share of the generation at once
        (``scheduler.plan_shares``), in the order they became idle: one round trip a generation, no tail of small
        batches. A fixed ``batch_size_per_worker`` keeps its batches, and a generation with a worker not yet measured, or
        whose evaluation (at the seconds a genome the workers report, ``Pace.reported``) would be shorter than this
        master's sending of its last plan (before any, a worker's round trip) by more than PLAN_SENDING times (a
        fitness too fast for so many workers: fewer, larger batches do better), is farmed out guided (``_plan``)."""
        workers = list(self._idle)
        if not workers or not job.queued or self.config.batch_size_per_worker or \
                any(worker.speed is None for worker in workers):
            return
        cores = np.array([worker.cores for worker in workers], dtype=np.float64)
        seconds = cores / np.array([worker.speed for worker in workers], dtype=np.float64)
        evaluation = job.waiting / sum(1 / w.pace.reported if w.pace.reported else w.speed for w in workers)
        sending = len(workers) * self._send_pace if self._send_pace else \
            float(np.median([worker.pace.overhead or 0.0 for worker in workers]))  # no plan sent yet: a round trip
        if sending > PLAN_SENDING * evaluation:  # a fitness too fast for so many workers
            return
        shares = plan_shares(job.waiting, seconds, cores)
        rows = job.take(job.waiting) if job.group is None else None  # one run, cut in slices (no species to keep)
        start = 0
        for worker, share in zip(workers, shares.tolist()):
            worker.generation = job.generation
            while share > 0:
                limit = worker.capacity * worker.cores
                taken = job.take(min(share, limit)) if rows is None else rows[start:start + min(share, limit)]
                if not taken.size:
                    break
                self._planned.append((worker, taken))
                share -= taken.size
                start += taken.size
        self._sending = _Sending(len(workers))

    def _unplan(self, worker: Worker) -> None:
        """A worker leaves: the batches planned for it and not sent go back in the queue."""
        running = self._running
        kept: deque[tuple[Worker, np.ndarray]] = deque()
        for entry in self._planned:
            if entry[0] is not worker:
                kept.append(entry)
            elif running is not None:
                running.job.queue.appendleft(entry[1])
        self._planned = kept

    def _send(self, worker: Worker, job: GenerationJob, rows: np.ndarray, now: float, actions: list[Action],
              whole: bool) -> None:
        """Send ``rows`` of ``job`` to ``worker`` as one batch (``whole``: its share of the generation)."""
        if not worker.batches:
            worker.busy_since, worker.reported = now, 0
        self._next_batch_id += 1
        batch = SentBatch(self._next_batch_id, job, rows, job.ids(rows), now, ahead=bool(worker.batches),
                          whole=whole)
        worker.batches.append(batch)
        job.batches_sent += 1
        self._place(worker)
        actions.append(Send(job.task_frame(batch), worker.connection.id))

    def _settle(self, now: float) -> None:
        """If the running generation is over (done or failed), hand it over as the outcome."""
        running = self._running
        if running is None:
            return
        job = running.job
        if job.error is None and not job.done:
            return
        self._running = None
        self._planned.clear()
        self._sending = None
        job.finished = True
        for worker in self.workers.values():  # batches still out (timed out, or the run failed) pin no genomes
            released = [batch for batch in worker.batches if batch.job is job]
            for batch in released:
                batch.release()
            if released:
                self._place(worker)
        if job.error is not None:
            self._outcome = Outcome(job, error=job.error)
            return
        elapsed = max(now - running.started, 1e-9)
        self._last_rate = len(job.genomes) / elapsed
        logger.debug("generation %d: %d worker(s) connected, %d batch(es) sent, %d re-sent after a failure, "
                     "%d duplicate(s) ignored, %.1f genomes/s", job.generation, len(self.workers), job.batches_sent,
                     job.batches_resent, job.duplicates_ignored, self._last_rate)
        fitness = job.results()
        for genome_id, (worker_id, trace) in job.failures.items():
            logger.warning("fitness function raised on worker %s for genome %d; giving it error_fitness %r:\n%s",
                           worker_id, genome_id, self.config.error_fitness, trace.rstrip())
            fitness[genome_id] = float(self.config.error_fitness)  # type: ignore[arg-type]
        for genome_id in job.quarantined:
            fitness[genome_id] = float(self.config.error_fitness)  # type: ignore[arg-type]
        self._outcome = Outcome(job, fitness, job.behaviours)


def _may_take_more(worker: Worker) -> bool:
    """Whether a worker holding batches may be sent one more ahead: one batch that does not amortise its round trip
    (``Pace.amortised``) nor holds its whole share, or, up to ``cores`` batches, fewer genomes in hand than cores."""
    count = len(worker.batches)
    if not count or count > worker.cores:
        return False
    first = worker.batches[0]
    ahead = worker.cores > 1 or not first.whole  # one of several cores is then held to its share of what is left
    return worker.held < worker.cores or (count == 1 and ahead and not worker.pace.amortised(len(first)))


def _mark(members: dict[Worker, None], worker: Worker, member: bool) -> None:
    """Put ``worker`` in or out of the ordered set ``members`` (one already in keeps its place)."""
    if not member:
        members.pop(worker, None)
    elif worker not in members:
        members[worker] = None
