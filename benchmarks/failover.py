"""Hot-standby failover time on loopback: a primary killed or frozen mid-run, until the workers evaluate again.

    python benchmarks/failover.py [--runs 5] [--heartbeat 0.3] [--signal KILL|STOP]

Each run starts a primary and its standby as real ``neatify master`` processes (XOR, population 40,
``--heartbeat-interval`` given), and two ``WorkerNode`` threads in this process given both addresses.
Once the standby has replicated generation 3 the primary gets the signal (KILL: dead, its
connections close at once; STOP: frozen, silent with its sockets open); the figure is the time from
the signal to the first batch a worker starts afterwards, which only the promoted standby can send.
The target of issue 13 is 2 x heartbeat_interval + peer_timeout (peer_timeout = 3 x heartbeat_interval).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from neatify.distributed import WorkerNode
from neatify.network.network import Network

HOST = "127.0.0.1"
RUN_FILE = """
[run]
num_inputs = 2
num_outputs = 1
generations = 60
seed = 3

[evolution]
population_size = 40
"""
CASES = [((0.0, 0.0), 0.0), ((0.0, 1.0), 1.0), ((1.0, 0.0), 1.0), ((1.0, 1.0), 0.0)]


class Batches:
    """An XOR fitness that sleeps ``sleep`` per genome and notes when each batch starts."""

    def __init__(self, sleep: float) -> None:
        self.sleep = sleep
        self.started: list[float] = []

    def __call__(self, genomes) -> None:
        self.started.append(time.monotonic())
        for genome in genomes:
            time.sleep(self.sleep)
            net = Network(genome)
            genome.fitness = 4.0 - sum((net.activate(list(x))[0] - y) ** 2 for x, y in CASES)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def master(where: Path, port: int, heartbeat: float, *flags: str) -> subprocess.Popen:
    where.mkdir()
    (where / "run.toml").write_text(RUN_FILE)
    return subprocess.Popen([sys.executable, "-m", "neatify", "master", "run.toml", "--port", str(port),
                             "--min-workers", "2", "--heartbeat-interval", str(heartbeat), "--worker-wait-timeout",
                             "60", "-v", *flags], cwd=where, stdout=subprocess.DEVNULL,
                            stderr=open(where / "stderr.log", "w"))


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {what} within {timeout:.0f}s")
        time.sleep(0.01)


def one_failover(folder: Path, heartbeat: float, signum: int) -> float:
    """Seconds from ``signum`` to the primary until a worker starts a batch again."""
    ports = [free_port(), free_port()]
    primary = master(folder / "primary", ports[0], heartbeat)
    standby = master(folder / "standby", ports[1], heartbeat, "--standby-of", f"{HOST}:{ports[0]}")
    fitness = Batches(sleep=0.005)
    nodes = [WorkerNode(masters=[(HOST, p) for p in ports], worker_id=f"w{i}", fitness_function=fitness,
                        capacity=10, max_connect_attempts=1000, retry_initial=0.05) for i in (1, 2)]
    threads = [threading.Thread(target=node.start, daemon=True) for node in nodes]
    try:
        for thread in threads:
            thread.start()
        log = folder / "standby" / "stderr.log"
        wait_for(lambda: "replicated generation 3 " in log.read_text(), 60, "replicated generation 3")
        signalled = time.monotonic()
        os.kill(primary.pid, signum)
        wait_for(lambda: fitness.started[-1] > signalled, 30, "batch from the standby")
        return next(t for t in fitness.started if t > signalled) - signalled
    finally:
        for proc in (primary, standby):
            if signum == signal.SIGSTOP and proc is primary:
                os.kill(proc.pid, signal.SIGCONT)
            proc.kill()
            proc.wait(10)
        for node in nodes:
            node.stop()
        for thread in threads:
            thread.join(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="failovers timed, each with fresh masters (default 5)")
    parser.add_argument("--heartbeat", type=float, default=0.3,
                        help="heartbeat_interval of both masters, s (default 0.3)")
    parser.add_argument("--signal", choices=["KILL", "STOP"], default="KILL",
                        help="sent to the primary: KILL (it dies) or STOP (it freezes); default KILL")
    args = parser.parse_args()
    logging.getLogger("neatify.distributed").setLevel(logging.ERROR)  # the workers' retries are expected
    signum = getattr(signal, f"SIG{args.signal}")
    target = 2 * args.heartbeat + 3 * args.heartbeat
    times = []
    for run in range(args.runs):
        with tempfile.TemporaryDirectory() as folder:
            times.append(one_failover(Path(folder), args.heartbeat, signum))
        print(f"  run {run + 1}: {times[-1]:.3f} s", flush=True)
    print(f"failover after SIG{args.signal} (heartbeat_interval {args.heartbeat} s): median "
          f"{statistics.median(times):.3f} s, max {max(times):.3f} s; target {target:.2f} s "
          f"(2 x heartbeat_interval + peer_timeout)")


if __name__ == "__main__":
    main()
