"""Settings of a distributed run: network, timeouts, batching, fault tolerance and security."""

from __future__ import annotations

import math
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from neatify.evaluation import check_error_fitness

AUTH_TOKEN_ENV = "NEATIFY_AUTH_TOKEN"
"""Environment variable read for the shared secret when no ``auth_token`` is given."""

BATCHING_MODES = ("genomes", "species")
"""Values of ``DistributedConfig.batching``."""

HEARTBEAT_RANGE = (0.01, 3600.0)
"""Allowed ``heartbeat_interval`` in seconds: shorter busy-loops the master, longer leaves a lost peer unnoticed
for hours (and workers refuse a non-finite one)."""

FRAME_BYTES_RANGE = (1024, 2**32 - 1)
"""Allowed ``max_frame_bytes``: a frame's length field has 4 bytes."""

_SOMAXCONN_PATH = Path("/proc/sys/net/core/somaxconn")


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (an IPv6 host in brackets) as ``(host, port)``; ValueError naming the text otherwise."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    if not 0 < int(port) < 65536:
        raise ValueError(f"port must be in 1..65535, got {text!r}")
    return host.strip("[]"), int(port)


def check_max_frame_bytes(value: int) -> int:
    """``value`` if it is an int in ``FRAME_BYTES_RANGE``; ValueError naming ``max_frame_bytes`` otherwise."""
    low, high = FRAME_BYTES_RANGE
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"max_frame_bytes must be an integer in {low}..{high}, got {value!r}")
    return value


def system_listen_backlog() -> int:
    """The kernel's cap on a listening socket's queue (Linux: net.core.somaxconn), else ``socket.SOMAXCONN``."""
    try:
        return max(1, int(_SOMAXCONN_PATH.read_text()))
    except (OSError, ValueError):
        return socket.SOMAXCONN


@dataclass
class DistributedConfig:
    """Configuration shared by the master (all fields) and the workers (network and security ones)."""

    host: str = "127.0.0.1"
    """Address the master listens on; 127.0.0.1 is this machine only, 0.0.0.0 every interface (set a token)."""
    port: int = 5000
    """Port the master listens on (0 picks a free one; see ``SystemCoordinator.port``)."""
    min_workers: int = 1
    """Workers that must be registered before a generation starts."""
    heartbeat_interval: float = 5.0
    """Seconds between heartbeats, within ``HEARTBEAT_RANGE``; a peer silent for 3 intervals is considered lost."""
    task_timeout: float = 300.0
    """Seconds a batch may take before it is given to another worker as well."""
    batch_size_per_worker: int = 0
    """Genomes per batch; 0 sizes batches from each worker's capacity and measured speed."""
    trusted_cores: int = 8
    """Most of a worker's claimed ``cores`` it is counted with until its measured throughput backs more (see
    docs/distributed.md, "A worker of several cores")."""
    batching: str = "genomes"
    """How genomes are grouped into batches: "genomes" (in population order) or "species" (a batch holds
    genomes of one species, for fitness functions that cache per topology; see docs/distributed.md)."""
    enable_fault_tolerance: bool = True
    """Give a lost or late worker's batch to another worker (otherwise raise ``WorkerLostError``)."""
    worker_wait_timeout: float | None = None
    """Seconds to wait for ``min_workers`` (or for any worker when all are gone); None waits forever."""
    error_fitness: float | None = None
    """Fitness given to a genome the fitness function failed on (raised, or left a bad fitness);
    None raises ``RemoteFitnessError``."""
    max_genome_attempts: int = 3
    """Times a genome may end its evaluation alone (its worker died, hung past ``task_timeout`` or refused its
    task) before it is quarantined: given ``error_fitness``, or ``RemoteFitnessError`` naming it (at least 1)."""
    auth_token: str | None = None
    """Shared secret for HMAC challenge-response at registration (default: $NEATIFY_AUTH_TOKEN)."""
    max_frame_bytes: int = 64 * 1024 * 1024
    """Longest frame accepted, within ``FRAME_BYTES_RANGE``; a longer one is refused before its payload is read
    (a standby's snapshot of the whole population is one frame)."""
    shutdown_linger: float = 10.0
    """Seconds a master ending the run keeps listening for workers it lost shortly before (a supervised child
    restarted after a crash), to tell them the run is over; 0 does not wait."""
    handshake_timeout: float = 10.0
    """Seconds a new connection has to complete registration (the TLS handshake included)."""
    tls_cert: str | None = None
    """PEM certificate (chain) the master presents; set, the master speaks TLS only."""
    tls_key: str | None = None
    """PEM private key of ``tls_cert`` (None: the key is in the ``tls_cert`` file)."""
    listen_backlog: int | None = None
    """Connections the kernel queues before the master accepts them; None: the system maximum
    (``system_listen_backlog()``), so a burst of thousands of workers is not dropped into SYN retries."""
    scheduler_file: str | None = None
    """Path (on a filesystem the workers share) where the master writes its address once it listens, for
    workers given the same ``scheduler_file``; removed at a clean shutdown (``io/scheduler_file.py``)."""
    standby_of: str | None = None
    """``HOST:PORT`` of a primary master: this master is its hot standby, receives its state after every
    generation and takes over when it is gone for ``peer_timeout`` (docs/distributed.md, "Hot standby")."""
    tls_ca: str | None = None
    """PEM CA a standby checks the primary's certificate against; set, the standby speaks TLS to the primary."""

    def __post_init__(self) -> None:
        if self.auth_token is None:
            self.auth_token = os.environ.get(AUTH_TOKEN_ENV) or None
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be in 0..65535, got {self.port}")
        self.error_fitness = check_error_fitness(self.error_fitness)
        if self.min_workers < 1:
            raise ValueError(f"min_workers must be at least 1, got {self.min_workers}")
        if isinstance(self.max_genome_attempts, bool) or not isinstance(self.max_genome_attempts, int) \
                or self.max_genome_attempts < 1:
            raise ValueError(f"max_genome_attempts must be an integer >= 1, got {self.max_genome_attempts!r}")
        if self.batch_size_per_worker < 0:
            raise ValueError(f"batch_size_per_worker must be >= 0 (0 = auto), got {self.batch_size_per_worker}")
        if self.trusted_cores < 1:
            raise ValueError(f"trusted_cores must be at least 1, got {self.trusted_cores}")
        if self.batching not in BATCHING_MODES:
            raise ValueError(f"batching must be one of {', '.join(map(repr, BATCHING_MODES))}, got {self.batching!r}")
        low, high = HEARTBEAT_RANGE
        if not low <= self.heartbeat_interval <= high:
            raise ValueError(f"heartbeat_interval must be in {low:g}..{high:g} seconds, got {self.heartbeat_interval}")
        for name in ("task_timeout", "handshake_timeout"):
            if not 0 < getattr(self, name) < math.inf:
                raise ValueError(f"{name} must be a positive finite number of seconds, got {getattr(self, name)}")
        if not 0 <= self.shutdown_linger < math.inf:
            raise ValueError(f"shutdown_linger must be a finite number of seconds >= 0, got {self.shutdown_linger}")
        if self.worker_wait_timeout is not None and not 0 <= self.worker_wait_timeout < math.inf:
            raise ValueError(f"worker_wait_timeout must be a finite number >= 0 or None, "
                             f"got {self.worker_wait_timeout}")
        if self.listen_backlog is None:
            self.listen_backlog = system_listen_backlog()
        elif self.listen_backlog < 1:
            raise ValueError(f"listen_backlog must be at least 1 (or None for the system maximum), "
                             f"got {self.listen_backlog}")
        if self.tls_key is not None and self.tls_cert is None:
            raise ValueError("tls_key is set but tls_cert is not: give the certificate too")
        if self.standby_of is not None:
            parse_address(self.standby_of)
        if self.tls_ca is not None and self.standby_of is None:
            raise ValueError("tls_ca is set but standby_of is not: only a standby dials a master")
        check_max_frame_bytes(self.max_frame_bytes)

    @property
    def peer_timeout(self) -> float:
        """Seconds of silence after which a peer is considered lost."""
        return 3.0 * self.heartbeat_interval

    @property
    def primary(self) -> tuple[str, int]:
        """``standby_of`` as ``(host, port)``."""
        assert self.standby_of is not None, "not a standby"
        return parse_address(self.standby_of)

    @property
    def result_deadline(self) -> float:
        """Seconds a worker may hold a batch without reporting it before it is dropped (2 x task_timeout)."""
        return 2.0 * self.task_timeout
