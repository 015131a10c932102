"""Running on a cluster: ``neatify status``, supervised local workers (``--processes``), real processes on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import sys

import pytest

from neatify.cli import build_parser, main
from neatify.distributed import DistributedConfig, DistributedEvaluator

from distributed_helpers import (
    HERE, HOST, Processes, RawPeer, alive, children_of, free_port, local_state, wait_until,
)

TOKEN = "cluster-secret"
HELPERS_ON_PATH = {"PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))}


def _status(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["status", *args])
    out, err = capsys.readouterr()
    return code, out, err


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
    return procs.start("supervisor", "-m", "neatify.cli", "worker", "distributed_helpers:slow_xor_fitness",
                       "--master-port", str(port), "--worker-id", "sup", "--capacity", "5", *flags,
                       env=HELPERS_ON_PATH)


def _stop(proc) -> None:
    """Stop a supervisor the way a scheduler would, so its children go too."""
    if proc.poll() is None:
        proc.terminate()
        proc.wait(timeout=20)


def test_supervised_workers_serve_a_run_identical_to_local_and_a_killed_one_is_restarted(tmp_path):
    port, out = free_port(), tmp_path / "state.json"
    with Processes(tmp_path) as procs:
        master = procs.start("master", str(HERE / "distributed_helpers.py"), "master", "--port", str(port),
                             "--min-workers", "2", "--pop-size", "40", "--generations", "12", "--out", str(out))
        supervisor = _supervisor(procs, port, "--processes", "2")
        try:
            wait_until(lambda: procs.log(master).count("registered from") == 2, 60, "2 supervised workers")
            victim = sorted(children_of(supervisor.pid))[0]
            os.kill(victim, signal.SIGKILL)
            wait_until(lambda: procs.log(master).count("registered from") == 3, 60, "the killed worker to return")
            assert master.wait(timeout=120) == 0, procs.log(master)
            assert supervisor.wait(timeout=30) == 0, procs.log(supervisor)  # every worker exited 0: it ends
        finally:
            _stop(supervisor)
        log = procs.log(supervisor)
    assert f"(pid {victim}) killed by SIGKILL; restarting it in 0.5s" in log
    assert json.loads(out.read_text()) == local_state(40, 0, 12)


@pytest.mark.parametrize("signum, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_to_the_supervisor_leaves_no_process(tmp_path, signum, status):
    with Processes(tmp_path) as procs:
        supervisor = _supervisor(procs, free_port(), "--processes", "2")  # no master: the workers keep retrying
        try:
            wait_until(lambda: len(children_of(supervisor.pid)) == 2, 30, "2 worker processes")
            workers = children_of(supervisor.pid)
            supervisor.send_signal(signum)
            assert supervisor.wait(timeout=30) == status
        finally:
            _stop(supervisor)
    wait_until(lambda: not any(alive(pid) for pid in workers), 5, "the worker processes to end")
