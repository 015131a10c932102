"""Distributed XOR on this machine: one master and two workers on 127.0.0.1, then a clean shutdown.

    python examples/distributed_demo.py

Runs examples/distributed_xor_master.py and two examples/distributed_xor_worker.py as child
processes, prints the master's progress, and exits 0 once XOR is solved and all three have exited.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
TIMEOUT = 300


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> int:
    port = str(free_port())
    master = subprocess.Popen([sys.executable, str(HERE / "distributed_xor_master.py"), "--host", "127.0.0.1",
                               "--port", port, "--workers", "2", "--seed", "1", "--generations", "300"])
    workers = [subprocess.Popen([sys.executable, str(HERE / "distributed_xor_worker.py"), "--master-host",
                                 "127.0.0.1", "--master-port", port, "--worker-id", str(i),
                                 "--max-connect-attempts", "20"])
               for i in (1, 2)]
    try:
        codes = [master.wait(TIMEOUT)] + [w.wait(30) for w in workers]
    except subprocess.TimeoutExpired:
        print("demo: timed out; stopping everything", file=sys.stderr)
        codes = [1]
    finally:
        for proc in [master, *workers]:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    print(f"demo: master and workers exited with {codes}")
    return 0 if codes == [0, 0, 0] else 1


if __name__ == "__main__":
    sys.exit(main())
