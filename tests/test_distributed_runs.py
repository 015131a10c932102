"""Real master and worker processes on 127.0.0.1: identity with a local run, joins, failures, shutdown, restart."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import threading

import pytest

from distributed_helpers import HOST, comparable, free_port, local_state, run, wait_until
from neatify import Checkpoint, Population
from neatify.distributed import (
    DistributedConfig, DistributedEvaluator, DistributedPopulation, RemoteFitnessError, WorkerLostError,
    WorkerWaitTimeout,
)
from neatify.reporting.reporters import CheckpointReporter

pytestmark = pytest.mark.timeout(90)

POP, SEED = 40, 7


def kill_when_marked(mark, pid: int, sig: int) -> threading.Thread:
    """Send ``sig`` to ``pid`` as soon as that worker has started a batch (bounded wait)."""
    def watch() -> None:
        wait_until(mark.exists, 30, f"{mark.name} to start a batch")
        os.kill(pid, sig)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


@pytest.mark.slow
def test_two_workers_match_local_run_then_shut_down_cleanly(master, procs):
    pop = master(min_workers=2)
    workers = [procs.worker(pop.port, i, "--capacity", "7") for i in (1, 2)]
    assert run(pop, 4) == local_state(POP, SEED, 4)
    port = pop.port
    pop.shutdown()
    assert [w.wait(10) for w in workers] == [0, 0]
    assert "shutdown received" in procs.log(workers[0])
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((HOST, port), timeout=2).close()
    with socket.socket() as sock:  # what a restarted master does: bind the same port again
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((HOST, port))


@pytest.mark.slow
def test_species_batching_matches_the_local_run(master, procs):
    pop = master(min_workers=2, batching="species")
    for i in (1, 2):
        procs.worker(pop.port, i, "--capacity", "7")
    assert run(pop, 4) == local_state(POP, SEED, 4)


@pytest.mark.slow
def test_distributed_evaluator_serves_a_plain_population_with_its_reporters(procs, tmp_path):
    config = DistributedConfig(host=HOST, port=0, min_workers=2, heartbeat_interval=0.2, worker_wait_timeout=30.0)
    with DistributedEvaluator(config) as evaluator:
        for i in (1, 2):
            procs.worker(evaluator.port, i)
        pop = Population(POP, 2, 1, seed=SEED)
        pop.add_reporter(CheckpointReporter(tmp_path, every_generations=1))
        for _ in range(3):
            pop.run_generation(evaluator)
    assert comparable(pop.state_dict()) == local_state(POP, SEED, 3)
    saved = sorted(tmp_path.glob("checkpoint-*"))
    assert saved and comparable(Checkpoint.load(saved[-1]).state_dict())["generation"] >= 2


@pytest.mark.slow
def test_a_population_with_the_evaluator_as_reporter_batches_by_species_and_labels_its_generations(procs):
    """What DistributedPopulation is built on: a plain Population, half run locally, continued through the
    evaluator that is also its reporter, runs as the local run does, labelled with the population's generations."""
    from xor_task import xor_fitness

    config = DistributedConfig(host=HOST, port=0, min_workers=2, batching="species", worker_wait_timeout=30.0)
    with DistributedEvaluator(config) as evaluator:
        for i in (1, 2):
            procs.worker(evaluator.port, i, "--capacity", "7")
        pop = Population(POP, 2, 1, seed=SEED)
        pop.run(xor_fitness, 2)
        pop.add_reporter(evaluator)
        pop.run(evaluator, 2)
        assert evaluator.calls == 4  # generations 2 and 3 went out as such, not as the evaluator's calls 0 and 1
    assert comparable(pop.state_dict()) == local_state(POP, SEED, 4)


@pytest.mark.slow
def test_worker_joining_mid_generation_gets_work(master, procs, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="neatify.distributed")
    pop = master(pop_size=60)
    first = procs.worker(pop.port, 1, "--sleep", "0.03", "--capacity", "6", "--mark-dir", str(tmp_path))
    joiner = threading.Thread(target=lambda: (wait_until((tmp_path / "1").exists, 30, "worker 1's first batch"),
                                              procs.worker(pop.port, 2, "--mark-dir", str(tmp_path))), daemon=True)
    joiner.start()
    state = run(pop, 1)
    assert (tmp_path / "2").exists(), "the worker that joined mid-generation got no batch in it"
    assert state == local_state(60, SEED, 1)
    assert "worker 2 registered" in caplog.text
    assert first.poll() is None


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGSTOP], ids=["SIGKILL", "SIGSTOP"])
def test_worker_failing_mid_batch_loses_nothing(master, procs, tmp_path, caplog, sig):
    caplog.set_level(logging.DEBUG, logger="neatify.distributed")  # DEBUG: the generation summary
    pop = master(min_workers=2)
    victim = procs.worker(pop.port, "victim", "--sleep", "0.05", "--capacity", "5", "--mark-dir", str(tmp_path))
    procs.worker(pop.port, "steady", "--sleep", "0.005", "--capacity", "5")
    killer = kill_when_marked(tmp_path / "victim", victim.pid, sig)
    assert run(pop, 3) == local_state(POP, SEED, 3)
    killer.join(5)
    assert "worker victim lost" in caplog.text
    assert "re-sending the unfinished genomes" in caplog.text
    assert "re-sent after a failure" in caplog.text


@pytest.mark.slow
def test_late_batch_is_resent_and_its_late_result_ignored(master, procs, caplog):
    caplog.set_level(logging.DEBUG, logger="neatify.distributed")
    pop = master(min_workers=2, task_timeout=0.4)
    procs.worker(pop.port, "slow", "--sleep", "0.25", "--capacity", "3")
    procs.worker(pop.port, "fast", "--capacity", "3")
    assert run(pop, 2) == local_state(POP, SEED, 2)
    assert "worker slow exceeded task_timeout (0.4s): re-sending" in caplog.text
    wait_until(lambda: "result of batch" in caplog.text, 10, "the slow worker's result to arrive")
    assert "ignoring duplicate result" in caplog.text or "ignoring late result" in caplog.text


@pytest.mark.slow
def test_without_fault_tolerance_a_lost_worker_fails_the_generation(master, procs, tmp_path):
    pop = master(enable_fault_tolerance=False)
    victim = procs.worker(pop.port, "victim", "--sleep", "0.05", "--capacity", "5", "--mark-dir", str(tmp_path))
    kill_when_marked(tmp_path / "victim", victim.pid, signal.SIGKILL)
    with pytest.raises(WorkerLostError, match="worker victim lost .* enable_fault_tolerance off"):
        pop.run_generation(lambda genomes: None)


@pytest.mark.slow
def test_worker_leaving_on_sigterm_exits_0_and_nothing_is_lost(master, procs, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="neatify.distributed")
    pop = master(min_workers=2)
    leaver = procs.worker(pop.port, "leaver", "--sleep", "0.02", "--capacity", "5", "--mark-dir", str(tmp_path))
    procs.worker(pop.port, "stayer", "--sleep", "0.005", "--capacity", "5")
    kill_when_marked(tmp_path / "leaver", leaver.pid, signal.SIGTERM)
    assert run(pop, 3) == local_state(POP, SEED, 3)
    assert leaver.wait(10) == 0
    assert "worker leaver lost (worker leaver is leaving)" in caplog.text


@pytest.mark.slow
def test_master_waits_when_all_workers_are_gone(master, procs, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="neatify.distributed")
    pop = master()
    only = procs.worker(pop.port, "only", "--sleep", "0.05", "--capacity", "5", "--mark-dir", str(tmp_path))

    def replace() -> None:
        wait_until((tmp_path / "only").exists, 30, "the only worker's first batch")
        only.kill()
        wait_until(lambda: "all workers gone" in caplog.text, 30, "the master to notice")
        procs.worker(pop.port, "replacement")

    thread = threading.Thread(target=replace, daemon=True)
    thread.start()
    assert run(pop, 2) == local_state(POP, SEED, 2)
    thread.join(5)


@pytest.mark.slow
def test_min_workers_wait_is_bounded(master, caplog):
    caplog.set_level(logging.INFO, logger="neatify.distributed")
    pop = master(min_workers=2, worker_wait_timeout=0.5)
    with pytest.raises(WorkerWaitTimeout, match="waiting for 2 worker"):
        pop.run_generation(lambda genomes: None)
    assert "waiting for 2 worker(s) to register" in caplog.text


@pytest.mark.slow
def test_raising_fitness_function_reports_worker_genome_and_traceback(master, procs):
    pop = master()
    target = pop.genomes[5].id
    procs.worker(pop.port, "w9", "--raise-on", str(target))
    with pytest.raises(RemoteFitnessError) as info:
        pop.run_generation(lambda genomes: None)
    error = info.value
    assert (error.worker_id, error.genome_id) == ("w9", target)
    assert "ZeroDivisionError: deliberate failure" in error.remote_traceback
    assert "worker w9" in str(error) and f"genome {target}" in str(error)


@pytest.mark.slow
def test_raising_fitness_function_with_penalty(master, procs):
    pop = master(error_fitness=-1.0)
    target = pop.genomes[3].id
    procs.worker(pop.port, "w", "--raise-on", str(target), "--capacity", "4")
    pop.run_generation(lambda genomes: None)
    fitness = {g.id: g.fitness for g in pop.genomes}
    assert fitness[target] == -1.0
    assert sum(1 for v in fitness.values() if v == -1.0) == 1


@pytest.mark.slow
def test_wrong_or_missing_token_refused_right_one_accepted(master, procs, caplog):
    caplog.set_level(logging.INFO, logger="neatify.distributed")
    pop = master(auth_token="s3cret")
    wrong = procs.worker(pop.port, "wrong", "--token", "guess")
    missing = procs.worker(pop.port, "missing", env={"NEATIFY_AUTH_TOKEN": ""})
    good = procs.worker(pop.port, "good", env={"NEATIFY_AUTH_TOKEN": "s3cret"})
    assert wrong.wait(20) == 1 and missing.wait(20) == 1
    assert f"master at 127.0.0.1:{pop.port} could not prove it knows the auth token" in procs.log(wrong)
    assert "requires an auth token" in procs.log(missing)
    assert "refused this master: worker wrong: master at" in caplog.text
    pop.run_generation(lambda genomes: None)
    pop.shutdown()
    assert good.wait(10) == 0


@pytest.mark.slow
def test_worker_gives_up_after_bounded_connect_attempts(procs):
    worker = procs.worker(free_port(), "lonely", "--max-connect-attempts", "3")
    assert worker.wait(20) == 1
    log = procs.log(worker)
    assert log.count("cannot reach master") == 3 and log.count("retrying in") == 2
    assert "could not register with master at 127.0.0.1" in log and "after 3 attempt(s)" in log


@pytest.mark.slow
def test_master_restart_from_checkpoint_continues_exactly(procs, tmp_path):
    from neatify.io.checkpoint import Checkpoint

    port, generations = free_port(), 12
    checkpoint, out = tmp_path / "run.json", tmp_path / "final.json"
    master_args = [
        "tests/distributed_helpers.py", "master", "--port", str(port), "--min-workers", "2", "--pop-size", str(POP),
        "--seed", str(SEED), "--generations", str(generations), "--checkpoint", str(checkpoint), "--out", str(out)]
    workers = [procs.worker(port, i, "--sleep", "0.003") for i in (1, 2)]  # before the master: they retry
    first = procs.start("master-1", *master_args)
    wait_until(lambda: checkpoint.exists() and Checkpoint.read_state(checkpoint)["generation"] >= 3, 60,
               "the master to checkpoint generation 3")
    first.kill()
    assert first.wait(10) != 0 and not out.exists()
    second = procs.start("master-2", *master_args)
    assert second.wait(60) == 0, procs.log(second)
    assert "resumed from checkpoint" in procs.log(second)
    assert json.loads(out.read_text()) == local_state(POP, SEED, generations)
    assert [w.wait(10) for w in workers] == [0, 0]
    assert "reconnecting" in procs.log(workers[0])


@pytest.mark.slow
def test_worker_of_another_protocol_version_is_refused_on_both_sides(master, monkeypatch, caplog):
    import neatify.distributed.core.worker as worker_module
    from xor_task import xor_fitness
    from neatify.distributed import RegistrationError, WorkerNode

    caplog.set_level(logging.INFO, logger="neatify.distributed")
    pop = master()
    newer = worker_module.PROTOCOL_VERSION + 1
    monkeypatch.setattr(worker_module, "PROTOCOL_VERSION", newer)  # a worker from a newer neatify
    worker = WorkerNode(HOST, pop.port, "future", xor_fitness, max_connect_attempts=1)
    with pytest.raises(RegistrationError, match=f"protocol version mismatch: worker future speaks version {newer}"):
        worker.start()
    assert "refusing worker from 127.0.0.1" in caplog.text


@pytest.mark.slow
def test_a_taken_worker_id_is_refused_until_it_is_free(master, procs, caplog):
    caplog.set_level(logging.INFO, logger="neatify.distributed")
    pop = master()
    first = procs.worker(pop.port, "same")
    wait_until(lambda: pop.coordinator.num_workers == 1, 30, "the first worker to register")
    second = procs.worker(pop.port, "same")
    wait_until(lambda: "worker id same is already connected" in procs.log(second), 30, "the second to be refused")
    first.send_signal(signal.SIGTERM)
    assert first.wait(10) == 0
    wait_until(lambda: caplog.text.count("worker same registered") == 2, 30, "the second worker to get in")
    assert run(pop, 1) == local_state(POP, SEED, 1)


@pytest.mark.slow
def test_master_given_a_checkpoint_workers_would_reject_exits_before_serving_anyone(procs, tmp_path):
    from neatify import Checkpoint, Population

    checkpoint = tmp_path / "run.json"
    Checkpoint.save(Population(POP, 2, 1, seed=SEED), checkpoint)
    data = json.loads(checkpoint.read_text())
    genome = data["population"]["genomes"][0]
    genome["nodes"][0][3] = "no_such_activation"  # output node 2 of genome 0
    checkpoint.write_text(json.dumps(data))
    port = free_port()
    worker = procs.worker(port, "w", "--max-connect-attempts", "5")
    master = procs.start("master", "tests/distributed_helpers.py", "master", "--port", str(port),
                         "--checkpoint", str(checkpoint), "--out", str(tmp_path / "out.json"))
    assert master.wait(20) != 0
    log = procs.log(master)
    problem = f"{checkpoint}: genome 0: node 2: unknown activation 'no_such_activation'"
    assert "CheckpointError" in log and problem in log
    assert "master listening" not in log
    assert worker.wait(20) == 1
    assert "could not register" in procs.log(worker) and "invalid genome" not in procs.log(worker)


@pytest.mark.parametrize("where", ["missing/run.json", "."])
def test_master_with_an_unwritable_checkpoint_path_refuses_to_start(tmp_path, where):
    from neatify.io.checkpoint import CheckpointError

    path = tmp_path / where
    with pytest.raises(CheckpointError, match="cannot write"):
        DistributedPopulation(POP, 2, 1, seed=SEED, checkpoint_path=path,
                              distributed_config=DistributedConfig(host=HOST, port=0))
    assert not path.with_name(path.name + ".tmp").exists()
