"""Helpers for the distributed tests: worker/master processes on 127.0.0.1, raw peers, and XOR fitness that can be slowed.

Run as a script it is a worker (``worker ...``) or a checkpointing master (``master ...``), so the
tests can start, kill and stop real processes.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from neatify.distributed.wire.messages import Message, TaskAssignment

from xor_task import xor_fitness, xor_score

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
HOST = "127.0.0.1"


def disturbed_xor_fitness(genomes, sleep: float = 0.0, mark: Path | None = None, raise_on: int | None = None) -> None:
    """``xor_fitness`` that may sleep ``sleep`` seconds a genome, touch ``mark`` first, or raise on genome ``raise_on``."""
    if mark is not None:
        mark.touch()
    for genome in genomes:
        if genome.id == raise_on:
            raise ZeroDivisionError(f"deliberate failure on genome {genome.id}")
        time.sleep(sleep)
        genome.fitness = xor_score(genome)


def slow_xor_fitness(genomes) -> None:
    """``xor_fitness`` taking 20 ms a genome, for runs long enough to disturb (``neatify worker`` can import it)."""
    disturbed_xor_fitness(genomes, sleep=0.02)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``predicate`` every 20 ms for at most ``timeout`` seconds; fail the test if it stays false."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def closed_by_peer(sock: socket.socket, timeout: float = 5.0) -> bool:
    """Whether the peer closes this connection within ``timeout`` (anything it sends first is read)."""
    sock.settimeout(timeout)
    try:
        while sock.recv(4096):
            pass
    except socket.timeout:
        return False
    except ConnectionResetError:
        pass
    return True


def local_state(pop_size: int, seed: int, generations: int) -> dict:
    """State of a plain local ``Population`` run with ``xor_fitness`` (the reference for identity)."""
    from neatify import Population

    pop = Population(pop_size, 2, 1, seed=seed)
    for _ in range(generations):
        pop.run_generation(xor_fitness)
    return comparable(pop.state_dict())


def run(pop, generations: int) -> dict:
    """Run ``generations`` generations of a ``DistributedPopulation``; the comparable state after them."""
    for _ in range(generations):
        pop.run_generation(lambda genomes: None)
    return comparable(pop.state_dict())


def comparable(state: dict) -> dict:
    """The parts of a population state that define the run."""
    keep = ("generation", "genomes", "species", "history", "rng", "next_genome_id", "best_genome", "evaluations")
    return json.loads(json.dumps({k: state[k] for k in keep}))


def children_of(pid):
    """The pids of ``pid``'s child processes, from /proc."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended while we looked
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return children


def alive(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def frames(*messages: Message) -> bytes:
    """The frames of ``messages``, concatenated."""
    from neatify.distributed.wire.framing import encode_frame

    return b"".join(encode_frame(message) for message in messages)


def sent(events) -> list[Message]:
    """The messages a sans-IO peer's ``Send`` events write, decoded as the other side would."""
    from neatify.distributed.wire.framing import FrameDecoder
    from neatify.distributed.core.actions import Send

    decoder = FrameDecoder(1 << 20)
    for event in events:
        if isinstance(event, Send):
            decoder.buffer(event.data)
    return list(iter(decoder.next_message, None))


class RawPeer:
    """A hand-driven worker on a raw socket: registers, answers heartbeats in a thread, and hands each task
    to ``on_task(peer, task)``; ``closed`` is set (with ``why``) when the master hangs up."""

    def __init__(self, port: int, worker_id: str, on_task: Callable[[RawPeer, TaskAssignment], None],
                 capacity: int = 50, rcvbuf: int | None = None, lifetime: float = 30.0) -> None:
        from neatify.distributed.io.connection import FramedConnection

        sock = socket.socket()
        if rcvbuf is not None:  # a small receive window makes the master's sends wait on this peer
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.connect((HOST, port))
        self.conn = FramedConnection(sock, 64 << 20)
        self.worker_id = worker_id
        self.on_task = on_task
        self.closed = threading.Event()
        self.why = ""
        self._register(capacity)
        self._deadline = time.monotonic() + lifetime
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _register(self, capacity: int) -> None:
        from neatify.distributed.wire.messages import RegistrationAck, WorkerRegistration
        from neatify.distributed.wire.framing import PROTOCOL_VERSION

        self.conn.send(WorkerRegistration(PROTOCOL_VERSION, self.worker_id, capacity))
        reply = self.conn.recv(time.monotonic() + 10)
        assert isinstance(reply, RegistrationAck) and reply.status == "accepted", reply
        self.conn.mark_registered()

    def send(self, message: Message) -> None:
        self.conn.send(message)

    def _serve(self) -> None:
        from neatify.distributed.errors import DistributedError
        from neatify.distributed.wire.messages import HeartbeatRequest, HeartbeatResponse, TaskAssignment

        try:
            while time.monotonic() < self._deadline:
                message = self.conn.recv(self._deadline)
                if message is None:
                    break
                if isinstance(message, HeartbeatRequest):
                    self.conn.send(HeartbeatResponse(message.sent))
                elif isinstance(message, TaskAssignment):
                    self.on_task(self, message)
            self.why = "lifetime over"
        except (DistributedError, OSError) as exc:
            self.why = str(exc)
        finally:
            self.closed.set()
            self.conn.close()


def report_xor(peer: RawPeer, task: TaskAssignment, value: Callable[[float], float] = float) -> None:
    """Answer a task as a conforming worker would (``xor_fitness``), each fitness passed through ``value``."""
    from neatify.distributed.wire.columns import decode_genomes
    from neatify.distributed.wire.messages import FitnessReport

    genomes = decode_genomes(task)
    xor_fitness(genomes)
    peer.send(FitnessReport.of(task.batch_id, [[g.id, value(g.fitness)] for g in genomes], [], 0.0))


def negative_id_task() -> TaskAssignment:
    """A TASK_ASSIGNMENT a worker must refuse: one genome, with a negative id."""
    import dataclasses

    import numpy as np

    from neatify import Population
    from neatify.distributed.wire.columns import WireGenomes

    task = WireGenomes.of(Population(1, 2, 1, seed=0).genomes).task(1, 0)
    return dataclasses.replace(task, ids=np.array([-1], "<i8").tobytes())


class Processes:
    """Child processes of a test, killed (and reaped) at exit whatever happens; output goes to log files."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen] = []

    def start(self, name: str, *args: str, env: dict | None = None, cwd: Path = ROOT,
              split: bool = False) -> subprocess.Popen:
        """``python *args`` in ``cwd``; with ``split`` its stderr goes apart (``errors(proc)``), not into its log."""
        log = open(self.log_dir / f"{name}.log", "wb")
        err = open(self.log_dir / f"{name}.err", "wb") if split else None
        proc = subprocess.Popen([sys.executable, *args], stdout=log, stderr=err or subprocess.STDOUT, cwd=cwd,
                                env={**os.environ, **(env or {})}, start_new_session=True)  # its own group: see __exit__
        log.close()
        if err is not None:
            err.close()
        proc.name = name  # type: ignore[attr-defined]
        self.procs.append(proc)
        return proc

    def worker(self, port: int, worker_id: int | str, *flags: str, env: dict | None = None) -> subprocess.Popen:
        return self.start(f"worker-{worker_id}", str(HERE / "distributed_helpers.py"), "worker", "--port", str(port),
                          "--worker-id", str(worker_id), *flags, env=env)

    def log(self, proc: subprocess.Popen) -> str:
        return (self.log_dir / f"{proc.name}.log").read_text()  # type: ignore[attr-defined]

    def errors(self, proc: subprocess.Popen) -> str:
        """What a process started with ``split=True`` wrote on stderr so far."""
        return (self.log_dir / f"{proc.name}.err").read_text()  # type: ignore[attr-defined]

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, *exc: object) -> None:
        """Kill each process's whole group, so what it started (a supervisor's workers) goes with it."""
        for proc in self.procs:
            for signum in (signal.SIGCONT, signal.SIGKILL):
                try:
                    os.killpg(proc.pid, signum)
                except ProcessLookupError:  # the group is gone already
                    break
            proc.wait(timeout=10)


def _worker_main(args: argparse.Namespace) -> int:
    from neatify.distributed import DistributedError, WorkerNode

    mark = None if args.mark_dir is None else Path(args.mark_dir) / str(args.worker_id)
    address = (HOST, args.port) if args.scheduler_file is None and args.masters is None else (None, None)
    masters = None if args.masters is None else [(HOST, int(port)) for port in args.masters.split(",")]

    def fitness(genomes) -> None:
        if args.batch_log is not None:  # when each batch began, and the epoch of the master that sent it
            with open(args.batch_log, "a") as log:
                log.write(f"{time.time():.6f} {worker.served_epoch}\n")
        disturbed_xor_fitness(genomes, args.sleep, mark, args.raise_on)

    worker = WorkerNode(*address, args.worker_id, fitness,
                        capacity=args.capacity, auth_token=args.token, max_connect_attempts=args.max_connect_attempts,
                        retry_initial=0.05, retry_max=0.3, tls_ca=args.tls_ca, tls_server_name=args.tls_server_name,
                        scheduler_file=args.scheduler_file, masters=masters)
    worker.served_epoch = args.epoch
    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    try:
        worker.start()
    except (DistributedError, ConnectionError) as exc:
        print(f"worker error: {exc}", file=sys.stderr)
        return 1
    return 0


def _master_main(args: argparse.Namespace) -> int:
    from neatify.distributed import DistributedConfig, DistributedPopulation

    if args.max_open_files is not None:
        import resource

        resource.setrlimit(resource.RLIMIT_NOFILE, (args.max_open_files, args.max_open_files))
    config = DistributedConfig(host=HOST, port=args.port, min_workers=args.min_workers, heartbeat_interval=0.2,
                               task_timeout=10.0, worker_wait_timeout=30.0, listen_backlog=args.listen_backlog,
                               auth_token=args.token, scheduler_file=args.scheduler_file)
    pop = DistributedPopulation(args.pop_size, 2, 1, seed=args.seed, distributed_config=config,
                                checkpoint_path=args.checkpoint)
    if args.port_file is not None:
        Path(args.port_file).write_text(str(pop.port))
    with pop:
        while len(pop.history) < args.generations:
            pop.run_generation(lambda genomes: None)
    Path(args.out).write_text(json.dumps(comparable(pop.state_dict())))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=("worker", "master"))
    parser.add_argument("--port", type=int, default=None, help="the master's (a worker needs it or --scheduler-file)")
    parser.add_argument("--scheduler-file", default=None)
    parser.add_argument("--masters", default=None, help="PORT,PORT...: masters on 127.0.0.1 tried in turn")
    parser.add_argument("--epoch", type=int, default=0, help="the epoch the worker has already served")
    parser.add_argument("--batch-log", default=None, help="append 'time epoch' to this file at every batch")
    parser.add_argument("--worker-id", default="w")
    parser.add_argument("--sleep", type=float, default=0.0)
    parser.add_argument("--mark-dir", default=None)
    parser.add_argument("--raise-on", type=int, default=None)
    parser.add_argument("--capacity", type=int, default=50)
    parser.add_argument("--token", default=None)
    parser.add_argument("--max-connect-attempts", type=int, default=200)
    parser.add_argument("--tls-ca", default=None)
    parser.add_argument("--tls-server-name", default=None)
    parser.add_argument("--min-workers", type=int, default=1)
    parser.add_argument("--pop-size", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--generations", type=int, default=5)
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--out", default=None)
    parser.add_argument("--max-open-files", type=int, default=None)
    parser.add_argument("--listen-backlog", type=int, default=None)
    parser.add_argument("--port-file", default=None, help="write the port bound (with --port 0) to this file")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    return _worker_main(args) if args.role == "worker" else _master_main(args)


if __name__ == "__main__":
    sys.exit(main())
