"""What comes after the first failover, with real ``neatify master``/``worker`` processes on 127.0.0.1 (issue 22,
items 1-3 and 7): the old primary restarted as the standby of the promoted one and a second failover, the same
commands resubmitted after both masters died, one checkpoint file given to both masters, a state over the frame
limit. Every sequence ends with one run equal to the local one."""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path

from neatify import Checkpoint, EvolutionConfig, Population
from neatify.distributed.io.connection import FramedConnection
from neatify.distributed.wire.framing import PROTOCOL_VERSION
from neatify.distributed.wire.messages import ErrorReport, StandbyRegistration
from neatify.reporting.reporters import StatisticsReporter

from distributed_helpers import HERE, HOST, Processes, comparable, free_port, wait_until, xor_fitness

HEARTBEAT = 0.3
RUN = """
[run]
num_inputs = 2
num_outputs = 1
generations = {generations}
seed = 5
champion = "champion.json"
statistics = "stats.json"

[evolution]
population_size = 40
"""


def local_run(generations: int) -> tuple[dict, list[dict]]:
    """The run of ``RUN`` done in this process: its final state and statistics rows (untimed), to compare with the
    distributed one."""
    population = Population(num_inputs=2, num_outputs=1, config=EvolutionConfig(population_size=40), seed=5)
    statistics = StatisticsReporter()
    population.add_reporter(statistics)
    for _ in range(generations):
        population.run_generation(xor_fitness)
    return comparable(population.state_dict()), untimed(statistics.rows)


def local_state(generations: int) -> dict:
    return local_run(generations)[0]


def untimed(rows: list[dict]) -> list[dict]:
    return [{key: value for key, value in row.items() if key != "seconds"} for row in rows]


def distributed_rows(where: Path) -> list[dict]:
    return untimed(StatisticsReporter.load_json(where / "stats.json").rows)


def two_ports() -> tuple[int, int]:
    first = free_port()
    return first, next(port for port in iter(free_port, None) if port != first)


class Cluster:
    """Masters, each in a folder of its own holding the run file, and workers that try both masters in turn."""

    def __init__(self, procs: Processes, tmp_path: Path, generations: int, ports: tuple[int, int]) -> None:
        self.procs, self.tmp_path, self.ports, self.started = procs, tmp_path, ports, 0
        for name in ("a", "b"):
            (tmp_path / name).mkdir()
            (tmp_path / name / "run.toml").write_text(RUN.format(generations=generations))

    def master(self, name: str, port: int, checkpoint: str, *flags: str):
        """``neatify master`` in folder ``name`` (each start logs apart: ``a-1.err``, ``a-2.err``...)."""
        self.started += 1
        where = self.tmp_path / name
        return self.procs.start(f"{name}-{self.started}", "-m", "neatify", "master", "run.toml", "--port", str(port),
                                "--min-workers", "2", "--heartbeat-interval", str(HEARTBEAT), "--checkpoint",
                                checkpoint, "--worker-wait-timeout", "60", "-v", *flags, cwd=where, split=True)

    def standby(self, name: str, port: int, checkpoint: str, primary: int, *flags: str):
        return self.master(name, port, checkpoint, "--standby-of", f"{HOST}:{primary}", *flags)

    def workers(self, sleep: str) -> list:
        self.started += 1
        return [self.procs.start(f"worker-{i}-{self.started}", str(HERE / "distributed_helpers.py"), "worker",
                                 "--worker-id", f"w{i}", "--masters", ",".join(map(str, self.ports)), "--sleep",
                                 sleep, "--max-connect-attempts", "2000") for i in (1, 2)]

    def first_failover(self, checkpoint: str, sleep: str) -> tuple:
        """A primary in folder a, its standby in b, two workers; the primary SIGKILLed once the standby holds
        generation 2: the standby and the workers."""
        port_a, port_b = self.ports
        a = self.master("a", port_a, checkpoint)
        b = self.standby("b", port_b, checkpoint, port_a)
        workers = self.workers(sleep)
        self.says(b, "replicated generation 2 ")
        a.kill()
        return b, workers

    def says(self, proc, text: str, timeout: float = 60) -> None:
        wait_until(lambda: text in self.procs.errors(proc), timeout, f"{proc.name} to log {text!r}")


def saved_epoch(path: Path) -> int | None:
    try:
        return Checkpoint.read_run(path)[1]
    except (ValueError, OSError):  # not written yet, or being replaced
        return None


def saved_generation(path: Path) -> int:
    try:
        return Checkpoint.read_run(path)[0]["generation"]
    except (ValueError, OSError):  # not written yet, or being replaced
        return -1


def test_the_old_primary_restarted_as_standby_of_the_promoted_one_takes_over_at_the_second_failover(tmp_path):
    """Item 1: the promoted master's fence meets a node that is only a standby; it must not stand it down, and the
    second failover (epoch 3) finishes the run."""
    port_a, port_b = ports = two_ports()
    with Processes(tmp_path) as procs:
        cluster = Cluster(procs, tmp_path, 60, ports)
        b, workers = cluster.first_failover("run.json", "0.01")
        cluster.says(b, "leading the run as epoch 2")
        a2 = cluster.standby("a", port_a, "run.json", port_b)
        cluster.says(a2, "following the primary")
        cluster.says(a2, "refusing standby from")  # the promoted master's fence, met
        cluster.says(a2, "of the primary (epoch 2)")  # a replicated generation of epoch 2
        cluster.says(b, "now holds a standby; no longer fencing it")  # b's side of the fence, before b dies
        b.kill()
        assert a2.wait(timeout=120) == 0, procs.errors(a2)
        assert all(w.wait(timeout=30) == 0 for w in workers), [procs.log(w) for w in workers]
        log = procs.errors(a2)
    assert "stood down" not in log and "leading the run as epoch 3" in log
    state, epoch = Checkpoint.read_run(tmp_path / "a" / "run.json")
    assert epoch == 3 and (comparable(state), distributed_rows(tmp_path / "a")) == local_run(60)
    champion = Checkpoint.load_genome_json(tmp_path / "a" / "champion.json")
    assert champion.to_dict() == Population.from_state_dict(state).best_genome.to_dict()


def test_resubmitted_masters_let_the_newer_state_lead(tmp_path):
    """Item 2: the primary SIGKILLed, the promoted standby SIGTERMed, the same commands started again: the primary
    (epoch 1) stands down before the standby (epoch 2), which leads at once with its own newer checkpoint."""
    port_a, port_b = ports = two_ports()
    with Processes(tmp_path) as procs:
        cluster = Cluster(procs, tmp_path, 40, ports)
        b, workers = cluster.first_failover("run.json", "0.02")
        cluster.says(b, "leading the run as epoch 2")  # its checkpoint says so from before it takes a worker
        promoted = Checkpoint.read_run(tmp_path / "b" / "run.json")[0]["generation"]
        wait_until(lambda: saved_generation(tmp_path / "b" / "run.json") > promoted, 60, "a generation of epoch 2")
        b.send_signal(signal.SIGTERM)
        assert b.wait(timeout=30) == 128 + signal.SIGTERM, procs.errors(b)
        assert all(w.wait(timeout=30) == 0 for w in workers), [procs.log(w) for w in workers]
        resumed = Checkpoint.read_run(tmp_path / "b" / "run.json")[0]["generation"]
        b2 = cluster.standby("b", port_b, "run.json", port_a)
        a2 = cluster.master("a", port_a, "run.json")
        assert a2.wait(timeout=60) == 1, procs.errors(a2)
        workers = cluster.workers("0.01")
        assert b2.wait(timeout=120) == 0, procs.errors(b2)
        assert all(w.wait(timeout=30) == 0 for w in workers), [procs.log(w) for w in workers]
        assert "stood down" in procs.errors(a2) and "leading the run as epoch 3" in procs.errors(b2)
    state, epoch = Checkpoint.read_run(tmp_path / "b" / "run.json")
    assert epoch == 3 and resumed > 2 and comparable(state) == local_state(40)


def test_an_old_primary_restarted_on_the_shared_checkpoint_refuses_to_lead_a_second_copy(tmp_path):
    """Item 3: both masters given one checkpoint file. The old primary, restarted with its original command while
    the promoted standby leads, finds the file locked and says by whom, rather than evolving into it too."""
    port_a, port_b = ports = two_ports()
    shared = tmp_path / "run.json.gz"
    with Processes(tmp_path) as procs:
        cluster = Cluster(procs, tmp_path, 40, ports)
        b, workers = cluster.first_failover(str(shared), "0.02")
        wait_until(lambda: saved_epoch(shared) == 2, 60, "a checkpoint of epoch 2")
        a2 = cluster.master("a", port_a, str(shared))
        assert a2.wait(timeout=60) == 1, procs.errors(a2)
        assert b.wait(timeout=120) == 0, procs.errors(b)
        assert all(w.wait(timeout=30) == 0 for w in workers), [procs.log(w) for w in workers]
        refusal = procs.errors(a2)
    assert f"{shared}: another master leads the run saved here (pid {b.pid} " in refusal
    assert f"master on {HOST}:{port_b} holds {shared}.lock" in refusal
    state, epoch = Checkpoint.read_run(shared)
    assert epoch == 2 and (comparable(state), distributed_rows(tmp_path / "b")) == local_run(40)


def test_a_state_over_the_frame_limit_is_refused_once_and_the_standby_stays_linked(tmp_path):
    """Item 7: no re-link storm, no warning per re-link; one ERROR naming both sizes and the flag."""
    port_a, port_b = ports = two_ports()
    with Processes(tmp_path) as procs:
        cluster = Cluster(procs, tmp_path, 4, ports)
        a = cluster.master("a", port_a, "run.json", "--max-frame-bytes", "8000")
        b = cluster.standby("b", port_b, "run.json", port_a, "--max-frame-bytes", "8000")
        cluster.says(b, "following the primary")
        workers = cluster.workers("0.01")
        assert a.wait(timeout=60) == 0, procs.errors(a)
        assert b.wait(timeout=30) == 0, procs.errors(b)
        assert all(w.wait(timeout=30) == 0 for w in workers), [procs.log(w) for w in workers]
        primary, standby = procs.errors(a), procs.errors(b)
    refused = [line for line in primary.splitlines() if "not replicating the state" in line]
    assert len(refused) == 1 and "over the frame limit of 8000 bytes" in refused[0] and "--max-frame-bytes" in refused[0]
    assert standby.count("following the primary") == 1 and "lost the link" not in standby
    assert comparable(Checkpoint.read_run(tmp_path / "a" / "run.json")[0]) == local_state(4)


def test_a_rogue_registration_claiming_epoch_9_cannot_break_a_standby(tmp_path):
    """Item 1, without a token: anyone may claim epoch 9 to a standby not yet promoted. It is refused as a standby,
    not fatally; the standby keeps following and, at the failover, leads above the epoch it saw (10)."""
    port_a, port_b = ports = two_ports()
    with Processes(tmp_path) as procs:
        cluster = Cluster(procs, tmp_path, 30, ports)
        a = cluster.master("a", port_a, "run.json")
        b = cluster.standby("b", port_b, "run.json", port_a)
        cluster.says(b, "following the primary")
        rogue = FramedConnection(socket.create_connection((HOST, port_b), timeout=5), 1 << 20, io_timeout=5)
        rogue.send(StandbyRegistration(PROTOCOL_VERSION, 9))
        refusal = rogue.recv(time.monotonic() + 5)
        rogue.close()
        workers = cluster.workers("0.01")
        cluster.says(b, "replicated generation 2 ")
        a.kill()
        assert b.wait(timeout=120) == 0, procs.errors(b)
        assert all(w.wait(timeout=30) == 0 for w in workers), [procs.log(w) for w in workers]
        log = procs.errors(b)
    assert isinstance(refusal, ErrorReport) and refusal.code == "standby" and not refusal.fatal
    assert "stood down" not in log and "leading the run as epoch 10" in log
    state, epoch = Checkpoint.read_run(tmp_path / "b" / "run.json")
    assert epoch == 10 and (comparable(state), distributed_rows(tmp_path / "b")) == local_run(30)


def test_a_primary_restarted_without_its_checkpoint_hands_the_lead_to_its_standby_s_newer_state(tmp_path):
    """Item 2, on equal epochs: both masters SIGKILLed, the primary started again on a fresh disk (epoch 1,
    generation 0), its standby from its own checkpoint (epoch 1, a later generation). The standby's registration
    says which generation it holds: the primary stands down, and the standby leads from its own state."""
    port_a, port_b = ports = two_ports()
    with Processes(tmp_path) as procs:
        cluster = Cluster(procs, tmp_path, 40, ports)
        a = cluster.master("a", port_a, "run.json")
        b = cluster.standby("b", port_b, "run.json", port_a)
        workers = cluster.workers("0.02")
        cluster.says(b, "replicated generation 3 ")
        for master in (a, b):
            master.kill()
            master.wait(timeout=30)
        held = Checkpoint.read_run(tmp_path / "b" / "run.json")[0]["generation"]
        (tmp_path / "a" / "run.json").unlink()
        b2 = cluster.standby("b", port_b, "run.json", port_a)
        a2 = cluster.master("a", port_a, "run.json")
        assert a2.wait(timeout=60) == 1, procs.errors(a2)
        assert b2.wait(timeout=120) == 0, procs.errors(b2)
        assert all(w.wait(timeout=30) == 0 for w in workers), [procs.log(w) for w in workers]
        assert f"holds generation {held} of epoch 1, newer than this master's generation" in procs.errors(a2)
        assert "leading the run as epoch 2" in procs.errors(b2)
    state, epoch = Checkpoint.read_run(tmp_path / "b" / "run.json")
    assert epoch == 2 and comparable(state) == local_state(40)
