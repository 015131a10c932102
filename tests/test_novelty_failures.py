"""A genome whose evaluation failed, given an error fitness in a run with behaviours: it has no behaviour, so
it takes no part in the novelty neighbourhood or the archives and its novelty is the generation's worst; the run
goes on, on every backend, exactly as the serial run whose fitness function marks the same genomes failed."""

from __future__ import annotations

import json

import numpy as np
import pytest

from behaviour_task import fails_on, xor_behaviour_failing, xor_behaviour_raising
from distributed_helpers import HERE, HOST
from neatify import EvolutionConfig, Population
from neatify.backends.processes import ParallelEvaluator
from neatify.distributed import DistributedConfig, DistributedPopulation
from neatify.evaluation import FitnessError
from neatify.io.checkpoint import Checkpoint

CONFIG = EvolutionConfig(population_size=40, behaviour_size=4, selection="pareto",
                         objectives=["fitness", "novelty", "behaviour[0]"], novelty_threshold=0.3, elite_cells=3,
                         target_species=4)
GENERATIONS, SEED = 3, 13


def failing_run(fitness_fn) -> Population:
    """A short novelty run evaluated by ``fitness_fn``, some genomes of which fail."""
    pop = Population(config=CONFIG, num_inputs=2, num_outputs=1, seed=SEED)
    pop.run(fitness_fn, GENERATIONS)
    return pop


def test_failed_genomes_are_no_neighbours_and_score_the_generations_worst_novelty():
    pop = failing_run(xor_behaviour_failing)
    failed = np.array([fails_on(genome.id) for genome in pop.genomes])
    assert failed.any() and not failed.all()
    assert np.isnan(pop.behaviours[failed]).all() and np.isfinite(pop.behaviours[~failed]).all()
    novelty = pop.selection.novelty
    assert (novelty[failed] == novelty[~failed].min()).all()
    alone = Population(config=CONFIG.replace(selection="novelty", novelty_archive="none"), seed=SEED)
    asked = alone.ask()
    alone.tell([1.0] * 40, [[float(g.id), 0.0, 0.0, 0.0] for g in asked])
    alone.ask()  # the archive kept nothing; the next generation's novelty counts only its own genomes'
    behaviours = [[float(g.id), 0.0, 0.0, 0.0] for g in alone.genomes]
    alone.genomes[0].failed, behaviours[0] = True, [1e9, 0.0, 0.0, 0.0]  # a failed genome's behaviour is ignored
    alone.tell([1.0] * 40, behaviours)
    assert alone.selection.novelty[0] == alone.selection.novelty[1:].min()
    assert np.isfinite(alone.selection.novelty).all() and alone.selection.novelty.max() < 1e3


def test_failed_genomes_enter_neither_archive_and_the_checkpoint_stays_json(tmp_path):
    pop = failing_run(xor_behaviour_failing)
    assert len(pop.selection.archive) and np.isfinite(pop.selection.archive.behaviours).all()
    assert all(elite.fitness != -1.0 for elite in pop.selection.elites.elites.values())
    Checkpoint.save(pop, tmp_path / "run.json")  # refuses NaN: a failed genome's behaviour is saved as null
    assert None in json.loads((tmp_path / "run.json").read_text())["population"]["behaviours"]
    again = Checkpoint.load(tmp_path / "run.json")
    assert again.state_dict() == pop.state_dict()
    assert [g.failed for g in again.genomes] == [fails_on(g.id) for g in pop.genomes]
    again.run(xor_behaviour_failing, 1)
    pop.run(xor_behaviour_failing, 1)
    assert again.state_dict() == pop.state_dict()


def test_a_genome_neither_failed_nor_given_a_behaviour_still_stops_the_run_naming_it():
    def forgets(genomes):
        xor_behaviour_failing(genomes)
        genomes[5].behaviour = None

    pop = Population(config=CONFIG, num_inputs=2, num_outputs=1, seed=SEED)
    with pytest.raises(FitnessError, match=f"genome {pop.genomes[5].id} has no behaviour"):
        pop.run_generation(forgets)


@pytest.mark.slow
def test_process_pool_with_error_fitness_runs_on_as_the_serial_run_marking_them_failed():
    """Failed on the old code: the genomes given error_fitness had no behaviour, FitnessError named the first."""
    with ParallelEvaluator(xor_behaviour_raising, workers=2, error_fitness=-1.0) as evaluator:
        pooled = failing_run(evaluator).state_dict()
    assert pooled == failing_run(xor_behaviour_failing).state_dict()


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_tcp_master_with_error_fitness_runs_on_as_the_serial_run_marking_them_failed(procs):
    """Two ``neatify worker`` processes report the failures; the master gives them error_fitness and marks them."""
    settings = DistributedConfig(host=HOST, port=0, min_workers=2, heartbeat_interval=0.2, worker_wait_timeout=30.0,
                                 error_fitness=-1.0)
    pop = DistributedPopulation(config=CONFIG, num_inputs=2, num_outputs=1, seed=SEED, distributed_config=settings)
    with pop:
        worker = ["-m", "neatify", "worker", "behaviour_task:xor_behaviour_raising", "--master-port", str(pop.port),
                  "--capacity", "7", "--max-connect-attempts", "50"]
        for name in ("w1", "w2"):
            procs.start(name, *worker, "--worker-id", name, cwd=HERE)
        pop.run(lambda genomes: None, GENERATIONS)  # the workers' fitness function is the one that counts
        assert pop.state_dict() == failing_run(xor_behaviour_failing).state_dict()
