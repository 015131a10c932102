"""The master's watch on its peers: heartbeats out, and the deadlines after which a connection is given up.

An unregistered connection has ``handshake_timeout`` to register; a registered peer (a worker, the standby)
must answer a heartbeat, by any message, within ``peer_timeout``; a worker must report a batch within
``result_deadline`` of its start. This module decides who is overdue; ending them is the caller's.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from neatify.distributed.config import DistributedConfig
from neatify.distributed.core._state import Phase
from neatify.distributed.core.actions import Send
from neatify.distributed.core.peers import Connection, Worker, logger
from neatify.distributed.wire.framing import encode_frame
from neatify.distributed.wire.messages import HeartbeatRequest


class Liveness:
    """When heartbeats went out, and which connections are overdue."""

    def __init__(self, config: DistributedConfig, started: float) -> None:
        self.config = config
        self._last_heartbeat = started
        """When heartbeats last went out: the first round one interval after the start (a worker that has just
        registered has just shown it is alive, and a round to every worker costs the master a send each)."""

    def overdue(self, now: float, connections: Iterable[Connection], workers: Iterable[Worker],
                follower: Connection | None) -> Iterator[tuple[Connection, str]]:
        """The connections to give up now and why: unregistered ones past ``handshake_timeout``, then workers, then
        the standby (each judged as the caller reaches it, after the ones before it were given up)."""
        limit = self.config.handshake_timeout
        for connection in list(connections):
            if now - connection.opened > limit and connection.state.phase is not Phase.REGISTERED:
                logger.info("closing connection from %s: no registration within %.1fs", connection.address,
                            limit)  # a stranger or a port scan: nothing to act on
                yield connection, "no registration in time"
        for worker in list(workers):
            problem = self._unanswered(worker.connection, now) or self._unreported(worker, now)
            if problem is not None:
                yield worker.connection, problem
        if follower is not None and (problem := self._unanswered(follower, now)) is not None:
            yield follower, problem

    def heartbeats(self, now: float, registered: list[Connection]) -> list[Send]:
        """A HEARTBEAT_REQUEST to each of the ``registered`` peers' connections once an interval has passed."""
        if now - self._last_heartbeat < self.config.heartbeat_interval:
            return []
        self._last_heartbeat = now
        frame = encode_frame(HeartbeatRequest(now))
        for connection in registered:
            if connection.probe_sent is None:
                connection.probe_sent = now
        return [Send(frame, connection.id) for connection in registered]

    def _unanswered(self, connection: Connection, now: float) -> str | None:
        """A heartbeat on ``connection`` unanswered (by anything) for longer than ``peer_timeout``, if so."""
        if connection.probe_sent is not None and connection.last_seen >= connection.probe_sent:
            connection.probe_sent = None
        if connection.probe_sent is not None and now - connection.probe_sent > self.config.peer_timeout:
            return f"no answer for {now - connection.probe_sent:.1f}s"
        return None

    def _unreported(self, worker: Worker, now: float) -> str | None:
        """A batch ``worker`` has held past ``result_deadline`` without reporting it, if so."""
        batch = worker.batches[0] if worker.batches else None
        if batch is not None and now - batch.started > self.config.result_deadline:
            return (f"no result for batch {batch.id} after {now - batch.started:.1f}s "
                    f"(2 x task_timeout; its genomes were re-sent)")
        return None
