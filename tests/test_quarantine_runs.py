"""Quarantine with real worker processes on 127.0.0.1: a genome whose evaluation kills its worker's process, and
a genome with an activation the workers do not know, end the generation in bounded time, named."""

from __future__ import annotations

import logging
import os

import pytest

from neatify import Population
from neatify.activations import register_activation
from neatify.distributed import DistributedConfig, DistributedEvaluator, RemoteFitnessError
from neatify.distributed.io.status import master_status

from distributed_helpers import HERE, HOST, Processes, wait_until
from xor_task import xor_fitness
from helpers import make_genome
from quarantine_fitness import VICTIM_ENV

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]  # real processes; bounded as the other run tests
VICTIM = 5
RUN_FILE = """
[run]
num_inputs = 2
num_outputs = 1
generations = 1
seed = 3

[evolution]
population_size = 12
"""


def _settings(**overrides) -> DistributedConfig:
    return DistributedConfig(**{"host": HOST, "port": 0, "heartbeat_interval": 0.5, "worker_wait_timeout": 60.0,
                                "batch_size_per_worker": 4, "max_genome_attempts": 2, **overrides})


ENV = {"PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])), VICTIM_ENV: str(VICTIM)}
"""The processes' environment: tests/ on the path (the fitness module), and the genome that kills."""


def _supervised_killers(procs: Processes, port: int, processes: int = 1, count: int = 2) -> list:
    """``count`` supervised ``neatify worker`` processes (ids sup-1 ...) of ``processes`` evaluators each, whose
    fitness kills the process evaluating genome VICTIM (the worker's own with one, else an evaluator's)."""
    return [procs.start(f"supervisor-{k}", "-m", "neatify", "worker", "quarantine_fitness:killing_fitness",
                        "--master-port", str(port), "--worker-id", f"sup-{k}", "--processes", str(processes), env=ENV)
            for k in range(1, count + 1)]


def _xor(genomes) -> dict[int, float]:
    """Each genome's XOR fitness, evaluated here."""
    xor_fitness(genomes)
    return {genome.id: genome.fitness for genome in genomes}


def test_a_genome_killing_its_worker_gets_error_fitness_and_the_others_their_own(tmp_path):
    genomes = Population(12, 2, 1, seed=3).genomes
    with Processes(tmp_path) as procs:
        with DistributedEvaluator(_settings(error_fitness=-1.0)) as evaluator:
            supervisors = _supervised_killers(procs, evaluator.port)
            evaluator(genomes)
            assert list(evaluator.coordinator.quarantined) == [0]
            why = evaluator.coordinator.quarantined[0][VICTIM]
            assert why.startswith("2 attempt(s)") and why.count(" lost (") == 2 and why.count("worker sup-") == 2
            assert master_status(HOST, evaluator.port)["quarantined"] == 1
            logs = "".join(procs.log(supervisor) for supervisor in supervisors)
            assert logs.count("killed by SIGKILL") >= 2  # 4 deaths; those restarted from logged
    assert {g.id: g.fitness for g in genomes} == _xor(Population(12, 2, 1, seed=3).genomes) | {VICTIM: -1.0}


def test_a_genome_killing_an_evaluator_is_isolated_on_its_worker_which_the_master_never_loses(tmp_path, caplog):
    caplog.set_level(logging.INFO, "neatify.distributed.io.master")
    genomes = Population(12, 2, 1, seed=3).genomes
    with Processes(tmp_path) as procs:
        with DistributedEvaluator(_settings(error_fitness=-1.0, batch_size_per_worker=0)) as evaluator:
            (supervisor,) = _supervised_killers(procs, evaluator.port, processes=2, count=1)
            evaluator(genomes)
            assert evaluator.coordinator.quarantined == {}  # the worker reported the genome's error itself
        log = procs.log(supervisor)
    assert log.count("killed by SIGKILL holding") == 3, log  # its chunk, then genome 5 alone twice
    assert caplog.text.count("registered from") == 1 and "lost" not in caplog.text
    assert "EvaluatorDied: genome 5 ended its evaluator process" in caplog.text
    assert {g.id: g.fitness for g in genomes} == _xor(Population(12, 2, 1, seed=3).genomes) | {VICTIM: -1.0}


def test_several_genomes_killing_fresh_evaluators_never_break_the_worker(tmp_path):
    """Evaluators killed by their genomes were ready: however many such deaths, the pool keeps going (only deaths
    before an evaluator is ready, a fitness function that does not import, say, give up on the worker)."""
    genomes = Population(12, 2, 1, seed=3).genomes
    victims = [genome.id for genome in genomes[:8]]
    env = ENV | {VICTIM_ENV: ",".join(map(str, victims))}
    with Processes(tmp_path) as procs:
        with DistributedEvaluator(_settings(error_fitness=-1.0, batch_size_per_worker=0)) as evaluator:
            supervisor = procs.start("supervisor", "-m", "neatify", "worker", "quarantine_fitness:killing_fitness",
                                     "--master-port", str(evaluator.port), "--worker-id", "sup", "--processes", "2",
                                     env=env)
            evaluator(genomes)
            assert evaluator.coordinator.quarantined == {}
        log = procs.log(supervisor)
    assert log.count("killed by SIGKILL holding") >= 2 * len(victims) and "no more are started" not in log, log
    assert {g.id: g.fitness for g in genomes} == _xor(Population(12, 2, 1, seed=3).genomes) | dict.fromkeys(victims,
                                                                                                          -1.0)


def test_without_error_fitness_the_generation_raises_naming_the_genome(tmp_path):
    with Processes(tmp_path) as procs, DistributedEvaluator(_settings()) as evaluator:
        _supervised_killers(procs, evaluator.port)
        with pytest.raises(RemoteFitnessError) as raised:
            evaluator(Population(12, 2, 1, seed=3).genomes)
    assert raised.value.genome_id == VICTIM and "quarantined: 2 attempt(s)" in str(raised.value)


def test_an_activation_no_worker_knows_is_refused_a_bounded_number_of_times_then_named(tmp_path):
    register_activation("quarantine_wobble", lambda x: x)  # known here, on the master only
    odd = make_genome(2, 1, [(2, 0.0, "quarantine_wobble")], [(0, 0, 2, 1.0, True)], genome_id=100)
    genomes = Population(7, 2, 1, seed=3).genomes + [odd]
    with Processes(tmp_path) as procs, DistributedEvaluator(_settings()) as evaluator:
        procs.worker(evaluator.port, "plain")
        with pytest.raises(RemoteFitnessError) as raised:
            evaluator(genomes)
        assert master_status(HOST, evaluator.port)["quarantined"] == 1  # that one genome, none of the others
    assert raised.value.genome_id == 100 and raised.value.worker_id == "plain"
    assert str(raised.value).count("genome 100 node 2 uses 'quarantine_wobble'") == 2


def test_the_cli_master_ends_the_run_naming_the_quarantined_genome(tmp_path):
    (tmp_path / "run.toml").write_text(RUN_FILE)
    with Processes(tmp_path) as procs:
        run = procs.start("master", "-m", "neatify", "master", "run.toml", "--port", "0", "--worker-wait-timeout",
                          "60", "--max-genome-attempts", "1", cwd=tmp_path, split=True, env=ENV)
        wait_until(lambda: "listening on" in procs.log(run) or run.poll() is not None, 30, "the master to listen")
        _supervised_killers(procs, int(procs.log(run).split()[-1].rsplit(":", 1)[1]))
        assert run.wait(timeout=90) == 1
        err = procs.errors(run)
    assert f"for genome {VICTIM}:" in err and "quarantined: 1 attempt(s) ended its evaluation: worker sup-" in err, err
    assert f"genome {VICTIM} of generation 0 quarantined after 1 attempt(s)" in err  # the log names it too
