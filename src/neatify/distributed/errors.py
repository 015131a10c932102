"""The exceptions raised by neatify.distributed, each with a message that says what to do."""

from __future__ import annotations

from neatify.evaluation import EvaluationError


class DistributedError(RuntimeError):
    """Base class of the errors raised by neatify.distributed."""


class ProtocolError(DistributedError):
    """A peer sent a frame that is too long, truncated, undecodable, off-schema or out of order."""


class ConnectionClosed(DistributedError):
    """The peer closed the connection (at a frame boundary)."""


class RegistrationError(DistributedError):
    """The master refused a worker for good (protocol version mismatch); retrying cannot help."""


class AuthenticationError(RegistrationError):
    """The shared-secret challenge failed: the worker's and master's auth tokens differ or one is missing."""


class WorkerLostError(DistributedError):
    """A worker was lost mid-batch while ``enable_fault_tolerance`` is off."""


class SupersededError(DistributedError):
    """A master met a peer that has served a newer master (a higher epoch): it stood down, so that no second
    copy of the evolution runs."""


class WorkerWaitTimeout(DistributedError):
    """Not enough workers registered within ``worker_wait_timeout``."""


class RemoteFitnessError(DistributedError, EvaluationError):
    """The fitness function failed on a worker (raised, or left a bad fitness): the ``EvaluationError`` of
    the TCP workers, carrying the worker id, genome id and remote traceback."""

    def __init__(self, worker_id: int | str, genome_id: int, remote_traceback: str) -> None:
        EvaluationError.__init__(self, genome_id, f"worker {worker_id}", remote_traceback)
        self.worker_id = worker_id
