"""The master's sans-IO protocol with a fake clock and in-memory workers: no sockets, no sleeps."""

from __future__ import annotations

import heapq
import itertools
import logging
import math
from collections.abc import Callable
from dataclasses import replace
from typing import TypeVar

import numpy as np
import pytest

from neatify import Population
from neatify.distributed import DistributedConfig, RemoteFitnessError, WorkerLostError, WorkerWaitTimeout
from neatify.distributed.wire import auth
from neatify.distributed import SupersededError
from neatify.distributed.errors import DistributedError
from neatify.distributed.wire.columns import decode_genomes
from neatify.distributed.core.actions import Close, Send
from neatify.distributed.core.master import MasterProtocol
from neatify.distributed.wire.messages import (
    ErrorReport, FitnessReport, HeartbeatRequest, HeartbeatResponse, Message, RegistrationAck, ShutdownSignal,
    StandbyRegistration, StateSnapshot, StatusReport, StatusRequest, StatusUpdate, TaskAssignment,
    WorkerRegistration,
)
from neatify.distributed.wire.framing import PROTOCOL_VERSION, FrameDecoder, decode_message, encode_frame
from neatify.distributed.core.scheduler import GenerationJob, SentBatch

TOKEN = "s3cret"
M = TypeVar("M", bound=Message)


class FakeWorker:
    """One in-memory peer: decodes what the master sends it, answers what the test tells it to."""

    def __init__(self, net: Net, conn: int, worker_id: str | int, capacity: int) -> None:
        self.net, self.conn, self.worker_id, self.capacity = net, conn, worker_id, capacity
        self.decoder = FrameDecoder(1 << 26)
        self.decoder.mark_registered()
        self.inbox: list[Message] = []
        self.closed: Close | None = None
        self.answered: list[list[int]] = []
        """The genome ids of each batch this worker reported, in order."""

    def take(self, kind: type[M]) -> list[M]:
        """The messages of class ``kind`` received so far (removed from the inbox)."""
        found = [message for message in self.inbox if isinstance(message, kind)]
        self.inbox = [message for message in self.inbox if not isinstance(message, kind)]
        return found

    def say(self, message: Message, now: float) -> None:
        self.net.deliver(self.net.master.received(self.conn, encode_frame(message), now))

    def register(self, now: float, nonce: bytes | None = None) -> None:
        self.say(WorkerRegistration(PROTOCOL_VERSION, self.worker_id, self.capacity, nonce=nonce), now)

    def answer_tasks(self, now: float, fitness=lambda genome: float(len(genome.connections)),
                     elapsed: float = 0.0, first: int | None = None) -> int:
        """Report the ``first`` tasks received (all by default), with ``fitness(genome)`` of their decoded
        genomes and ``elapsed`` seconds of evaluation each; returns how many."""
        tasks = self.take(TaskAssignment)
        self.inbox[:0] = tasks[first:] if first is not None else []
        for task in tasks[:first]:
            self.answered.append(task.genome_ids())
            self.say(FitnessReport.of(task.batch_id, [[g.id, fitness(g)] for g in decode_genomes(task)], [],
                                   elapsed), now)
        return len(tasks[:first])


class Net:
    """Routes the master's actions to the fake workers."""

    def __init__(self, epoch: int = 1, standby: bool = False, **settings) -> None:
        settings = {"heartbeat_interval": 1.0, "task_timeout": 10.0, "worker_wait_timeout": 30.0, **settings}
        self.config = DistributedConfig(host="127.0.0.1", port=0, **settings)
        self.master = MasterProtocol(self.config, "test", epoch=epoch, standby=standby)
        self.workers: dict[int, FakeWorker] = {}

    def connect(self, worker_id: str | int, now: float = 0.0, capacity: int = 50,
                register: bool = True) -> FakeWorker:
        conn = len(self.workers) + 1
        worker = self.workers[conn] = FakeWorker(self, conn, worker_id, capacity)
        self.deliver(self.master.connected(conn, f"peer-{conn}", now))
        if register:
            worker.register(now)
            assert worker.take(RegistrationAck)[0].status == "accepted"
        return worker

    def deliver(self, actions) -> None:
        for action in actions:
            worker = self.workers[action.conn]
            if isinstance(action, Send):
                assert worker.closed is None, "sent to a closed connection"
                worker.decoder.buffer(action.data)
                worker.inbox.extend(iter(worker.decoder.next_message, None))
            else:
                worker.closed = action

    def hang_up(self, worker: FakeWorker, now: float) -> None:
        self.deliver(self.master.closed(worker.conn, "connection closed by peer", now))

    def run_until_done(self, now: float, rounds: int = 100, silent: tuple[FakeWorker, ...] = ()):
        """Let every live worker but ``silent`` answer its tasks until the generation has an outcome."""
        for _ in range(rounds):
            outcome = self.master.take_outcome()
            if outcome is not None:
                return outcome
            answered = sum(w.answer_tasks(now) for w in self.workers.values()
                           if w.closed is None and w not in silent)
            if not answered:
                now += 0.1
                self.deliver(self.master.tick(now))
        raise AssertionError("the generation never finished")


def genomes(n: int = 30):
    return Population(n, 2, 1, seed=5).genomes


def expected(batch):
    return {g.id: float(len(g.connections)) for g in batch}


def test_registration_then_a_generation_spread_over_workers():
    net = Net()
    workers = [net.connect(f"w{i}") for i in range(3)]
    assert net.master.num_workers == 3
    population = genomes()
    net.deliver(net.master.submit(GenerationJob(0, population), 0.0))
    first = [len(w.inbox) for w in workers]
    assert first == [1, 1, 1]  # every idle worker got a batch at once
    outcome = net.run_until_done(0.0)
    assert outcome.error is None and outcome.fitness == expected(population)
    assert outcome.job.batches_resent == 0


def test_guided_batches_follow_measured_speed():
    net = Net()
    fast, slow = net.connect("fast", capacity=1000), net.connect("slow", capacity=1000)
    net.deliver(net.master.submit(GenerationJob(0, genomes(400)), 0.0))
    fast.answer_tasks(0.1)  # 100 genomes in 0.1 s
    slow.answer_tasks(1.0)  # 75 genomes in 1 s
    sizes = {w.worker_id: w.take(TaskAssignment)[0].size for w in (fast, slow)}
    assert sizes == {"fast": 57, "slow": 6}  # half of each one's share of what is pending by speed


def test_measured_pace_sets_a_floor_over_the_guided_size():
    net = Net()
    fast, other = net.connect("fast", capacity=1000), net.connect("other", capacity=1000)
    net.deliver(net.master.submit(GenerationJob(0, genomes(1000)), 0.0))
    assert fast.answer_tasks(0.1, elapsed=0.09) == 1  # 250 genomes: 2,778 genomes/s, 10 ms a batch beyond that
    (task,) = fast.take(TaskAssignment)  # one batch: that size amortises the overhead, nothing sent ahead
    # guided alone: half of its half of the 562 pending = 141; the floor: 10 ms / 15 % at 2,778 genomes/s
    assert task.size == math.ceil(0.01 * 250 / 0.09 / 0.15) == 186
    assert len(other.take(TaskAssignment)) == 1


def test_scarce_genomes_and_slow_fitness_still_spread_over_every_worker():
    net = Net(task_timeout=100.0, heartbeat_interval=100.0)
    workers = [net.connect(f"w{i}") for i in range(100)]
    population = genomes(150)
    net.deliver(net.master.submit(GenerationJob(0, population), 0.0))
    now = 0.0
    while (outcome := net.master.take_outcome()) is None:  # 1 s a genome, 1 ms of round trip
        sizes = [t.size for w in workers for t in w.inbox if isinstance(t, TaskAssignment)]
        assert sizes and max(sizes) == 1, sizes  # one genome each, no second batch sent ahead
        if now == 0.0:
            assert len(sizes) == 100  # every worker works from the start
        now += 1.001
        for worker in workers:
            worker.answer_tasks(now, elapsed=1.0)
    assert outcome.fitness == expected(population) and now == pytest.approx(2 * 1.001)  # two rounds
    # every worker measured: the next generation is planned whole, one batch each, two rounds at most
    net.deliver(net.master.submit(GenerationJob(1, genomes(150)), 10.0))
    sizes = sorted(t.size for w in workers for t in w.inbox if isinstance(t, TaskAssignment))
    assert sizes == [1] * 50 + [2] * 50


def prefetching_worker(net: Net) -> tuple[FakeWorker, list]:
    """A worker of capacity 10 whose first batch measured 1 ms of evaluation against 9 ms of round trip:
    its batches cannot amortise that, so it holds two (returned: its two tasks out, in order)."""
    worker = net.connect("quick", capacity=10)
    population = genomes(100)
    net.deliver(net.master.submit(GenerationJob(0, population), 0.0))
    worker.answer_tasks(0.01, elapsed=0.001)
    tasks = worker.take(TaskAssignment)
    assert [t.size for t in tasks] == [10, 10]
    worker.inbox.extend(tasks)
    return worker, population


def test_a_worker_that_cannot_amortise_its_round_trip_holds_a_second_batch_and_keeps_two_out():
    net = Net()
    worker, population = prefetching_worker(net)
    now = 0.01
    while (outcome := net.master.take_outcome()) is None:
        held = [t.batch_id for t in worker.inbox if isinstance(t, TaskAssignment)]
        assert len(held) == 2 or net.master.status(now).pending <= 10, held  # never more than two out
        now += 0.001
        worker.answer_tasks(now, elapsed=0.001, first=1)  # the one it evaluates; the other waits
    assert outcome.fitness == expected(population) and outcome.job.batches_sent == 10


def test_a_lost_worker_loses_both_its_batches_to_others():
    net = Net()
    lost, population = prefetching_worker(net)
    held = [t.genome_ids() for t in lost.take(TaskAssignment)]
    net.hang_up(lost, 0.02)
    other = net.connect("other", 0.03)
    outcome = net.run_until_done(0.03)
    assert outcome.fitness == expected(population) and outcome.job.batches_resent == 2
    resent = sorted(i for batch in other.answered for i in batch)
    assert set(resent) >= {i for batch in held for i in batch}  # not a genome of either batch lost
    assert len(resent) == 90  # 10 were reported before: nothing evaluated twice


def test_a_late_worker_has_both_its_batches_resent_and_its_reports_ignored():
    net = Net(task_timeout=1.0)
    late, population = prefetching_worker(net)
    net.deliver(net.master.tick(1.5))  # the batch it evaluates is late: the one waiting behind it goes too
    net.connect("other", 1.5)
    assert [t.size for t in late.inbox if isinstance(t, TaskAssignment)] == [10, 10]
    outcome = net.run_until_done(1.5, silent=(late,))
    assert outcome.fitness == expected(population) and outcome.job.batches_resent == 2
    late.answer_tasks(1.6, fitness=lambda genome: -99.0)  # both, too late: ignored, and it is counted again
    assert late.closed is None and net.master.status(1.6).idle == 2


def test_silent_connection_closed_after_handshake_timeout():
    net = Net(handshake_timeout=2.0)
    quiet = net.connect("quiet", register=False)
    net.deliver(net.master.tick(1.9))
    assert quiet.closed is None
    net.deliver(net.master.tick(2.1))
    assert quiet.closed is not None and not quiet.closed.flush


def test_heartbeats_unanswered_for_peer_timeout_drop_the_worker_and_resend_its_batch():
    net = Net()
    mute, steady = net.connect("mute"), net.connect("steady")
    population = genomes()
    net.deliver(net.master.submit(GenerationJob(0, population), 0.0))
    for now in (1.0, 2.0, 3.0, 3.9):
        net.deliver(net.master.tick(now))
        steady.say(HeartbeatResponse(now), now)
    assert mute.closed is None and len(mute.take(HeartbeatRequest)) == 3  # one per interval
    net.deliver(net.master.tick(4.1))  # the first probe (t=1) unanswered for more than 3 s
    assert mute.closed is not None and net.master.num_workers == 1
    outcome = net.run_until_done(4.1)
    assert outcome.fitness == expected(population) and outcome.job.batches_resent == 1


def test_bytes_taken_by_a_peer_count_as_signs_of_life():
    net = Net()
    busy = net.connect("busy")
    for now in (1.0, 2.0, 3.0, 4.0, 5.0):
        net.deliver(net.master.tick(now))
        net.master.delivered(busy.conn, now)  # still reading a big batch: its answers wait behind it
    assert busy.closed is None


def test_late_batch_resent_then_worker_uncounted_and_dropped_after_twice_task_timeout():
    net = Net(task_timeout=2.0)
    stale, honest = net.connect("stale"), net.connect("honest")
    population = genomes(40)
    net.deliver(net.master.submit(GenerationJob(0, population), 0.0))
    for now in (1.0, 2.0, 2.5):
        honest.answer_tasks(now)
        net.deliver(net.master.tick(now))
        for worker in (stale, honest):
            worker.say(HeartbeatResponse(now), now)
    outcome = net.run_until_done(2.5, silent=(stale,))
    assert outcome.fitness == expected(population) and outcome.job.batches_resent == 1
    assert stale.closed is None  # it may still answer: released, not yet dropped
    net.deliver(net.master.submit(GenerationJob(1, genomes(40)), 3.0))
    dispatcher = net.master._dispatcher  # the batch's size is the floor its pace sets, whatever the share
    assert dispatcher._share.share(dispatcher.workers["honest"].speed) == 1.0  # the stale worker does not count
    assert {t.generation for t in honest.take(TaskAssignment)} == {1}  # and honest gets the work
    assert [t.generation for t in stale.take(TaskAssignment)] == [0]
    for now in (3.5, 4.1):
        net.deliver(net.master.tick(now))
        stale.say(HeartbeatResponse(now), now)
    assert stale.closed is not None  # no result 4 s (2 x task_timeout) after its batch was sent


def test_late_result_of_a_resent_batch_is_ignored():
    net = Net(task_timeout=2.0)
    late, other = net.connect("late"), net.connect("other")
    population = genomes(10)
    net.deliver(net.master.submit(GenerationJob(0, population), 0.0))
    net.deliver(net.master.tick(2.5))
    outcome = net.run_until_done(2.5) if other.answer_tasks(2.5) else None
    outcome = outcome or net.run_until_done(2.5)
    late.answer_tasks(3.0, fitness=lambda genome: -99.0)  # too late: already evaluated elsewhere
    assert outcome.fitness == expected(population) and late.closed is None


def test_without_fault_tolerance_a_lost_worker_fails_the_generation():
    net = Net(enable_fault_tolerance=False)
    victim, _ = net.connect("victim"), net.connect("other")
    net.deliver(net.master.submit(GenerationJob(0, genomes()), 0.0))
    net.hang_up(victim, 0.5)
    outcome = net.master.take_outcome()
    assert isinstance(outcome.error, WorkerLostError) and "victim" in str(outcome.error)


def test_all_workers_gone_waits_then_times_out():
    net = Net(worker_wait_timeout=5.0)
    only = net.connect("only")
    net.deliver(net.master.submit(GenerationJob(0, genomes()), 0.0))
    net.hang_up(only, 1.0)
    net.deliver(net.master.tick(5.9))
    assert net.master.take_outcome() is None
    net.deliver(net.master.tick(6.1))
    outcome = net.master.take_outcome()
    assert isinstance(outcome.error, WorkerWaitTimeout)


def test_a_worker_joining_while_all_are_gone_finishes_the_generation():
    net = Net()
    first = net.connect("first")
    population = genomes()
    net.deliver(net.master.submit(GenerationJob(0, population), 0.0))
    net.hang_up(first, 1.0)
    net.connect("second", now=20.0)
    assert net.run_until_done(20.0).fitness == expected(population)


def _lying(task: TaskAssignment, how: str) -> FitnessReport:
    """A report of ``task`` that a conforming worker never sends."""
    ids = task.genome_ids()
    if how == "nan":
        return FitnessReport.of(task.batch_id, [[i, math.nan] for i in ids], [], 0.0)
    if how == "missing":
        return FitnessReport.of(task.batch_id, [[i, 1.0] for i in ids[1:]], [], 0.0)
    if how == "twice":
        return FitnessReport.of(task.batch_id, [[i, 1.0] for i in ids[:-1] + ids[:1]], [], 0.0)
    report = FitnessReport.of(task.batch_id, [[i, 1.0] for i in ids], [], 0.0)
    return replace(report, fitness=report.fitness[:-8])  # one value short of the ids


@pytest.mark.parametrize("how, reason", [
    ("nan", "non-finite fitness nan"),
    ("missing", "does not cover exactly its genomes"),
    ("twice", "does not cover exactly its genomes"),
    ("short", "ids and fitness must hold as many 8-byte entries"),
])
def test_a_lying_report_closes_that_worker_and_its_batch_is_resent(how, reason, caplog):
    net = Net()
    liar = net.connect("liar")
    net.connect("honest")
    population = genomes()
    net.deliver(net.master.submit(GenerationJob(0, population), 0.0))
    task = liar.take(TaskAssignment)[0]
    liar.say(_lying(task, how), 0.1)
    assert liar.closed is not None and reason in caplog.text and "worker liar" in caplog.text
    assert net.run_until_done(0.1).fitness == expected(population)


def test_a_report_in_any_order_gives_each_genome_its_own_value():
    net = Net(error_fitness=-1.0, batch_size_per_worker=12)
    worker = net.connect("w")
    population = genomes(12)
    net.deliver(net.master.submit(GenerationJob(0, population), 0.0))
    task, = worker.take(TaskAssignment)
    ids = task.genome_ids()
    assert ids == [g.id for g in population]
    shuffled = ids[::-1][1:]  # reversed, and the first one's fitness function raised
    worker.say(FitnessReport.of(task.batch_id, [[i, i / 2] for i in shuffled], [[ids[-1], "Traceback"]], 0.0), 0.1)
    outcome = net.master.take_outcome()
    assert outcome is not None and outcome.job.failures == {ids[-1]: ("w", "Traceback")}
    assert outcome.fitness == {i: i / 2 for i in ids[:-1]} | {ids[-1]: -1.0}


def test_remote_error_fails_the_generation_or_takes_error_fitness():
    for error_fitness in (None, -1.0):
        net = Net(error_fitness=error_fitness)
        worker = net.connect("w")
        population = genomes(4)
        net.deliver(net.master.submit(GenerationJob(0, population), 0.0))
        for task in worker.take(TaskAssignment):
            ids = task.genome_ids()
            worker.say(FitnessReport.of(task.batch_id, [[i, 1.0] for i in ids[1:]], [[ids[0], "Traceback: boom"]], 0.0),
                       0.1)
        outcome = net.run_until_done(0.1)
        if error_fitness is None:
            assert isinstance(outcome.error, RemoteFitnessError) and outcome.error.worker_id == "w"
        else:
            assert -1.0 in outcome.fitness.values() and len(outcome.fitness) == 4


def test_worker_ids_7_and_str_7_are_one_worker():
    net = Net()
    net.connect(7)
    twin = net.connect("7", register=False)
    twin.register(0.0)
    refusal = twin.take(ErrorReport)[0]
    assert refusal.code == "busy" and twin.closed is not None and net.master.num_workers == 1


def test_mutual_authentication_both_ways():
    net = Net(auth_token=TOKEN)
    worker = net.connect("w", register=False)
    nonce = auth.new_nonce()
    worker.register(0.0, nonce)
    challenge = worker.take(RegistrationAck)[0]
    assert challenge.status == "challenge"
    assert auth.verify(challenge.proof, TOKEN, "master", PROTOCOL_VERSION, nonce, challenge.nonce, "w")
    hello = WorkerRegistration(PROTOCOL_VERSION, "w", 50, nonce=nonce)
    reflected = net.connect("x", register=False)  # the master's own proof sent back as a worker's is refused
    reflected.register(0.0, nonce)
    other = reflected.take(RegistrationAck)[0]
    reflected.say(replace(hello, worker_id="x", proof=other.proof), 0.0)
    assert reflected.take(ErrorReport)[0].code == "auth"
    proof = auth.proof(TOKEN, "worker", PROTOCOL_VERSION, nonce, challenge.nonce, "w")
    worker.say(replace(hello, proof=proof), 0.0)
    assert worker.take(RegistrationAck)[0].status == "accepted"
    assert net.master.num_workers == 1


def test_shutdown_tells_every_worker_and_fails_the_running_generation():
    net = Net()
    workers = [net.connect(f"w{i}") for i in range(2)]
    net.deliver(net.master.submit(GenerationJob(0, genomes()), 0.0))
    net.deliver(net.master.shutdown(0.5))
    assert all(w.take(ShutdownSignal) for w in workers)
    outcome = net.master.take_outcome()
    assert isinstance(outcome.error, DistributedError) and "shut down" in str(outcome.error)
    late = net.connect("late", now=0.6, register=False)
    late.register(0.6)
    assert late.closed is not None and net.master.num_workers == 2
    net.deliver(net.master.tick(5.0))  # while the workers hang up: no more heartbeats after the shutdown
    assert not any(w.take(HeartbeatRequest) for w in workers)


def test_status_report_counts_workers_queue_and_rate_and_the_client_is_no_worker():
    net = Net()
    first, second = net.connect("w1"), net.connect("w2")
    asker = net.connect("status-client", now=0.0, register=False)
    asker.say(StatusRequest(), 5.0)
    assert asker.take(StatusReport) == [StatusReport(workers=2, busy=0, idle=2, pending=0, generation=-1,
                                                     evaluating=False, genomes_per_s=0.0, uptime=5.0)]
    assert asker.closed is not None and asker.closed.flush and net.master.num_workers == 2
    net.deliver(net.master.submit(GenerationJob(3, genomes(30)), 10.0))
    during = net.connect("status-client-2", now=10.5, register=False)
    during.say(StatusRequest(nonce=auth.new_nonce()), 10.5)  # a nonce is fine without a token
    report = during.take(StatusReport)[0]
    assert (report.busy, report.idle, report.pending, report.generation, report.evaluating) == (2, 0, 30, 3, True)
    net.run_until_done(12.0)  # 30 genomes in 2 s
    after = net.connect("status-client-3", now=12.0, register=False)
    after.say(StatusRequest(), 12.0)
    report = after.take(StatusReport)[0]
    assert (report.genomes_per_s, report.pending, report.evaluating, report.idle) == (15.0, 0, False, 2)
    assert net.master.num_workers == 2 and first.closed is None and second.closed is None


def test_status_with_a_token_needs_the_mutual_proof():
    net = Net(auth_token=TOKEN)
    bare = net.connect("bare", register=False)
    bare.say(StatusRequest(), 0.0)
    assert bare.take(ErrorReport)[0].code == "auth" and not bare.take(StatusReport)
    for role, accepted in (("worker", False), ("status", True)):  # a proof of another role is worthless
        client = net.connect(f"client-{role}", register=False)
        nonce = auth.new_nonce()
        client.say(StatusRequest(nonce=nonce), 0.0)
        challenge = client.take(RegistrationAck)[0]
        assert auth.verify(challenge.proof, TOKEN, "master", PROTOCOL_VERSION, nonce, challenge.nonce,
                           auth.STATUS_CLIENT_ID)
        proof = auth.proof(TOKEN, role, PROTOCOL_VERSION, nonce, challenge.nonce, auth.STATUS_CLIENT_ID)
        client.say(StatusRequest(nonce=nonce, proof=proof), 0.0)
        assert bool(client.take(StatusReport)) is accepted and client.closed is not None
    assert net.master.num_workers == 0


def test_a_status_client_cannot_turn_into_a_worker():
    net = Net(auth_token=TOKEN)
    client = net.connect("sneaky", register=False)
    client.say(StatusRequest(nonce=auth.new_nonce()), 0.0)
    client.register(0.0, auth.new_nonce())
    assert client.closed is not None and net.master.num_workers == 0


def speciated(n: int = 60, generations: int = 3) -> tuple[list, dict[int, int]]:
    """A population bred for a few generations (so it has several species) and its genome id -> species id."""
    pop = Population(n, 2, 1, seed=5)
    for _ in range(generations):
        pop.run_generation(lambda batch: [setattr(g, "fitness", len(g.connections) + g.id % 7 / 7) for g in batch])
    species = {g.id: s.id for s in pop.species for g in s.members}
    assert len(set(species.values())) > 2
    return pop.genomes, species


def species_run(species: dict[int, int] | None, population: list, lose_one: bool = False):
    """Evaluate ``population`` on three fake workers (capacity 50) batched by ``species``; with ``lose_one``
    the first worker hangs up on its first batch. Returns the outcome and every batch answered."""
    net = Net(batching="species" if species else "genomes")
    workers = [net.connect(f"w{i}") for i in range(3)]
    net.deliver(net.master.submit(GenerationJob(0, population, species), 0.0))
    if lose_one:
        assert workers[0].take(TaskAssignment)
        net.hang_up(workers[0], 0.5)
    outcome = net.run_until_done(1.0)
    return outcome, [batch for w in workers for batch in w.answered]


def test_species_batches_hold_one_species_and_give_the_same_fitness():
    population, species = speciated()
    outcome, batches = species_run(species, population)
    assert all(len({species[i] for i in batch}) == 1 for batch in batches)
    assert sorted(i for batch in batches for i in batch) == sorted(g.id for g in population)
    by_genomes, mixed = species_run(None, population)
    assert any(len({species[i] for i in batch}) > 1 for batch in mixed)  # the default does mix them
    assert outcome.error is None and outcome.fitness == by_genomes.fitness == expected(population)


def test_a_lost_workers_species_batch_is_resent_still_single_species():
    population, species = speciated()
    outcome, batches = species_run(species, population, lose_one=True)
    assert outcome.error is None and outcome.fitness == expected(population)
    assert outcome.job.batches_resent == 1
    assert all(len({species[i] for i in batch}) == 1 for batch in batches)


def test_a_job_takes_pending_rows_in_runs_resent_first_and_resolved_skipped():
    population = genomes(10)
    ids = [g.id for g in population]
    job = GenerationJob(0, population)
    first, second = job.take(4), job.take(2)
    assert (first.tolist(), second.tolist(), job.waiting) == ([0, 1, 2, 3], [4, 5], 4)
    late = SentBatch(1, job, first, job.ids(first), 0.0)
    assert job.requeue(late) and job.waiting == 8  # its rows go in front of the rest
    report = np.array(ids[1::-1]), np.array([0.5, 1.5])  # a late report of two of them, in another order
    assert job.record(late, *report, [], "w") == 2 and job.unresolved == 8
    rows = job.take(5)
    assert rows.tolist() == [2, 3, 6, 7, 8]  # rows 0 and 1 resolved meanwhile: skipped
    frame = job.task_frame(SentBatch(2, job, rows, job.ids(rows), 0.0))
    task = decode_message(frame[4], frame[5:])
    assert task.genome_ids() == [ids[i] for i in rows.tolist()]
    assert job.results()[ids[0]] == 1.5 and job.results()[ids[1]] == 0.5


def test_a_job_with_species_sends_each_species_apart():
    population = genomes(10)
    groups = {g.id: int(3 <= i < 7) for i, g in enumerate(population)}  # species 0, 1, 0 along the population
    job = GenerationJob(0, population, groups)
    first, rest = job.take(10), job.take(10)
    assert [job.ids(first).tolist(), job.ids(rest).tolist()] == \
        [[population[i].id for i in (0, 1, 2, 7, 8, 9)], [population[i].id for i in (3, 4, 5, 6)]]


def test_a_generation_with_a_genome_id_twice_is_refused_by_name():
    """Rows are matched to a report by id: a repeated id once let a report out of order resolve one row
    twice and finish the generation with the other row's fitness never evaluated (0.0)."""
    population = genomes(3)
    with pytest.raises(ValueError, match=f"genome id {population[0].id} occurs twice in generation 4"):
        GenerationJob(4, [population[0], population[1], population[0]])


def test_species_batching_is_validated_and_needs_every_genome_in_the_map():
    with pytest.raises(ValueError, match="batching must be one of 'genomes', 'species', got 'topology'"):
        DistributedConfig(batching="topology")
    population, species = speciated()
    del species[population[3].id]
    with pytest.raises(ValueError, match=f"genome {population[3].id} has no species"):
        GenerationJob(0, population, species)


# --- the hot standby and epochs ---
def snapshot_frame(generation: int) -> bytes:
    return encode_frame(StateSnapshot(1, generation, b"opaque"))


def link_standby(net: Net, name: str, role: str = "standby", epoch: int = 0) -> FakeWorker:
    """A fake standby registering (with the proof of ``role`` when the master has a token)."""
    standby = net.connect(name, register=False)
    hello = StandbyRegistration(PROTOCOL_VERSION, epoch, nonce=auth.new_nonce())
    standby.say(hello, 0.0)
    if net.config.auth_token:
        challenge = standby.take(RegistrationAck)[0]
        assert auth.verify(challenge.proof, TOKEN, "master", PROTOCOL_VERSION, hello.nonce, challenge.nonce,
                           auth.STANDBY_CLIENT_ID)
        proof = auth.proof(TOKEN, role, PROTOCOL_VERSION, hello.nonce, challenge.nonce, auth.STANDBY_CLIENT_ID)
        standby.say(replace(hello, proof=proof), 0.0)
    return standby


def test_a_standby_proves_the_token_in_its_own_role_and_gets_the_last_state_then_every_new_one():
    net = Net(auth_token=TOKEN)
    net.deliver(net.master.replicate(snapshot_frame(0)))
    replayed = link_standby(net, "replayed", role="worker")  # a worker's proof is worthless for a standby
    assert replayed.take(ErrorReport)[0].code == "auth" and replayed.closed is not None
    standby = link_standby(net, "standby")
    assert standby.take(RegistrationAck) == [RegistrationAck("accepted", heartbeat_interval=1.0, epoch=1)]
    assert [s.generation for s in standby.take(StateSnapshot)] == [0]
    net.deliver(net.master.replicate(snapshot_frame(1)))
    assert [s.generation for s in standby.take(StateSnapshot)] == [1]
    assert net.master.num_workers == 0  # a standby is no worker
    net.deliver(net.master.shutdown(2.0))
    assert standby.take(ShutdownSignal)  # the run ended: nothing to take over


def test_one_standby_at_a_time_and_a_silent_one_is_dropped():
    net = Net()
    assert not net.master.has_follower
    first = link_standby(net, "first")
    second = link_standby(net, "second")
    refusal = second.take(ErrorReport)[0]
    assert (refusal.code, refusal.fatal) == ("busy", False)
    net.deliver(net.master.tick(1.0))
    assert first.take(HeartbeatRequest) and first.closed is None
    assert net.master.has_follower  # the primary builds each generation's state only while this holds
    net.deliver(net.master.tick(4.1))  # no answer for more than peer_timeout (3 s)
    assert first.closed is not None and "no answer" in first.closed.reason
    assert not net.master.has_follower
    third = link_standby(net, "third", epoch=1)
    assert third.take(RegistrationAck)[0].status == "accepted"


def test_a_following_standby_outlives_the_handshake_timeout_and_one_hung_up_on_lets_the_next_follow():
    """A following standby is registered: the deadline of unregistered connections never closes it (it did after
    ``handshake_timeout``, and the master then sent heartbeats to the closed connection until its tick raised);
    one closed for a bad frame no longer follows, so the next standby is admitted (it was refused as busy)."""
    net = Net(handshake_timeout=2.0)
    first = link_standby(net, "first")
    for now in (1.0, 2.0, 3.0, 4.0, 5.0):
        net.deliver(net.master.tick(now))
        first.say(HeartbeatResponse(now), now)
    assert first.closed is None and net.master.has_follower and len(first.take(HeartbeatRequest)) == 5
    first.say(StatusUpdate("leaving"), 5.5)  # a worker's message: a bad frame from a standby
    assert first.closed is not None and not net.master.has_follower
    second = link_standby(net, "second")
    assert second.take(RegistrationAck)[0].status == "accepted" and net.master.has_follower


def test_a_spare_standby_retrying_fills_the_log_with_no_warnings(caplog):
    """A second standby retries several times a second while another follows; it warns in its own log (the 1st,
    2nd, 4th... refusal), the primary logs each refusal at INFO only."""
    caplog.set_level(logging.INFO, logger="neatify.distributed.io.master")
    net = Net()
    link_standby(net, "first")
    for i in range(3):
        assert link_standby(net, f"spare{i}").take(ErrorReport)[0].code == "busy"
    refusals = [r for r in caplog.records if "another standby already follows it" in r.getMessage()]
    assert len(refusals) == 3 and {r.levelno for r in refusals} == {logging.INFO}


def test_a_standby_master_refuses_workers_until_promoted():
    net = Net(standby=True)
    early = net.connect("early", register=False)
    early.register(0.0)
    refusal = early.take(ErrorReport)[0]
    assert (refusal.code, refusal.fatal) == ("standby", False) and early.closed is not None
    assert link_standby(net, "chained").take(ErrorReport)[0].code == "busy"  # no standby of one
    net.master.promote(2)
    late = net.connect("late", register=False)
    late.register(0.0)
    assert late.take(RegistrationAck)[0].epoch == 2 and net.master.num_workers == 1


def test_a_worker_of_a_newer_epoch_makes_the_master_stand_down():
    net = Net()
    old = net.connect("old")
    net.deliver(net.master.submit(GenerationJob(0, genomes()), 0.0))
    newer = net.connect("newer", register=False)
    newer.say(WorkerRegistration(PROTOCOL_VERSION, "newer", 50, epoch=2), 0.1)
    refusal = newer.take(ErrorReport)[0]
    assert (refusal.code, refusal.fatal) == ("epoch", False)
    assert "has served epoch 2, newer than this master's 1" in refusal.message
    outcome = net.master.take_outcome()
    assert isinstance(outcome.error, SupersededError) and net.master.stood_down is outcome.error
    assert old.closed is not None and newer.closed is not None and net.master.num_workers == 0
    assert not old.take(ShutdownSignal)  # its workers go on to the newer master, not home
    late = net.connect("late", register=False)
    late.register(0.2)
    assert late.closed is not None and not late.take(RegistrationAck)


def test_an_epoch_claimed_before_the_proof_makes_no_master_stand_down():
    net = Net(auth_token=TOKEN)
    stranger = net.connect("stranger", register=False)
    stranger.say(WorkerRegistration(PROTOCOL_VERSION, "stranger", 50, nonce=auth.new_nonce(), epoch=99), 0.0)
    assert stranger.take(RegistrationAck)[0].status == "challenge"
    stranger.say(WorkerRegistration(PROTOCOL_VERSION, "stranger", 50, nonce=auth.new_nonce(), proof=bytes(32),
                                    epoch=99), 0.0)
    assert stranger.take(ErrorReport)[0].code == "auth"
    assert net.master.stood_down is None and not net.master.stopping


def test_a_master_ending_the_run_waits_only_for_workers_lost_shortly_before_and_tells_them_it_is_over():
    """Issue 22 item 6: a supervised child that crashed just before the end comes back to a master that has shut
    down: it is accepted and told to exit at once; a worker that left, or was lost long before, is not awaited."""
    net = Net(shutdown_linger=5.0)
    crashed, left, long_gone, stays = (net.connect(name) for name in ("crashed", "left", "long-gone", "stays"))
    net.hang_up(long_gone, 1.0)
    left.say(StatusUpdate("leaving"), 7.0)
    net.hang_up(crashed, 8.0)
    net.deliver(net.master.shutdown(9.0))
    assert stays.take(ShutdownSignal) and net.master.awaited(9.0) == ["crashed"]
    assert net.master.awaited(13.0) == []  # bounded: 5 s after it was lost
    back = net.connect("crashed", 9.5, register=False)
    back.register(9.5)
    assert back.take(RegistrationAck)[0].status == "accepted" and back.take(ShutdownSignal)
    assert back.closed is not None and back.closed.flush and net.master.awaited(9.5) == []
    newer = net.connect("newer", 9.6, register=False)
    newer.say(WorkerRegistration(PROTOCOL_VERSION, "newer", 50, epoch=2), 9.6)  # serves a newer master: not told
    assert newer.closed is not None and not newer.take(ShutdownSignal) and net.master.stood_down is None


def test_a_master_that_stood_down_tells_no_late_worker_to_exit():
    net = Net(shutdown_linger=5.0)
    lost = net.connect("lost")
    net.hang_up(lost, 1.0)
    net.connect("newer", 1.5, register=False).say(WorkerRegistration(PROTOCOL_VERSION, "newer", 50, epoch=2), 1.5)
    assert net.master.stood_down is not None and net.master.awaited(2.0) == []
    back = net.connect("lost", 2.0, register=False)
    back.register(2.0)
    assert back.closed is not None and not back.take(ShutdownSignal)  # the run goes on at the newer master


def paced_generations(claims: dict[str, Callable[[int], float]], generations: int = 3, pop: int = 1200,
                      cost: float = 0.001, latency: float = 0.005) -> dict[str, list[int]]:
    """Workers of one real speed (``cost`` seconds a genome, evaluated one batch after another, ``latency`` each
    way) on a fake clock, each reporting ``claims[id](batch size)`` as its elapsed time; the batch sizes each got in
    the last generation."""
    net = Net(task_timeout=100.0, heartbeat_interval=100.0)
    workers = {net.connect(worker_id, capacity=1000): claim for worker_id, claim in claims.items()}
    free = dict.fromkeys(workers, 0.0)
    reports: list = []
    now, order = 0.0, itertools.count()
    for generation in range(generations):
        sizes: dict[str, list[int]] = {worker.worker_id: [] for worker in workers}
        net.deliver(net.master.submit(GenerationJob(generation, genomes(pop)), now))
        while (outcome := net.master.take_outcome()) is None:
            for worker in workers:
                for task in worker.take(TaskAssignment):
                    free[worker] = max(now + latency, free[worker]) + task.size * cost
                    heapq.heappush(reports, (free[worker] + latency, next(order), worker, task))
                    sizes[worker.worker_id].append(task.size)
            now, _, worker, task = heapq.heappop(reports)
            fitness = [[genome.id, 1.0] for genome in decode_genomes(task)]
            worker.say(FitnessReport.of(task.batch_id, fitness, [], workers[worker](task.size)), now)
        assert outcome.error is None
    return sizes


def test_workers_reporting_no_elapsed_time_or_absurd_ones_get_the_batches_honest_ones_get():
    """Issue 28 item 4: the master sizes batches from its own clock. Four workers of one speed (1 ms a genome,
    40 ms of round trip): one honest, one reporting 0 s, one a million seconds, one a picosecond. None gets batches
    of one or two genomes, and none takes a much larger part of the generation than the others."""
    sizes = paced_generations({"honest": lambda size: size * 0.001, "zero": lambda size: 0.0,
                               "absurd": lambda size: 1e6, "tiny": lambda size: 1e-12})
    total = sum(sum(batches) for batches in sizes.values())
    for worker_id, batches in sizes.items():
        assert min(batches) >= 20 and len(batches) <= 2 * len(sizes["honest"]) + 2, (worker_id, sizes)
        assert sum(batches) <= 0.4 * total, (worker_id, sizes)
