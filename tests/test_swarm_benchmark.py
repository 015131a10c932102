"""benchmarks/swarm.py: simulated workers over real sockets against a real master child process."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from swarm import batch_fitness, local_fitness, run_point  # noqa: E402

from neatify import Population  # noqa: E402
from neatify.genome.batch import GenomeBatch  # noqa: E402


@pytest.mark.slow
@pytest.mark.timeout(30)
@pytest.mark.parametrize("batch_views", [False, True])
def test_five_simulated_workers_register_and_reproduce_the_local_run(batch_views):
    result = run_point(pop_size=20, workers=5, generations=2, timeout=20.0, batch_views=batch_views)
    assert result.registered == 5
    assert result.genomes_evaluated == 20 * 4, "two untimed and two timed generations, each genome once"
    assert result.identical, "the distributed run must end in the local run's state"
    assert result.distributed_s > 0 and result.local_s > 0


def test_batch_fitness_reads_the_batch_and_equals_the_gene_count():
    pop = Population(30, 2, 1, seed=3)
    for _ in range(3):
        pop.run_generation(local_fitness)
    views = GenomeBatch.from_genomes(pop.genomes).views()
    batch_fitness(views)
    assert all(g.batch_row()[0] is not None for g in views), "no gene objects built"
    assert [g.fitness for g in views] == [float(len(g.connections)) for g in pop.genomes]
    assert len({g.fitness for g in views}) > 1, "the genomes differ in size, so the check means something"
