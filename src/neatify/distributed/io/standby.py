"""The standby's I/O: ``StandbyLink`` connects to the primary and feeds a ``StandbyProtocol`` until the
primary ends the run or is gone (see docs/distributed.md, "Hot standby")."""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable

from neatify.distributed.io import tls
from neatify.distributed.config import DistributedConfig
from neatify.distributed.errors import AuthenticationError, ConnectionClosed, DistributedError, ProtocolError
from neatify.distributed.wire.messages import ErrorReport
from neatify.distributed.io.connection import FramedConnection
from neatify.distributed.wire.framing import encode_frame
from neatify.distributed.core.actions import Send
from neatify.distributed.core.events import (
    Ended, Event, Follower, Promote, Registered, Replicated, Shutdown, Snapshot, StoodDown,
)
from neatify.distributed.core.standby import StandbyProtocol

logger = logging.getLogger("neatify.distributed.io.standby")

_End = Promote | Shutdown | StoodDown | Follower | Ended
"""What ends a connection to the primary."""
_MAX_TICK = 0.1
"""Longest wait of one socket read, so the promotion timer is checked at least this often."""
_MAX_RETRY = 0.5
"""Longest wait between two attempts to reach the primary."""


class StandbyLink:
    """Follows the primary at ``config.standby_of``: registers (reconnecting whenever the link breaks), hands
    every checked snapshot to ``on_snapshot``, and returns ``Promote`` once the primary is gone for the
    silence limit (``peer_timeout``, or 3 of the primary's heartbeat intervals if longer) or ``Shutdown``
    when the primary ends the run. Raises ``AuthenticationError``/``DistributedError`` when the primary
    refuses it for good."""

    def __init__(self, config: DistributedConfig, on_snapshot: Callable[[Snapshot], None], epoch: int = 0,
                 generation: int | None = None, led: bool = False) -> None:
        self.config = config
        self.host, self.port = config.primary
        self.on_snapshot = on_snapshot
        self.core = StandbyProtocol(config.auth_token, config.standby_of or "?", config.max_frame_bytes,
                                    config.peer_timeout, time.monotonic(), epoch, generation, led)
        self._tls = None if config.tls_ca is None else tls.client_context(config.tls_ca)
        self._tick = min(_MAX_TICK, config.heartbeat_interval / 4)
        self._retry = min(_MAX_RETRY, config.heartbeat_interval / 4)
        self._failures = 0
        self._stop = threading.Event()

    def stop(self) -> None:
        """End ``follow`` (or a fence's watch) within one tick, from another thread."""
        self._stop.set()

    def follow(self) -> Promote | Shutdown:
        """Follow the primary until it is gone (``Promote``) or ends the run (``Shutdown``)."""
        while True:
            conn = self._connect()
            ended = None if conn is None else self._serve(conn)
            if isinstance(ended, (StoodDown, Follower)):  # an older primary (the tick promotes), or a standby
                self._failed(f"the primary {'stood down' if isinstance(ended, StoodDown) else 'is a standby'} "
                             f"({ended.reason})")
            if not isinstance(ended, (Promote, Shutdown)):
                ended = self._between()
            if isinstance(ended, (Promote, Shutdown)):
                return ended

    def _between(self) -> _End | None:
        """Between two connections: the primary may be gone, checked at once and again after the pause, so that
        no two steps of the core are a silence limit apart (a longer gap reads as this standby stopped)."""
        ended = self._act(self.core.tick(time.monotonic()), None)
        if isinstance(ended, (Promote, Shutdown)):
            return ended
        time.sleep(self.core.pause(self._retry))
        return self._act(self.core.tick(time.monotonic()), None)

    def _connect(self) -> FramedConnection | None:
        """A connection to the primary (TLS if configured), or None while it cannot be reached (logged)."""
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.config.heartbeat_interval)
            conn = FramedConnection(sock, self.config.max_frame_bytes, io_timeout=self._tick)
        except OSError as exc:
            self._failed(f"cannot reach the primary ({exc})")
            return None
        try:
            if self._tls is not None:
                handshake = min(self.config.handshake_timeout, self.core.silence_limit / 2)  # see _between
                conn.start_tls(self._tls, time.monotonic() + handshake, self.host)
        except ssl.SSLCertVerificationError as exc:
            conn.close()
            raise AuthenticationError(f"standby: the TLS certificate of the primary at {self.config.standby_of} is "
                                      f"not trusted ({exc.verify_message}); check tls_ca") from None
        except OSError as exc:
            conn.close()
            self._failed(f"TLS handshake with the primary failed ({exc})")
            return None
        return conn

    def _failed(self, why: str) -> None:
        """Log a failed attempt: the first in a row and every 2**k-th at WARNING, the others at DEBUG."""
        self._failures += 1
        level = logging.WARNING if self._failures & (self._failures - 1) == 0 else logging.DEBUG
        state = "linked before" if self.core.linked else "never linked yet, so no promotion"
        logger.log(level, "standby: %s at %s (attempt %d; %s)", why, self.config.standby_of, self._failures, state)

    def _serve(self, conn: FramedConnection) -> _End | None:
        """Pump one connection until it ends (or ``stop``); what ended it."""
        try:
            conn.send_bytes(self.core.connect(time.monotonic()).data)
            while not self._stop.is_set():
                try:
                    data = conn.read_some()
                except ConnectionClosed:
                    events = self.core.closed(time.monotonic())
                else:
                    now = time.monotonic()
                    events = self.core.tick(now) if data is None else self.core.received(data, now)
                ended = self._act(events, conn)
                if ended is not None:
                    return ended
            return None
        except (OSError, ProtocolError) as exc:
            return self._act(self.core.closed(time.monotonic()), None) or Ended(ProtocolError(str(exc)))
        finally:
            conn.close()

    def _hand_over(self, snapshot: Snapshot, conn: FramedConnection | None) -> None:
        """Give ``snapshot`` to ``on_snapshot``; if that refuses it for good, tell the primary why, then raise."""
        try:
            self.on_snapshot(snapshot)
        except DistributedError as exc:
            logger.error("%s", exc)
            if conn is not None:
                conn.send_bytes(encode_frame(ErrorReport(str(exc), fatal=True, code="error")))
            raise

    def _act(self, events: list[Send | Event], conn: FramedConnection | None) -> _End | None:
        """Carry out ``events``; what ends the connection, if anything: ``Promote``, ``Shutdown``, ``StoodDown`` or
        ``Follower`` before ``Ended`` (a fatal ``Ended`` is raised)."""
        ended: Ended | None = None
        for event in events:
            if isinstance(event, Send) and conn is not None:
                conn.send_bytes(event.data)
            elif isinstance(event, Registered):
                logger.info("standby: following the primary at %s (epoch %d)", self.config.standby_of, event.epoch)
            elif isinstance(event, Replicated):  # only a state taken ends a run of failures (no warning storm)
                self._failures = 0
                self._hand_over(event.snapshot, conn)
            elif isinstance(event, Ended):
                if event.fatal:
                    logger.error("%s", event.error)
                    raise event.error
                self._failed(f"lost the link ({event.error})")
                ended = event
            elif isinstance(event, (Promote, Shutdown, StoodDown, Follower)):
                return event
        return ended


class OldPrimaryFence(StandbyLink):
    """A promoted standby's watch on its old primary: until stopped, it registers there as a standby of the new
    epoch, again and again, so that a primary that was only frozen (SIGSTOP, a stalled VM), or is started again with
    its original command, stands down the moment it runs, before a worker new to the run (epoch 0) lets it evolve a
    second copy; until the address answers as a standby (a follower leads no epoch, so there is nothing to
    fence)."""

    def __init__(self, config: DistributedConfig, epoch: int) -> None:
        super().__init__(config, lambda snapshot: None, epoch)
        self._thread = threading.Thread(target=self._watch, name="neatify-old-primary-fence", daemon=True)

    def start(self) -> None:
        """Watch in a thread of its own."""
        self._thread.start()

    def close(self) -> None:
        """Stop watching (within one tick)."""
        self.stop()
        self._thread.join(timeout=5.0)

    def _watch(self) -> None:
        try:
            while not self._stop.is_set():
                conn = self._connect()
                ended = None if conn is None else self._serve(conn)
                if isinstance(ended, StoodDown):  # fence on: the old primary may be started again, to lead
                    logger.warning("standby: the old primary at %s ran again and stood down on meeting epoch %d (%s)",
                                   self.config.standby_of, self.core.epoch, ended.reason)
                    self.core.primary_older = None  # this fence leads already: nothing to promote
                if isinstance(ended, Follower):  # it leads nothing: a standby promoted after it leads a higher epoch
                    logger.info("standby: the old primary's address %s now holds a standby; no longer fencing it",
                                self.config.standby_of)
                    return
                self._stop.wait(self._retry)
        except DistributedError as exc:  # refused for good (token, certificate): nothing more to try
            logger.warning("standby: stopped watching the old primary at %s: %s", self.config.standby_of, exc)

    def _failed(self, why: str) -> None:
        """An old primary that cannot be reached is the usual case (it is dead): no warning."""
        logger.debug("standby: old primary: %s at %s", why, self.config.standby_of)
