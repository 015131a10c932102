"""The standby's sans-IO link to its primary with a fake clock: registration, snapshots, promotion timer."""

from __future__ import annotations

import pytest

from neatify import Population
from neatify.distributed import AuthenticationError
from neatify.distributed.wire import auth
from neatify.distributed.wire.messages import (
    ErrorReport, HeartbeatRequest, HeartbeatResponse, RegistrationAck, ShutdownSignal, StandbyRegistration,
    StateSnapshot,
)
from neatify.distributed.wire.framing import PROTOCOL_VERSION
from neatify.distributed.core.events import Ended, Promote, Registered, Replicated, Shutdown, StoodDown
from neatify.distributed.core.standby import StandbyProtocol, encode_state

from distributed_helpers import frames, sent
from xor_task import xor_fitness

TOKEN = "s3cret"


def accepted(epoch: int = 1, heartbeat: float = 1.0) -> RegistrationAck:
    return RegistrationAck("accepted", heartbeat_interval=heartbeat, epoch=epoch)


def linked(token: str | None = None, limit: float = 3.0, epoch: int = 0) -> StandbyProtocol:
    core = StandbyProtocol(token, "primary:5000", 1 << 24, limit, now=0.0, epoch=epoch)
    core.connect(0.0)
    assert core.received(frames(accepted()), 0.0) == [Registered(1.0, 1)]
    return core


def snapshot(generation: int = 1, epoch: int = 1, state: dict | None = None) -> StateSnapshot:
    if state is None:
        population = Population(10, 2, 1, seed=5)
        for _ in range(generation):
            population.run_generation(xor_fitness)
        state = population.state_dict()
    return StateSnapshot(epoch, state["generation"], encode_state(state, []))


def test_mutual_proof_under_the_standby_role():
    core = StandbyProtocol(TOKEN, "primary:5000", 1 << 24, 3.0, now=0.0, epoch=1)
    hello, = sent([core.connect(0.0)])
    assert isinstance(hello, StandbyRegistration) and (hello.protocol_version, hello.epoch) == (PROTOCOL_VERSION, 1)
    nonce = auth.new_nonce()
    good = auth.proof(TOKEN, "master", PROTOCOL_VERSION, hello.nonce, nonce, auth.STANDBY_CLIENT_ID)
    events = core.received(frames(RegistrationAck("challenge", nonce=nonce, proof=good)), 0.1)
    answer, = sent(events)
    assert answer == StandbyRegistration(PROTOCOL_VERSION, 1, hello.nonce, answer.proof)  # the same, plus proof
    assert auth.verify(answer.proof, TOKEN, "standby", PROTOCOL_VERSION, hello.nonce, nonce, auth.STANDBY_CLIENT_ID)
    assert core.received(frames(accepted(epoch=1)), 0.2) == [Registered(1.0, 1)] and core.linked


@pytest.mark.parametrize("ack", [
    RegistrationAck("challenge", nonce=bytes(32), proof=bytes(32)),
    accepted(),  # accepted without proving the token
])
def test_a_primary_that_cannot_prove_the_token_is_refused_for_good(ack):
    core = StandbyProtocol(TOKEN, "primary:5000", 1 << 24, 3.0, now=0.0)
    core.connect(0.0)
    events = core.received(frames(ack), 0.1)
    assert sent(events)[0].code == "auth"
    assert isinstance(events[-1], Ended) and events[-1].fatal and isinstance(events[-1].error, AuthenticationError)
    assert not core.linked


def test_refusals_for_good_and_for_now():
    core = StandbyProtocol(None, "primary:5000", 1 << 24, 3.0, now=0.0)
    core.connect(0.0)
    busy = core.received(frames(ErrorReport("another standby", fatal=False, code="busy")), 0.1)
    assert len(busy) == 1 and not busy[0].fatal and "another standby" in str(busy[0].error)
    core.connect(0.2)
    version = core.received(frames(ErrorReport("protocol version mismatch", fatal=True, code="version")), 0.3)
    assert version[0].fatal


def test_an_older_master_standing_down_on_meeting_this_epoch_is_told_apart_from_a_refusal():
    """What a promoted standby's watch on its old primary waits for (``OldPrimaryFence``)."""
    core = StandbyProtocol(None, "primary:5000", 1 << 24, 3.0, now=0.0, epoch=2)
    assert sent([core.connect(0.0)])[0].epoch == 2
    events = core.received(frames(ErrorReport("this master (epoch 1) is superseded and stands down", fatal=False,
                                              code="epoch")), 0.1)
    assert events == [StoodDown("this master (epoch 1) is superseded and stands down")] and not core.linked


def test_no_promotion_before_the_primary_was_ever_linked():
    """A standby started before its primary never runs the evolution on its own; a connection's silence
    counts from its opening."""
    core = StandbyProtocol(None, "primary:5000", 1 << 24, 3.0, now=0.0)
    assert core.tick(100.0) == []
    core.connect(100.0)
    assert core.tick(102.9) == []
    events = core.tick(103.5)
    assert len(events) == 1 and isinstance(events[0], Ended) and "silent for 3.5s" in str(events[0].error)


def test_a_linked_primary_silent_past_the_limit_promotes_to_the_next_epoch():
    core = linked(limit=0.5)  # raised to 3 x the primary's heartbeat interval (1 s)
    assert core.silence_limit == 3.0
    assert core.received(frames(HeartbeatRequest(1.0)), 2.0)
    assert core.tick(4.9) == []
    events = core.tick(5.1)
    assert isinstance(events[0], Ended) and "silent for 3.1s" in str(events[0].error)
    assert events[1] == Promote(2, events[1].reason) and "last replicated: no generation" in events[1].reason
    assert core.tick(5.2)[-1].epoch == 2  # between connections the timer goes on


def test_snapshots_are_checked_and_a_bad_one_keeps_the_last_good_state():
    core = linked()
    good = core.received(frames(snapshot(1)), 0.5)
    assert [type(e) for e in good] == [Replicated] and core.snapshot is good[0].snapshot
    state = Population(10, 2, 1, seed=5).state_dict()
    state["genomes"][0]["connections"][0][3] = "heavy"  # a weight that is no number
    for bad, problem in ((snapshot(state=state), "state snapshot refused: genome 0: "),
                         (snapshot(2, epoch=3), "state snapshot of epoch 3 from the primary of epoch 1"),
                         (StateSnapshot(1, 0, b"\xc1"), "state snapshot is not valid msgpack")):
        events = core.received(frames(bad), 0.6)
        report, = sent(events)
        assert isinstance(report, ErrorReport) and report.message.startswith(problem)
        assert isinstance(events[-1], Ended) and not events[-1].fatal
        assert core.snapshot is good[0].snapshot
        core.connect(0.7)
        core.received(frames(accepted()), 0.7)


def test_heartbeats_answered_and_the_primary_ending_the_run_finishes_following():
    core = linked()
    assert sent(core.received(frames(HeartbeatRequest(7.5)), 1.0)) == [HeartbeatResponse(7.5)]
    assert core.received(frames(ShutdownSignal("master shutting down")), 1.1) == [Shutdown("master shutting down")]
