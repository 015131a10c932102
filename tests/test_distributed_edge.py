"""The master at the network edge: out of descriptors, connection bursts, lying, slow and stale peers."""

from __future__ import annotations

import json
import logging
import math
import os
import re
import select
import signal
import socket
import time
from pathlib import Path

import pytest

from distributed_helpers import HERE, HOST, Processes, RawPeer, local_state, report_xor, run, wait_until
from neatify.distributed.config import system_listen_backlog
from neatify.distributed.wire.messages import FitnessReport, TaskAssignment

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]

POP, SEED = 40, 7


def master_process(procs: Processes, tmp_path, *flags: str) -> tuple[int, object]:
    """A master process (2 generations of XOR, population POP) on a port of its choosing, once it listens."""
    port_file = tmp_path / "port"
    proc = procs.start("master", str(HERE / "distributed_helpers.py"), "master", "--port", "0",
                       "--port-file", str(port_file), "--pop-size", str(POP), "--seed", str(SEED),
                       "--generations", "2", "--out", str(tmp_path / "state.json"), *flags)
    wait_until(lambda: port_file.exists() and port_file.read_text(), 30, "the master to listen")
    return int(port_file.read_text()), proc


def test_master_out_of_descriptors_keeps_accepting(procs, tmp_path):
    """Under `ulimit -n 64`, 100 connections exhaust the descriptors; once they close, a worker gets in."""
    port, proc = master_process(procs, tmp_path, "--max-open-files", "64")
    hogs = [socket.create_connection((HOST, port), timeout=5) for _ in range(100)]
    try:
        wait_until(lambda: "cannot accept a connection" in procs.log(proc), 20, "the master to run out of files")
        assert "Too many open files" in procs.log(proc) and "ulimit -n" in procs.log(proc)
    finally:
        for sock in hogs:
            sock.close()
    procs.worker(port, "late")
    assert proc.wait(60) == 0, procs.log(proc)[-3000:]
    assert "accepting connections again" in procs.log(proc)
    assert json.loads((tmp_path / "state.json").read_text()) == local_state(POP, SEED, 2)


def _state(pid: int) -> str:
    """The process state letter of ``pid`` in /proc (``T``: stopped by a signal)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def _connected(socks: list[socket.socket], wait: float) -> int:
    """How many non-blocking connects complete within ``wait`` seconds."""
    deadline, pending, done = time.monotonic() + wait, set(socks), 0
    while pending and time.monotonic() < deadline:
        _, writable, _ = select.select([], list(pending), [], max(0.0, deadline - time.monotonic()))
        for sock in writable:
            pending.discard(sock)
            done += sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
    return done


@pytest.mark.parametrize("backlog, all_queued", [(None, True), (16, False)])
def test_a_burst_of_connections_is_queued_while_the_master_is_busy(procs, tmp_path, backlog, all_queued):
    """With the master frozen, the kernel queues up to the listen backlog: the default holds a 300 burst."""
    flags = () if backlog is None else ("--listen-backlog", str(backlog))
    port, proc = master_process(procs, tmp_path, *flags)
    os.kill(proc.pid, signal.SIGSTOP)
    wait_until(lambda: _state(proc.pid) == "T", 10, "the master to stop")  # it accepts nothing from here on
    socks = []
    try:
        for _ in range(300):
            sock = socket.socket()
            sock.setblocking(False)
            sock.connect_ex((HOST, port))
            socks.append(sock)
        done = _connected(socks, 1.5)
        assert (done == 300) == all_queued, done  # (a small backlog is not exact: SYNs racing a filling queue)
    finally:
        os.kill(proc.pid, signal.SIGCONT)
        for sock in socks:
            sock.close()
    assert system_listen_backlog() >= 300
    procs.worker(port, "w")
    assert proc.wait(60) == 0, procs.log(proc)[-3000:]


def test_non_finite_fitness_closes_the_liar_and_its_batch_is_resent(master, procs, caplog):
    caplog.set_level(logging.INFO, logger="neatify.distributed")
    pop = master(min_workers=2)
    liar = RawPeer(pop.port, "liar", lambda peer, task: report_xor(peer, task, value=lambda v: math.nan))
    procs.worker(pop.port, "honest")
    assert run(pop, 2) == local_state(POP, SEED, 2)
    assert liar.closed.wait(5)
    assert "worker liar" in caplog.text and "non-finite fitness nan" in caplog.text
    assert "re-sending the unfinished genomes" in caplog.text


class _Throttled:
    """A socket whose reads trickle in: at most ``chunk`` bytes per ``pause`` seconds (a slow link)."""

    def __init__(self, sock: socket.socket, chunk: int, pause: float) -> None:
        self._sock, self._chunk, self._pause = sock, chunk, pause

    def recv(self, size: int) -> bytes:
        time.sleep(self._pause)
        return self._sock.recv(min(size, self._chunk))

    def __getattr__(self, name: str):
        return getattr(self._sock, name)


def test_a_big_batch_on_a_slow_link_is_delivered_not_dropped(master, caplog):
    """About 10 MB to a peer reading ~3 MB/s: the batch takes longer than the peer may stay silent."""
    caplog.set_level(logging.DEBUG, logger="neatify.distributed")  # DEBUG: the generation summary
    pop = master(pop_size=60, num_inputs=300, num_outputs=30, batch_size_per_worker=60)
    received = []

    def on_task(peer: RawPeer, task: TaskAssignment) -> None:
        received.append(task.size)
        peer.send(FitnessReport.of(task.batch_id, [[i, 1.0] for i in task.genome_ids()], [], 0.0))

    peer = RawPeer(pop.port, "slow-link", on_task, capacity=1000, rcvbuf=32 << 10)
    peer.conn.sock = _Throttled(peer.conn.sock, 32 << 10, 0.01)
    start = time.monotonic()
    pop.run_generation(lambda genomes: None)
    assert received == [60] and all(g.fitness == 1.0 for g in pop.genomes)
    assert time.monotonic() - start > pop.distributed_config.peer_timeout  # the link really was slow
    assert "lost" not in caplog.text and "0 re-sent after a failure" in caplog.text


def test_stale_peers_are_released_not_counted_then_dropped(master, procs, caplog):
    """Three peers that take a batch and never answer it: the batch is re-sent, they stop shrinking the
    honest worker's batches, and they are dropped after 2 x task_timeout."""
    caplog.set_level(logging.DEBUG, logger="neatify.distributed")  # DEBUG: the generation summary
    pop = master(min_workers=4, task_timeout=0.3)
    stale = [RawPeer(pop.port, f"stale-{i}", lambda peer, task: None) for i in range(3)]
    procs.worker(pop.port, "honest", "--capacity", "50")
    assert run(pop, 2) == local_state(POP, SEED, 2)
    # generation 1: the honest worker's share is the whole (at most 20, 10, 5, 3, 1, 1; fewer once its measured
    # pace sets a floor), not a quarter of it (10 batches or more)
    sent = re.search(r"generation 1: \d worker\(s\) connected, (\d+) batch\(es\) sent", caplog.text)
    assert sent is not None and 1 <= int(sent[1]) <= 6, caplog.text
    for peer in stale:
        assert peer.closed.wait(5), peer.worker_id
    assert caplog.text.count("(2 x task_timeout; its genomes were re-sent)") == 3
