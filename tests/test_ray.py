"""RayEvaluator on a real local Ray cluster (a 2-CPU head node on 127.0.0.1), started once for this module."""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from pathlib import Path

import pytest

from neatify import EvaluationError, EvolutionConfig, Population

import fitness_table
from distributed_helpers import comparable, wait_until
from fitness_table import ERROR_FITNESS, expected, outcome, setup_of
from helpers import doc_snippet
from xor_task import xor_score

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402

from neatify.backends.ray import RayEvaluator, actors_that_fit  # noqa: E402

CONFIG = EvolutionConfig(population_size=40, prob_add_node=0.2, prob_add_connection=0.3)


LOOPBACK = {"node_ip_address": "127.0.0.1", "include_dashboard": False}


@pytest.fixture(scope="module")
def cluster():
    """A head node with 2 CPUs; tests may add nodes and must remove them again."""
    with pytest.MonkeyPatch.context() as patch:  # else Ray swaps 127.0.0.1 for this machine's outward address
        patch.setattr(ray._private.ray_constants, "ENABLE_RAY_CLUSTER", False)
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2, **LOOPBACK})
        try:
            ray.init(address=cluster.address, logging_level="WARNING", runtime_env={"env_vars": {
                "PYTHONPATH": os.pathsep.join(filter(None, [  # workers import this module and the neatify under test
                    str(Path(__file__).parent), os.environ.get("PYTHONPATH")]))}})
            yield cluster
        finally:
            ray.shutdown()
            cluster.shutdown()


@pytest.fixture
def local_ray(cluster):
    return ray


def xor_fitness(genomes, state=None):
    """``xor_task``'s fitness, plus the offset a setup's state gives."""
    offset = 0.0 if state is None else state["offset"]
    for genome in genomes:
        genome.fitness = offset + xor_score(genome)


def make_state():
    return {"offset": 10.0}


def crash_once_fitness(genomes, state):
    """Kills its own actor process the first time any actor runs it: the one actor that creates the marker file
    (an exclusive create, so two actors starting at once cannot both crash)."""
    try:
        os.close(os.open(state["marker"], os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        xor_fitness(genomes)
        return
    os._exit(1)


def run(fitness_fn, generations=3):
    pop = Population(num_inputs=2, num_outputs=1, config=CONFIG, seed=21)
    pop.run(fitness_fn, generations)
    return pop


@pytest.mark.slow
def test_ray_run_is_identical_to_serial(local_ray):
    serial = run(xor_fitness)
    with RayEvaluator(xor_fitness, num_actors=2, timeout=60) as evaluator:
        distributed = run(evaluator)
    assert comparable(distributed.state_dict()) == comparable(serial.state_dict())
    assert ray.is_initialized()  # the evaluator did not shut down a Ray it did not start


@pytest.mark.slow
def test_setup_state_reaches_the_fitness_function(local_ray):
    serial = run(lambda genomes: xor_fitness(genomes, make_state()), generations=1)
    with RayEvaluator(xor_fitness, num_actors=2, setup=make_state, timeout=60) as evaluator:
        distributed = run(evaluator, generations=1)
    assert [g.fitness for g in distributed.genomes] == [g.fitness for g in serial.genomes]
    assert min(g.fitness for g in distributed.genomes) >= 10.0


@pytest.mark.slow
@pytest.mark.parametrize("num_actors", [2, None])  # None: retried on the surviving actor, replaced next generation
def test_a_dead_actor_s_batch_is_retried(local_ray, tmp_path, num_actors):
    marker = str(tmp_path / "crashed")
    serial = run(xor_fitness, generations=2)
    with RayEvaluator(crash_once_fitness, num_actors, setup=lambda: {"marker": marker}, timeout=60) as evaluator:
        distributed = run(evaluator, generations=2)
        assert evaluator.actor_failures == 1 and evaluator.num_actors == 2
    assert os.path.exists(marker)
    assert distributed.history == serial.history


@pytest.mark.slow
def test_fitness_errors_are_not_retried(local_ray):
    def broken(genomes):
        raise ZeroDivisionError("bad fitness")

    evaluator = RayEvaluator(broken, num_actors=1, timeout=60)
    with pytest.raises(EvaluationError, match="ZeroDivisionError: bad fitness"):
        run(evaluator, generations=1)
    assert evaluator.actor_failures == 0
    evaluator.close()
    evaluator.close()
    with pytest.raises(RuntimeError, match="closed"):
        evaluator([])


@pytest.mark.slow
@pytest.mark.parametrize("name", ["with_state", "raising", "unset"])  # a few cases of tests/test_evaluation.py's table
def test_ray_gives_the_serial_outcome(local_ray, name):
    with RayEvaluator(getattr(fitness_table, name), num_actors=2, setup=setup_of(name), timeout=60) as evaluator:
        assert outcome(evaluator) == expected(name)


@pytest.mark.slow
def test_error_fitness_keeps_every_other_genome_s_value(local_ray):
    with RayEvaluator(fitness_table.raising, num_actors=2, timeout=60, error_fitness=ERROR_FITNESS) as evaluator:
        assert outcome(evaluator) == expected("raising", ERROR_FITNESS)


def test_missing_ray_gives_a_clear_error(monkeypatch):
    from neatify.backends.ray import _import_ray

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ImportError, match=r"neatify.backends.ray needs ray: pip install '\.\[ray\]'"):
        _import_ray()


@pytest.mark.slow
def test_more_actors_than_cpus_are_capped_with_a_warning(local_ray, caplog):
    """The usage doc's snippet, as written: 16 actors asked on 2 CPUs start 2 (with a warning), not a hang."""
    namespace = {"__name__": "usage_doc_snippet"}  # not importable: cloudpickle ships its functions by value
    with caplog.at_level("WARNING", logger="neatify.backends.ray"):
        exec(doc_snippet("docs/usage.md", "RayEvaluator(fitness, num_actors=16"), namespace)
    assert "num_actors=16 but Ray has 2 CPU (1 per actor): starting 2 actors" in caplog.text
    assert namespace["evaluator"].num_actors == 2 and namespace["pop"].history


def test_actors_that_fit_names_the_limiting_resource():
    assert actors_that_fit({"num_cpus": 1}, {"CPU": 2.0}) == (2, "2 CPU (1 per actor)")
    assert actors_that_fit({"num_cpus": 0.5, "num_gpus": 1}, {"CPU": 8.0, "GPU": 3.0}) == (3, "3 GPU (1 per actor)")
    assert actors_that_fit({"num_cpus": 4}, {"CPU": 2.0})[0] == 0
    assert actors_that_fit({"num_cpus": 0}, {"CPU": 2.0}) == (None, "")


@pytest.mark.slow
def test_no_actor_fits_is_refused_at_once(local_ray):
    with pytest.raises(ValueError, match=r"no Ray actor can start: Ray has 2 CPU \(4 per actor\)"):
        RayEvaluator(xor_fitness, actor_options={"num_cpus": 4})


def stall_on_leaving_node(genomes, state):
    """xor_fitness, except on the node whose id the file ``state["leaving"]`` holds: there it says so
    (a file ``stalled`` beside it) and waits, at most 60 s, to be killed with its node."""
    leaving = Path(state["leaving"])
    if leaving.exists() and leaving.read_text() == ray.get_runtime_context().get_node_id():
        (leaving.parent / "stalled").touch()
        time.sleep(60)
    xor_fitness(genomes)


@pytest.mark.slow
def test_actors_follow_nodes_that_join_and_leave(cluster, caplog, tmp_path):
    """num_actors=None: a 2-CPU node joining between generations gets 2 more actors; when it leaves during
    a generation, its actors' batches are retried on the others and the run ends exactly as a serial one."""
    serial, distributed = (Population(num_inputs=2, num_outputs=1, config=CONFIG, seed=21) for _ in range(2))
    for _ in range(4):
        serial.run_generation(xor_fitness)
    leaving = tmp_path / "leaving"
    evaluator = RayEvaluator(stall_on_leaving_node, setup=lambda: {"leaving": str(leaving)}, timeout=60)
    with caplog.at_level(logging.INFO, logger="neatify.backends.ray"), evaluator:
        distributed.run_generation(evaluator)
        assert evaluator.num_actors == 2
        node = cluster.add_node(num_cpus=2, **LOOPBACK)
        try:
            distributed.run_generation(evaluator)
            assert evaluator.num_actors == 4
            leaving.write_text(node.node_id)
            remover = threading.Thread(target=remove_when_stalled, args=(cluster, node, tmp_path / "stalled"))
            remover.start()
            distributed.run_generation(evaluator)  # both actors on the node stall until it is removed
            remover.join(30)
        finally:
            if node in cluster.worker_nodes:
                cluster.remove_node(node)
        assert evaluator.actor_failures == 2
        distributed.run_generation(evaluator)
        assert evaluator.num_actors == 2
    assert "Ray cluster grew: 2 -> 4 actors" in caplog.text and "Ray cluster shrank: 4 -> 2 actors" in caplog.text
    assert comparable(distributed.state_dict()) == comparable(serial.state_dict())


def remove_when_stalled(cluster, node, stalled):
    """Remove ``node`` from ``cluster`` once an actor on it stalls (at most 30 s from now)."""
    wait_until(stalled.exists, 30, "an actor on the leaving node to stall")
    cluster.remove_node(node)
