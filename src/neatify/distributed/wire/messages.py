"""The protocol's messages: one frozen ``msgspec.Struct`` per message type, each field's type checked on receipt.

``Message.from_payload`` checks a received msgpack map before anything acts on it, with the one
validation layer of checkpoints and the wire (``neatify.io.schema``): a map with exactly the class's
fields, optional ones may be absent (not nil), each value of its type. ``payload`` gives the map to
send, without the optional fields left at None. ``MESSAGES`` maps each ``MessageType`` to its class.
A new message is a ``MessageType`` member plus a ``Message`` subclass whose ``TYPE`` is that member.
"""

from __future__ import annotations

import enum
from typing import Annotated, Any, ClassVar, Literal, TypeVar

import msgspec
import numpy as np

from neatify.distributed.errors import ProtocolError
from neatify.distributed.wire.auth import NONCE_BYTES, PROOF_BYTES
from neatify.io.columns import GENOME_ID
from neatify.io.schema import Count, Id, NonNegative, Positive, Schema, SchemaError, checked

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

M = TypeVar("M", bound="Message")


class Message(Schema, frozen=True, omit_defaults=True):
    """Base of the message classes; ``TYPE`` is the code a subclass is sent under. A field defaulting to None
    is optional: absent on the wire when None."""

    TYPE: ClassVar[MessageType]

    @classmethod
    def from_payload(cls: type[M], payload: Any) -> M:
        """The message of a received payload; ProtocolError naming the message and the bad field if it is off."""
        try:
            message = checked(payload, cls)
        except SchemaError as exc:
            raise ProtocolError(f"{cls.TYPE.name} payload: {exc}") from None
        nil = [key for key, value in payload.items() if value is None]
        if nil:  # an optional field sent as nil is not an absent one
            raise ProtocolError(f"{cls.TYPE.name} payload: Expected a value, got `null` - at `$.{nil[0]}`")
        return message

    def payload(self) -> dict[str, Any]:
        """The msgpack map sent for this message (optional fields at None left out)."""
        return msgspec.to_builtins(self, builtin_types=(bytes, memoryview))


class WorkerRegistration(Message):
    """A worker asks to join (sent twice with an auth token: the second time with its proof)."""

    TYPE = MessageType.WORKER_REGISTRATION
    protocol_version: int
    worker_id: WorkerId
    capacity: Positive
    nonce: Nonce | None = None
    proof: Proof | None = None
    epoch: Count | None = None
    """The highest epoch of a master this worker has served (absent: 0)."""


class RegistrationAck(Message):
    """The master's answer to a registration or status request: its challenge, or the worker accepted."""

    TYPE = MessageType.REGISTRATION_ACK
    status: Literal["challenge", "accepted"]
    nonce: Nonce | None = None
    proof: Proof | None = None
    heartbeat_interval: NonNegative | None = None
    epoch: Positive | None = None
    """The accepting master's epoch (absent: 0)."""


class TaskAssignment(Message):
    """A batch of genomes to evaluate, as columns (``neatify.io.columns``, which checks them in full)."""

    TYPE = MessageType.TASK_ASSIGNMENT
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

    @property
    def size(self) -> int:
        """The number of genomes."""
        return len(self.ids) // GENOME_ID.itemsize

    def genome_ids(self) -> list[int]:
        """The genomes' ids (whole entries of ``ids``)."""
        return np.frombuffer(self.ids, GENOME_ID, self.size).tolist()


class FitnessReport(Message):
    """A batch's results: fitness values as two columns (``ids`` and ``fitness``, one entry per genome), and
    ``[genome id, traceback]`` pairs for the genomes whose fitness function raised."""

    TYPE = MessageType.FITNESS_REPORT
    batch_id: int
    ids: bytes
    """Genome ids, ``GENOME_ID`` each."""
    fitness: bytes
    """Their fitness values, ``FITNESS`` each, in the order of ``ids``."""
    errors: list[tuple[Id, str]]
    """(genome id, traceback) pairs."""
    elapsed: NonNegative

    @classmethod
    def of(cls, batch_id: int, fitness: list[list], errors: list[list], elapsed: float) -> FitnessReport:
        """The report of ``[genome id, fitness]`` pairs and ``[genome id, traceback]`` pairs."""
        ids = np.array([pair[0] for pair in fitness], dtype=GENOME_ID)
        values = np.array([pair[1] for pair in fitness], dtype=FITNESS)
        return cls(batch_id, ids.tobytes(), values.tobytes(), [(pair[0], pair[1]) for pair in errors], elapsed)

    def columns(self) -> tuple[np.ndarray, np.ndarray]:
        """(genome ids, fitness values) as arrays; ProtocolError unless both hold whole entries, as many each."""
        count = len(self.ids) // GENOME_ID.itemsize
        if len(self.ids) % GENOME_ID.itemsize or len(self.fitness) != count * FITNESS.itemsize:
            raise ProtocolError(f"FITNESS_REPORT for batch {self.batch_id}: ids and fitness must hold as many "
                                f"8-byte entries, got {len(self.ids)} and {len(self.fitness)} bytes")
        return np.frombuffer(self.ids, GENOME_ID), np.frombuffer(self.fitness, FITNESS)


class HeartbeatRequest(Message):
    """The master asks a worker for a sign of life."""

    TYPE = MessageType.HEARTBEAT_REQUEST
    sent: float


class HeartbeatResponse(Message):
    """The worker's answer, echoing ``sent``."""

    TYPE = MessageType.HEARTBEAT_RESPONSE
    sent: float


class ShutdownSignal(Message):
    """The master tells a worker to exit."""

    TYPE = MessageType.SHUTDOWN_SIGNAL
    reason: str


class ErrorReport(Message):
    """Either side says why it ends the connection (``fatal``: do not retry)."""

    TYPE = MessageType.ERROR_REPORT
    message: str
    fatal: bool
    code: Literal["auth", "version", "busy", "error", "epoch", "standby"]


class StatusUpdate(Message):
    """A worker says it is leaving (its batch goes to others at once)."""

    TYPE = MessageType.STATUS_UPDATE
    state: Literal["leaving"]


class StatusRequest(Message):
    """A status client asks for a STATUS_REPORT (sent twice with an auth token: the second time with its proof)."""

    TYPE = MessageType.STATUS_REQUEST
    nonce: Nonce | None = None
    proof: Proof | None = None


class StatusReport(Message):
    """The master's load (fields described in ``status.STATUSFIELDS``)."""

    TYPE = MessageType.STATUS_REPORT
    workers: Count
    busy: Count
    idle: Count
    pending: Count
    generation: int
    evaluating: bool
    genomes_per_s: NonNegative
    uptime: NonNegative


class StandbyRegistration(Message):
    """A standby master asks to follow this one (sent twice with an auth token: the second time with its proof)."""

    TYPE = MessageType.STANDBY_REGISTRATION
    protocol_version: int
    epoch: Count
    """The highest epoch the standby has replicated."""
    nonce: Nonce | None = None
    proof: Proof | None = None


class StateSnapshot(Message):
    """The primary's state after evaluated ``generation``: one msgpack document, checked in full by the standby
    (``neatify.distributed.core.standby.decode_state``)."""

    TYPE = MessageType.STATE_SNAPSHOT
    epoch: Positive
    generation: Count
    state: bytes


MESSAGES: dict[MessageType, type[Message]] = {cls.TYPE: cls for cls in Message.__subclasses__()}
"""The class of each message type: the one table from which frames are decoded."""
