"""The wire protocol: framing, message checks, and a real master surviving hostile or broken connections."""

from __future__ import annotations

import dataclasses
import logging
import os
import pickle
import random
import socket
import struct
import subprocess
import sys
import textwrap

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings

from distributed_helpers import HOST, ROOT, Processes, closed_by_peer, comparable, local_state, negative_id_task
from neatify import EvolutionConfig, Genome, Population
from neatify.genome.innovation import InnovationTracker
from neatify.io.schema import genome_dict_problem
from neatify.distributed import DistributedConfig, DistributedPopulation, GenomeEvaluator, MessageType, ProtocolError
from neatify.distributed.errors import ConnectionClosed
from neatify.distributed.wire.columns import CONNECTION_RECORD, GENE_COUNT, NODE_RECORD, WireGenomes, decode_genomes
from neatify.distributed.wire.messages import (
    ErrorReport, FitnessReport, HeartbeatRequest, RegistrationAck, TaskAssignment, WorkerRegistration,
)
from neatify.distributed.io.connection import FramedConnection
from neatify.distributed.io.master import wire_context
from neatify.distributed.wire.framing import PROTOCOL_VERSION, decode_message, encode_frame, encode_raw
from neatify.distributed.core.scheduler import Pace, SpeedShare, batch_size
from strategies import genome_lists

pytestmark = pytest.mark.timeout(60)


def test_frame_layout_and_round_trip():
    frame = encode_frame(HeartbeatRequest(1.5))
    body = msgpack.packb({"sent": 1.5})
    assert frame == struct.pack(">IB", len(body) + 1, 5) + body
    assert decode_message(frame[4], frame[5:]) == HeartbeatRequest(1.5)
    assert [m.value for m in MessageType] == list(range(1, 14))


@pytest.mark.parametrize("code, body, reason", [
    (42, msgpack.packb({}), "unknown message type 42"),
    (1, b"\xc1", "not valid msgpack"),
    (1, pickle.dumps({"protocol_version": 1}), "not valid msgpack"),
    (4, msgpack.packb([1, 2]), "FITNESS_REPORT payload: Expected `object`, got `array`"),
    (1, msgpack.packb([1, 2]), "exceeds max_array_len"),
    (5, msgpack.packb({"sent": 1.0, "a": {str(i): i for i in range(12)}}), "exceeds max_map_len"),
    (4, msgpack.packb({"batch_id": 1, "ids": b"", "fitness": b"", "errors": [[i, "x"] for i in range(9)],
                       "elapsed": 0.0}), "exceeds max_array_len"),
    (1, msgpack.packb({"protocol_version": 1, "worker_id": 1}), "missing required field `capacity`"),
    (1, msgpack.packb({"protocol_version": 1, "worker_id": 1, "capacity": 0}),
     "Expected `int` >= 1 - at `\\$.capacity`"),
    (5, msgpack.packb({"sent": 1.0, "extra": 1}), "unknown field `extra`"),
    (4, msgpack.packb({"batch_id": 1, "ids": b"", "fitness": [[1, 0.5]], "errors": [], "elapsed": 0.1}),
     "Expected `bytes`, got `array` - at `\\$.fitness`"),
    (1, msgpack.packb({"protocol_version": 3, "worker_id": 1, "capacity": 1, "nonce": bytes(65)}),
     "exceeds max_bin_len"),
])
def test_bad_payloads_are_refused(code, body, reason):
    with pytest.raises(ProtocolError, match=reason):
        decode_message(code, body, max_items=8)


def test_genome_dicts_are_checked_before_use():
    pop = Population(5, 2, 1, seed=1)
    genome = pop.genomes[0]
    genome.mutate_add_node(pop.config, random.Random(0), pop.tracker)
    good = genome.to_dict()
    assert genome_dict_problem(good) is None
    assert Genome.from_dict(good).to_dict() == good
    hidden = next(n for n in good["nodes"] if n[1] == "hidden")
    broken = [
        {**good, "extra": 1},
        {**good, "id": True},
        {**good, "nodes": [n for n in good["nodes"] if n[1] != "output"]},
        {**good, "nodes": [[*hidden[:3], "os.system"]] + [n for n in good["nodes"] if n is not hidden]},
        {**good, "connections": good["connections"] + [[999, 0, 12345, 0.5, True]]},
        {**good, "connections": good["connections"] + [good["connections"][0]]},
        {**good, "connections": [[*c[:4], 1] for c in good["connections"]]},
    ]
    for data in broken:
        assert genome_dict_problem(data) is not None, data


def _grown(seed: int, count: int = 12) -> list[Genome]:
    """Genomes of mixed sizes and activations, some connections disabled."""
    config = EvolutionConfig(activation_options=["neat_sigmoid", "tanh", "relu", "sin"], prob_mutate_activation=0.5)
    pop = Population(count, 3, 2, config=config, seed=seed)
    rng = random.Random(seed)
    for genome in pop.genomes:
        for _ in range(rng.randrange(12)):
            genome.mutate_add_node(pop.config, rng, pop.tracker)
            genome.mutate_add_connection(pop.config, rng, pop.tracker)
        genome.mutate_activations(pop.config, rng)
        genome.mutate_toggle_enable(pop.config, rng)
    return pop.genomes


def _task(task: TaskAssignment) -> TaskAssignment:
    """A task as a worker gets it: through a real frame and the bounded decoder."""
    frame = encode_frame(task)
    return decode_message(frame[4], frame[5:], max_items=None)


def _in_gene_order(data: dict) -> bytes:
    """A genome's ``to_dict`` (fitness None) as msgpack, its genes sorted by node id and innovation."""
    return msgpack.packb({**data, "nodes": sorted(data["nodes"]), "connections": sorted(data["connections"]),
                          "fitness": None})


@settings(max_examples=30)
@given(genome_lists(min_size=3, max_size=6, activations=("neat_sigmoid", "tanh", "relu", "sin")))
def test_wire_genomes_round_trip_bit_for_bit_into_unread_views_of_one_batch(genomes):
    genomes[0].nodes[next(iter(genomes[0].nodes))].bias = -0.0
    task = _task(WireGenomes.of(genomes).task(7, 3))
    assert (type(task), task.batch_id, task.generation, task.size) == (TaskAssignment, 7, 3, len(genomes))
    decoded = decode_genomes(task)
    batch = decoded[0].batch_row()[0]
    assert batch is not None and [g.batch_row() for g in decoded] == [(batch, row) for row in range(len(genomes))]
    assert decoded[1].fitness is None and decoded[1].size() == genomes[1].size()  # reading builds that one's genes
    assert decoded[1].batch_row() == (batch, 1) and decoded[2].batch_row() == (batch, 2)  # read, still views
    as_sent = [_in_gene_order(g.to_dict()) for g in genomes]
    assert [_in_gene_order(g.to_dict()) for g in decoded] == as_sent  # msgpack floats are float64: exact bits
    assert all(genome_dict_problem(g.to_dict()) is None for g in decoded)
    # views re-encode from their batch, the same bytes
    assert encode_frame(WireGenomes.of(decoded).task(7, 3)) == encode_frame(WireGenomes.of(genomes).task(7, 3))


_CONTEXT = {"normalizer": {"size": 2, "clip": 5.0, "count": 3.0, "mean": [0.25, -1.5], "m2": [2.0, 0.5]},
            "wide": {f"key{i}": i for i in range(40)}, "label": "gen-3", "flags": [True, None]}
"""A generation context: observation statistics, a map wider than any message's, strings, bools and nil."""


def test_a_task_carries_the_generation_context_only_when_there_is_one():
    wire = WireGenomes.of(_grown(2, count=3))
    plain, told = wire.task(7, 3), wire.task(7, 3, context=_CONTEXT)
    assert set(msgpack.unpackb(encode_frame(plain)[5:])) == set(TaskAssignment.FIELDS) - {"context"}
    assert _task(plain).context is None and _task(told).context == _CONTEXT
    assert decode_genomes(_task(told))[0].to_dict() == decode_genomes(_task(plain))[0].to_dict()


@pytest.mark.parametrize("context, reason", [
    ([1.0, 2.0], "got `array` - at `\\$.context`"),
    ("statistics", "got `str` - at `\\$.context`"),
    (None, "got `null` - at `\\$.context`"),
])
def test_a_task_with_a_context_of_another_type_is_refused_naming_the_field(context, reason):
    payload = {**msgpack.unpackb(encode_frame(WireGenomes.of(_grown(2, count=3)).task(7, 3))[5:]), "context": context}
    with pytest.raises(ProtocolError, match=reason):
        decode_message(MessageType.TASK_ASSIGNMENT, msgpack.packb(payload), max_items=None)


class _Told:
    """A fitness function with a generation context (``neatify.evaluation.generation_context``)."""

    def __init__(self, context) -> None:
        self.context = context

    def generation_context(self):
        return self.context


@pytest.mark.parametrize("context, reason", [
    ([0.5], "got a list"), ({"mean": np.zeros(2)}, "numpy.ndarray"), ({"m": {1: 2.0}}, "map key"),
])
def test_the_master_refuses_a_generation_context_that_is_not_plain_data(context, reason):
    with pytest.raises(TypeError, match=f"generation_context\\(\\) of .*_Told.*{reason}"):
        wire_context(_Told(context))
    assert wire_context(_Told(_CONTEXT)) == _CONTEXT and wire_context(lambda genomes: None) is None


def test_a_task_of_any_rows_holds_those_genomes_in_their_order():
    genomes = _grown(1)
    wire = WireGenomes.of(genomes)
    for rows in ([3, 4, 5], [5], [7, 2, 9], [0, 11]):  # consecutive rows are slices, the others a gather
        task = _task(wire.task(1, 0, np.array(rows)))
        assert task.genome_ids() == [genomes[i].id for i in rows]
        assert [_in_gene_order(g.to_dict()) for g in decode_genomes(task)] == \
            [_in_gene_order(genomes[i].to_dict()) for i in rows]
    with pytest.raises(ValueError, match="at least one genome"):
        wire.task(1, 0, np.array([], dtype=np.int64))


def _records(task: TaskAssignment, field: str, edit) -> TaskAssignment:
    """``task`` (of two genomes) with the second genome's ``field`` records changed by ``edit(records) ->
    records``, its counts following."""
    record, counts = (NODE_RECORD, "node_counts") if field == "nodes" else (CONNECTION_RECORD, "conn_counts")
    sizes = np.frombuffer(getattr(task, counts), GENE_COUNT)
    records = np.frombuffer(getattr(task, field), record)
    second = edit(records[sizes[0]:].copy())
    return dataclasses.replace(task, **{
        field: records[:sizes[0]].tobytes() + second.tobytes(),
        counts: np.array([sizes[0], len(second)], GENE_COUNT).tobytes()})


def _set(records: np.ndarray, field: str, value, index: int = 0) -> np.ndarray:
    records[field][index] = value
    return records


def test_wire_genomes_refuse_what_the_dict_check_refuses_and_more():
    first, genome = _grown(5, count=2)
    genome.mutate_add_node(Population(2, 3, 2).config, random.Random(0), InnovationTracker(0, 5))
    good = _task(WireGenomes.of([first, genome]).task(1, 0))
    second_nodes = np.frombuffer(good.nodes, NODE_RECORD)[len(first.nodes):]
    hidden = int(np.flatnonzero(second_nodes["id"] >= 5)[0])
    cases = {  # the cases of test_genome_dicts_are_checked_before_use first, then the wire's own
        "output nodes": _records(good, "nodes", lambda r: r[r["id"] >= 5]),
        "does not exist": _records(good, "connections", lambda r: _set(r, "out_node", 12345)),
        "duplicate innovation": _records(good, "connections", lambda r: np.concatenate((r, r[:1]))),
        "enabled must be 0 or 1": _records(good, "connections", lambda r: _set(r, "enabled", 2)),
        "bias must be a finite": _records(good, "nodes", lambda r: _set(r, "bias", np.nan, hidden)),
        "weight must be a finite": _records(good, "connections", lambda r: _set(r, "weight", np.inf)),
        "activation index 9": _records(good, "nodes", lambda r: _set(r, "activation", 9, hidden)),
        "is an input's": _records(good, "nodes", lambda r: _set(r, "id", 1, hidden)),
        "occurs twice": _records(good, "nodes", lambda r: np.concatenate((r, r[hidden:hidden + 1]))),
        "must not be negative": _records(good, "connections", lambda r: _set(r, "innovation", -1)),
    }
    for reason, bad in cases.items():  # the good genome first: the bad one is named, not the first
        with pytest.raises(ProtocolError, match=f"invalid genome: genome {genome.id}: .*{reason}"):
            decode_genomes(_task(bad))
    ids = np.array([first.id, -3], "<i8").tobytes()
    with pytest.raises(ProtocolError, match="invalid genome: genome #1 of the batch: its id -3 is negative"):
        decode_genomes(_task(dataclasses.replace(good, ids=ids)))
    columns = {  # what no genome can be blamed for: the columns do not fit together
        "num_inputs and num_outputs must be integers below 2\\^63": {"num_inputs": 2**63},
        "activation_names must list known": {"activation_names": ["os.system"]},
        "ids must hold one or more 8-byte genome ids, got 0 bytes": {"ids": b""},
        "ids must hold one or more 8-byte genome ids, got 15 bytes": {"ids": good.ids[:-1]},
        "node_counts must hold 2 4-byte counts": {"node_counts": good.node_counts + b"\0"},
        "conn_counts must hold 2 4-byte counts": {"conn_counts": good.conn_counts[:4]},
        "node_counts add up to .* records of 17 bytes": {"nodes": good.nodes[:-1]},
        "conn_counts add up to .* records of 33 bytes": {"connections": good.connections + b"\0"},
    }
    for reason, fields in columns.items():
        with pytest.raises(ProtocolError, match=f"^TASK_ASSIGNMENT with invalid genome columns: {reason}"):
            decode_genomes(_task(dataclasses.replace(good, **fields)))
    with pytest.raises(ProtocolError, match="TASK_ASSIGNMENT payload: Expected `int` >= 1 - at `\\$.num_outputs`"):
        _task(dataclasses.replace(good, num_outputs=0))
    assert len(decode_genomes(good)) == 2


def test_batch_sizes_follow_capacity_and_speed():
    assert batch_size(100, 50, 0.5, fixed=8) == 8
    assert batch_size(100, 5, 0.5, fixed=8) == 5
    assert batch_size(3, 50, 0.5, fixed=8) == 3
    share = SpeedShare()
    for _ in range(8):
        share.add(None)
    assert share.share(None) == 1 / 8 and batch_size(400, 50, share.share(None), fixed=0) == 25
    share = SpeedShare()
    for speed in (30.0, 10.0, None):  # the unmeasured worker counts as the mean, 20
        share.add(speed)
    assert (share.share(30.0), share.share(10.0), share.share(None)) == (0.5, 10 / 60, 20 / 60)
    assert (batch_size(120, 100, share.share(30.0), 0), batch_size(120, 100, share.share(10.0), 0)) == (30, 10)
    share.replace(None, 20.0)
    share.remove(30.0)
    assert share.share(10.0) == 1 / 3
    assert batch_size(1, 50, 0.5, fixed=0) == 1


def test_pace_floor_amortises_the_measured_overhead():
    pace = Pace()
    assert pace.floor(50) == 1 and pace.amortised(1)  # unmeasured: no floor, nothing sent ahead
    pace.observe(100, elapsed=0.05, turnaround=0.1)  # the hint fits: 2,000 genomes/s, 50 ms a batch beyond that
    assert (pace.rate, pace.overhead) == (2000.0, 0.05)
    assert pace.floor(10_000) == 667 and pace.floor(50) == 50  # 50 ms is 15 % of 333 ms: 667 genomes
    assert not pace.amortised(50) and pace.amortised(667)
    pace.observe(100, elapsed=0.1, turnaround=0.1)  # one size only: the master's clock cannot split it, smoothed
    assert (pace.rate, pace.overhead) == (1500.0, 0.025)
    assert batch_size(400, 1000, 0.5, fixed=0, floor=300) == 300  # over the guided 100
    assert batch_size(100, 1000, 0.5, fixed=0, floor=300) == 100  # no more than is pending
    assert batch_size(400, 50, 0.5, fixed=0, floor=300) == 50  # nor than the capacity
    assert batch_size(400, 1000, 0.5, fixed=8, floor=300) == 8  # a fixed size is kept


def test_pace_comes_from_the_masters_clock_whatever_the_worker_reports():
    """Issue 28 item 4: turnarounds of two sizes give the cost per genome and the overhead (a report of 0 s, or of
    more than the turnaround, is no hint); a batch sent ahead shows its evaluation alone, which then wins over a
    worker's claim."""
    for elapsed in (0.0, 1e6):
        pace = Pace()
        pace.observe(10, elapsed=elapsed, turnaround=0.06)
        assert pace.rate is None and pace.floor(50) == 1  # nothing to split one turnaround with yet
        pace.observe(20, elapsed=elapsed, turnaround=0.07)  # 10 genomes more took 10 ms: 1 ms each, 50 ms a batch
        assert pace.rate == pytest.approx(1000.0) and pace.overhead == pytest.approx(0.05)
    liar = Pace()
    liar.observe(10, elapsed=1e-12, turnaround=0.06)  # claims 10 million genomes a second: no infinite rate
    assert liar.rate == pytest.approx(1e7)
    liar.observe(10, elapsed=1e-12, turnaround=0.01, ahead=True)  # the master saw 1 ms a genome
    liar.observe(10, elapsed=1e-12, turnaround=0.06)
    assert liar.rate == pytest.approx(1000.0) and liar.overhead == pytest.approx(0.055)  # (0.06 + 0.05) / 2
    assert liar.floor(1000) == 367


@pytest.fixture
def served(tmp_path):
    """An in-process master on a free port with one real worker process registered."""
    config = DistributedConfig(host=HOST, port=0, heartbeat_interval=0.2, task_timeout=10.0, worker_wait_timeout=30.0,
                               max_frame_bytes=4096, handshake_timeout=2.0)
    pop = DistributedPopulation(30, 2, 1, seed=3, distributed_config=config)
    with Processes(tmp_path) as procs:
        procs.worker(pop.port, "real")
        try:
            yield pop
        finally:
            pop.shutdown()


def _registered(port: int, worker_id: str) -> socket.socket:
    sock = socket.create_connection((HOST, port), timeout=5)
    conn = FramedConnection(sock, 4096)
    conn.send(WorkerRegistration(PROTOCOL_VERSION, worker_id, capacity=1))
    reply = conn.recv()
    assert isinstance(reply, RegistrationAck) and reply.status == "accepted"
    return sock


@pytest.mark.slow
def test_hostile_frames_are_refused_and_the_master_keeps_serving(served, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="neatify.distributed")
    pop = served
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    frames = {
        "oversized": struct.pack(">I", 2**31) + b"\x01",
        "zero length": struct.pack(">I", 0),
        "unknown type": struct.pack(">IB", 2, 42) + msgpack.packb({}),
        "pickle": (lambda body: struct.pack(">IB", len(body) + 1, 1) + body)(pickle.dumps(Exploit())),
        "garbage": struct.pack(">IB", 2, 1) + b"\xc1",
        "off schema": encode_raw(MessageType.WORKER_REGISTRATION, {"protocol_version": 1, "worker_id": 1.5,
                                                                   "capacity": 1}),
        "out of order": encode_frame(FitnessReport(1, b"", b"", [], 0.0)),
    }
    for name, frame in frames.items():
        with socket.create_connection((HOST, pop.port), timeout=5) as sock:
            sock.sendall(frame)
            assert closed_by_peer(sock), name
    with socket.create_connection((HOST, pop.port), timeout=5) as sock:  # truncated: EOF mid-frame
        sock.sendall(encode_frame(WorkerRegistration(1, "t", 1))[:9])
        sock.shutdown(socket.SHUT_WR)
        assert closed_by_peer(sock)
    with socket.create_connection((HOST, pop.port), timeout=5) as sock:  # stalled: never finishes registering
        sock.sendall(struct.pack(">IB", 100, 1))
        assert closed_by_peer(sock)
    for message in (WireGenomes.of(pop.genomes[:1]).task(1, 0), FitnessReport(77, b"", b"", [], 0.0)):
        with _registered(pop.port, f"rogue-{message.TYPE.value}") as sock:
            sock.sendall(encode_frame(message))
            assert closed_by_peer(sock), message.TYPE.name
    for reason in ("refused (limit 4096)", "frame length 0", "unknown message type 42", "not valid msgpack",
                   "at `$.worker_id`", "expected WORKER_REGISTRATION, got FITNESS_REPORT",
                   "in the middle of a frame", "no registration within", "unexpected TASK_ASSIGNMENT",
                   "batch 77, which this worker does not hold"):
        assert reason in caplog.text, reason
    assert not marker.exists()
    for _ in range(2):
        pop.run_generation(lambda genomes: None)
    assert comparable(pop.state_dict()) == local_state(30, 3, 2)


@pytest.mark.slow
def test_protocol_version_mismatch_gets_a_clear_error(served, caplog):
    caplog.set_level(logging.INFO, logger="neatify.distributed")
    with socket.create_connection((HOST, served.port), timeout=5) as sock:
        conn = FramedConnection(sock, 4096)
        conn.send(WorkerRegistration(999, 5, 1))
        reply = conn.recv()
    assert isinstance(reply, ErrorReport)
    assert reply.code == "version" and reply.fatal
    assert "protocol version mismatch: worker 5 speaks version 999" in reply.message
    assert "protocol version mismatch" in caplog.text


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_seed_usage_code_and_example_scripts(tmp_path):
    """The spec's master and worker snippets (localhost, a free port, 3 generations), then the demo."""
    with Processes(tmp_path) as procs:
        from neatify.distributed import DistributedConfig as Config, DistributedPopulation as DPop

        config = Config(host="127.0.0.1", port=0, min_workers=2)
        pop = DPop(pop_size=150, num_inputs=2, num_outputs=1, distributed_config=config)
        worker_code = textwrap.dedent(f"""
            from neatify.distributed import WorkerNode
            from neatify import NeatModule
            import torch

            def xor_fitness(genomes):
                inputs = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
                targets = torch.tensor([[0.0], [1.0], [1.0], [0.0]])
                for genome in genomes:
                    model = NeatModule(genome)
                    outputs = model(inputs)
                    loss = torch.sum((outputs - targets) ** 2).item()
                    genome.fitness = 4.0 - loss

            worker = WorkerNode(master_host='localhost', master_port={pop.port}, worker_id=WID,
                                fitness_function=xor_fitness, capacity=50)
            worker.start()
        """)
        workers = [procs.start(f"spec-worker-{i}", "-c", worker_code.replace("WID", str(i))) for i in (1, 2)]
        try:
            for gen in range(3):
                pop.run_generation(lambda genomes: None)
                best = max(pop.genomes, key=lambda g: g.fitness)
                assert 0.0 < best.fitness <= 4.0
        finally:
            pop.shutdown()
        assert [w.wait(20) for w in workers] == [0, 0]
    demo = subprocess.run([sys.executable, "examples/distributed_demo.py"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert demo.returncode == 0, demo.stdout[-2000:] + demo.stderr[-2000:]
    assert "Solved XOR" in demo.stdout and "exited with [0, 0, 0]" in demo.stdout


@pytest.mark.slow
def test_worker_refuses_an_invalid_genome_and_says_why(tmp_path):
    """A (fake) master sends a task with a malformed genome: the real worker reports why and hangs up."""
    with socket.socket() as server, Processes(tmp_path) as procs:
        server.bind((HOST, 0))
        server.listen(1)
        server.settimeout(20)
        worker = procs.worker(server.getsockname()[1], "x", "--max-connect-attempts", "1")
        sock, _ = server.accept()
        conn = FramedConnection(sock, 1 << 20)
        assert isinstance(conn.recv(), WorkerRegistration)
        conn.send(RegistrationAck("accepted", heartbeat_interval=1.0))
        conn.send(negative_id_task())
        reply = conn.recv()
        assert isinstance(reply, ErrorReport) and reply.code == "error"
        assert "TASK_ASSIGNMENT with an invalid genome" in reply.message
        with pytest.raises(ConnectionClosed):  # then the worker closes the connection
            conn.recv()
        conn.close()
        server.close()  # nothing to reconnect to: the worker gives up after its one attempt
        assert worker.wait(20) == 1


def test_genome_evaluator_pins_failures_to_their_genomes():
    genomes = Population(6, 2, 1, seed=2).genomes
    bad, unset, nan = genomes[1].id, genomes[3].id, genomes[4].id

    def fitness(batch):
        for genome in batch:
            if genome.id == bad:
                raise KeyError("boom")
            genome.fitness = None if genome.id == unset else float("nan") if genome.id == nan else 1.0 * genome.id

    values, errors = GenomeEvaluator(fitness).evaluate(genomes)
    assert values == [[g.id, float(g.id)] for g in genomes if g.id not in (bad, unset, nan)]
    reasons = dict(errors)
    assert set(reasons) == {bad, unset, nan}
    assert "KeyError: 'boom'" in reasons[bad] and "Traceback" in reasons[bad]
    assert "has no fitness" in reasons[unset] and "non-finite" in reasons[nan]
