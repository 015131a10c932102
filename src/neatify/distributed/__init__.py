"""Distributed evaluation: a master ``DistributedPopulation`` farms genomes out to ``WorkerNode``s over TCP.

Messages are length-prefixed msgpack frames of plain data, each checked by its message class on receipt (never pickle).
See docs/distributed.md.
"""

from neatify.distributed.config import DistributedConfig
from neatify.distributed.errors import (
    AuthenticationError, DistributedError, ProtocolError, RegistrationError, RemoteFitnessError, SupersededError,
    WorkerLostError, WorkerWaitTimeout,
)
from neatify.distributed.io.master import DistributedEvaluator, DistributedPopulation, SystemCoordinator
from neatify.distributed.wire.messages import MessageType
from neatify.distributed.wire.framing import PROTOCOL_VERSION
from neatify.distributed.io.worker import GenomeEvaluator, WorkerNode

__all__ = [
    "PROTOCOL_VERSION", "AuthenticationError", "DistributedConfig", "DistributedError", "DistributedEvaluator",
    "DistributedPopulation",
    "GenomeEvaluator", "MessageType", "ProtocolError", "RegistrationError", "RemoteFitnessError",
    "SupersededError", "SystemCoordinator", "WorkerLostError", "WorkerNode", "WorkerWaitTimeout",
]
