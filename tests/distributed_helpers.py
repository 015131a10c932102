"""Helpers for the distributed tests: a deterministic XOR fitness, and worker/master processes on 127.0.0.1.

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
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
HOST = "127.0.0.1"
XOR_CASES = (([0.0, 0.0], 0.0), ([0.0, 1.0], 1.0), ([1.0, 0.0], 1.0), ([1.0, 1.0], 0.0))


def xor_fitness(genomes, sleep: float = 0.0, mark: Path | None = None, raise_on: int | None = None) -> None:
    """4 minus the XOR squared error (plain Python, deterministic); optionally slow, marking, or raising."""
    from neatify.network import Network

    if mark is not None:
        mark.touch()
    for genome in genomes:
        if genome.id == raise_on:
            raise ZeroDivisionError(f"deliberate failure on genome {genome.id}")
        time.sleep(sleep)
        net = Network(genome)
        genome.fitness = 4.0 - sum((net.activate(x)[0] - y) ** 2 for x, y in XOR_CASES)


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


def comparable(state: dict) -> dict:
    """The parts of a population state that define the run."""
    keep = ("generation", "genomes", "species", "history", "rng", "next_genome_id", "best_genome", "evaluations")
    return json.loads(json.dumps({k: state[k] for k in keep}))


class Processes:
    """Child processes of a test, killed (and reaped) at exit whatever happens; output goes to log files."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen] = []

    def start(self, name: str, *args: str, env: dict | None = None) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}.log", "wb")
        proc = subprocess.Popen([sys.executable, *args], stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
                                env={**os.environ, **(env or {})})
        log.close()
        proc.name = name  # type: ignore[attr-defined]
        self.procs.append(proc)
        return proc

    def worker(self, port: int, worker_id: int | str, *flags: str, env: dict | None = None) -> subprocess.Popen:
        return self.start(f"worker-{worker_id}", str(HERE / "distributed_helpers.py"), "worker", "--port", str(port),
                          "--worker-id", str(worker_id), *flags, env=env)

    def log(self, proc: subprocess.Popen) -> str:
        return (self.log_dir / f"{proc.name}.log").read_text()  # type: ignore[attr-defined]

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, *exc: object) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGCONT)
                proc.kill()
            proc.wait(timeout=10)


def _worker_main(args: argparse.Namespace) -> int:
    from neatify.distributed import DistributedError, WorkerNode

    mark = None if args.mark_dir is None else Path(args.mark_dir) / str(args.worker_id)
    worker = WorkerNode(HOST, args.port, args.worker_id,
                        lambda genomes: xor_fitness(genomes, args.sleep, mark, args.raise_on),
                        capacity=args.capacity, auth_token=args.token, max_connect_attempts=args.max_connect_attempts,
                        retry_initial=0.05, retry_max=0.3, tls_ca=args.tls_ca, tls_server_name=args.tls_server_name)
    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    try:
        worker.start()
    except (DistributedError, ConnectionError) as exc:
        print(f"worker error: {exc}", file=sys.stderr)
        return 1
    return 0


def _master_main(args: argparse.Namespace) -> int:
    from neatify.distributed import DistributedConfig, DistributedPopulation

    config = DistributedConfig(host=HOST, port=args.port, min_workers=args.min_workers, heartbeat_interval=0.2,
                               task_timeout=10.0, worker_wait_timeout=30.0, auth_token=args.token)
    pop = DistributedPopulation(args.pop_size, 2, 1, seed=args.seed, distributed_config=config,
                                checkpoint_path=args.checkpoint)
    with pop:
        while len(pop.history) < args.generations:
            pop.run_generation(lambda genomes: None)
    Path(args.out).write_text(json.dumps(comparable(pop.state_dict())))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=("worker", "master"))
    parser.add_argument("--port", type=int, required=True)
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
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    return _worker_main(args) if args.role == "worker" else _master_main(args)


if __name__ == "__main__":
    sys.exit(main())
