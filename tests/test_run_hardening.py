"""Genomes, settings, files and process deaths that once stalled a run forever or crashed a node, with real
``neatify master``/``worker`` processes on 127.0.0.1: a fitness too large for a float, a supervised child that
crashes or hangs after the master is gone, scheduler files that are forged, shared or not files at all, a
master's absurd ``num_inputs``, and flags out of range."""

from __future__ import annotations

import dataclasses
import json
import os
import resource
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from neatify import Population
from neatify.cli.main import main
from neatify.distributed import PROTOCOL_VERSION, DistributedConfig
from neatify.distributed.io.connection import FramedConnection
from neatify.distributed.io.scheduler_file import SchedulerInfo, write_scheduler_file
from neatify.distributed.wire.columns import NODE_RECORD, WireGenomes
from neatify.distributed.wire.messages import FitnessReport, RegistrationAck, WorkerRegistration

from distributed_helpers import HERE, HOST, Processes, free_port, wait_until

FITNESS_MODULE = """
import os
import time
from pathlib import Path

from xor_task import xor_fitness as fitness
from neatify.activations import register_activation

register_activation("hardening_softsign", lambda x: x / (1.0 + abs(x)))


def overflowing(genomes):
    fitness(genomes)
    for genome in genomes:
        if genome.id == 3:
            genome.fitness = 10 ** 400  # an int too large for a float


def _claimed():
    '''Whether this process is the first (ever, in this folder) to evaluate a batch.'''
    try:
        os.close(os.open("claimed", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


def _wait_for(name, limit=120.0):
    deadline = time.monotonic() + limit
    while not Path(name).exists() and time.monotonic() < deadline:
        time.sleep(0.05)


def crash_after_the_master(genomes):
    '''The first evaluator holds its batch until the test says the master is gone, then dies.'''
    if _claimed():
        _wait_for("master-gone")
        os._exit(3)
    fitness(genomes)


def hang(genomes):
    '''The first evaluator never returns (within the test's bounds).'''
    if _claimed():
        _wait_for("never")
    fitness(genomes)
"""

RUN_FILE = """
[run]
fitness = "hardfit:fitness"
num_inputs = 2
num_outputs = 1
generations = 2
seed = 5
champion = "champion.json"

[evolution]
population_size = 30
"""

HELPERS_ON_PATH = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))}
"""The environment of the processes: the fitness module imports ``xor_task`` from tests/."""
MEMORY_LIMIT = 4 << 30
"""Address space of a worker process that might, without the fix, allocate without bound."""


@pytest.fixture
def project(tmp_path):
    (tmp_path / "hardfit.py").write_text(FITNESS_MODULE)
    (tmp_path / "run.toml").write_text(RUN_FILE)
    return tmp_path


def cli(procs: Processes, project: Path, name: str, *args: str):
    """``neatify *args`` in the project folder, stdout in its log and stderr apart."""
    return procs.start(name, "-m", "neatify", *args, cwd=project, split=True, env=HELPERS_ON_PATH)


def neatify(project: Path, *args: str, **options) -> subprocess.CompletedProcess:
    """``neatify *args`` run to its end in the project folder (bounded), its output captured."""
    return subprocess.run([sys.executable, "-m", "neatify", *args], cwd=project, capture_output=True, text=True,
                          timeout=60, env=HELPERS_ON_PATH, **options)


def master(procs: Processes, project: Path, *flags: str, name: str = "master"):
    return cli(procs, project, name, "master", "run.toml", "--port", "0", "--worker-wait-timeout", "30", *flags)


def port_of(procs: Processes, proc) -> int:
    wait_until(lambda: "listening on" in procs.log(proc) or proc.poll() is not None, 30, "the master to listen")
    assert "listening on" in procs.log(proc), procs.errors(proc)
    return int(procs.log(proc).split()[-1].rsplit(":", 1)[1])


def worker(procs: Processes, project: Path, name: str, fitness: str, *flags: str):
    return cli(procs, project, name, "worker", f"hardfit:{fitness}", "--worker-id", name, *flags)


def stop(proc) -> None:
    """SIGTERM (so that a supervisor's children go too), then wait."""
    if proc.poll() is None:
        proc.terminate()
        proc.wait(timeout=30)


# --- item 5: a fitness too large for a float ---

@pytest.mark.slow
def test_a_fitness_too_large_for_a_float_is_an_error_naming_the_genome_and_the_worker_stays_up(procs, project):
    run = master(procs, project)
    worker(procs, project, "w", "overflowing", "--master-port", str(port_of(procs, run)))
    assert run.wait(timeout=60) == 1
    err = procs.errors(run)
    assert "neatify: error: fitness function failed on worker w for genome 3" in err, err
    assert "too large for a float" in err and "Traceback" not in err.split("genome 3")[0]
    assert procs.procs[-1].wait(timeout=30) == 0, procs.errors(procs.procs[-1])  # shut down, not crashed


@pytest.mark.slow
def test_error_fitness_from_the_command_line_finishes_the_run(procs, project):
    run = master(procs, project, "--error-fitness", "-1")
    helper = worker(procs, project, "w", "overflowing", "--master-port", str(port_of(procs, run)))
    assert run.wait(timeout=60) == 0, procs.errors(run)
    assert helper.wait(timeout=30) == 0
    assert "genome 3; giving it error_fitness -1.0" in procs.errors(run)


# --- item 6: the supervisor ends with the run ---

def _supervised_run(procs: Processes, project: Path, fitness: str):
    """A master whose batch held by a stuck evaluator is re-sent after 1 s, and two supervised workers of two
    evaluator processes each."""
    run = master(procs, project, "--min-workers", "2", "--task-timeout", "1", "--generations", "1")
    port = str(port_of(procs, run))
    return run, [worker(procs, project, name, fitness, "--master-port", port, "--processes", "2", "-v")
                 for name in ("sup-a", "sup-b")]


def _all_exit_0(procs: Processes, supervisors, timeout: float) -> str:
    """Wait for every supervisor to exit 0 (stopping any left); their stderr together."""
    try:
        for supervisor in supervisors:
            assert supervisor.wait(timeout=timeout) == 0, procs.errors(supervisor)
    finally:
        for supervisor in supervisors:
            stop(supervisor)
    return "".join(procs.errors(supervisor) for supervisor in supervisors)


@pytest.mark.slow
def test_an_evaluator_crashing_after_the_master_is_gone_is_not_replaced_and_the_supervisors_exit_0(procs, project):
    run, supervisors = _supervised_run(procs, project, "crash_after_the_master")
    try:
        assert run.wait(timeout=60) == 0, procs.errors(run)
    finally:
        (project / "master-gone").touch()
    err = _all_exit_0(procs, supervisors, 30)
    assert "shutdown received" in err and "starting another" not in err and "restarting it" not in err, err


@pytest.mark.slow
def test_an_evaluator_stuck_in_its_fitness_after_the_master_is_gone_is_killed_and_the_supervisors_exit_0(
        procs, project):
    run, supervisors = _supervised_run(procs, project, "hang")
    try:
        assert run.wait(timeout=60) == 0, procs.errors(run)
    finally:
        err = _all_exit_0(procs, supervisors, 40)
    # killed by the worker's pool after its grace, or with it by the worker's watchdog, whichever comes first
    assert "asked to exit; killing it" in err or "the fitness function has not returned; exiting" in err, err


LATE_FITNESS_MODULE = """
import os
import time
from pathlib import Path

from xor_task import xor_fitness

if Path("claimed").exists():  # the child started again after the crash: it reaches the master after its end
    deadline = time.monotonic() + 60.0
    while not Path("master-ended").exists() and time.monotonic() < deadline:
        time.sleep(0.05)


def crash_once(genomes):
    try:
        os.close(os.open("claimed", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return xor_fitness(genomes)
    os._exit(3)
"""


@pytest.mark.slow
def test_a_lone_supervised_child_that_crashed_before_the_end_is_told_the_run_is_over(procs, project):
    """Its supervisor restarts it after the master's run is over: the master, ending, waits for the worker it lost
    and tells it so; the child and its supervisor exit 0 (no --max-connect-attempts needed)."""
    (project / "latefit.py").write_text(LATE_FITNESS_MODULE)
    run = master(procs, project, "--min-workers", "2", "--generations", "1", "-v")
    port = str(port_of(procs, run))
    supervisor = cli(procs, project, "sup", "worker", "latefit:crash_once", "--worker-id", "sup", "--master-port",
                     port, "--processes", "1")
    helper = worker(procs, project, "w", "fitness", "--master-port", port)
    try:
        wait_until(lambda: "lost shortly before the end (sup)" in procs.log(run) + procs.errors(run), 60,
                   "the master to wait for the crashed child")
        (project / "master-ended").touch()
        assert supervisor.wait(timeout=60) == 0, procs.errors(supervisor)
        assert run.wait(timeout=30) == 0 and helper.wait(timeout=30) == 0, procs.errors(run)
    finally:
        stop(supervisor)
    err = procs.errors(supervisor)
    assert "status 3; restarting it" in err and "Traceback" not in err, err


@pytest.mark.slow
def test_supervisor_stops_children_still_running_after_the_run(project):
    """One child exits 0 (its master shut it down), the other would run on: it is stopped, and the status is 0."""
    from neatify.distributed.io.supervisor import Supervisor

    python = sys.executable
    supervisor = Supervisor({"done": [python, "-c", "pass"],
                             "lingering": [python, "-c", "import time; time.sleep(120)"]},
                            shutdown_grace=0.5, stop_grace=5.0)
    assert supervisor.run() == 0
    assert supervisor.run_over_at is not None and all(child.proc is None for child in supervisor.children)


# --- item 7 (the flag): the frame limit from the command line ---

@pytest.mark.slow
def test_max_frame_bytes_reaches_the_worker(procs, project):
    """A worker allowing 1 KiB frames refuses the master's first task (about 1.5 KiB) as too long."""
    run = master(procs, project)
    helper = worker(procs, project, "w", "fitness", "--master-port", str(port_of(procs, run)), "--max-frame-bytes",
                    "1024")
    wait_until(lambda: "bytes refused (limit 1024)" in procs.errors(helper) or helper.poll() is not None, 30,
               "the worker to refuse a task")
    assert "bytes refused (limit 1024)" in procs.errors(helper), procs.errors(helper)
    stop(helper)
    stop(run)


@pytest.mark.parametrize("command", [["master", "run.toml"], ["master", "run.toml", "--standby-of", "h:1"],
                                     ["worker", "m:f"]])
@pytest.mark.parametrize("value", ["1023", "4294967296", "1e9", "x"])
def test_max_frame_bytes_out_of_range_is_a_usage_error_naming_the_range(capsys, command, value):
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--max-frame-bytes", value])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert f"argument --max-frame-bytes: must be whole bytes in 1024..4294967295, got '{value}'" in err


# --- item 8: the scheduler file ---

def _scheduler_info(port: int, epoch: int) -> SchedulerInfo:
    return SchedulerInfo(HOST, port, epoch, PROTOCOL_VERSION, 1)


@pytest.mark.slow
def test_an_epoch_only_read_in_a_scheduler_file_does_not_hold_a_worker_back(procs, project):
    """A file says epoch 7 (left by a killed promoted standby, or forged); the worker never served it, so the fresh
    master of epoch 1 that rewrites the file gets it. That master warns that the file named another master."""
    write_scheduler_file(project / "s.json", _scheduler_info(free_port(), epoch=7))
    helper = worker(procs, project, "w", "fitness", "--scheduler-file", "s.json", "--max-connect-attempts", "200")
    wait_until(lambda: "cannot reach master" in procs.errors(helper), 30, "the worker to try epoch 7's address")
    run = master(procs, project, "--scheduler-file", "s.json")
    assert run.wait(timeout=60) == 0, procs.errors(run)
    assert helper.wait(timeout=30) == 0, procs.errors(helper)
    warning = procs.errors(run)
    assert "scheduler file s.json already names master tcp://127.0.0.1:" in warning and "(epoch 7, pid 1)" in warning


@pytest.mark.slow
def test_a_second_master_on_one_scheduler_file_warns_naming_the_first(procs, project):
    first = master(procs, project, "--scheduler-file", "s.json", name="first")
    address = f"tcp://127.0.0.1:{port_of(procs, first)}"
    second = master(procs, project, "--scheduler-file", "s.json", name="second")
    port_of(procs, second)
    assert f"scheduler file s.json already names master {address} (epoch 1, pid {first.pid})" in procs.errors(second)
    assert "first" not in procs.errors(first)
    for proc in (first, second):
        stop(proc)


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


@pytest.mark.slow
@pytest.mark.parametrize("make, kind", [
    (lambda path: os.mkfifo(path), "a FIFO"),
    (lambda path: os.symlink("/dev/zero", path), "a device or socket"),
    (lambda path: path.mkdir(), "a directory"),
])
def test_a_scheduler_file_that_is_no_regular_file_is_an_error_naming_it(project, make, kind):
    make(project / "s.json")
    result = neatify(project, "worker", "hardfit:fitness", "--scheduler-file", "s.json", "--max-connect-attempts", "2",
                     preexec_fn=_limit_memory)
    assert result.returncode == 1
    assert result.stderr == f"neatify: error: scheduler file s.json is {kind}, not a regular file\n"


@pytest.mark.slow
def test_a_master_refuses_a_scheduler_path_that_is_a_directory(project):
    (project / "s.json").mkdir()
    result = neatify(project, "master", "run.toml", "--port", "0", "--scheduler-file", "s.json")
    assert result.returncode == 1
    assert "neatify: error: scheduler file s.json is a directory, not a regular file" in result.stderr


# --- item 9 ---

@pytest.mark.slow
def test_the_master_accepts_an_activation_its_run_file_s_fitness_module_registers(procs, project):
    (project / "run.toml").write_text(RUN_FILE.replace("[evolution]", '[evolution]\nactivation_default = '
                                                                      '"hardening_softsign"'))
    run = master(procs, project)
    helper = worker(procs, project, "w", "fitness", "--master-port", str(port_of(procs, run)))
    assert run.wait(timeout=60) == 0, procs.errors(run)
    assert helper.wait(timeout=30) == 0
    champion = json.loads((project / "champion.json").read_text())["genome"]  # this process lacks the activation
    assert {node[3] for node in champion["nodes"]} == {"hardening_softsign"}


@pytest.mark.slow
def test_an_unknown_activation_is_still_refused_by_name(project):
    (project / "run.toml").write_text(RUN_FILE.replace("[evolution]", '[evolution]\nactivation_default = "nope"'))
    result = neatify(project, "master", "run.toml", "--port", "0")
    assert result.returncode == 1 and result.stderr.startswith("neatify: error:"), result.stderr
    assert "'nope'" in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("value", ["-1", "nan", "inf", "0"])
def test_status_timeout_out_of_range_is_a_usage_error(capsys, value):
    with pytest.raises(SystemExit) as exit_info:
        main(["status", "127.0.0.1:1", "--timeout", value])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and len(err.strip().splitlines()) == 1
    assert f"argument --timeout: must be seconds in 0.01..604800, got '{value}'" in err


@pytest.mark.slow
@pytest.mark.parametrize("value", ["inf", "nan", "1e-7", "0", "7200"])
def test_heartbeat_interval_out_of_range_is_a_usage_error_naming_the_range(project, value):
    result = neatify(project, "master", "run.toml", "--port", "0", "--worker-wait-timeout", "1",
                     "--heartbeat-interval", value)
    assert result.returncode == 2
    assert f"argument --heartbeat-interval: must be seconds in 0.01..3600, got '{value}'" in result.stderr


@pytest.mark.parametrize("settings, problem", [
    ({"heartbeat_interval": float("inf")}, "heartbeat_interval must be in 0.01..3600 seconds"),
    ({"heartbeat_interval": 1e-7}, "heartbeat_interval must be in 0.01..3600 seconds"),
    ({"task_timeout": float("inf")}, "task_timeout must be a positive finite number"),
    ({"handshake_timeout": float("nan")}, "handshake_timeout must be a positive finite number"),
    ({"worker_wait_timeout": float("inf")}, "worker_wait_timeout must be a finite number"),
    ({"shutdown_linger": -1.0}, "shutdown_linger must be a finite number of seconds >= 0"),
    ({"shutdown_linger": float("nan")}, "shutdown_linger must be a finite number of seconds >= 0"),
    ({"max_frame_bytes": 2**32}, "max_frame_bytes must be an integer in 1024..4294967295"),
])
def test_distributed_config_refuses_settings_out_of_range(settings, problem):
    with pytest.raises(ValueError, match=problem):
        DistributedConfig(**settings)


def _huge_input_task():
    """A valid TASK_ASSIGNMENT of one genome without connections whose networks would have 3e8 inputs."""
    inputs = 300_000_000
    task = WireGenomes.of(Population(1, 2, 1, seed=0).genomes).task(1, 0)
    nodes = np.frombuffer(task.nodes, NODE_RECORD).copy()
    nodes["id"] += inputs - 2
    count = np.frombuffer(task.node_counts, "<u4")
    return dataclasses.replace(task, num_inputs=inputs, nodes=nodes.tobytes(), connections=b"",
                               conn_counts=np.zeros_like(count).tobytes())


@pytest.mark.slow
def test_a_worker_refuses_a_task_with_more_inputs_than_it_allows_naming_the_sizes(project):
    """A (fake) master sends a task whose genomes have 3e8 inputs: the worker reports every genome as an error
    naming the sizes instead of building the networks, and stays connected."""
    with socket.socket() as server:
        server.bind((HOST, 0))
        server.listen(1)
        server.settimeout(30)
        helper = subprocess.Popen([sys.executable, "-m", "neatify", "worker", "hardfit:fitness", "--master-port",
                                   str(server.getsockname()[1]), "--max-connect-attempts", "1"], cwd=project,
                                  stderr=subprocess.PIPE, text=True, env=HELPERS_ON_PATH, preexec_fn=_limit_memory)
        try:
            sock, _ = server.accept()
            conn = FramedConnection(sock, 1 << 20)
            assert isinstance(conn.recv(), WorkerRegistration)
            conn.send(RegistrationAck("accepted", heartbeat_interval=5.0, epoch=1))
            task = _huge_input_task()
            conn.send(task)
            reply = conn.recv()
            assert isinstance(reply, FitnessReport), reply
            genome_id = int(np.frombuffer(task.ids, "<i8")[0])
            assert len(reply.ids) == 0 and [pair[0] for pair in reply.errors] == [genome_id]
            assert "its genomes have 300000000 inputs and 1 outputs, more than this worker's max_inputs" in \
                reply.errors[0][1]
            assert helper.poll() is None
            conn.close()
            assert helper.wait(timeout=30) == 1  # its one connection attempt is spent
        finally:
            if helper.poll() is None:
                helper.kill()
            helper.communicate(timeout=30)
