"""CartPole over TCP on this machine: this process is the master, N ``neatify worker`` processes evaluate.

    python examples/distributed_cartpole.py --workers 2 --generations 30

On several machines, run ``neatify master`` on one and, from this folder on each of the others,
``neatify worker cartpole_gym:cartpole_fitness --master-host MASTER`` (see docs/cli.md).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from neatify import EvolutionConfig
from neatify.distributed import DistributedConfig, DistributedPopulation
from neatify.reporters import ProgressReporter

HERE = Path(__file__).resolve().parent


def _wait(process: subprocess.Popen, timeout: float = 30) -> int:
    """The exit status of a worker, killed if it has not exited within ``timeout`` seconds."""
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2, help="worker processes to start (default 2)")
    parser.add_argument("--generations", type=int, default=30)
    parser.add_argument("--pop-size", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    network = DistributedConfig(host="127.0.0.1", port=0, min_workers=args.workers, worker_wait_timeout=60)
    config = EvolutionConfig(population_size=args.pop_size, prob_add_node=0.1, prob_add_connection=0.2)
    with DistributedPopulation(num_inputs=4, num_outputs=2, config=config, seed=args.seed,
                               distributed_config=network) as population:
        workers = [subprocess.Popen([sys.executable, "-m", "neatify.cli", "worker", "cartpole_gym:cartpole_fitness",
                                     "--master-port", str(population.port), "--worker-id", f"cartpole-{i}",
                                     "--max-connect-attempts", "10"], cwd=HERE)
                   for i in range(args.workers)]
        try:
            population.add_reporter(ProgressReporter())
            champion = population.run(lambda genomes: None, args.generations, fitness_threshold=475.0)
        finally:
            population.shutdown()
            codes = [_wait(w) for w in workers]
    print(f"champion: {champion}; workers exited with {codes}")
    return 0 if all(code == 0 for code in codes) else 1


if __name__ == "__main__":
    sys.exit(main())
