"""A generation planned whole: each measured worker's share sent at once (``scheduler.plan_shares``, the dispatcher's
``_plan_whole``), on the sans-IO master with in-memory workers and a fake clock."""

from __future__ import annotations

import numpy as np
import pytest

from neatify.distributed.core.scheduler import GenerationJob, plan_shares
from neatify.distributed.wire.framing import PROTOCOL_VERSION
from neatify.distributed.wire.messages import RegistrationAck, TaskAssignment, WorkerRegistration
from test_master_protocol import FakeWorker, Net, expected, genomes


def finish(shares: np.ndarray, seconds: np.ndarray, cores: np.ndarray) -> float:
    """When the last worker is done: each evaluates its share in rounds of its cores."""
    return float((np.ceil(shares / cores) * seconds).max())


@pytest.mark.parametrize("count, seconds, cores, rounds", [
    (10_000, [0.02] * 1000, [1] * 1000, 10),  # 10 genomes each
    (10_000, [0.02] * 32, [32] * 32, 10),  # 9.77 a core: some cores do 9
    (100, [1.0, 2.0], [1, 1], 67),  # twice as fast, twice the share
    (7, [1.0] * 3, [4, 2, 1], 1),  # one genome a core
])
def test_a_plan_gives_every_genome_once_and_finishes_in_the_fewest_rounds(count, seconds, cores, rounds):
    seconds, cores = np.array(seconds), np.array(cores, dtype=np.float64)
    shares = plan_shares(count, seconds, cores)
    assert shares.sum() == count and (shares >= 0).all()
    assert finish(shares, seconds, cores) == pytest.approx(rounds * seconds.min())


def test_speeds_within_the_tolerance_count_as_equal_and_the_lighter_shares_go_last():
    seconds = np.array([0.020, 0.022, 0.019, 0.021] * 8)  # identical workers seen through a noisy round trip
    cores = np.full(32, 32.0)
    shares = plan_shares(10_000, seconds, cores)
    assert set(shares.tolist()) <= {288, 304, 320} and shares.sum() == 10_000  # 10 rounds at most, none 11
    assert (np.diff(shares[shares < 320]) <= 0).all() and shares[-1] < 320  # left over taken off the last ones


def measured(net: Net, count: int, capacity: int = 50, elapsed: float = 0.0):
    """``count`` workers of one core measured alike: a first, guided generation of a genome each, reported 0.1 s
    after it was sent (``elapsed``: of evaluation, as the workers say)."""
    workers = [net.connect(f"w{i}", capacity=capacity) for i in range(count)]
    net.deliver(net.master.submit(GenerationJob(0, genomes(count)), 0.0))
    assert [len(w.inbox) for w in workers] == [1] * count
    for worker in workers:
        worker.answer_tasks(0.1, elapsed=elapsed)
    assert net.master.take_outcome().error is None
    return workers


def test_measured_workers_get_their_whole_share_at_once_in_one_batch_each():
    net = Net()
    workers = measured(net, 4)
    population = genomes(200)
    net.deliver(net.master.submit(GenerationJob(1, population), 1.0))
    sizes = [[t.size for t in w.inbox if isinstance(t, TaskAssignment)] for w in workers]
    assert sizes == [[50]] * 4
    assert net.run_until_done(1.1).fitness == expected(population)


def test_a_share_above_the_capacity_goes_in_several_batches_all_at_once():
    net = Net()
    workers = measured(net, 2, capacity=30)
    net.deliver(net.master.submit(GenerationJob(1, genomes(100)), 1.0))
    assert [[t.size for t in w.inbox if isinstance(t, TaskAssignment)] for w in workers] == [[30, 20]] * 2


def test_planned_batches_sent_in_bursts_and_those_of_a_worker_lost_before_its_turn_go_to_others():
    net = Net()
    workers = measured(net, 3)
    population = genomes(90)
    net.deliver(net.master.submit(GenerationJob(1, population), 1.0, burst=1))
    assert [len(w.inbox) for w in workers] == [1, 0, 0] and net.master.planned
    net.hang_up(workers[1], 1.01)  # its planned genomes go back in the queue: the idle worker gets some at once
    assert [len(w.inbox) for w in workers] == [1, 0, 1] and net.master.planned
    net.deliver(net.master.send_planned(1.02, burst=5))
    assert not net.master.planned and [len(w.inbox) for w in workers] == [1, 0, 2]
    outcome = net.run_until_done(1.1)
    assert outcome.fitness == expected(population) and outcome.job.batches_resent == 0
    assert workers[0].answered[1] and len(workers[0].answered[1]) == 30  # its planned share
    assert sum(len(ids) for w in (workers[0], workers[2]) for ids in w.answered[1:]) == 90  # nothing twice


def test_a_worker_not_yet_measured_leaves_the_generation_guided():
    net = Net()
    workers = measured(net, 2) + [net.connect("new")]
    net.deliver(net.master.submit(GenerationJob(1, genomes(200)), 1.0))
    sizes = [t.size for w in workers for t in w.inbox if isinstance(t, TaskAssignment)]
    assert len(sizes) == 3 and sum(sizes) < 200  # half of each share: the rest follows as they report


@pytest.mark.parametrize("population, planned", [(200, True), (40, False)])
def test_a_generation_whose_evaluation_is_short_against_the_round_trip_stays_guided(population, planned):
    net = Net()
    workers = measured(net, 4, elapsed=0.001)  # 1 ms of evaluation a genome, 99 ms of round trip
    net.deliver(net.master.submit(GenerationJob(1, genomes(population)), 1.0, burst=1))
    # 200 genomes: 50 ms of evaluation on 4 workers, above a quarter of the round trip (PLAN_SENDING): planned, the
    # batches sent a burst at a time; 40 genomes, 10 ms: guided, every idle worker given a batch at once
    assert net.master.planned is planned
    assert [len(w.inbox) for w in workers] == ([1, 0, 0, 0] if planned else [1, 1, 1, 1])
    net.deliver(net.master.send_planned(1.0))
    assert net.run_until_done(1.2).error is None


def planned_in_many(net: Net, population: list) -> FakeWorker:
    """One worker of 2 cores, 10 genomes a core a batch, measured on a first generation, then given
    ``population`` planned whole: its share in batches of 20, all sent at once."""
    worker = net.connect("w0", capacity=10, register=False)
    worker.say(WorkerRegistration(PROTOCOL_VERSION, "w0", 10, cores=2), 0.0)
    assert worker.take(RegistrationAck)[0].status == "accepted"
    net.deliver(net.master.submit(GenerationJob(0, genomes(2)), 0.0))
    worker.answer_tasks(0.2, elapsed=0.2)
    assert net.master.take_outcome().error is None
    net.deliver(net.master.submit(GenerationJob(1, population), 1.0))
    return worker


def test_a_worker_of_several_cores_given_its_share_in_many_batches_is_late_only_by_the_one_it_evaluates():
    net = Net(task_timeout=5.0)
    population = genomes(200)
    worker = planned_in_many(net, population)
    assert [t.size for t in worker.inbox if isinstance(t, TaskAssignment)] == [20] * 10
    now = 1.0
    for _ in range(10):  # evaluated in turn, 2 s each: the last reported 20 s after its send, each well in time
        for _ in range(20):
            now += 0.1
            net.deliver(net.master.tick(now))
        assert worker.answer_tasks(now, elapsed=2.0, first=1) == 1
    outcome = net.master.take_outcome()
    assert outcome.error is None and outcome.fitness == expected(population)
    assert outcome.job.batches_resent == 0 and not outcome.job.quarantined and net.master.num_workers == 1


def test_batches_reported_behind_a_hung_one_do_not_keep_it_in_time():
    net = Net(task_timeout=5.0)
    worker = planned_in_many(net, genomes(200))
    tasks = worker.take(TaskAssignment)
    worker.inbox[:0] = tasks[1:]  # the first hangs; the others are reported, one a second
    now = 1.0
    for _ in range(5):
        now += 1.0
        worker.answer_tasks(now, elapsed=1.0, first=1)
        net.deliver(net.master.tick(now))
    hung = net.master.workers["w0"].batches[0]
    assert hung.id == tasks[0].batch_id and not hung.timed_out
    net.deliver(net.master.tick(now + 0.5))  # 5.5 s after its send
    assert hung.timed_out
