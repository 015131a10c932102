"""The message classes: one per message type, each the same msgpack map on the wire, each refusal named."""

from __future__ import annotations

import dataclasses

import msgpack
import numpy as np
import pytest

from neatify.distributed import MessageType, ProtocolError
from neatify.distributed.wire.messages import (
    MESSAGES, ErrorReport, FitnessReport, HeartbeatRequest, HeartbeatResponse, Message, RegistrationAck,
    ShutdownSignal, StandbyRegistration, StateSnapshot, StatusReport, StatusRequest, StatusUpdate, TaskAssignment,
    WorkerRegistration,
)
from neatify.distributed.wire.framing import decode_message, encode_frame

NONCE, PROOF = b"n" * 32, b"p" * 32

WIRE = [  # each message and the map it is on the wire (docs/distributed.md's tables)
    (WorkerRegistration(3, "w1", 50), {"protocol_version": 3, "worker_id": "w1", "capacity": 50}),
    (WorkerRegistration(3, 7, 1, nonce=NONCE, proof=PROOF),
     {"protocol_version": 3, "worker_id": 7, "capacity": 1, "nonce": NONCE, "proof": PROOF}),
    (WorkerRegistration(4, "w1", 50, nonce=NONCE, epoch=2),
     {"protocol_version": 4, "worker_id": "w1", "capacity": 50, "nonce": NONCE, "epoch": 2}),
    (RegistrationAck("accepted", heartbeat_interval=2.0), {"status": "accepted", "heartbeat_interval": 2.0}),
    (RegistrationAck("accepted", heartbeat_interval=2.0, epoch=3),
     {"status": "accepted", "heartbeat_interval": 2.0, "epoch": 3}),
    (RegistrationAck("challenge", nonce=NONCE, proof=PROOF), {"status": "challenge", "nonce": NONCE, "proof": PROOF}),
    (TaskAssignment(4, 2, 2, 1, ["sigmoid"], b"i" * 8, b"n" * 4, b"c" * 4, b"N" * 17, b"C" * 33),
     {"batch_id": 4, "generation": 2, "num_inputs": 2, "num_outputs": 1, "activation_names": ["sigmoid"],
      "ids": b"i" * 8, "node_counts": b"n" * 4, "conn_counts": b"c" * 4, "nodes": b"N" * 17,
      "connections": b"C" * 33}),
    (FitnessReport(4, b"i" * 8, b"f" * 8, [(2, "Traceback")], 0.25),
     {"batch_id": 4, "ids": b"i" * 8, "fitness": b"f" * 8, "errors": [[2, "Traceback"]], "elapsed": 0.25}),
    (HeartbeatRequest(1.5), {"sent": 1.5}),
    (HeartbeatResponse(1.5), {"sent": 1.5}),
    (ShutdownSignal("done"), {"reason": "done"}),
    (ErrorReport("no", fatal=True, code="auth"), {"message": "no", "fatal": True, "code": "auth"}),
    (ErrorReport("older", fatal=False, code="epoch"), {"message": "older", "fatal": False, "code": "epoch"}),
    (StatusUpdate("leaving"), {"state": "leaving"}),
    (StatusRequest(), {}),
    (StatusRequest(nonce=NONCE, proof=PROOF), {"nonce": NONCE, "proof": PROOF}),
    (StatusReport(workers=2, busy=1, idle=1, pending=30, generation=-1, evaluating=True, genomes_per_s=12.5,
                  uptime=3.0),
     {"workers": 2, "busy": 1, "idle": 1, "pending": 30, "generation": -1, "evaluating": True,
      "genomes_per_s": 12.5, "uptime": 3.0}),
    (StandbyRegistration(4, 0), {"protocol_version": 4, "epoch": 0}),
    (StandbyRegistration(4, 2, nonce=NONCE, proof=PROOF), {"protocol_version": 4, "epoch": 2, "nonce": NONCE,
                                                           "proof": PROOF}),
    (StateSnapshot(2, 7, b"s" * 100), {"epoch": 2, "generation": 7, "state": b"s" * 100}),
]


def _id(value) -> str:
    return type(value).__name__ if isinstance(value, Message) else "" if isinstance(value, dict) else str(value)


def test_one_class_per_message_type():
    assert set(MESSAGES) == set(MessageType)
    assert all(cls.TYPE is mtype for mtype, cls in MESSAGES.items())
    assert {type(message) for message, _ in WIRE} == set(MESSAGES.values())  # every class sampled below


@pytest.mark.parametrize("message, wire", WIRE, ids=_id)
def test_round_trip_through_a_frame_as_the_same_map(message, wire):
    frame = encode_frame(message)
    assert frame[4] == message.TYPE and msgpack.unpackb(frame[5:]) == wire  # optional fields at None left out
    assert msgpack.unpackb(msgpack.packb(message.payload())) == wire  # a report's (id, traceback) tuples: arrays
    assert decode_message(frame[4], frame[5:], max_items=8) == message
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(message, next(iter(wire), "nonce"), None)


REFUSALS = [(message, key) for message, wire in WIRE for key in wire]
"""Each field of each sampled message."""


@pytest.mark.parametrize("message, key", REFUSALS, ids=_id)
def test_each_refusal_names_the_message_and_the_field(message, key):
    cls, wire, name = type(message), message.payload(), message.TYPE.name
    lacking = {k: v for k, v in wire.items() if k != key}
    if next(f for f in dataclasses.fields(cls) if f.name == key).default is dataclasses.MISSING:  # required
        with pytest.raises(ProtocolError, match=f"^{name} payload: Object missing required field `{key}`$"):
            cls.from_payload(lacking)
    else:
        assert cls.from_payload(lacking) == dataclasses.replace(message, **{key: None})
    for bad in (None, [1]):  # None: an optional field sent as nil is not an absent one
        with pytest.raises(ProtocolError, match=f"^{name} payload: Expected .* - at `\\$.{key}(`|\\[)"):
            cls.from_payload({**wire, key: bad})


@pytest.mark.parametrize("message, wire", WIRE[:1] + WIRE[-2:], ids=_id)
def test_unknown_fields_and_non_maps_are_refused(message: Message, wire):
    name = message.TYPE.name
    with pytest.raises(ProtocolError, match=f"^{name} payload: Object contains unknown field `zz`$"):
        type(message).from_payload({**wire, "zz": 1, "extra": 2})
    with pytest.raises(ProtocolError, match=f"^{name} payload: Expected `str` - at `key` in `\\$`$"):
        type(message).from_payload({**wire, b"sent": 1.0})  # bytes keys are no field names
    with pytest.raises(ProtocolError, match=f"^{name} payload: Expected `object`, got `array`$"):
        type(message).from_payload([wire])


def test_a_fitness_report_carries_its_values_as_two_columns():
    report = FitnessReport.of(3, [[7, 0.5], [2**62, -1.25]], [[9, "Traceback"]], 0.0)
    assert report.ids == np.array([7, 2**62], "<i8").tobytes() and report.fitness == np.array([0.5, -1.25]).tobytes()
    ids, fitness = report.columns()
    assert ids.tolist() == [7, 2**62] and fitness.tolist() == [0.5, -1.25]
    frame = encode_frame(report)
    assert decode_message(frame[4], frame[5:], max_items=3) == report
    for ids, values in ((b"i" * 8, b"f" * 16), (b"i" * 7, b"f" * 7), (b"i" * 16, b"f" * 8)):
        with pytest.raises(ProtocolError, match="^FITNESS_REPORT for batch 3: ids and fitness must hold as many "
                                                "8-byte entries"):
            FitnessReport(3, ids, values, [], 0.0).columns()


def test_a_report_error_names_a_genome_id():
    wire = FitnessReport.of(1, [], [[2**63, "Traceback"]], 0.0).payload()
    with pytest.raises(ProtocolError, match="^FITNESS_REPORT payload: Expected `int` <= 9223372036854775807 - at "
                                            "`\\$.errors\\[0\\]\\[0\\]`$"):
        FitnessReport.from_payload(wire)
