"""Master of a distributed XOR run: evolves the population, workers evaluate it.

    python examples/distributed_xor_master.py --host 0.0.0.0 --port 5000 --workers 2

then start workers with examples/distributed_xor_worker.py. The fitness function passed to
``run_generation`` here is a dummy: fitness is computed on the workers.
"""

from __future__ import annotations

import argparse
import logging

from neatify.distributed import DistributedConfig, DistributedPopulation


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)")
    parser.add_argument("--port", type=int, default=5000, help="port to listen on (default 5000)")
    parser.add_argument("--workers", type=int, default=1, help="workers to wait for before starting (default 1)")
    parser.add_argument("--generations", type=int, default=100, help="most generations to run (default 100)")
    parser.add_argument("--pop-size", type=int, default=150, help="population size (default 150)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: random)")
    parser.add_argument("--fitness-threshold", type=float, default=3.9,
                        help="stop once the best fitness reaches this (default 3.9, the maximum is 4)")
    parser.add_argument("--checkpoint", default=None,
                        help="checkpoint file: resume from it, save after each generation")
    parser.add_argument("--auth-token", default=None, help="shared secret (default: $NEATIFY_AUTH_TOKEN)")
    parser.add_argument("--tls-cert", default=None, help="serve TLS with this PEM certificate (chain)")
    parser.add_argument("--tls-key", default=None, help="private key of --tls-cert (default: inside that file)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

    config = DistributedConfig(host=args.host, port=args.port, min_workers=args.workers, auth_token=args.auth_token,
                               tls_cert=args.tls_cert, tls_key=args.tls_key)
    pop = DistributedPopulation(pop_size=args.pop_size, num_inputs=2, num_outputs=1, seed=args.seed,
                                distributed_config=config, checkpoint_path=args.checkpoint)
    try:
        while pop.generation < args.generations:
            pop.run_generation(lambda genomes: None)  # dummy: the workers compute fitness
            best = max(pop.genomes, key=lambda g: g.fitness)
            print(f"Gen {pop.generation}: Best Fitness = {best.fitness:.4f}", flush=True)
            if best.fitness >= args.fitness_threshold:
                print(f"Solved XOR in generation {pop.generation}: {best}", flush=True)
                break
    finally:
        pop.shutdown()


if __name__ == "__main__":
    main()
