"""What the three sans-IO cores share: the table of connection states, and one vocabulary of actions and events,
shown by wiring a real master, worker and standby core together in memory on a fake clock."""

from __future__ import annotations

import msgspec
import pytest

from neatify import Population
from neatify.distributed import DistributedConfig
from neatify.distributed.core._state import ConnectionState, ConnectionStateError, Phase, Role
from neatify.distributed.core.actions import Close, Send
from neatify.distributed.core.events import Registered, Replicated, Shutdown, Task
from neatify.distributed.core.master import MasterProtocol
from neatify.distributed.core.scheduler import GenerationJob
from neatify.distributed.core.standby import StandbyProtocol, encode_state
from neatify.distributed.core.worker import WorkerProtocol
from neatify.distributed.wire.framing import PROTOCOL_VERSION, encode_frame, encode_raw
from neatify.distributed.wire.messages import (
    MAX_CORES, MessageType, RegistrationAck, StateSnapshot, TaskAssignment, WorkerRegistration,
)
from test_master_protocol import Net, genomes

TOKEN = "s3cret"


def test_a_registration_moves_through_the_named_phases():
    state = ConnectionState(3)
    state.claim(Role.WORKER)
    for phase in (Phase.CHALLENGED, Phase.REGISTERED, Phase.CLOSED):
        state.advance(phase)
    assert state.closed and repr(state) == "connection 3 (worker, closed)"


@pytest.mark.parametrize("role, moves, bad", [
    (Role.STATUS, [Phase.CHALLENGED], Phase.REGISTERED),  # a status client is answered, never registered
    (Role.WORKER, [Phase.REGISTERED], Phase.CHALLENGED),  # no challenge once accepted
    (Role.STANDBY, [Phase.CLOSED], Phase.CLOSED),  # closed once
    (None, [], Phase.CHALLENGED),  # nothing read yet: no role to challenge
])
def test_an_impossible_move_is_an_internal_error_naming_the_connection_and_both_states(role, moves, bad):
    state = ConnectionState(7, role)
    for phase in moves:
        state.advance(phase)
    before = state.phase
    named = "no role" if role is None else role.value
    with pytest.raises(ConnectionStateError, match=rf"connection 7 \({named}, {before.value}\) cannot move to "
                                                   rf"{bad.value}"):
        state.advance(bad)
    assert state.phase is before


def test_the_role_is_claimed_once_by_the_first_request():
    state = ConnectionState(1)
    state.claim(Role.STANDBY)
    with pytest.raises(ConnectionStateError, match=r"connection 1 \(standby, opened\) cannot take the role worker"):
        state.claim(Role.WORKER)


class Wiring:
    """A master core and its peers' cores, each peer on its own connection id: every ``Send`` one side returns is
    the other side's ``received``, every ``Close`` the other side's ``closed``; the rest is collected per peer."""

    def __init__(self) -> None:
        self.now = 0.0
        self.config = DistributedConfig(auth_token=TOKEN, heartbeat_interval=1.0)
        self.master = MasterProtocol(self.config, "master:1")
        self.peers: dict[int, WorkerProtocol | StandbyProtocol] = {}
        self.events: dict[int, list] = {}

    def join(self, peer: WorkerProtocol | StandbyProtocol, first: Send) -> int:
        conn = len(self.peers) + 1
        self.peers[conn], self.events[conn] = peer, []
        self.to_peers(self.master.connected(conn, f"peer-{conn}", self.now))
        self.from_peer(conn, [first])
        return conn

    def from_peer(self, conn: int, outputs: list) -> None:
        for output in outputs:
            if isinstance(output, Send):
                self.to_peers(self.master.received(conn, output.data, self.now))
            else:
                self.events[conn].append(output)

    def to_peers(self, actions: list) -> None:
        for action in actions:
            peer = self.peers[action.conn]
            if isinstance(action, Close):
                self.from_peer(action.conn, peer.closed(self.now) if isinstance(peer, StandbyProtocol) else
                               peer.closed())
            else:
                self.from_peer(action.conn, peer.received(action.data, self.now))


def test_a_master_worker_and_standby_core_wired_in_memory_run_a_generation_and_end_the_run():
    wiring = Wiring()
    worker = WorkerProtocol("w", 50, TOKEN, "master:1", 1 << 20, now=0.0)
    worker_conn = wiring.join(worker, worker.hello())
    standby = StandbyProtocol(TOKEN, "master:1", 1 << 24, 3.0, now=0.0)
    standby_conn = wiring.join(standby, standby.connect(0.0))
    assert wiring.events == {worker_conn: [Registered(1.0, 1)], standby_conn: [Registered(1.0, 1)]}  # both proofs
    genomes = Population(12, 2, 1, seed=3).genomes
    wiring.to_peers(wiring.master.submit(GenerationJob(0, genomes), 0.0))
    while (outcome := wiring.master.take_outcome()) is None:
        task = wiring.events[worker_conn].pop()
        assert isinstance(task, Task)
        wiring.now += 0.1
        fitness = [[genome.id, float(len(genome.connections))] for genome in task.genomes]
        wiring.from_peer(worker_conn, [Send(worker.report(task.batch_id, fitness, [], 0.1))])
    assert outcome.fitness == {genome.id: float(len(genome.connections)) for genome in genomes}
    state = Population(12, 2, 1, seed=3).state_dict()
    wiring.to_peers(wiring.master.replicate(encode_frame(StateSnapshot(1, 0, encode_state(state, [])))))
    assert wiring.events[standby_conn][-1] == Replicated(standby.snapshot) and standby.snapshot.generation == 0
    wiring.to_peers(wiring.master.shutdown(wiring.now))
    assert wiring.events[worker_conn][-1] == Shutdown("master shutting down") and worker.over
    assert wiring.events[standby_conn][-1] == Shutdown("master shutting down") and not standby.connected


def test_a_worker_of_four_cores_registers_once_and_gets_four_times_the_share_of_one_core():
    wiring = Wiring()
    big = WorkerProtocol("big", 1000, TOKEN, "master:1", 1 << 20, now=0.0, cores=4)
    small = WorkerProtocol("small", 1000, TOKEN, "master:1", 1 << 20, now=0.0)
    big_conn, small_conn = wiring.join(big, big.hello()), wiring.join(small, small.hello())
    assert wiring.master.num_workers == 2 and "cores" not in decode_payload(small.hello().data)  # absent: 1
    wiring.to_peers(wiring.master.submit(GenerationJob(0, Population(200, 2, 1, seed=3).genomes), 0.0))
    sizes = [[len(e.genomes) for e in wiring.events[conn] if isinstance(e, Task)] for conn in (big_conn, small_conn)]
    # guided: half of each one's share of the genomes queued, the share counted in cores (4 of 5, then 1 of 5)
    assert sizes == [[80], [12]]


def test_cores_on_the_wire_is_checked_like_every_field():
    hello = WorkerProtocol("w", 50, None, "m", 1 << 20, now=0.0, cores=32).hello()
    assert decode_payload(hello.data)["cores"] == 32
    master = MasterProtocol(DistributedConfig(), "master:1")
    for conn, cores in enumerate((0, MAX_CORES + 1, "32"), start=1):
        master.connected(conn, "peer", 0.0)
        bad = encode_raw(MessageType.WORKER_REGISTRATION, {"protocol_version": PROTOCOL_VERSION, "worker_id": "w",
                                                           "capacity": 50, "cores": cores})
        actions = master.received(conn, bad, 0.0)
        assert isinstance(actions[-1], Close) and "cores" in actions[-1].reason and master.num_workers == 0


def decode_payload(frame: bytes) -> dict:
    """The msgpack map of one encoded frame (after its length and type code)."""
    return msgspec.msgpack.decode(frame[5:])


def test_claimed_cores_count_up_to_trusted_cores_until_the_throughput_backs_more():
    net = Net(trusted_cores=4)
    honest, liar, small = (net.connect(name, capacity=1000, register=False) for name in ("honest", "liar", "small"))
    for worker, cores in ((honest, 16), (liar, 16), (small, None)):
        worker.say(WorkerRegistration(PROTOCOL_VERSION, worker.worker_id, 1000, cores=cores), 0.0)
        assert worker.take(RegistrationAck)[0].status == "accepted"
    net.deliver(net.master.submit(GenerationJob(0, genomes(300)), 0.0))
    # counted as 4 cores each, not 16 (73 first): half of 4/9 of 300, of 4/9 of the 233 left, of 1/9 of the 181
    assert [t.size for w in (honest, liar, small) for t in w.inbox if isinstance(t, TaskAssignment)] == [67, 52, 11]
    for worker, seconds in ((small, 0.1), (honest, 0.1), (liar, 2.0)):  # the liar evaluates like one core
        worker.answer_tasks(seconds, first=1)
    counted = {name: w.cores for name, w in net.master.workers.items()}
    assert counted == {"honest": 8, "liar": 4, "small": 1}  # backed: doubled, up to its claim of 16


def run_at(net: Net, speeds: dict, now: float) -> float:
    """Run the generation submitted to its end, each worker evaluating its batches in turn at ``speeds[worker]``
    genomes a second, on a clock of quarter seconds; returns the time it ended."""
    due: dict = {}
    while (outcome := net.master.take_outcome()) is None:
        now += 0.25
        for worker, speed in speeds.items():
            tasks = [task for task in worker.inbox if isinstance(task, TaskAssignment)]
            if tasks and now >= due.setdefault(worker, now + tasks[0].size / speed):
                worker.answer_tasks(now, elapsed=tasks[0].size / speed, first=1)
                del due[worker]
        net.deliver(net.master.tick(now))
    assert outcome.error is None
    return now


def test_a_worker_is_counted_with_the_cores_its_throughput_backs_beside_the_others_not_with_its_claim():
    net = Net(task_timeout=100.0, heartbeat_interval=100.0)
    workers = {}
    for name, claimed, speed in (("honest", 8, 8.0), ("liar", 64, 8.0), ("big", 64, 16.0)):
        worker = net.connect(name, capacity=1000, register=False)
        worker.say(WorkerRegistration(PROTOCOL_VERSION, name, 1000, cores=claimed), 0.0)
        assert worker.take(RegistrationAck)[0].status == "accepted"
        workers[worker] = speed
    now = 0.0
    for generation in range(4):
        net.deliver(net.master.submit(GenerationJob(generation, genomes(240)), now))
        now = run_at(net, workers, now)
    # trusted_cores 8 each at first; 8 genomes/s is what the honest 8 cores do: the liar stays at 8, and the 16
    # cores' throughput of big backs 16 of its 64, not 32 (3/4 of 32 cores at a genome a second a core is 24/s)
    assert {name: w.cores for name, w in net.master.workers.items()} == {"honest": 8, "liar": 8, "big": 16}
