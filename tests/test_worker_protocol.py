"""The worker's sans-IO protocol with a fake clock: registration, mutual proof, tasks, silence."""

from __future__ import annotations

from dataclasses import replace

import pytest

from neatify import Population
from neatify.distributed import AuthenticationError, RegistrationError
from neatify.distributed.wire import auth
from neatify.distributed.errors import ConnectionClosed, ProtocolError
from neatify.distributed.wire.columns import WireGenomes
from neatify.distributed.wire.messages import (
    ErrorReport, HeartbeatRequest, HeartbeatResponse, RegistrationAck, ShutdownSignal,
    WorkerRegistration,
)
from neatify.distributed.wire.framing import PROTOCOL_VERSION, encode_frame
from neatify.distributed.core.events import Ended, Registered, Shutdown
from neatify.distributed.core.worker import WorkerProtocol

from distributed_helpers import frames, negative_id_task, sent

TOKEN = "s3cret"


def worker(token: str | None = None, tls: bool = False) -> tuple[WorkerProtocol, WorkerRegistration]:
    core = WorkerProtocol("w", 50, token, "master:5000", 1 << 20, now=0.0, tls=tls)
    hello, = sent([core.hello()])
    assert isinstance(hello, WorkerRegistration) and hello.protocol_version == PROTOCOL_VERSION
    return core, hello


ACCEPTED = RegistrationAck("accepted", heartbeat_interval=1.0)


def test_accepted_then_a_task_in_the_same_read_and_heartbeats_answered():
    core, _ = worker()
    genomes = Population(3, 2, 1, seed=1).genomes
    data = frames(ACCEPTED) + encode_frame(WireGenomes.of(genomes).task(4, 0)) + \
        frames(HeartbeatRequest(2.5))
    events = core.received(data, 0.1)
    assert events[0] == Registered(1.0)
    task = events[1]
    assert (task.batch_id, task.generation) == (4, 0)
    assert [g.batch_row() for g in task.genomes] == [(task.genome_batch, row) for row in range(3)]  # genes not built yet
    assert [g.to_dict() for g in task.genomes] == [{**g.to_dict(), "fitness": None} for g in genomes]
    assert sent(events[2:]) == [HeartbeatResponse(2.5)]


def test_mutual_proof_the_worker_checks_the_master_first():
    core, hello = worker(TOKEN)
    master_nonce = auth.new_nonce()
    good = auth.proof(TOKEN, "master", PROTOCOL_VERSION, hello.nonce, master_nonce, "w")
    events = core.received(frames(RegistrationAck("challenge", nonce=master_nonce, proof=good)), 0.1)
    answer, = sent(events)
    assert answer == WorkerRegistration(PROTOCOL_VERSION, "w", 50, hello.nonce, answer.proof, epoch=0)  # + proof
    assert auth.verify(answer.proof, TOKEN, "worker", PROTOCOL_VERSION, hello.nonce, master_nonce, "w")
    assert core.received(frames(ACCEPTED), 0.2) == [Registered(1.0)]


@pytest.mark.parametrize("answer, why", [
    (RegistrationAck("challenge", nonce=b"n" * 32, proof=b"p" * 32), "could not prove it knows the auth token"),
    (ACCEPTED, "accepted this worker without proving"),
])
def test_a_master_that_cannot_prove_the_token_is_refused(answer, why):
    core, _ = worker(TOKEN)
    events = core.received(frames(answer), 0.1)
    report, = sent(events)
    assert isinstance(report, ErrorReport) and report.code == "auth" and why in report.message
    assert isinstance(events[-1], Ended) and isinstance(events[-1].error, AuthenticationError)
    assert "master at master:5000" in str(events[-1].error)


@pytest.mark.parametrize("fatal, code, error", [(False, "busy", ConnectionRefusedError),
                                                (True, "version", RegistrationError),
                                                (True, "auth", AuthenticationError)])
def test_refusals_for_now_and_for_good(fatal, code, error):
    core, _ = worker()
    events = core.received(frames(ErrorReport("no", fatal, code)), 0.1)
    assert isinstance(events[-1], Ended) and type(events[-1].error) is error


def test_an_invalid_genome_is_reported_and_ends_the_connection():
    core, _ = worker()
    events = core.received(frames(ACCEPTED, negative_id_task()), 0.1)
    assert "genome" in str(events[-1].error)
    report, = sent(events[1:])
    assert isinstance(report, ErrorReport) and "TASK_ASSIGNMENT with an invalid genome" in report.message
    assert isinstance(events[-1].error, ProtocolError) and core.over


def test_silence_ends_the_connection_but_a_big_task_still_arriving_does_not():
    core, _ = worker()
    assert core.tick(29.0) == []
    assert isinstance(core.tick(30.5)[0].error, ConnectionClosed)  # no registration answer in 30 s
    core, _ = worker()
    core.received(frames(ACCEPTED), 0.0)
    trickle = frames(HeartbeatRequest(1.0))
    for i, now in enumerate((1.0, 2.0, 3.0, 4.0)):  # a frame arriving a byte at a time
        assert core.received(trickle[i:i + 1], now) == []
        assert core.tick(now + 0.5) == []
    (failed,) = core.tick(7.5)  # 3 x the heartbeat interval with nothing at all
    assert "master silent" in str(failed.error)


def test_a_registration_timeout_given_ends_an_unanswered_registration_sooner():
    """A worker with several masters grants each the heartbeat interval of the last one it served (a frozen
    master accepts the connection and says nothing; the standby that takes over is next in the list)."""
    core = WorkerProtocol("w", 50, None, "master:5000", 1 << 20, now=0.0, registration_timeout=0.3)
    assert core.tick(0.29) == []
    (failed,) = core.tick(0.31)
    assert isinstance(failed.error, ConnectionClosed) and "no registration answer for 0.3s" in str(failed.error)


def test_closed_before_the_answer_hints_at_tls_and_shutdown_ends_cleanly():
    core, _ = worker()
    (failed,) = core.closed()
    assert "give tls_ca" in str(failed.error)
    core, _ = worker(tls=True)
    assert "tls_ca" not in str(core.closed()[0].error)
    core, _ = worker()
    events = core.received(frames(ACCEPTED, ShutdownSignal("done")), 0.1)
    assert events[-1] == Shutdown("done") and core.closed() == []


def test_a_big_task_right_behind_the_acceptance_is_taken_at_the_full_frame_limit():
    """The acceptance lifts the 4 KiB limit of registration for the frames behind it in the same read."""
    core, _ = worker()
    genomes = Population(40, 2, 1, seed=3).genomes
    task = encode_frame(WireGenomes.of(genomes).task(1, 0))
    assert len(task) > 4096
    events = core.received(frames(ACCEPTED) + task, 0.1)
    assert [type(e).__name__ for e in events] == ["Registered", "Task"] and len(events[1].genomes) == 40


def test_a_master_of_an_older_epoch_is_refused_so_the_worker_tries_the_next():
    core = WorkerProtocol("w", 50, None, "old:5000", 1 << 20, now=0.0, epoch=2)
    hello, = sent([core.hello()])
    assert hello.epoch == 2
    events = core.received(frames(replace(ACCEPTED, epoch=1)), 0.1)
    refusal, = sent(events)
    assert isinstance(refusal, ErrorReport) and (refusal.code, refusal.fatal) == ("epoch", False)
    assert isinstance(events[-1], Ended) and isinstance(events[-1].error, ConnectionRefusedError)
    assert "master at old:5000 leads epoch 1, older than epoch 2 this worker has served" in str(events[-1].error)
    same = WorkerProtocol("w", 50, None, "new:5000", 1 << 20, now=0.0, epoch=2)
    events = same.received(frames(replace(ACCEPTED, epoch=3)), 0.1)
    assert events == [Registered(1.0, 3)]


def test_a_connection_lost_after_the_acceptance_is_told_apart_from_a_failed_registration():
    """``WorkerNode`` logs "lost the master ...; reconnecting" for the one, "registration failed" for the other."""
    core, _ = worker()
    core.received(frames(ACCEPTED), 0.0)
    (ended,) = core.closed()
    assert core.over and core.accepted and str(ended.error) == "connection closed by peer"
    refused, _ = worker()
    refused.closed()
    assert refused.over and not refused.accepted
