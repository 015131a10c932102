"""The failover rules in the sans-IO cores on a fake clock (docs/distributed.md, "Hot standby"): a standby leads
nothing and so never stands down, a primary older than its standby hands it the lead, a promotion leads above every
epoch seen, a checkpoint names who led its epoch and is locked while a master leads, no snapshot over the frame
limit is sent. The sequences with real processes are in test_failover_sequences.py."""

from __future__ import annotations

import logging

import pytest

from neatify import Checkpoint, Population
from neatify.distributed.config import DistributedConfig
from neatify.distributed.core.actions import Close, Send
from neatify.distributed.core.events import Ended, Follower, Promote, Replicated, StoodDown
from neatify.distributed.core.fencing import resumed_epoch
from neatify.distributed.core.master import MasterProtocol
from neatify.distributed.core.standby import StandbyProtocol, encode_state
from neatify.distributed.wire.framing import encode_frame
from neatify.distributed.wire.messages import ErrorReport, StateSnapshot
from neatify.io.checkpoint import CheckpointError
from neatify.io.lock import CheckpointLock

TOKEN = "rules-secret"


class Link:
    """A master core and one standby core dialling it on connection 1: every ``Send`` of one is the other's
    ``received``, every ``Close`` the standby's ``closed``; the standby's other events are collected."""

    def __init__(self, master: MasterProtocol, standby: StandbyProtocol, now: float = 0.0) -> None:
        self.master, self.standby, self.events = master, standby, []
        master.connected(1, "standby-host:1", now)
        self._from_standby([standby.connect(now)], now)

    def _from_standby(self, outputs: list, now: float) -> None:
        for output in outputs:
            if isinstance(output, Send):
                self._to_standby(self.master.received(1, output.data, now), now)
            else:
                self.events.append(output)

    def _to_standby(self, actions: list, now: float) -> None:
        for action in actions:
            if isinstance(action, Close):
                self._from_standby(self.standby.closed(now), now)
            else:
                self._from_standby(self.standby.received(action.data, now), now)


def master(epoch: int = 1, standby: bool = False, token: str | None = TOKEN, frame_limit: int = 1 << 24):
    config = DistributedConfig(auth_token=token, heartbeat_interval=1.0, max_frame_bytes=frame_limit)
    return MasterProtocol(config, "master:1", epoch=epoch, standby=standby)


def dialling(epoch: int, token: str | None = TOKEN) -> StandbyProtocol:
    return StandbyProtocol(token, "master:1", 1 << 24, 3.0, now=0.0, epoch=epoch)


@pytest.mark.parametrize("token", [TOKEN, None])
def test_a_standby_refuses_a_higher_epoch_as_a_standby_without_standing_down_and_promotes_above_it(token):
    """Item 1 of issue 22: a promoted master's fence (epoch 2), or anyone without a token claiming epoch 9, dials
    a node that is only a standby: it leads nothing, so it refuses the peer (non-fatally) and may still lead."""
    follower = master(epoch=1, standby=True, token=token)
    for claimed in (2, 9):
        link = Link(follower, dialling(claimed, token))
        assert [type(event) for event in link.events] == [Follower]  # the fence learns: nothing to fence here
        assert follower.stood_down is None and not follower.stopping
    assert follower.promote(2) == 10 and follower.epoch == 10 and not follower.standby


def test_a_master_that_led_stands_down_before_a_higher_epoch_for_good():
    leader = master(epoch=1)
    link = Link(leader, dialling(2))
    assert leader.stood_down is not None and leader.stopping
    assert isinstance(link.events[-1], StoodDown)


def test_a_standby_whose_own_state_is_newer_than_its_primarys_takes_the_lead_at_once():
    """Item 2: resubmitted, the primary resumes epoch 1 and its never-linked standby its own checkpoint's epoch 2:
    the primary stands down, and the standby leads (epoch 3) without waiting for a link it will never get."""
    standby = dialling(2)
    Link(master(epoch=1), standby)
    assert not standby.linked
    promote, = [event for event in standby.tick(0.1) if isinstance(event, Promote)]
    assert promote.epoch == 3 and "older state" in promote.reason


def test_a_linked_standby_of_the_same_epoch_is_not_promoted_while_its_primary_answers():
    standby = dialling(1)
    Link(master(epoch=1), standby)
    assert standby.linked and not [event for event in standby.tick(1.0) if isinstance(event, Promote)]


def promotions(standby: StandbyProtocol, now: float) -> list[Promote]:
    return [event for event in standby.tick(now) if isinstance(event, Promote)]


def test_two_standbys_that_meet_the_one_holding_the_newer_state_leads():
    """Two standbys, each the other's, neither ever linked: the one dialling with epoch 2 is refused as a
    standby by the one holding epoch 1, learns it holds the newer state and leads (epoch 3); the older one is
    refused as busy and keeps following; on a tie neither leads."""
    newer = dialling(2)
    assert [type(event) for event in Link(master(epoch=1, standby=True), newer).events] == [Follower]
    promote, = promotions(newer, 0.1)
    assert promote.epoch == 3 and "a standby holding epoch 1" in promote.reason
    for mine, theirs in ((1, 2), (2, 2)):
        follower = dialling(mine)
        Link(master(epoch=theirs, standby=True), follower)
        assert not follower.connected and not follower.linked and promotions(follower, 0.1) == []


def generational(epoch: int, generation: int | None, standby: bool = False) -> MasterProtocol:
    """A master core holding the state after ``generation`` of ``epoch`` (a standby: replicated)."""
    config = DistributedConfig(auth_token=TOKEN, heartbeat_interval=1.0)
    return MasterProtocol(config, "master:1", epoch=epoch, standby=standby, generation=generation)


def holding(epoch: int, generation: int | None) -> StandbyProtocol:
    return StandbyProtocol(TOKEN, "master:1", 1 << 24, 3.0, now=0.0, epoch=epoch, generation=generation)


def test_on_equal_epochs_a_primary_holding_an_older_state_than_its_standby_hands_it_the_lead():
    """A primary restarted from an older state (its checkpoint lost, say) at the epoch its standby replicated: the
    standby's registration says it holds generation 5; the primary (generation 2) stands down and the standby
    leads from its own state, one epoch above."""
    primary, standby = generational(1, 2), holding(1, 5)
    link = Link(primary, standby)
    assert isinstance(link.events[-1], StoodDown) and primary.stood_down is not None
    assert "holds generation 5 of epoch 1, newer than this master's generation 2" in str(primary.stood_down)
    promote, = promotions(standby, 0.1)
    assert promote.epoch == 2


@pytest.mark.parametrize("theirs", [5, 2, None])
def test_on_equal_epochs_a_primary_as_new_as_its_standby_or_not_told_keeps_the_lead(theirs):
    primary, standby = generational(1, 5), holding(1, theirs)
    Link(primary, standby)
    assert standby.linked and primary.stood_down is None and promotions(standby, 0.1) == []


def test_the_state_a_primary_reached_is_the_one_compared():
    primary = generational(1, 2)
    primary.reached(6)
    Link(primary, holding(1, 5))
    assert primary.stood_down is None


def test_two_standbys_of_one_epoch_that_meet_the_one_holding_the_later_generation_leads():
    """Each the other's standby, both holding epoch 2: the one dialling with generation 6 is told by the one
    holding generation 3 to lead (code "epoch"), which stays a standby; dialling with generation 1 it follows."""
    refuser = generational(2, 3, standby=True)
    newer = holding(2, 6)
    assert [type(event) for event in Link(refuser, newer).events] == [StoodDown]
    promote, = promotions(newer, 0.1)
    assert promote.epoch == 3 and refuser.standby and refuser.stood_down is None
    older = holding(2, 1)  # refused as busy: it keeps following
    assert [type(event) for event in Link(generational(2, 3, standby=True), older).events] == [Ended]
    assert promotions(older, 0.1) == []


def test_a_standby_compares_the_generation_of_the_newest_epoch_it_replicated():
    for theirs, ended in ((4, StoodDown), (3, Follower)):
        refuser = generational(1, 9, standby=True)
        refuser.holds(2, 3)  # a snapshot of epoch 2: its generation 9 of epoch 1 no longer counts
        assert [type(event) for event in Link(refuser, holding(2, theirs)).events] == [ended]


def test_a_standby_following_a_live_primary_tells_a_standby_the_epoch_it_replicated():
    """A standby that replicated epoch 2 from its primary (started from no checkpoint, epoch 1) holds epoch 2:
    another standby of epoch 2 dialling it is refused without being told it holds a newer state."""
    follower = master(epoch=1, standby=True)
    follower.holds(2)
    other = dialling(2)
    Link(follower, other)
    assert not other.connected and promotions(other, 0.1) == []


def test_a_standby_refusal_without_an_epoch_from_an_older_peer_promotes_no_one():
    standby = dialling(2)
    standby.connect(0.0)
    standby.received(encode_frame(ErrorReport("this master is a standby", fatal=False, code="standby")), 0.1)
    assert not standby.connected and promotions(standby, 0.2) == []


@pytest.mark.parametrize("frozen, promoted", [(6.0, False), (2.9, True)])
def test_silence_a_stopped_standby_could_not_observe_does_not_promote_it(frozen, promoted):
    """A linked standby whose own process stops (SIGSTOP) for longer than the silence limit (3 s) and then reads
    only its primary's close has observed no silence: it restarts the count and tries the primary again. Stopped
    for less, the silence before and during the stop counts as always."""
    standby = dialling(1)
    Link(master(epoch=1), standby)
    assert standby.linked and promotions(standby, 0.5) == []
    assert not [event for event in standby.closed(0.5 + frozen) if isinstance(event, Promote)]
    assert bool(promotions(standby, 0.6 + frozen)) is promoted
    later = [bool(promotions(standby, frozen + 0.6 + 0.5 * step)) for step in range(1, 8)]
    assert later[-1] and later[:5] == [promoted] * 5  # a primary silent once the standby runs again is gone


def test_a_standby_that_ticks_on_promotes_after_the_silence_limit():
    standby = dialling(1)
    Link(master(epoch=1), standby)
    ticks = [0.5 * step for step in range(1, 8)]
    assert [bool(promotions(standby, now)) for now in ticks] == [False] * 6 + [True]


def test_a_state_over_the_frame_limit_is_not_replicated_and_reported_once(caplog):
    """Item 7: the standby would refuse the frame and re-link for ever; the primary sends none, says why once, and
    the standby stays linked."""
    primary, standby = master(frame_limit=4096), dialling(1)
    link = Link(primary, standby)
    state = Population(40, 2, 1, seed=3).state_dict()
    frame = encode_frame(StateSnapshot(1, 0, encode_state(state, [])))
    assert len(frame) > 4096
    with caplog.at_level(logging.ERROR, "neatify.distributed.io.master"):
        assert primary.replicate(frame) == [] and primary.replicate(frame) == []
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and f"{len(frame)} bytes" in errors[0] and "4096 bytes" in errors[0]
    assert "--max-frame-bytes" in errors[0]
    assert standby.connected and primary.has_follower and not any(isinstance(e, Replicated) for e in link.events)
    late = master(frame_limit=4096)
    late.replicate(frame)
    assert not any(isinstance(e, Replicated) for e in Link(late, dialling(1)).events)  # none on linking either


def test_a_standby_refusing_its_primarys_snapshots_backs_off_instead_of_re_linking_in_a_storm():
    """Item 7, the standby's side (its limit below its primary's): every link registers, is sent a snapshot it
    refuses, and ends; the pause before the next doubles, up to half the silence limit, until a snapshot is taken."""
    state = Population(40, 2, 1, seed=3).state_dict()
    big = encode_frame(StateSnapshot(1, 0, encode_state(state, [])))
    primary, standby = master(), StandbyProtocol(TOKEN, "master:1", 4096, 3.0, now=0.0, epoch=1)
    pauses = []
    for _ in range(6):
        primary.replicate(big)
        Link(primary, standby)
        assert not standby.connected and standby.snapshot is None
        pauses.append(standby.pause(0.05))
    assert pauses == [0.1, 0.2, 0.4, 0.8, 1.5, 1.5]
    standby.max_frame_bytes = 1 << 24  # raised: the next link takes the state, and the pause is back to the base
    Link(primary, standby)
    assert standby.connected and standby.snapshot is not None and standby.pause(0.05) == 0.05


@pytest.mark.parametrize("saved, leader, me, epoch", [
    (None, None, "h:1", 1),  # no checkpoint
    (2, None, "h:1", 2),  # written before fencing tokens: kept
    (2, "h:1", "h:1", 2),  # its own
    (2, "h:2", "h:1", 3),  # another master's: a new epoch above it
    (2, "h:1", None, 3),  # no fixed address (port 0): never the same master
])
def test_a_master_resuming_another_masters_checkpoint_takes_a_new_epoch(saved, leader, me, epoch):
    assert resumed_epoch(saved, leader, me) == epoch


def test_the_checkpoint_names_who_led_its_epoch_and_old_checkpoints_still_load(tmp_path):
    state = Population(10, 2, 1, seed=1).state_dict()
    Checkpoint.save_state(state, tmp_path / "new.json.gz", 3, "127.0.0.1:5000")
    assert Checkpoint.read_fenced(tmp_path / "new.json.gz") == (state, 3, "127.0.0.1:5000")
    assert Checkpoint.read_run(tmp_path / "new.json.gz") == (state, 3)
    Checkpoint.save_state(state, tmp_path / "old.json", 2)
    assert Checkpoint.read_fenced(tmp_path / "old.json") == (state, 2, None)
    Checkpoint.save_state(state, tmp_path / "bad.json", 2, 7)  # type: ignore[arg-type]
    with pytest.raises(CheckpointError, match="leader must be a string"):
        Checkpoint.read_fenced(tmp_path / "bad.json")


def test_a_second_master_on_a_locked_checkpoint_is_refused_naming_the_path_and_the_holder(tmp_path):
    first, second = CheckpointLock(tmp_path / "run.json.gz"), CheckpointLock(tmp_path / "run.json.gz")
    first.acquire("pid 1 on node17, master on 0.0.0.0:5000")
    with pytest.raises(CheckpointError, match="run.json.gz: another master leads .*pid 1 on node17, master on "
                                              "0.0.0.0:5000 holds"):
        second.acquire("pid 2")
    first.release()
    second.acquire("pid 2")
    second.release()
