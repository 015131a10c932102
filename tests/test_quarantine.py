"""Quarantine of a genome that kills, hangs or is refused by every worker evaluating it, on the master's sans-IO
core with a fake clock: culprits isolated by halving the batches that fail, attempts counted on a genome alone,
and a bounded end (``error_fitness`` or ``RemoteFitnessError`` naming it), never an endless loop."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from neatify.cli.main import build_parser
from neatify.distributed import DistributedConfig, RemoteFitnessError
from neatify.distributed.core.scheduler import GenerationJob, SentBatch
from neatify.distributed.wire.messages import ErrorReport, HeartbeatRequest, HeartbeatResponse, TaskAssignment

from test_master_protocol import FakeWorker, Net, expected, genomes

Misbehave = Callable[[Net, FakeWorker, TaskAssignment, float], None]


def die(net: Net, worker: FakeWorker, task: TaskAssignment, now: float) -> None:
    """The worker's process ends (a segfault, an OOM kill) while it evaluates ``task``."""
    net.hang_up(worker, now)


def refuse(net: Net, worker: FakeWorker, task: TaskAssignment, now: float) -> None:
    """The worker cannot decode ``task`` (an activation it does not know), says so, naming it, and hangs up."""
    worker.say(ErrorReport("TASK_ASSIGNMENT with genome 3: node 4: unknown activation 'wobble'", False, "error",
                           batch_id=task.batch_id), now)


def hang(net: Net, worker: FakeWorker, task: TaskAssignment, now: float) -> None:
    """The worker's fitness never returns on ``task``: it answers nothing more, heartbeats included."""


class Pool:
    """Fake workers evaluating one generation with a culprit genome among its genomes: each that misbehaves on it
    is replaced by a fresh one (as a supervisor restarts a worker), the others answer tasks and heartbeats."""

    def __init__(self, net: Net, culprit: int, misbehave: Misbehave, size: int = 2, capacity: int = 50) -> None:
        self.net, self.culprit, self.misbehave, self.capacity = net, culprit, misbehave, capacity
        self.live = [net.connect(f"w{i}", capacity=capacity) for i in range(size)]
        self.started = size
        self.sizes: list[int] = []
        """The size of every batch holding the culprit that was sent."""

    def step(self, now: float) -> None:
        for worker in list(self.live):
            if worker.closed is not None:
                self.live.remove(worker)
                continue
            for probe in worker.take(HeartbeatRequest):
                worker.say(HeartbeatResponse(probe.sent), now)
            tasks = worker.take(TaskAssignment)
            bad = next((i for i, task in enumerate(tasks) if self.culprit in task.genome_ids()), None)
            worker.inbox[:0] = tasks
            worker.answer_tasks(now, first=bad)
            if bad is not None:
                self.sizes.append(tasks[bad].size)
                worker.inbox.clear()
                self.live.remove(worker)
                self.misbehave(self.net, worker, tasks[bad], now)
                self.started += 1
                self.live.append(self.net.connect(f"w{self.started}", now, capacity=self.capacity))

    def run(self, population: list, rounds: int = 400):
        """Evaluate ``population`` as generation 0 to its outcome (bounded: fails the test after ``rounds``)."""
        now = 0.0
        self.net.deliver(self.net.master.submit(GenerationJob(0, population), now))
        for _ in range(rounds):
            outcome = self.net.master.take_outcome()
            if outcome is not None:
                return outcome
            now += 0.25
            self.step(now)
            self.net.deliver(self.net.master.tick(now))
        raise AssertionError(f"no outcome after {rounds} rounds: the culprit was sent in batches of {self.sizes}")


@pytest.mark.parametrize("misbehave, what", [(die, "lost (connection closed by peer)"),
                                             (refuse, "unknown activation 'wobble'"),
                                             (hang, "exceeded task_timeout (1.0s)")])
def test_a_genome_failing_every_worker_is_isolated_then_quarantined_with_error_fitness(misbehave, what):
    net = Net(error_fitness=-1.0, max_genome_attempts=3, task_timeout=1.0, batch_size_per_worker=8)
    population = genomes(24)
    culprit = population[13].id
    pool = Pool(net, culprit, misbehave)
    outcome = pool.run(population)
    assert outcome.error is None
    assert outcome.fitness == expected(population) | {culprit: -1.0}  # every other genome its own value, once
    assert pool.sizes == [8, 4, 2, 1, 1, 1]  # halved down to the culprit alone, then tried alone 3 times
    why = outcome.job.quarantined[culprit]
    assert list(outcome.job.quarantined) == [culprit] and why.startswith("3 attempt(s)") and why.count(what) == 3
    assert outcome.job.unresolved == 0 and list(outcome.job.attempts) == [13]  # the culprit's row, no other
    assert net.master.status(100.0).quarantined == 1


def test_without_error_fitness_the_generation_raises_naming_the_genome_and_the_workers():
    net = Net(max_genome_attempts=2, batch_size_per_worker=4)
    population = genomes(12)
    culprit = population[5].id
    outcome = Pool(net, culprit, die).run(population)
    error = outcome.error
    assert isinstance(error, RemoteFitnessError) and error.genome_id == culprit
    assert "quarantined: 2 attempt(s)" in error.remote_traceback
    assert error.remote_traceback.count("lost (connection closed by peer)") == 2
    assert error.worker_id in error.remote_traceback  # the last worker it ended, among those named


def test_the_batch_sent_ahead_of_a_dying_worker_is_resent_as_is_and_counts_nothing():
    net = Net(max_genome_attempts=1, error_fitness=0.0)
    quick = net.connect("quick", capacity=10)
    population = genomes(100)
    net.deliver(net.master.submit(GenerationJob(0, population), 0.0))
    quick.answer_tasks(0.01, elapsed=0.001)  # its round trip outweighs its evaluation: it holds two
    evaluating, ahead = quick.take(TaskAssignment)
    net.hang_up(quick, 0.02)  # dies evaluating the first: the second only waited
    job = net.master._dispatcher._running.job
    assert [len(run) for run in job.isolating] == [5, 5] and job.waiting == 100 - 10
    assert sorted(job.ids(np.concatenate(list(job.isolating))).tolist()) == sorted(evaluating.genome_ids())
    assert not job.attempts and not job.quarantined


def test_a_batch_failing_whole_is_halved_until_a_genome_alone_counts_attempts():
    job = GenerationJob(0, genomes(6))
    batch = SentBatch(1, job, job.take(6), job.ids(np.arange(6)), 0.0)
    assert job.fault(batch, "worker a lost", limit=2) == [] and [r.tolist() for r in job.isolating] == [[0, 1, 2],
                                                                                                          [3, 4, 5]]
    second = SentBatch(2, job, job.take(50), job.ids(np.arange(3)), 0.0)
    assert second.rows.tolist() == [0, 1, 2]  # an isolated run goes alone, however big the batch may be
    job.fault(second, "worker b lost", limit=2)
    assert [r.tolist() for r in job.isolating] == [[0, 1], [2], [3, 4, 5]] and not job.attempts
    alone = SentBatch(3, job, np.array([2]), job.ids(np.array([2])), 0.0)
    assert job.fault(alone, "worker c lost", limit=2) == [] and job.attempts == {2: ["worker c lost"]}
    again = SentBatch(4, job, np.array([2]), job.ids(np.array([2])), 0.0)
    assert job.fault(again, "worker d hung", limit=2) == [int(job.ids(np.array([2]))[0])]
    assert job.unresolved == 5 and job.resolved.tolist() == [False, False, True, False, False, False]
    assert job.quarantined[int(job.ids(np.array([2]))[0])] == "2 attempt(s) ended its evaluation: worker c lost; " \
                                                              "worker d hung"
    late = SentBatch(5, job, np.array([2]), job.ids(np.array([2])), 0.0)
    assert job.fault(late, "worker e lost", limit=2) == [] and job.unresolved == 5  # never counted twice


@pytest.mark.parametrize("value", [0, -1, True, 1.5, "3"])
def test_max_genome_attempts_is_validated_by_name(value):
    with pytest.raises(ValueError, match=f"max_genome_attempts must be an integer >= 1, got {value!r}"):
        DistributedConfig(max_genome_attempts=value)


def test_the_cli_master_takes_max_genome_attempts():
    parse = build_parser().parse_args
    assert parse(["master", "run.toml", "--max-genome-attempts", "5"]).max_genome_attempts == 5
    assert parse(["master", "run.toml"]).max_genome_attempts == 3
    with pytest.raises(SystemExit):
        parse(["master", "run.toml", "--max-genome-attempts", "0"])
