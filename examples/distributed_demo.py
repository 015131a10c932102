"""Distributed XOR on this machine: one master and two workers on 127.0.0.1, then a clean shutdown.

    python examples/distributed_demo.py

Runs examples/distributed_xor_master.py and two examples/distributed_xor_worker.py as child
processes, prints their output line by line, each line whole and named by its process
(``master | ...``, ``worker 1 | ...``), and exits 0 once XOR is solved and all three have exited.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import TextIO

HERE = Path(__file__).resolve().parent
TIMEOUT = 300
_PRINTING = threading.Lock()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def say(name: str, text: str) -> None:
    """One whole line on stdout, named by who said it: lines of different processes never share a line."""
    with _PRINTING:
        sys.stdout.write(f"{name:>8} | {text}\n")
        sys.stdout.flush()


def relay(name: str, stream: TextIO) -> None:
    """Every line of ``stream`` through ``say``, until the process closes it."""
    for line in stream:
        say(name, line.rstrip("\n"))


def start(name: str, script: str, *args: str) -> tuple[subprocess.Popen[str], threading.Thread]:
    """Start ``script`` with its stdout and stderr relayed line by line through ``say``."""
    proc = subprocess.Popen([sys.executable, str(HERE / script), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    thread = threading.Thread(target=relay, args=(name, proc.stdout), daemon=True)
    thread.start()
    return proc, thread


def main() -> int:
    port = str(free_port())
    master = start("master", "distributed_xor_master.py", "--host", "127.0.0.1", "--port", port, "--workers", "2",
                   "--seed", "1", "--generations", "300")
    workers = [start(f"worker {i}", "distributed_xor_worker.py", "--master-host", "127.0.0.1", "--master-port", port,
                     "--worker-id", str(i), "--max-connect-attempts", "20")
               for i in (1, 2)]
    procs = [master[0]] + [proc for proc, _ in workers]
    try:
        codes = [procs[0].wait(TIMEOUT)] + [w.wait(30) for w in procs[1:]]
    except subprocess.TimeoutExpired:
        say("demo", "timed out; stopping everything")
        codes = [1]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for _, thread in [master, *workers]:
        thread.join(5)
    say("demo", f"master and workers exited with {codes}")
    return 0 if codes == [0, 0, 0] else 1


if __name__ == "__main__":
    sys.exit(main())
