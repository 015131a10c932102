"""Running on a cluster: ``neatify status``, supervised local workers (``--processes``), the scheduler file;
real processes (or an in-process master) on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import threading

import pytest

from neatify import Population
from neatify.cli.main import build_parser, main
from neatify.distributed import PROTOCOL_VERSION, DistributedConfig, DistributedEvaluator, WorkerNode
from neatify.distributed.io.scheduler_file import (
    SchedulerInfo, read_scheduler_file, remove_scheduler_file, write_scheduler_file,
)

from distributed_helpers import (
    HERE, HOST, Processes, RawPeer, alive, children_of, free_port, local_state, wait_until,
)
from xor_task import xor_fitness

TOKEN = "cluster-secret"
HELPERS_ON_PATH = {"PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))}


def _status(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["status", *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.slow
def test_status_reports_workers_and_is_no_worker(capsys):
    with DistributedEvaluator(DistributedConfig(host=HOST, port=0)) as evaluator:
        address = f"{HOST}:{evaluator.port}"
        peer = RawPeer(evaluator.port, "p1", on_task=lambda peer, task: None)
        wait_until(lambda: evaluator.coordinator.num_workers == 1, 5, "the peer to register")
        code, out, _ = _status(capsys, address, "--json")
        report = json.loads(out)
        assert code == 0 and (report["workers"], report["busy"], report["idle"]) == (1, 0, 1)
        assert (report["generation"], report["evaluating"], report["pending"]) == (-1, False, 0)
        code, out, _ = _status(capsys, address)
        assert code == 0 and "workers: 1 (0 busy, 1 idle)" in out and "genomes pending: 0" in out
        assert evaluator.coordinator.num_workers == 1 and not peer.closed.is_set()
    code, _, err = _status(capsys, address, "--timeout", "2")  # the master is gone
    assert code == 1 and err.startswith(f"neatify: error: status of master at {address}:")


@pytest.mark.slow
def test_status_with_a_token_needs_the_token(capsys):
    with DistributedEvaluator(DistributedConfig(host=HOST, port=0, auth_token=TOKEN)) as evaluator:
        address = f"{HOST}:{evaluator.port}"
        code, _, err = _status(capsys, address, "--json")
        assert code == 1 and "requires an auth token" in err and len(err.strip().splitlines()) == 1
        code, _, err = _status(capsys, address, "--auth-token", "wrong")
        assert code == 1 and "could not prove it knows the auth token" in err
        code, out, _ = _status(capsys, address, "--json", "--auth-token", TOKEN)
        assert code == 0 and json.loads(out)["workers"] == 0


def test_status_address_must_be_host_port():
    with pytest.raises(SystemExit) as exit_info:
        main(["status", "localhost"])
    assert exit_info.value.code == 2


def test_processes_auto_is_the_usable_cpus():
    parse = build_parser().parse_args
    assert parse(["worker", "m:f", "--processes", "auto"]).processes == len(os.sched_getaffinity(0))
    assert parse(["worker", "m:f", "--processes", "3"]).processes == 3
    with pytest.raises(SystemExit):
        parse(["worker", "m:f", "--processes", "0"])


def _supervisor(procs: Processes, port: int, *flags: str):
    return procs.start("supervisor", "-m", "neatify", "worker", "distributed_helpers:slow_xor_fitness",
                       "--master-port", str(port), "--worker-id", "sup", "--capacity", "5", *flags,
                       env=HELPERS_ON_PATH)


def _stop(proc) -> None:
    """Stop a supervisor the way a scheduler would, so its children go too."""
    if proc.poll() is None:
        proc.terminate()
        proc.wait(timeout=20)


def _evaluator_pids(log: str) -> dict[int, int]:
    """Evaluator number -> pid of the evaluators a worker logged it started (the latest of each number)."""
    return {int(number): int(pid) for number, pid in re.findall(r"evaluator (\d+) started \(pid (\d+)\)", log)}


def _disturbed_run(tmp_path, disturb) -> tuple[str, str]:
    """A master of 12 generations and one supervised worker of two evaluator processes: once it is registered,
    ``disturb(procs, master, supervisor)``; then both must end with status 0. Their logs (supervisor, master)."""
    port, out = free_port(), tmp_path / "state.json"
    with Processes(tmp_path) as procs:
        master = procs.start("master", str(HERE / "distributed_helpers.py"), "master", "--port", str(port),
                             "--min-workers", "1", "--pop-size", "40", "--generations", "12", "--out", str(out))
        supervisor = _supervisor(procs, port, "--processes", "2", "-v")
        try:
            wait_until(lambda: procs.log(master).count("registered from") == 1 and len(_evaluator_pids(
                procs.log(supervisor))) == 2, 60, "one worker of two evaluators")
            disturb(procs, master, supervisor)
            assert master.wait(timeout=120) == 0, procs.log(master)
            assert supervisor.wait(timeout=30) == 0, procs.log(supervisor)  # the worker exited 0: it ends
        finally:
            _stop(supervisor)
        logs = procs.log(supervisor), procs.log(master)
    assert json.loads(out.read_text()) == local_state(40, 0, 12)
    return logs


@pytest.mark.slow
def test_one_worker_of_two_evaluators_equals_the_local_run_and_a_killed_evaluator_is_replaced_unseen(tmp_path):
    victims = []

    def kill_an_evaluator(procs, master, supervisor):
        assert "2 core(s)" in procs.log(master)
        victims.append(_evaluator_pids(procs.log(supervisor))[1])
        os.kill(victims[0], signal.SIGKILL)

    log, master_log = _disturbed_run(tmp_path, kill_an_evaluator)
    assert f"evaluator 1 (pid {victims[0]}) killed by SIGKILL" in log and _evaluator_pids(log)[1] != victims[0]
    assert master_log.count("registered from") == 1 and " lost " not in master_log  # a slower worker, not a lost one


@pytest.mark.slow
def test_a_killed_worker_process_is_restarted_by_its_supervisor_and_the_run_equals_local(tmp_path):
    victims = []

    def kill_the_worker(procs, master, supervisor):
        victims.extend(children_of(supervisor.pid))
        os.kill(victims[0], signal.SIGKILL)
        wait_until(lambda: procs.log(master).count("registered from") == 2, 60, "the killed worker to return")

    log, _ = _disturbed_run(tmp_path, kill_the_worker)
    assert len(victims) == 1 and f"(pid {victims[0]}) killed by SIGKILL; restarting it in 0.5s" in log


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid``, children first."""
    found, frontier = [], [pid]
    while frontier:
        children = [child for parent in frontier for child in children_of(parent)]
        found += children
        frontier = children
    return found


@pytest.mark.slow
@pytest.mark.parametrize("signum, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_to_the_supervisor_leaves_no_process(tmp_path, signum, status):
    with Processes(tmp_path) as procs:
        supervisor = _supervisor(procs, free_port(), "--processes", "2", "-v")  # no master: the worker keeps retrying
        try:
            wait_until(lambda: len(_evaluator_pids(procs.log(supervisor))) == 2, 30, "the worker's 2 evaluators")
            processes = _descendants(supervisor.pid)
            assert len(children_of(supervisor.pid)) == 1 and len(processes) >= 3  # the worker and its evaluators
            supervisor.send_signal(signum)
            assert supervisor.wait(timeout=30) == status
        finally:
            _stop(supervisor)
    wait_until(lambda: not any(alive(pid) for pid in processes), 5, "the worker and its evaluators to end")


def _info(port: int, epoch: int = 0) -> SchedulerInfo:
    return SchedulerInfo(HOST, port, epoch, PROTOCOL_VERSION, os.getpid())


def test_scheduler_file_is_written_atomically_and_removed_only_by_its_writer(tmp_path):
    path = tmp_path / "scheduler.json"
    assert read_scheduler_file(path) is None
    write_scheduler_file(path, _info(5001))
    assert json.loads(path.read_text()) == {"address": f"tcp://{HOST}:5001", "host": HOST, "port": 5001, "epoch": 0,
                                            "protocol_version": PROTOCOL_VERSION, "pid": os.getpid()}
    assert read_scheduler_file(path) == _info(5001) and os.listdir(tmp_path) == ["scheduler.json"]
    write_scheduler_file(path, _info(5002, epoch=1))  # a newer master took over
    assert not remove_scheduler_file(path, _info(5001)) and read_scheduler_file(path) == _info(5002, epoch=1)
    assert remove_scheduler_file(path, _info(5002, epoch=1)) and not path.exists()


@pytest.mark.parametrize("text, problem", [
    ("{", "not JSON"),
    ("[]", "expected a JSON object, got list"),
    ('{"host": "h", "port": "80", "epoch": 0, "protocol_version": 3, "pid": 1}', "'port' must be int, got '80'"),
    ('{"host": "h", "port": 80, "epoch": 0, "protocol_version": 3}', "'pid' must be int, got None"),
    ('{"host": "h", "port": 80, "epoch": -1, "protocol_version": 3, "pid": 1}', "out of range"),
])
def test_a_damaged_scheduler_file_is_an_error_naming_it(tmp_path, text, problem):
    path = tmp_path / "scheduler.json"
    path.write_text(text)
    with pytest.raises(ValueError, match="scheduler file .*scheduler.json: ") as error:
        read_scheduler_file(path)
    assert problem in str(error.value)


@pytest.mark.slow
def test_a_worker_never_goes_back_to_an_older_epoch_than_one_it_served(tmp_path, caplog):
    """Having served epoch 1, a file of epoch 0 is ignored; epoch 2 is served."""
    caplog.set_level(logging.INFO, logger="neatify.distributed.io.worker")
    path = tmp_path / "scheduler.json"
    write_scheduler_file(path, _info(free_port(), epoch=1))
    with DistributedEvaluator(DistributedConfig(host=HOST, port=0)) as evaluator:
        worker = WorkerNode(scheduler_file=path, worker_id="w", fitness_function=xor_fitness, retry_initial=0.02,
                            retry_max=0.05, max_connect_attempts=400)
        worker.served_epoch = 1
        thread = threading.Thread(target=worker.start, daemon=True)
        thread.start()
        try:
            wait_until(lambda: worker.epoch == 1, 5, "the worker to read epoch 1")
            write_scheduler_file(path, _info(evaluator.port, epoch=0))
            wait_until(lambda: "names epoch 0, older than epoch 1 this worker has served" in caplog.text, 5,
                       "epoch 0 to be refused")
            assert evaluator.coordinator.num_workers == 0
            write_scheduler_file(path, _info(evaluator.port, epoch=2))
            wait_until(lambda: evaluator.coordinator.num_workers == 1, 5, "the worker to register at epoch 2")
        finally:
            worker.stop()
            thread.join(10)
    assert not thread.is_alive()


@pytest.mark.slow
def test_workers_find_the_master_through_the_scheduler_file_and_follow_it_to_a_new_port(tmp_path):
    """The worker starts first; the master, killed mid-run, comes back on another port from its checkpoint."""
    scheduler, checkpoint, out = tmp_path / "scheduler.json", tmp_path / "run.json", tmp_path / "state.json"
    first = free_port()
    second = next(port for port in iter(free_port, None) if port != first)

    def master(port: int):
        return procs.start(f"master-{port}", str(HERE / "distributed_helpers.py"), "master", "--port", str(port),
                           "--scheduler-file", str(scheduler), "--checkpoint", str(checkpoint), "--pop-size", "40",
                           "--generations", "8", "--out", str(out))

    with Processes(tmp_path) as procs:
        worker = procs.start("worker", str(HERE / "distributed_helpers.py"), "worker", "--worker-id", "w",
                             "--scheduler-file", str(scheduler), "--sleep", "0.01")
        wait_until(lambda: "waiting for the master to write it" in procs.log(worker), 30, "the worker to wait")
        killed = master(first)
        wait_until(checkpoint.exists, 60, "a first generation")
        killed.kill()
        killed.wait(10)
        restarted = master(second)
        assert restarted.wait(timeout=120) == 0, procs.log(restarted)
        assert worker.wait(timeout=30) == 0, procs.log(worker)
        log = procs.log(worker)
    assert f"names master tcp://{HOST}:{first}" in log and f"names master tcp://{HOST}:{second}" in log
    assert json.loads(out.read_text()) == local_state(40, 0, 8)
    assert not scheduler.exists()  # removed by the master that wrote it, at its clean shutdown


@pytest.mark.slow
def test_a_worker_node_of_two_processes_from_python_equals_the_local_run_and_leaves_no_evaluator(caplog):
    caplog.set_level(logging.INFO)
    pop, local = Population(30, 2, 1, seed=4), Population(30, 2, 1, seed=4)
    with DistributedEvaluator(DistributedConfig(host=HOST, port=0)) as evaluator:
        worker = WorkerNode(HOST, evaluator.port, worker_id="two", fitness_function=xor_fitness, processes=2)
        thread = threading.Thread(target=worker.start, daemon=True)
        thread.start()
        for _ in range(3):
            pop.run_generation(evaluator)
            local.run_generation(xor_fitness)
        evaluators = [int(pid) for pid in re.findall(r"evaluator \d started \(pid (\d+)\)", caplog.text)]
    thread.join(30)
    assert not thread.is_alive() and pop.state_dict() == local.state_dict()
    assert caplog.text.count("registered from") == 1 and "(capacity 50, 2 core(s))" in caplog.text
    assert len(evaluators) == 2 and not any(alive(pid) for pid in evaluators)
