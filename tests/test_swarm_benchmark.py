"""benchmarks/swarm.py: simulated workers over real sockets against a real master child process."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from swarm import batch_fitness, evaluation_done, local_fitness, run_point  # noqa: E402

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


def test_a_simulated_worker_evaluates_each_genome_on_its_first_free_core():
    cores = [0.0, 0.0]
    assert evaluation_done(cores, 3, 1.0, 0.0) == 2.0  # two side by side, the third after one of them
    assert sorted(cores) == [1.0, 2.0]
    assert evaluation_done(cores, 1, 1.0, 0.5) == 2.0  # waits for the core free at 1.0
    assert evaluation_done(cores, 1, 1.0, 5.0) == 6.0  # both idle by then


@pytest.mark.slow
@pytest.mark.timeout(30)
def test_simulated_workers_of_several_cores_with_a_cost_reproduce_the_local_run():
    result = run_point(pop_size=24, workers=2, generations=1, timeout=20.0, batch_views=True, cores=4, cost=0.002)
    assert result.registered == 2 and result.cores == 4
    assert result.genomes_evaluated == 24 * 3, "two untimed generations and one timed, each genome once"
    assert result.identical and result.efficiency(0.002) > 0


@pytest.mark.slow
@pytest.mark.timeout(30)
def test_a_timeline_row_per_timed_generation_on_one_clock_for_both_processes():
    result = run_point(pop_size=24, workers=2, generations=2, timeout=20.0, batch_views=True, cores=2, cost=0.004,
                       timeline=True)
    rows = [row.split() for row in result.timeline]
    assert [row[0] for row in rows] == ["2", "3"]  # the timed generations, after the two untimed ones
    for row in rows:
        eval_end, ideal, ended, tasks, most = float(row[6]), float(row[7]), float(row[10]), int(row[12]), int(row[13])
        assert ideal == 24 * 4 / 4 and 1 <= most <= 24 and tasks >= 2  # both workers got work
        assert eval_end >= 6 * 4 - 1  # 24 genomes on 4 cores: some core evaluates 6 of 4 ms after the submission
        assert ended >= eval_end - 1  # the master ends the generation after the swarm's last evaluation
