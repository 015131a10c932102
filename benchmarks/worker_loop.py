"""A worker's CPU cost per batch, without sockets or threads: its core receives a task frame, the
genomes (views of the decoded batch) are evaluated, and the core encodes the report.

    python benchmarks/worker_loop.py [--batch 50]

The trivial fitness reads each view's connection count from its batch (as ``distributed.py
--batch-views`` does), so the figure is the distribution path's share of a worker's time.
"""

from __future__ import annotations

import argparse
import timeit

import numpy as np

from neatify import Population
from neatify.distributed.core._state import Phase
from neatify.distributed.core.worker import WorkerProtocol
from neatify.distributed.io.worker import GenomeEvaluator
from neatify.distributed.wire.columns import WireGenomes
from neatify.distributed.wire.framing import encode_frame
from neatify.genome.batch import GenomeBatch


def batch_fitness(genomes) -> None:
    for genome in genomes:
        batch, row = genome.batch_row()
        genome.fitness = float(batch.conn_start[row + 1] - batch.conn_start[row])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=50, help="genomes per task (a worker's default capacity)")
    args = parser.parse_args()
    genomes = GenomeBatch.from_genomes(Population(max(400, args.batch), 2, 1, seed=0).genomes).views()
    frame = encode_frame(WireGenomes.of(genomes).task(1, 0, np.arange(args.batch)))
    core = WorkerProtocol("bench", args.batch, None, "master", 1 << 30, 0.0)
    core.decoder.mark_registered()  # as a registered connection is: tasks are accepted
    core.state.advance(Phase.REGISTERED)
    evaluator = GenomeEvaluator(batch_fitness)

    def one_batch() -> bytes:
        (task,) = core.received(frame, 1.0)
        fitness, errors = evaluator.evaluate(task.genomes)
        return core.report(task.batch_id, fitness, errors, 0.0)

    seconds = min(timeit.repeat(one_batch, number=300, repeat=7)) / 300
    print(f"worker loop: {seconds * 1e6:.1f} us per batch of {args.batch}, {seconds * 1e6 / args.batch:.2f} us a genome")


if __name__ == "__main__":
    main()
