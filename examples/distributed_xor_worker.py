"""Worker of a distributed XOR run: evaluates the genomes its master sends, until told to stop.

    python examples/distributed_xor_worker.py --master-host localhost --master-port 5000 --worker-id 1

It may be started before the master (it keeps trying to connect) and survives master restarts.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys

import torch

from neatify import NeatModule
from neatify.distributed import DistributedError, WorkerNode

INPUTS = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
TARGETS = torch.tensor([[0.0], [1.0], [1.0], [0.0]])


def xor_fitness(genomes):
    """4 minus the squared error over the XOR truth table."""
    with torch.no_grad():
        for genome in genomes:
            outputs = NeatModule(genome)(INPUTS)
            genome.fitness = 4.0 - torch.sum((outputs - TARGETS) ** 2).item()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--master-host", default="localhost", help="master address (default localhost)")
    parser.add_argument("--master-port", type=int, default=5000, help="master port (default 5000)")
    parser.add_argument("--worker-id", default=None, help="this worker's id (default: host-pid)")
    parser.add_argument("--capacity", type=int, default=50, help="most genomes per batch (default 50)")
    parser.add_argument("--max-connect-attempts", type=int, default=None,
                        help="give up after this many failed connection attempts in a row (default: never)")
    parser.add_argument("--auth-token", default=None, help="shared secret (default: $NEATIFY_AUTH_TOKEN)")
    parser.add_argument("--tls-ca", default=None, help="speak TLS, trusting master certificates this PEM CA signed")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

    worker = WorkerNode(master_host=args.master_host, master_port=args.master_port, worker_id=args.worker_id,
                        fitness_function=xor_fitness, capacity=args.capacity, auth_token=args.auth_token,
                        max_connect_attempts=args.max_connect_attempts, tls_ca=args.tls_ca)
    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    try:
        worker.start()  # blocks until the master shuts us down
    except (DistributedError, ConnectionError) as exc:
        print(f"worker {worker.worker_id}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        worker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
