"""The protocol's messages: one frozen dataclass per message type, each field's type checked on receipt.

``Message.from_payload`` checks a received msgpack map before anything acts on it, with the one
validation layer of checkpoints and the wire (``neatify.io.schema``, msgspec): a map with exactly the
class's fields, optional ones (default None) may be absent but not nil, each value of its annotated
type. ``payload`` gives the map to send, without the optional fields left at None. ``MESSAGES`` maps
each ``MessageType`` to its class. A new message is a ``MessageType`` member plus a class declared
with ``@message(MessageType.NAME)``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Annotated, Any, ClassVar, Literal, TypeVar

import msgspec
import numpy as np

from neatify.distributed.errors import ProtocolError
from neatify.distributed.wire.auth import NONCE_BYTES, PROOF_BYTES
from neatify.io.columns import GENOME_ID
from neatify.io.schema import Count, Id, NonNegative, Positive, SchemaError, checked

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


Nonce = Annotated[bytes, msgspec.Meta(min_length=NONCE_BYTES, max_length=NONCE_BYTES)]
Proof = Annotated[bytes, msgspec.Meta(min_length=PROOF_BYTES, max_length=PROOF_BYTES)]
WorkerId = int | Annotated[str, msgspec.Meta(max_length=200)]
MAX_CORES = 1 << 16
"""The most evaluator processes one worker may say it feeds (REGISTRATION's ``cores``)."""
Cores = Annotated[int, msgspec.Meta(ge=1, le=MAX_CORES)]

M = TypeVar("M", bound="Message")


@dataclass(frozen=True)
class Message:
    """Base of the message classes (declared with ``@message``); ``TYPE`` is the code it is sent under."""

    TYPE: ClassVar[MessageType]
    FIELDS: ClassVar[tuple[str, ...]]
    """The fields' names, in order."""

    @classmethod
    def from_payload(cls: type[M], payload: Any) -> M:
        """The message of a received payload; ProtocolError naming the message and the bad field if it is off."""
        try:
            message = checked(payload, cls)
        except SchemaError as exc:
            raise ProtocolError(f"{cls.TYPE.name} payload: {exc}") from None
        for key, value in payload.items():
            if key not in cls.FIELDS:
                raise ProtocolError(f"{cls.TYPE.name} payload: Object contains unknown field `{key}`")
            if value is None:  # an optional field sent as nil is not an absent one
                raise ProtocolError(f"{cls.TYPE.name} payload: Expected a value, got `null` - at `$.{key}`")
        return message

    def payload(self) -> dict[str, Any]:
        """The msgpack map sent for this message (optional fields at None left out)."""
        return {key: value for key in self.FIELDS if (value := getattr(self, key)) is not None}


MESSAGES: dict[MessageType, type[Message]] = {}
"""The class of each message type: the one table from which frames are decoded."""


def message(mtype: MessageType) -> Callable[[type[M]], type[M]]:
    """Declare a message class: a frozen dataclass of typed fields, sent as ``mtype`` and entered in ``MESSAGES``."""
    def declare(cls: type[M]) -> type[M]:
        cls = dataclass(frozen=True)(cls)
        cls.TYPE = mtype
        cls.FIELDS = tuple(f.name for f in fields(cls))
        MESSAGES[mtype] = cls
        return cls
    return declare


@message(MessageType.WORKER_REGISTRATION)
class WorkerRegistration(Message):
    """A worker asks to join (sent twice with an auth token: the second time with its proof)."""

    protocol_version: int
    worker_id: WorkerId
    capacity: Positive
    nonce: Nonce | None = None
    proof: Proof | None = None
    epoch: Count | None = None
    """The highest epoch of a master this worker has served (absent: 0)."""
    cores: Cores | None = None
    """Evaluator processes this one connection feeds (absent: 1): the master gives it work for that many, and
    ``capacity`` genomes per batch for each of them."""


@message(MessageType.REGISTRATION_ACK)
class RegistrationAck(Message):
    """The master's answer to a registration or status request: its challenge, or the worker accepted."""

    status: Literal["challenge", "accepted"]
    nonce: Nonce | None = None
    proof: Proof | None = None
    heartbeat_interval: NonNegative | None = None
    epoch: Positive | None = None
    """The accepting master's epoch (absent: 0)."""


@message(MessageType.TASK_ASSIGNMENT)
class TaskAssignment(Message):
    """A batch of genomes to evaluate, as columns (``neatify.io.columns``, which checks them in full)."""

    batch_id: int
    generation: int
    num_inputs: Positive
    num_outputs: Positive
    activation_names: list[str]
    ids: bytes
    """The genomes' ids, ``GENOME_ID`` each."""
    node_counts: bytes
    """Each genome's number of node records, ``neatify.io.columns.GENE_COUNT`` each; ``conn_counts`` likewise."""
    conn_counts: bytes
    nodes: bytes
    """Every genome's node records (``neatify.io.columns.NODE_RECORD``), genome after genome."""
    connections: bytes
    """Every genome's connection records (``neatify.io.columns.CONNECTION_RECORD``), genome after genome."""
    context: dict[str, Any] | None = None
    """The master's ``generation_context`` for this generation (``neatify.evaluation``: plain data such as
    observation statistics), told to the worker's fitness function with the generation; absent when it has none."""

    @property
    def size(self) -> int:
        """The number of genomes."""
        return len(self.ids) // GENOME_ID.itemsize

    def genome_ids(self) -> list[int]:
        """The genomes' ids (whole entries of ``ids``)."""
        return np.frombuffer(self.ids, GENOME_ID, self.size).tolist()


@message(MessageType.FITNESS_REPORT)
class FitnessReport(Message):
    """A batch's results: fitness values as two columns (``ids`` and ``fitness``, one entry per genome), their
    behaviours as a third when the fitness function set them, and ``[genome id, traceback]`` pairs for the
    genomes whose fitness function raised."""

    batch_id: int
    ids: bytes
    """Genome ids, ``GENOME_ID`` each."""
    fitness: bytes
    """Their fitness values, ``FITNESS`` each, in the order of ``ids``."""
    errors: list[tuple[Id, str]]
    """(genome id, traceback) pairs."""
    elapsed: NonNegative
    behaviours: bytes | None = None
    """Their behaviours, the same number of ``FITNESS`` values each, genome after genome in the order of ``ids``
    (absent when the fitness function set none: a run without behaviours sends what it always sent)."""

    @classmethod
    def of(cls, batch_id: int, fitness: list[list], errors: list[list], elapsed: float) -> FitnessReport:
        """The report of ``[genome id, fitness]`` (or ``[genome id, fitness, behaviour]``) entries and
        ``[genome id, traceback]`` pairs. Behaviours travel as one column of equal rows: a genome whose
        behaviour is missing or of another length than the first one's is reported as an error instead."""
        errors = [(pair[0], pair[1]) for pair in errors]
        size = len(fitness[0][2]) if fitness and len(fitness[0]) > 2 else None
        if size is not None:
            odd = [entry for entry in fitness if len(entry) < 3 or len(entry[2]) != size]
            errors += [(entry[0], f"FitnessError: genome {entry[0]} has a behaviour of "
                                  f"{len(entry[2]) if len(entry) > 2 else 'no'} values, the first of its batch "
                                  f"{size}") for entry in odd]
            fitness = [entry for entry in fitness if len(entry) > 2 and len(entry[2]) == size]
        ids = np.array([entry[0] for entry in fitness], dtype=GENOME_ID)
        values = np.array([entry[1] for entry in fitness], dtype=FITNESS)
        behaviours = None if size is None else np.array([entry[2] for entry in fitness], dtype=FITNESS).tobytes()
        return cls(batch_id, ids.tobytes(), values.tobytes(), errors, elapsed, behaviours)

    def columns(self) -> tuple[np.ndarray, np.ndarray]:
        """(genome ids, fitness values) as arrays; ProtocolError unless both hold whole entries, as many each."""
        count = len(self.ids) // GENOME_ID.itemsize
        if len(self.ids) % GENOME_ID.itemsize or len(self.fitness) != count * FITNESS.itemsize:
            raise ProtocolError(f"FITNESS_REPORT for batch {self.batch_id}: ids and fitness must hold as many "
                                f"8-byte entries, got {len(self.ids)} and {len(self.fitness)} bytes")
        return np.frombuffer(self.ids, GENOME_ID), np.frombuffer(self.fitness, FITNESS)

    def behaviour_rows(self) -> np.ndarray | None:
        """The behaviours, one row per genome of ``ids`` (None: none reported); ProtocolError unless the column
        holds whole rows of equal length, one per genome."""
        if self.behaviours is None:
            return None
        count = len(self.ids) // GENOME_ID.itemsize
        values = len(self.behaviours) // FITNESS.itemsize
        if not count or not values or len(self.behaviours) % FITNESS.itemsize or values % count:
            raise ProtocolError(f"FITNESS_REPORT for batch {self.batch_id}: behaviours must hold the same whole "
                                f"number of 8-byte values for each of its {count} genomes, got "
                                f"{len(self.behaviours)} bytes")
        return np.frombuffer(self.behaviours, FITNESS).reshape(count, values // count)


@message(MessageType.HEARTBEAT_REQUEST)
class HeartbeatRequest(Message):
    """The master asks a worker for a sign of life."""

    sent: float


@message(MessageType.HEARTBEAT_RESPONSE)
class HeartbeatResponse(Message):
    """The worker's answer, echoing ``sent``."""

    sent: float


@message(MessageType.SHUTDOWN_SIGNAL)
class ShutdownSignal(Message):
    """The master tells a worker to exit."""

    reason: str


@message(MessageType.ERROR_REPORT)
class ErrorReport(Message):
    """Either side says why it ends the connection (``fatal``: do not retry)."""

    message: str
    fatal: bool
    code: Literal["auth", "version", "busy", "error", "epoch", "standby"]
    batch_id: int | None = None
    """A worker refusing a task it cannot evaluate (an unknown activation, say): that task's batch, whose genomes
    the master counts as failed there."""
    epoch: Count | None = None
    """A standby refusing a standby (``"standby"``): the epoch of the state it holds, so that the newer one leads
    (absent from older peers; never sent to a worker, which does not read it)."""


@message(MessageType.STATUS_UPDATE)
class StatusUpdate(Message):
    """A worker says it is leaving (its batch goes to others at once)."""

    state: Literal["leaving"]


@message(MessageType.STATUS_REQUEST)
class StatusRequest(Message):
    """A status client asks for a STATUS_REPORT (sent twice with an auth token: the second time with its proof)."""

    nonce: Nonce | None = None
    proof: Proof | None = None


@message(MessageType.STATUS_REPORT)
class StatusReport(Message):
    """The master's load (fields described in ``status.STATUSFIELDS``)."""

    workers: Count
    busy: Count
    idle: Count
    pending: Count
    generation: int
    evaluating: bool
    genomes_per_s: NonNegative
    uptime: NonNegative
    quarantined: Count | None = None
    """Genomes given up on so far in the run (absent: 0)."""


@message(MessageType.STANDBY_REGISTRATION)
class StandbyRegistration(Message):
    """A standby master asks to follow this one (sent twice with an auth token: the second time with its proof)."""

    protocol_version: int
    epoch: Count
    """The highest epoch the standby has replicated."""
    nonce: Nonce | None = None
    proof: Proof | None = None
    generation: Count | None = None
    """The generation of the state it holds (absent from older standbys and from a fence): on equal epochs the
    newer state leads."""


@message(MessageType.STATE_SNAPSHOT)
class StateSnapshot(Message):
    """The primary's state after evaluated ``generation``: one msgpack document, checked in full by the standby
    (``neatify.distributed.core.standby.decode_state``)."""

    epoch: Positive
    generation: Count
    state: bytes
