"""A model of the failover protocol: the real sans-IO cores (two masters, their standby links, workers) wired in
memory on a fake clock, driven by the same glue as the I/O shells, with faults injected at will.

``Cluster`` is the world: an in-memory network (ordered byte streams per connection, links that can be cut so
that bytes wait, listeners that die or freeze), master processes (``MasterNode``: a ``MasterProtocol``, the
``StandbyLink`` or the old-primary fence of ``io.standby`` as a ``Link``, a real ``Population`` evolved by
ask/tell as ``DistributedPopulation.run_generation`` does, a checkpoint file) and workers (``WorkerNode``:
``io.worker.WorkerNode``'s multi-master retry and served epoch around a ``WorkerProtocol``). Every generation a
master completes is checked against the local run with the same seed; ``Cluster.violations`` collects every
broken invariant (see tests/test_failover_model.py for the list and the state machine that explores faults).
"""

from __future__ import annotations

import math
import re
from collections import deque
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

from neatify import Population
from neatify.distributed import DistributedConfig
from neatify.distributed.core.actions import Close, Send
from neatify.distributed.core.events import (
    Ended, Follower, Promote, Registered, Replicated, Shutdown, StoodDown, Task,
)
from neatify.distributed.core.fencing import resumed_epoch
from neatify.distributed.core.master import MasterProtocol
from neatify.distributed.core.scheduler import GenerationJob
from neatify.distributed.core.standby import StandbyProtocol, encode_state
from neatify.distributed.core.worker import REGISTRATION_TIMEOUT, WorkerProtocol
from neatify.distributed.errors import ConnectionClosed, ProtocolError
from neatify.distributed.wire import auth
from neatify.distributed.wire.framing import PROTOCOL_VERSION, FrameDecoder, encode_frame
from neatify.distributed.wire.messages import RegistrationAck, StandbyRegistration, StateSnapshot, WorkerRegistration

TOKEN = "s3cret"
POP_SIZE, SEED, GENERATIONS = 12, 7, 8
HEARTBEAT = 1.0
SUBSTEP = 0.25
"""Seconds between two rounds of ticks: the shells tick every 0.1 to 0.5 s."""
MAX_FRAME = 1 << 26
RETRY = min(0.5, HEARTBEAT / 4)
"""``StandbyLink``'s wait between two attempts to reach the primary."""
WORKER_RETRY_INITIAL, WORKER_RETRY_MAX = 0.5, 10.0
EVALUATION = 0.5
"""Fake seconds a worker takes to evaluate one batch (so that faults fall in the middle of generations)."""
CLOSE = object()
"""The end of a byte stream (after the bytes before it)."""


def fitness_of(genome: Any) -> float:
    """A deterministic fitness read from the genes (so every evaluator agrees, and the local run can be replayed)."""
    return math.fsum(c.weight for c in genome.connections.values() if c.enabled)


@dataclass(frozen=True)
class LocalRun:
    """The run without any distribution: each generation's fitness by genome id, and the final state."""

    fitness: list[dict[int, float]]
    state: dict[str, Any]


@lru_cache(maxsize=1)
def local_run() -> LocalRun:
    population = Population(POP_SIZE, 2, 1, seed=SEED)
    fitness = []
    for _ in range(GENERATIONS):
        genomes = population.ask()
        values = {genome.id: fitness_of(genome) for genome in genomes}
        fitness.append(values)
        population.tell([values[genome.id] for genome in genomes])
    return LocalRun(fitness, population.state_dict())


@dataclass
class Checkpoint:
    """A checkpoint file (one object when two masters share it): the last state saved there, its epoch and the
    master that led it (the fencing token), and the master holding its lock (``io.lock.CheckpointLock``)."""

    state: dict[str, Any] | None = None
    epoch: int | None = None
    leader: str | None = None
    holder: MasterNode | None = None

    def save(self, state: dict[str, Any], epoch: int, leader: str | None) -> None:
        self.state, self.epoch, self.leader = state, epoch, leader

    def lock(self, node: MasterNode) -> str | None:
        """Take the lock for ``node``; why not, if another running master holds it (a flock dies with its
        process)."""
        if self.holder is not None and self.holder is not node and self.holder.alive:
            return f"another master leads the run saved here ({self.holder!r} holds the lock)"
        self.holder = node
        return None

    @property
    def generations(self) -> int:
        return 0 if self.state is None else len(self.state["history"])


@dataclass(eq=False)
class Conn:
    """One TCP connection: a client node to a master's address, a byte stream each way, either end closable."""

    id: int
    client: Any
    server: MasterNode
    up: deque = field(default_factory=deque)
    """Client to server: bytes, then CLOSE."""
    down: deque = field(default_factory=deque)
    client_open: bool = True
    server_open: bool = True
    announced: bool = False
    sent_after_stand_down: bool = False
    """Whether the master sent anything on it after standing down (an acceptance then would be a leader's)."""
    """Whether the master's core was told it connected (a frozen master's kernel accepts, its loop does not)."""

    def send_up(self, data: bytes) -> None:
        if self.client_open:
            self.up.append(data)

    def close_up(self) -> None:
        if self.client_open:
            self.client_open = False
            self.down.clear()  # nothing more is read on this side
            self.up.append(CLOSE)


class Link:
    """``io.standby.StandbyLink`` (``fence`` False: a standby following its primary) or ``OldPrimaryFence`` (True:
    a promoted standby registering at its old primary's address until that one stands down)."""

    def __init__(self, node: MasterNode, target: str, epoch: int, fence: bool) -> None:
        self.node, self.target, self.fence = node, target, fence
        cluster = node.cluster
        self.core = StandbyProtocol(cluster.config.auth_token, target, MAX_FRAME, cluster.config.peer_timeout,
                                    cluster.now, epoch, None if fence else node.population.generation,
                                    not fence and node.led)
        self.conn: Conn | None = None
        self.next_try = cluster.now
        self.done = False

    @property
    def name(self) -> str:
        return self.node.name

    def step(self, now: float) -> None:
        if self.done:
            return
        if self.conn is None:
            if now < self.next_try:
                return
            if not self.fence:  # StandbyLink._between ticks after the pause as well
                self._act(self.core.tick(now))
                if self.done:
                    return
            self.conn = self.node.cluster.connect(self, self.target)
            if self.conn is None:
                self._wait()
                if not self.fence:  # StandbyLink.follow ticks after a failed try; the fence does not
                    self._act(self.core.tick(now))
                return
            self.conn.send_up(self.core.connect(now).data)
            return
        self._act(self.core.tick(now))

    def on_data(self, data: bytes) -> None:
        self._act(self.core.received(data, self.node.cluster.now))

    def on_close(self) -> None:
        self._act(self.core.closed(self.node.cluster.now))

    def stop(self) -> None:
        self.done = True
        self._hang_up()

    def _hang_up(self) -> None:
        if self.conn is not None:
            self.conn.close_up()
            self.conn = None
        self._wait()

    def _wait(self) -> None:
        """The wait before the next try: ``StandbyLink.follow``'s backs off after fruitless links, the fence's not."""
        self.next_try = self.node.cluster.now + (RETRY if self.fence else self.core.pause(RETRY))

    def _act(self, events: list) -> None:
        """``StandbyLink._act`` and what ``follow``/``_watch`` do with what ended the connection."""
        for event in events:
            if isinstance(event, Send):
                if self.conn is not None:
                    self.conn.send_up(event.data)
            elif isinstance(event, Replicated) and not self.fence:
                self.node.replicated(event.snapshot)
            elif isinstance(event, Ended):
                if event.fatal:
                    self.done = True
                    self._hang_up()
                    if not self.fence:
                        self.node.exit(f"standby link refused for good: {event.error}")
                    return
                self._hang_up()
                if not self.fence:  # follow() ticks once the connection is over: the primary may be gone
                    self._act(self.core.tick(self.node.cluster.now))
                return
            elif isinstance(event, (Promote, Shutdown, StoodDown, Follower)):
                self._hang_up()
                if self.fence:  # OldPrimaryFence._watch: fences on after a stand-down, until a follower answers
                    self.done = isinstance(event, Follower)
                    self.core.primary_older = None
                elif isinstance(event, Promote):
                    self.done = True
                    self.node.promote(self, event.epoch)
                elif isinstance(event, Shutdown):
                    self.done = True
                    self.node.exit("standby: the primary ended the run", code=0)
                else:
                    self._act(self.core.tick(self.node.cluster.now))
                return


class MasterNode:
    """A ``neatify master`` process: primary (``standby_of`` None) or standby, with its checkpoint file."""

    def __init__(self, cluster: Cluster, name: str, standby_of: str | None, checkpoint: Checkpoint | None) -> None:
        self.cluster, self.name = cluster, name
        self.standby_of, self.checkpoint = standby_of, checkpoint
        cluster.incarnations += 1
        self.incarnation = cluster.incarnations
        self.alive, self.frozen = True, False
        self.exit_reason: str | None = None
        self.finished = False
        self.seen_epoch = 0
        """The highest epoch this master saw when it stood down (0: it never did)."""
        self.held = 0
        """Generations of the newest state this master held (its checkpoint, a snapshot it replicated): it never
        evaluates a generation before that (invariant 3)."""
        self.population = Population(POP_SIZE, 2, 1, seed=SEED)
        self.led = False
        """Whether it resumed a checkpoint of the epoch it led itself (a standby then follows as one linked)."""
        self.epoch = self._resume()
        self.core = MasterProtocol(cluster.config, name, started=cluster.now, epoch=self.epoch,
                                   standby=standby_of is not None, generation=self.population.generation)
        self.link = None if standby_of is None else Link(self, standby_of, self.epoch, fence=False)
        self.fence: Link | None = None
        self.asked: list | None = None
        self.by_conn: dict[int, Conn] = {}
        if standby_of is None and self._lead():
            self._replicate()

    def _resume(self) -> int:
        """``DistributedPopulation._resume``: the checkpoint's state, and its epoch (a primary's above it unless it
        led it itself)."""
        checkpoint = self.checkpoint
        if checkpoint is None or checkpoint.state is None:
            return 1
        self.population.load_state_dict(checkpoint.state)
        self.held = checkpoint.generations
        self.led = checkpoint.leader == self.name
        if self.standby_of is not None:
            return checkpoint.epoch or 1
        return resumed_epoch(checkpoint.epoch, checkpoint.leader, self.name)

    def _lead(self) -> bool:
        """``DistributedPopulation._lead``: take the checkpoint's lock, or exit 1 naming its holder."""
        problem = None if self.checkpoint is None else self.checkpoint.lock(self)
        if problem is not None:
            self.exit(problem)
        return problem is None

    def __repr__(self) -> str:
        role = "primary" if self.standby_of is None else f"standby of {self.standby_of}"
        return f"master {self.name}#{self.incarnation} ({role}, epoch {self.core.epoch})"

    @property
    def running(self) -> bool:
        return self.alive and not self.frozen

    @property
    def leading(self) -> bool:
        """Alive (frozen or not), promoted or primary, not stood down, the run not finished."""
        return self.alive and not self.core.standby and self.core.stood_down is None and not self.finished

    # --- the core's actions and outcome ---
    def apply(self, actions: list) -> None:
        for action in actions:
            conn = self.by_conn.get(action.conn)
            if conn is None or not conn.server_open:
                continue
            if isinstance(action, Send):
                conn.sent_after_stand_down |= self.core.stood_down is not None
                if conn.client_open:
                    conn.down.append(action.data)
            elif isinstance(action, Close):
                conn.server_open = False
                conn.up.clear()
                if not action.flush:
                    conn.down.clear()
                conn.down.append(CLOSE)
        self._check_stood_down()
        outcome = self.core.take_outcome()
        if outcome is not None:
            self._finished_generation(outcome)

    def _check_stood_down(self) -> None:
        error = self.core.stood_down
        if error is not None and not self.seen_epoch:
            seen = [int(epoch) for epoch in re.findall(r"served epoch (\d+)", str(error))]
            self.seen_epoch = max(seen, default=self.core.epoch + 1)
            self.cluster.log(f"{self!r} stood down: {error}")
            if not self.core.standby and self.alive:  # evaluate() raises it: `neatify master` exits 1
                self.exit(f"stood down: {error}")

    def _finished_generation(self, outcome: Any) -> None:
        asked, self.asked = self.asked, None
        if outcome.error is not None:
            if self.alive and not self.finished:
                self.exit(f"generation failed: {outcome.error}")
            return
        assert asked is not None
        self.cluster.told(self, outcome.job.generation, [genome.id for genome in asked], outcome.fitness)
        self.population.tell([outcome.fitness[genome.id] for genome in asked])
        self.core.reached(self.population.generation)
        state = self.population.state_dict()
        if self.checkpoint is not None:
            self.checkpoint.save(state, self.core.epoch, self.name)
        if self.core.has_follower:
            self._replicate(state)

    def _replicate(self, state: dict[str, Any] | None = None) -> None:
        state = self.population.state_dict() if state is None else state
        frame = encode_frame(StateSnapshot(self.core.epoch, self.population.generation, encode_state(state, [])))
        self.apply(self.core.replicate(frame))

    # --- the process ---
    def step(self, now: float) -> None:
        """One round of the event loop's tick, the links' reads, and the evolution's next move."""
        if not self.running:
            return
        self.apply(self.core.tick(now))
        for link in (self.link, self.fence):
            if link is not None and self.running:
                link.step(now)
        self.evolve()

    def evolve(self) -> None:
        """``_evolve``: ask the next generation while generations remain; once done, shut down."""
        if not self.running or self.core.standby or self.asked is not None or not self.leading:
            return
        if len(self.population.history) >= GENERATIONS:
            self.finish()
            return
        self.asked = self.population.ask()
        self.apply(self.core.submit(GenerationJob(self.population.generation, self.asked), self.cluster.now))

    def finish(self) -> None:
        """The run is done (or SIGTERM): tell every worker and the standby, then exit 0."""
        self.cluster.log(f"{self!r} ends the run at generation {self.population.generation}")
        if len(self.population.history) >= GENERATIONS:
            self.finished = True
            self.cluster.completed.append(self.population.state_dict())
        self.apply(self.core.shutdown(self.cluster.now))
        self.exit("shut down", code=0)

    def replicated(self, snapshot: Any) -> None:
        """``DistributedPopulation._replicated``: a standby holds every snapshot's epoch and saves the snapshot to its
        checkpoint."""
        self.core.holds(snapshot.epoch, snapshot.generation)
        self.held = max(self.held, snapshot.generation)
        if self.checkpoint is not None:
            self.checkpoint.save(snapshot.population, snapshot.epoch, self.standby_of)

    def promote(self, link: Link, epoch: int) -> None:
        """``DistributedPopulation.follow`` after ``Promote``: load the last snapshot, lead, fence the old primary."""
        snapshot = link.core.snapshot
        if snapshot is not None:
            self.population.load_state_dict(snapshot.population)
        if not self._lead():
            return
        if self.checkpoint is not None:  # the epoch on disk before a worker serves it
            self.checkpoint.save(self.population.state_dict(), self.core.promotion(epoch), self.name)
        self.epoch = self.core.promote(epoch)
        self.cluster.log(f"{self!r} promoted")
        assert self.standby_of is not None
        self.fence = Link(self, self.standby_of, self.epoch, fence=True)
        self._replicate()  # a standby of its own (the old primary, restarted) gets the state at once
        if self.core.stood_down is not None:  # evaluate() raises it: `neatify master` exits 1
            self.exit(f"promoted while stood down: {self.core.stood_down}")
        self._check_stood_down()

    def exit(self, reason: str, code: int = 1) -> None:
        """The process ends: every connection it holds closes (the kernel's FIN)."""
        if not self.alive:
            return
        self.cluster.log(f"{self!r} exits {code}: {reason}")
        self.alive, self.exit_reason = False, reason
        self.cluster.exits.append((self.name, code, reason))
        for link in (self.link, self.fence):
            if link is not None:
                link.stop()
        self.cluster.drop_node(self)


class WorkerNode:
    """``io.worker.WorkerNode`` given both masters: tries them in turn, never serves an older epoch than served."""

    def __init__(self, cluster: Cluster, name: str, masters: tuple[str, ...]) -> None:
        self.cluster, self.name, self.masters = cluster, name, masters
        self.alive, self.frozen, self.exit_reason = True, False, None
        self.served_epoch = 0
        self.accepted_by: list[tuple[int, int]] = []
        """(master incarnation, epoch) of every acceptance."""
        self.heartbeat: float | None = None
        self.next, self.failures, self.next_try = 0, 0, cluster.now
        self.core: WorkerProtocol | None = None
        self.conn: Conn | None = None
        self.tasks: list[Task] = []
        self.busy_until = cluster.now
        """When the batch at the head of ``tasks`` is evaluated."""

    @property
    def running(self) -> bool:
        return self.alive and not self.frozen

    @property
    def where(self) -> str:
        return self.masters[self.next]

    def step(self, now: float) -> None:
        if not self.running:
            return
        if self.conn is None:
            if now >= self.next_try:
                self._dial(now)
            return
        assert self.core is not None
        self._act(self.core.tick(now))
        while self.tasks and self.conn is not None and now >= self.busy_until:
            task = self.tasks.pop(0)
            fitness = [[genome.id, fitness_of(genome)] for genome in task.genomes]
            self.conn.send_up(self.core.report(task.batch_id, fitness, [], EVALUATION))
            self.busy_until = now + EVALUATION

    def _dial(self, now: float) -> None:
        self.conn = self.cluster.connect(self, self.where)
        if self.conn is None:
            self._back_off()
            return
        timeout = REGISTRATION_TIMEOUT if self.heartbeat is None else min(REGISTRATION_TIMEOUT, self.heartbeat)
        self.core = WorkerProtocol(self.name, 5, self.cluster.config.auth_token, self.where, MAX_FRAME, now,
                                   epoch=self.served_epoch, registration_timeout=timeout)
        self.conn.send_up(self.core.hello().data)

    def _back_off(self) -> None:
        """``WorkerNode._back_off``: the next master at once, a wait after each round of them."""
        self.failures += 1
        rounds, rest = divmod(self.failures, len(self.masters))
        cap = WORKER_RETRY_MAX if self.heartbeat is None else min(WORKER_RETRY_MAX, self.heartbeat)
        delay = 0.0 if rest else min(cap, WORKER_RETRY_INITIAL * 2 ** (rounds - 1))
        self.next = (self.next + 1) % len(self.masters)
        self.next_try = self.cluster.now + delay

    def on_data(self, data: bytes) -> None:
        assert self.core is not None
        self._act(self.core.received(data, self.cluster.now))

    def on_close(self) -> None:
        assert self.core is not None
        self._act(self.core.closed())

    def _act(self, events: list) -> None:
        conn = self.conn
        for event in events:
            if isinstance(event, Send):
                if conn is not None:
                    conn.send_up(event.data)
            elif isinstance(event, Registered):
                self.cluster.worker_accepted(self, conn, event.epoch)
                self.served_epoch = max(self.served_epoch, event.epoch)
                self.heartbeat, self.failures = event.heartbeat_interval, 0
            elif isinstance(event, Task):
                if not self.tasks:
                    self.busy_until = max(self.busy_until, self.cluster.now + EVALUATION)
                self.tasks.append(event)
            elif isinstance(event, Shutdown):
                self.exit("the master shut it down")
                return
            elif isinstance(event, Ended):
                self._hang_up()
                if isinstance(event.error, (ConnectionClosed, ProtocolError, OSError)):
                    self._back_off()
                else:
                    self.exit(f"refused for good: {event.error}")
                return

    def _hang_up(self) -> None:
        if self.conn is not None:
            self.conn.close_up()
        self.conn, self.tasks = None, []

    def exit(self, reason: str) -> None:
        self._hang_up()
        self.alive, self.exit_reason = False, reason
        self.cluster.drop_node(self)


class Rogue:
    """A peer that claims to have served a high epoch: it registers as a worker or a standby and, challenged,
    answers with a proof it cannot make (it lacks the token)."""

    def __init__(self, cluster: Cluster, name: str, standby: bool, epoch: int) -> None:
        self.cluster, self.name = cluster, name
        nonce = auth.new_nonce()
        self.hello = StandbyRegistration(PROTOCOL_VERSION, epoch, nonce=nonce) if standby else \
            WorkerRegistration(PROTOCOL_VERSION, name, 5, nonce=nonce, epoch=epoch)
        self.decoder = FrameDecoder(MAX_FRAME)
        self.conn: Conn | None = None
        self.running = True

    def on_data(self, data: bytes) -> None:
        self.decoder.buffer(data)
        try:
            while (message := self.decoder.next_message()) is not None:
                if isinstance(message, RegistrationAck) and message.status == "challenge" and self.conn:
                    self.conn.send_up(encode_frame(replace(self.hello, proof=bytes(32))))
        except ProtocolError:
            pass

    def on_close(self) -> None:
        self.conn = None


class Cluster:
    """The world: masters at addresses "A" and "B", workers, the network between them, the fake clock, and what
    the invariants saw."""

    def __init__(self, workers: int = 2, token: bool = True, shared_checkpoint: bool = False) -> None:
        self.now = 0.0
        self.config = DistributedConfig(auth_token=TOKEN if token else None, heartbeat_interval=HEARTBEAT)
        shared = Checkpoint()
        self.files = {"A": shared, "B": shared} if shared_checkpoint else {"A": Checkpoint(), "B": Checkpoint()}
        self.commands = {"A": None, "B": "A"}
        """Each master's original command: primary, or the standby of an address."""
        self.incarnations = 0
        self.masters: dict[str, MasterNode] = {}
        self.workers = [WorkerNode(self, f"w{i}", ("A", "B")) for i in range(workers)]
        self.rogues: list[Rogue] = []
        self.conns: list[Conn] = []
        self.cut: set[frozenset[str]] = set()
        self.trace: list[str] = []
        self.exits: list[tuple[str, int, str]] = []
        self.violations: list[str] = []
        self.completed: list[dict[str, Any]] = []
        self.leader_of: dict[int, MasterNode] = {}
        self.told_at: list[tuple[int, int, int]] = []
        """(incarnation, epoch, generation) of every generation told."""
        self.progress = True
        """Whether invariant 3 is checked (the soak may look past it)."""
        self.newest_resubmitted: tuple[int, int] | None = None
        """(epoch, generations) of the newest checkpoint when both masters were last resubmitted, until the first
        generation told at that epoch or above, or the next fault."""
        self._next_conn = 0
        for name in ("A", "B"):
            self.start_master(name)

    def log(self, line: str) -> None:
        self.trace.append(f"t={self.now:.2f} {line}")

    def violated(self, what: str) -> None:
        self.log(f"VIOLATION {what}")
        self.violations.append(what)

    # --- processes ---
    def start_master(self, name: str, standby_of: str | None | bool = True) -> MasterNode:
        """Start ``neatify master`` at ``name``: with its original command (``standby_of`` True), or as given."""
        command = self.commands[name] if standby_of is True else standby_of
        node = self.masters[name] = MasterNode(self, name, command, self.files[name])  # type: ignore[arg-type]
        self.log(f"started {node!r} from a checkpoint of {self.files[name].generations} generation(s)")
        return node

    def drop_node(self, node: Any) -> None:
        """A process ended: its connections close, the peer reads the end after the bytes already sent."""
        for conn in self.conns:
            if conn.server is node and conn.server_open:
                conn.server_open = False
                conn.up.clear()
                conn.down.append(CLOSE)
            if conn.client is node or (isinstance(conn.client, Link) and conn.client.node is node):
                conn.close_up()

    def connect(self, client: Any, address: str) -> Conn | None:
        """A connection to ``address``, or None when refused (nothing listening there) or cut off."""
        node = self.masters.get(address)
        if node is None or not node.alive or frozenset((client.name, address)) in self.cut:
            return None
        self._next_conn += 1
        conn = Conn(self._next_conn, client, node)
        node.by_conn[conn.id] = conn
        self.conns.append(conn)
        return conn

    def restart_worker(self, index: int) -> None:
        """A worker process started again: a new one, which has served no epoch."""
        self.workers[index] = WorkerNode(self, f"w{index}", ("A", "B"))
        self.log(f"started worker w{index}")

    def rogue(self, address: str, standby: bool, epoch: int) -> None:
        rogue = Rogue(self, f"rogue{len(self.rogues)}", standby, epoch)
        self.rogues.append(rogue)
        rogue.conn = self.connect(rogue, address)
        if rogue.conn is not None:
            rogue.conn.send_up(encode_frame(rogue.hello))

    # --- the network ---
    def _movable(self, conn: Conn) -> tuple[str, Any] | None:
        """The next thing that can move on ``conn``: toward the master first, then toward the client."""
        linked = frozenset((conn.client.name, conn.server.name)) not in self.cut
        if linked and conn.up and conn.server.running:
            return "up", conn.up
        if linked and conn.down and _client_running(conn.client):
            return "down", conn.down
        return None

    def deliver_one(self, conn: Conn) -> bool:
        movable = self._movable(conn)
        if movable is None:
            return False
        way, queue = movable
        item = queue.popleft()
        if way == "up":
            node = conn.server
            if not conn.announced:
                conn.announced = True
                node.apply(node.core.connected(conn.id, f"{conn.client.name}:{conn.id}", self.now))
            if item is CLOSE:
                node.by_conn.pop(conn.id, None)
                if conn.server_open:
                    conn.server_open = False
                    node.apply(node.core.closed(conn.id, "connection closed by peer", self.now, eof=True))
            elif conn.server_open:
                node.apply(node.core.received(conn.id, item, self.now))
        else:
            client = conn.client
            if getattr(client, "conn", None) is not conn:
                return True  # the client moved on from this connection: nothing reads it
            if item is CLOSE:
                conn.client_open = False
                client.on_close()
                if getattr(client, "conn", None) is conn:
                    client.conn = None
            else:
                client.on_data(item)
        return True

    def deliver(self, limit: int = 100_000) -> None:
        """Move everything that can move (bounded: a loop of messages would be a bug)."""
        for _ in range(limit):
            if not any([self.deliver_one(conn) for conn in self.conns]):
                self.conns = [c for c in self.conns if c.up or c.down or (c.client_open and c.server_open)]
                return
        raise AssertionError("messages never stop flowing")

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass in rounds: what arrived is read first, then every running process ticks."""
        end = self.now + seconds
        while self.now < end - 1e-9:
            self.now = min(end, self.now + SUBSTEP)
            self.deliver()
            for node in list(self.masters.values()):
                node.step(self.now)
                self.deliver()
            for worker in self.workers:
                worker.step(self.now)
                self.deliver()

    # --- what the invariants watch ---
    def worker_accepted(self, worker: WorkerNode, conn: Conn | None, epoch: int) -> None:
        assert conn is not None
        master = conn.server
        self.log(f"{worker.name} registered with {master!r}")
        if epoch < worker.served_epoch:
            self.violated(f"{worker.name} served epoch {worker.served_epoch}, then {master!r} at epoch {epoch}")
        worker.accepted_by.append((master.incarnation, epoch))
        if conn.sent_after_stand_down:
            self.violated(f"{master!r} accepted {worker.name} after it stood down")
        self._leads(master, epoch, f"accepted {worker.name}", master.seen_epoch and not conn.sent_after_stand_down)

    def told(self, master: MasterNode, generation: int, ids: list[int], fitness: dict[int, float]) -> None:
        self.log(f"{master!r} told generation {generation}")
        self.told_at.append((master.incarnation, master.core.epoch, generation))
        self._leads(master, master.core.epoch, f"told generation {generation}")
        if self.progress:
            self._progresses(master, generation)
        local = local_run().fitness
        if generation >= len(local):
            self.violated(f"{master!r} evaluated generation {generation}, beyond the run's {len(local)}")
        elif ids != list(local[generation]) or fitness != local[generation]:
            lost = set(local[generation]) - set(fitness)
            extra = set(fitness) - set(local[generation])
            self.violated(f"{master!r} generation {generation} differs from the local run (lost {sorted(lost)}, "
                          f"extra {sorted(extra)})")

    def _progresses(self, master: MasterNode, generation: int) -> None:
        """Invariant 3: no master evaluates a generation behind a state it held (its checkpoint, a snapshot it
        replicated), and after a resubmission the newest checkpoint's epoch goes on from that checkpoint."""
        if generation < master.held:
            self.violated(f"{master!r} evaluated generation {generation}, behind the state of {master.held} "
                          "generation(s) it held")
        newest = self.newest_resubmitted
        if newest is not None and master.core.epoch >= newest[0]:
            self.newest_resubmitted = None
            if generation < newest[1]:
                self.violated(f"after the resubmission {master!r} went on from generation {generation}, behind the "
                              f"newest checkpoint (epoch {newest[0]}, {newest[1]} generations)")

    def resubmitted(self) -> None:
        """Both masters were started again from their files: the newest one must win (invariant 3)."""
        self.newest_resubmitted = max((f.epoch or 0, f.generations) for f in self.files.values())

    def _leads(self, master: MasterNode, epoch: int, what: str, accepted_before: bool = False) -> None:
        """Invariants 1 and 2: one leader per epoch at a time; a master that saw a newer epoch leads no older one
        (``accepted_before``: the acceptance was sent before it saw it, and arrived after)."""
        if not accepted_before and master.seen_epoch and epoch <= master.seen_epoch:
            self.violated(f"{master!r} {what} at epoch {epoch} after seeing epoch {master.seen_epoch}")
        other = self.leader_of.get(epoch)
        if other is not None and other is not master and other.leading:
            self.violated(f"two masters lead epoch {epoch}: {other!r} and {master!r} ({what})")
        self.leader_of[epoch] = master

    def check_workers(self) -> None:
        """Invariant 4: a worker's served epoch is the highest of the masters that accepted it."""
        for worker in self.workers:
            served = max((epoch for _, epoch in worker.accepted_by), default=0)
            if worker.served_epoch != served:
                self.violated(f"{worker.name} claims epoch {worker.served_epoch}, served {served}")


def _client_running(client: Any) -> bool:
    if isinstance(client, Link):
        return client.node.running and not client.done
    return bool(client.running)
