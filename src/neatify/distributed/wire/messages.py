"""The protocol's messages: one frozen dataclass per message type, each field checked on receipt.

``Message.from_payload`` checks a received msgpack map before anything acts on it (a map with
exactly the class's fields, optional ones may be absent, each value valid); ``payload`` gives the map
to send, without the optional fields left at None. ``MESSAGES`` maps each ``MessageType`` to its class.
A new message is a ``MessageType`` member plus a class declared with ``@message(MessageType.NAME)``.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, ClassVar, TypeVar

import numpy as np

from neatify.io.schema import is_id
from neatify.io.schema import is_int as _is_int
from neatify.io.schema import is_number as _is_float
from neatify.distributed.wire.auth import NONCE_BYTES, PROOF_BYTES
from neatify.distributed.errors import ProtocolError

Check = Callable[[Any], bool]

GENOME_ID = np.dtype("<i8")
"""A genome id in a bytes column (TASK_ASSIGNMENT's and FITNESS_REPORT's ``ids``)."""
FITNESS = np.dtype("<f8")
"""A fitness in FITNESS_REPORT's ``fitness`` column."""


class MessageType(enum.IntEnum):
    """Message type codes (the byte after the length)."""

    WORKER_REGISTRATION = 1
    REGISTRATION_ACK = 2
    TASK_ASSIGNMENT = 3
    FITNESS_REPORT = 4
    HEARTBEAT_REQUEST = 5
    HEARTBEAT_RESPONSE = 6
    SHUTDOWN_SIGNAL = 7
    ERROR_REPORT = 8
    STATUS_UPDATE = 9
    STATUS_REQUEST = 10
    STATUS_REPORT = 11
    STANDBY_REGISTRATION = 12
    STATE_SNAPSHOT = 13


def _is_str(value: Any) -> bool:
    return isinstance(value, str)


def _bytes_of(size: int) -> Check:
    return lambda value: isinstance(value, bytes) and len(value) == size


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def _list_of(item: Check) -> Check:
    return lambda value: isinstance(value, list) and all(item(v) for v in value)


def _pair(first: Check, second: Check) -> Check:
    return lambda value: isinstance(value, list) and len(value) == 2 and first(value[0]) and second(value[1])


def _one_of(*allowed: str) -> Check:
    return lambda value: value in allowed


def _positive_int(value: Any) -> bool:
    return _is_int(value) and value >= 1


def _count(value: Any) -> bool:
    return _is_int(value) and value >= 0


def _finite_nonneg(value: Any) -> bool:
    return _is_float(value) and math.isfinite(value) and value >= 0


def _worker_id(value: Any) -> bool:
    return (_is_int(value) or _is_str(value)) and len(str(value)) <= 200


def _is_bytes(value: Any) -> bool:
    return isinstance(value, bytes)


def wire(check: Check, optional: bool = False) -> Any:
    """A field of a message, valid when ``check`` holds; an optional one defaults to None (absent on the wire)."""
    return field(default=None, metadata={"check": check}) if optional else field(metadata={"check": check})


M = TypeVar("M", bound="Message")


@dataclass(frozen=True)
class Message:
    """Base of the message classes (declared with ``@message``); ``TYPE`` is the code it is sent under."""

    TYPE: ClassVar[MessageType]
    FIELDS: ClassVar[dict[str, tuple[Check, bool]]]
    """Field name -> (check, required)."""

    @classmethod
    def from_payload(cls: type[M], payload: Any) -> M:
        """The message of a received payload; ProtocolError naming the message and the bad field if it is off."""
        problem = cls._problem(payload)
        if problem is not None:
            raise ProtocolError(problem)
        return cls(**payload)

    @classmethod
    def _problem(cls, payload: Any) -> str | None:
        """Why ``payload`` is not a map of exactly this message's fields with valid values (None when it is)."""
        name = cls.TYPE.name
        if not isinstance(payload, dict):
            return f"{name} payload must be a map, got {type(payload).__name__}"
        unknown = sorted(str(k) for k in payload if k not in cls.FIELDS)
        if unknown:
            return f"{name} payload has unknown field(s) {', '.join(unknown)}"
        for key, (check, required) in cls.FIELDS.items():
            if key not in payload:
                if required:
                    return f"{name} payload lacks field {key!r}"
            elif not check(payload[key]):
                return f"{name} field {key!r} has an invalid value"
        return None

    def payload(self) -> dict[str, Any]:
        """The msgpack map sent for this message (optional fields at None left out)."""
        return {key: value for key in self.FIELDS if (value := getattr(self, key)) is not None}


MESSAGES: dict[MessageType, type[Message]] = {}
"""The class of each message type: the one table from which frames are decoded."""


def message(mtype: MessageType) -> Callable[[type[M]], type[M]]:
    """Declare a message class: a frozen dataclass of ``wire`` fields, sent as ``mtype`` and entered in ``MESSAGES``."""
    def declare(cls: type[M]) -> type[M]:
        cls = dataclass(frozen=True)(cls)
        cls.TYPE = mtype
        cls.FIELDS = {f.name: (f.metadata["check"], f.default is MISSING) for f in fields(cls)}
        MESSAGES[mtype] = cls
        return cls
    return declare


@message(MessageType.WORKER_REGISTRATION)
class WorkerRegistration(Message):
    """A worker asks to join (sent twice with an auth token: the second time with its proof)."""

    protocol_version: int = wire(_is_int)
    worker_id: int | str = wire(_worker_id)
    capacity: int = wire(_positive_int)
    nonce: bytes | None = wire(_bytes_of(NONCE_BYTES), optional=True)
    proof: bytes | None = wire(_bytes_of(PROOF_BYTES), optional=True)
    epoch: int | None = wire(_count, optional=True)
    """The highest epoch of a master this worker has served (absent: 0)."""


@message(MessageType.REGISTRATION_ACK)
class RegistrationAck(Message):
    """The master's answer to a registration or status request: its challenge, or the worker accepted."""

    status: str = wire(_one_of("challenge", "accepted"))
    nonce: bytes | None = wire(_bytes_of(NONCE_BYTES), optional=True)
    proof: bytes | None = wire(_bytes_of(PROOF_BYTES), optional=True)
    heartbeat_interval: float | None = wire(_finite_nonneg, optional=True)
    epoch: int | None = wire(_positive_int, optional=True)
    """The accepting master's epoch (absent: 0)."""


@message(MessageType.TASK_ASSIGNMENT)
class TaskAssignment(Message):
    """A batch of genomes to evaluate, as columns (``columns``, which checks them in full)."""

    batch_id: int = wire(_is_int)
    generation: int = wire(_is_int)
    num_inputs: int = wire(_positive_int)
    num_outputs: int = wire(_positive_int)
    activation_names: list[str] = wire(_list_of(_is_str))
    ids: bytes = wire(_is_bytes)
    """The genomes' ids, ``GENOME_ID`` each."""
    node_counts: bytes = wire(_is_bytes)
    """Each genome's number of node records, ``columns.GENE_COUNT`` each; ``conn_counts`` likewise."""
    conn_counts: bytes = wire(_is_bytes)
    nodes: bytes = wire(_is_bytes)
    """Every genome's node records (``columns.NODE_RECORD``), genome after genome."""
    connections: bytes = wire(_is_bytes)
    """Every genome's connection records (``columns.CONNECTION_RECORD``), genome after genome."""

    @property
    def size(self) -> int:
        """The number of genomes."""
        return len(self.ids) // GENOME_ID.itemsize

    def genome_ids(self) -> list[int]:
        """The genomes' ids (whole entries of ``ids``)."""
        return np.frombuffer(self.ids, GENOME_ID, self.size).tolist()


@message(MessageType.FITNESS_REPORT)
class FitnessReport(Message):
    """A batch's results: fitness values as two columns (``ids`` and ``fitness``, one entry per genome), and
    ``[genome id, traceback]`` pairs for the genomes whose fitness function raised."""

    batch_id: int = wire(_is_int)
    ids: bytes = wire(_is_bytes)
    """Genome ids, ``GENOME_ID`` each."""
    fitness: bytes = wire(_is_bytes)
    """Their fitness values, ``FITNESS`` each, in the order of ``ids``."""
    errors: list[list] = wire(_list_of(_pair(is_id, _is_str)))
    elapsed: float = wire(_finite_nonneg)

    @classmethod
    def of(cls, batch_id: int, fitness: list[list], errors: list[list], elapsed: float) -> FitnessReport:
        """The report of ``[genome id, fitness]`` pairs and ``[genome id, traceback]`` pairs."""
        ids = np.array([pair[0] for pair in fitness], dtype=GENOME_ID)
        values = np.array([pair[1] for pair in fitness], dtype=FITNESS)
        return cls(batch_id, ids.tobytes(), values.tobytes(), errors, elapsed)

    def columns(self) -> tuple[np.ndarray, np.ndarray]:
        """(genome ids, fitness values) as arrays; ProtocolError unless both hold whole entries, as many each."""
        count = len(self.ids) // GENOME_ID.itemsize
        if len(self.ids) % GENOME_ID.itemsize or len(self.fitness) != count * FITNESS.itemsize:
            raise ProtocolError(f"FITNESS_REPORT for batch {self.batch_id}: ids and fitness must hold as many "
                                f"8-byte entries, got {len(self.ids)} and {len(self.fitness)} bytes")
        return np.frombuffer(self.ids, GENOME_ID), np.frombuffer(self.fitness, FITNESS)


@message(MessageType.HEARTBEAT_REQUEST)
class HeartbeatRequest(Message):
    """The master asks a worker for a sign of life."""

    sent: float = wire(_is_float)


@message(MessageType.HEARTBEAT_RESPONSE)
class HeartbeatResponse(Message):
    """The worker's answer, echoing ``sent``."""

    sent: float = wire(_is_float)


@message(MessageType.SHUTDOWN_SIGNAL)
class ShutdownSignal(Message):
    """The master tells a worker to exit."""

    reason: str = wire(_is_str)


@message(MessageType.ERROR_REPORT)
class ErrorReport(Message):
    """Either side says why it ends the connection (``fatal``: do not retry)."""

    message: str = wire(_is_str)
    fatal: bool = wire(_is_bool)
    code: str = wire(_one_of("auth", "version", "busy", "error", "epoch", "standby"))


@message(MessageType.STATUS_UPDATE)
class StatusUpdate(Message):
    """A worker says it is leaving (its batch goes to others at once)."""

    state: str = wire(_one_of("leaving"))


@message(MessageType.STATUS_REQUEST)
class StatusRequest(Message):
    """A status client asks for a STATUS_REPORT (sent twice with an auth token: the second time with its proof)."""

    nonce: bytes | None = wire(_bytes_of(NONCE_BYTES), optional=True)
    proof: bytes | None = wire(_bytes_of(PROOF_BYTES), optional=True)


@message(MessageType.STATUS_REPORT)
class StatusReport(Message):
    """The master's load (fields described in ``status.STATUSFIELDS``)."""

    workers: int = wire(_count)
    busy: int = wire(_count)
    idle: int = wire(_count)
    pending: int = wire(_count)
    generation: int = wire(_is_int)
    evaluating: bool = wire(_is_bool)
    genomes_per_s: float = wire(_finite_nonneg)
    uptime: float = wire(_finite_nonneg)


@message(MessageType.STANDBY_REGISTRATION)
class StandbyRegistration(Message):
    """A standby master asks to follow this one (sent twice with an auth token: the second time with its proof)."""

    protocol_version: int = wire(_is_int)
    epoch: int = wire(_count)
    """The highest epoch the standby has replicated."""
    nonce: bytes | None = wire(_bytes_of(NONCE_BYTES), optional=True)
    proof: bytes | None = wire(_bytes_of(PROOF_BYTES), optional=True)


@message(MessageType.STATE_SNAPSHOT)
class StateSnapshot(Message):
    """The primary's state after evaluated ``generation``: one msgpack document, checked in full by the standby
    (``neatify.distributed.core.standby.decode_state``)."""

    epoch: int = wire(_positive_int)
    generation: int = wire(_count)
    state: bytes = wire(_is_bytes)
