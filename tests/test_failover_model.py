"""The failover protocol, checked: a Hypothesis state machine explores sequences of master deaths, freezes,
restarts, resubmissions, partitions, rogue registrations and time passing, against the real sans-IO cores wired
in memory on a fake clock (``failover_model``), and checks after every step:

1. at most one master leads an epoch at a time (accepts workers or completes generations in it);
2. a master that saw a higher epoch never leads again at an epoch up to the one it saw;
3. no replicated state is lost: no master evaluates a generation behind a state it held (its checkpoint, a
   snapshot it replicated), and after both masters are resubmitted the newest checkpoint (epoch, then
   generations) goes on from its own state; a generation is replayed only from a state that never reached the
   master now leading (a primary frozen or cut off before its snapshot left: time lost, never the result);
4. a worker's epoch only rises through masters it served;
5. a genome is never lost nor counted twice: every completed generation's fitness equals the local run's;

and, once faults stop (links healed, frozen processes resumed, dead ones restarted with their original commands)
and time passes, that the run completes, once, and equals the local run with the same seed.
``benchmarks/failover_soak.py`` runs the same machine for many more sequences.
"""

from __future__ import annotations

import logging

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from failover_model import GENERATIONS, Cluster, local_run

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(autouse=True)
def quiet():
    """The cores log every fault they meet: thousands of lines per exploration."""
    logging.disable(logging.CRITICAL)
    yield
    logging.disable(logging.NOTSET)


MASTERS = st.sampled_from(["A", "B"])
SETTLE_SECONDS = 120.0
"""Fake seconds the run has, once faults stop, to complete (a failover takes a few heartbeats)."""


def settle(cluster: Cluster) -> None:
    """Faults stop: links heal, frozen processes go on, dead masters and workers are started again with their
    original commands; the run then has ``SETTLE_SECONDS`` to complete, once: one master completes it."""
    cluster.cut.clear()
    cluster.newest_resubmitted = None
    for node in [*cluster.masters.values(), *cluster.workers]:
        node.frozen = False
    cluster.advance(1.0)  # what is in flight lands
    completed = len(cluster.completed)
    if not completed:
        restart_the_dead(cluster)
    cluster.advance(SETTLE_SECONDS)
    if not cluster.completed:
        cluster.violated(f"the run did not complete within {SETTLE_SECONDS:.0f}s after the faults stopped")
        return
    if any(state != local_run().state for state in cluster.completed):
        cluster.violated("the completed run differs from the local run")
    if len(cluster.completed) - completed > 1:
        cluster.violated(f"{len(cluster.completed) - completed} masters completed the run after the faults stopped")


def restart_the_dead(cluster: Cluster) -> None:
    """Every master and worker process that is not running is started again with its original command."""
    for name, node in list(cluster.masters.items()):
        if not node.alive:
            cluster.start_master(name)
    for i, worker in enumerate(cluster.workers):
        if not worker.alive:
            cluster.restart_worker(i)


class FailoverMachine(RuleBasedStateMachine):
    """Faults as rules over a ``Cluster``; the invariants after every step; liveness at the end."""

    cluster: Cluster
    cross_standby = True
    """Whether a dead master may be restarted as the standby of the other (the soak may turn it off to explore
    the other faults more)."""
    progress = True
    """Whether invariant 3 is checked (the soak may turn it off to explore the others)."""

    @initialize(workers=st.integers(2, 3), token=st.booleans(), shared=st.booleans())
    def start(self, workers: int, token: bool, shared: bool) -> None:
        self.cluster = Cluster(workers, token, shared)
        self.cluster.progress = self.progress
        self.cluster.advance(0.5)

    @rule(seconds=st.sampled_from([0.25, 0.5, 1.0, 2.0]))
    def time_passes(self, seconds: float) -> None:
        self.cluster.advance(seconds)

    @rule(seconds=st.sampled_from([3.0, 4.0, 6.0]))
    def a_failover_passes(self, seconds: float) -> None:
        """Long enough for a silent primary's standby to promote (a rule of its own: faults need time to act)."""
        self.cluster.advance(seconds)

    @rule(index=st.integers(0, 7))
    def one_message_moves(self, index: int) -> None:
        conns = self.cluster.conns
        if conns:
            self.cluster.deliver_one(conns[index % len(conns)])

    @rule(name=MASTERS)
    def master_dies(self, name: str) -> None:
        self._fault()
        self.cluster.masters[name].exit("SIGKILL")

    @rule(name=MASTERS)
    def master_stopped(self, name: str) -> None:
        """SIGTERM: the run ends cleanly (workers and standby told) — a job's time limit."""
        node = self.cluster.masters[name]
        self._fault()
        if node.running:
            node.finish()

    @rule(name=MASTERS)
    def master_freezes(self, name: str) -> None:
        self._fault()
        self.cluster.masters[name].frozen = True

    @rule(name=MASTERS)
    def master_thaws(self, name: str) -> None:
        self.cluster.masters[name].frozen = False

    @rule(name=MASTERS, as_standby_of_other=st.booleans())
    def master_restarts(self, name: str, as_standby_of_other: bool) -> None:
        """A dead master started again: with its original command, or as the standby of the other while that one
        leads (item 1)."""
        other = "B" if name == "A" else "A"
        self._fault()
        if not self.cluster.masters[name].alive:
            standby = self.cross_standby and as_standby_of_other and self.cluster.masters[other].leading
            self.cluster.start_master(name, other if standby else True)

    @rule()
    def resubmission(self) -> None:
        """Both masters killed and started again with their original commands, and the workers that exited (item 2)."""
        for name in ("A", "B"):
            self.cluster.masters[name].exit("killed for resubmission")
        restart_the_dead(self.cluster)
        self.cluster.resubmitted()

    @rule(worker=st.integers(0, 2))
    def worker_dies(self, worker: int) -> None:
        if worker < len(self.cluster.workers):
            self.cluster.workers[worker].exit("SIGKILL")

    @rule(worker=st.integers(0, 2))
    def worker_restarts(self, worker: int) -> None:
        if worker < len(self.cluster.workers) and not self.cluster.workers[worker].alive:
            self.cluster.restart_worker(worker)

    @rule(a=st.sampled_from(["A", "B", "w0", "w1", "w2"]), b=MASTERS)
    def link_cut(self, a: str, b: str) -> None:
        if a != b:
            self._fault()
            self.cluster.cut.add(frozenset((a, b)))

    @rule()
    def links_heal(self) -> None:
        self.cluster.cut.clear()

    @rule(name=MASTERS, standby=st.booleans(), epoch=st.integers(2, 9))
    def rogue_registration(self, name: str, standby: bool, epoch: int) -> None:
        self._fault()
        self.cluster.rogue(name, standby, epoch)

    def _fault(self) -> None:
        """A fault may change which checkpoint leads: a resubmission before it promises nothing after it."""
        self.cluster.newest_resubmitted = None

    @invariant()
    def no_violation(self) -> None:
        if not hasattr(self, "cluster"):
            return
        self.cluster.check_workers()
        assert not self.cluster.violations, _report(self.cluster)

    def teardown(self) -> None:
        cluster = getattr(self, "cluster", None)
        if cluster is None or cluster.violations:
            return
        settle(cluster)
        assert not cluster.violations, _report(cluster)


def _report(cluster: Cluster) -> str:
    return "\n".join(["invariant broken:", *cluster.violations, "trace:", *cluster.trace[-60:]])


FailoverMachine.TestCase.settings = settings(max_examples=100, stateful_step_count=40, deadline=None,
                                             derandomize=True, database=None, phases=[Phase.generate],
                                             suppress_health_check=[HealthCheck.too_slow])
"""In the suite: the same 100 sequences every run, not shrunk (the trace shows the failing one);
``benchmarks/failover_soak.py`` draws new ones from a seed, and shrinks what it finds."""
TestFailover = FailoverMachine.TestCase


# --- the sequences the exploration found, as explicit regressions ---

def _kill(cluster: Cluster, name: str) -> None:
    cluster.masters[name].exit("SIGKILL")


def _failover(cluster: Cluster) -> None:
    """Two generations on the primary, then it is SIGKILLed and the standby promoted and running a generation."""
    cluster.advance(5.0)
    _kill(cluster, "A")
    cluster.advance(6.0)
    assert cluster.masters["B"].leading and cluster.masters["B"].core.epoch == 2


def test_a_plain_failover_completes_the_run_equal_to_the_local_run():
    cluster = Cluster(2, token=True)
    _failover(cluster)
    cluster.advance(SETTLE_SECONDS)
    assert not cluster.violations and cluster.completed == [local_run().state], _report(cluster)


def test_the_old_primary_restarted_as_standby_takes_over_on_the_second_failover():
    cluster = Cluster(2, token=True)
    _failover(cluster)
    cluster.start_master("A", "B")
    cluster.advance(3.0)
    _kill(cluster, "B")
    cluster.advance(SETTLE_SECONDS)
    assert cluster.completed == [local_run().state], _report(cluster)


def test_resubmitted_masters_go_on_from_the_newest_state():
    cluster = Cluster(2, token=True)
    _failover(cluster)
    cluster.masters["B"].finish()  # SIGTERM: a job's time limit
    cluster.advance(1.0)
    restart_the_dead(cluster)
    cluster.advance(SETTLE_SECONDS)
    assert cluster.completed == [local_run().state], _report(cluster)


def test_one_checkpoint_file_never_gives_two_leaders_of_an_epoch():
    cluster = Cluster(2, token=True, shared_checkpoint=True)
    _failover(cluster)
    cluster.start_master("A")
    cluster.workers[0].exit("SIGKILL")
    cluster.restart_worker(0)  # a worker new to the run tries A first
    cluster.advance(SETTLE_SECONDS)
    assert not cluster.violations, _report(cluster)


def test_two_standbys_never_linked_the_newer_state_leads():
    cluster = Cluster(2, token=True)
    _failover(cluster)
    cluster.start_master("A", "B")  # the old primary restarted as the standby of the promoted master (item 1)
    _kill(cluster, "B")  # which dies before A links to it
    cluster.start_master("B")  # and is started again with its original command: the standby of A
    cluster.advance(SETTLE_SECONDS)
    assert cluster.completed == [local_run().state], _report(cluster)


def test_a_standby_resumed_after_a_freeze_does_not_take_over_from_a_live_primary():
    cluster = Cluster(2, token=True)
    cluster.advance(0.5)
    cluster.masters["B"].frozen = True
    cluster.advance(6.0)  # the primary evolves on and drops its silent standby
    cluster.masters["B"].frozen = False
    told = len(cluster.told_at)
    cluster.advance(SETTLE_SECONDS)
    replayed = [generation for _, _, generation in cluster.told_at[told:]]
    assert cluster.completed == [local_run().state] and replayed == sorted(set(replayed)), _report(cluster)
    assert min(replayed) >= cluster.told_at[told - 1][2], _report(cluster)


def test_a_promoted_standby_killed_before_its_first_generation_is_led_on_after_a_resubmission():
    """Found by the soak: the promoted standby (epoch 2) accepts the workers and dies before it saves a
    generation; resubmitted, the primary resumes epoch 1 and stands down before the workers, and the standby's
    checkpoint must still say epoch 2, led by it, so that it takes the lead (epoch 3) once its primary is gone."""
    cluster = Cluster(2, token=True)
    cluster.advance(0.5)
    _kill(cluster, "A")
    cluster.advance(4.0)
    assert cluster.masters["B"].leading and all(worker.served_epoch == 2 for worker in cluster.workers)
    for name in ("B", "A"):
        _kill(cluster, name)
    cluster.cut.add(frozenset("AB"))  # the workers reach the restarted primary first
    restart_the_dead(cluster)
    cluster.advance(2.0)
    assert not cluster.masters["A"].alive and "stood down" in str(cluster.masters["A"].exit_reason)
    cluster.cut.clear()
    cluster.advance(SETTLE_SECONDS)
    assert cluster.completed == [local_run().state], _report(cluster)


def test_the_old_primary_started_again_with_its_original_command_stands_down_before_the_promoted_master():
    """Found by the soak: the fence stopped at the frozen primary's stand-down, so the same primary started again
    (epoch 1, from its own checkpoint) led a second copy of the run with a worker new to it."""
    cluster = Cluster(2, token=True)
    cluster.advance(2.0)
    cluster.masters["A"].frozen = True
    cluster.advance(6.0)
    assert cluster.masters["B"].leading
    cluster.masters["A"].frozen = False
    cluster.advance(1.0)
    assert not cluster.masters["A"].alive and "stood down" in str(cluster.masters["A"].exit_reason)
    cluster.start_master("A")
    cluster.workers[0].exit("SIGKILL")
    cluster.restart_worker(0)  # a worker new to the run tries A first
    cluster.advance(SETTLE_SECONDS)
    assert not cluster.violations and cluster.completed == [local_run().state], _report(cluster)
