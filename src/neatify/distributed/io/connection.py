"""A blocking TCP socket speaking the wire's frames: what the worker, the standby and ``neatify status`` use."""

from __future__ import annotations

import fcntl
import socket
import ssl
import struct
import termios
import threading
import time
from typing import Any

from neatify.distributed.errors import ConnectionClosed
from neatify.distributed.wire.framing import FrameDecoder, encode_frame
from neatify.distributed.wire.messages import Message

_RECV_CHUNK = 1 << 16
"""Bytes asked of one socket read."""


def unsent_bytes(sock: Any) -> int | None:
    """Bytes in the kernel's send queue not yet acknowledged by the peer (Linux TIOCOUTQ; None elsewhere)."""
    request = getattr(termios, "TIOCOUTQ", None)
    if request is None:
        return None
    try:
        return struct.unpack("i", fcntl.ioctl(sock.fileno(), request, b"\0\0\0\0"))[0]
    except (OSError, ValueError):
        return None


class FramedConnection:
    """A TCP socket speaking frames: thread-safe ``send``, buffered ``recv`` with a deadline.

    ``io_timeout`` is the tick of one blocking socket call. A send fails only when it makes no
    progress for ``stall_timeout`` seconds, so a big frame on a slow but moving link gets through.
    """

    def __init__(self, sock: socket.socket, max_frame_bytes: int, io_timeout: float = 1.0,
                 stall_timeout: float = 30.0) -> None:
        self.sock = sock
        self.stall_timeout = stall_timeout
        self.decoder = FrameDecoder(max_frame_bytes)
        self.io_timeout = io_timeout
        sock.settimeout(io_timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._send_lock = threading.Lock()
        self._closed = threading.Event()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def mark_registered(self, max_items: int | None = None) -> None:
        """Registration is complete: accept frames up to ``max_frame_bytes``, lists up to ``max_items``."""
        self.decoder.mark_registered(max_items)

    def start_tls(self, context: ssl.SSLContext, deadline: float, server_hostname: str | None = None) -> None:
        """Run the TLS handshake (server side without ``server_hostname``) before ``deadline``; raises OSError."""
        tls = context.wrap_socket(self.sock, server_side=server_hostname is None, server_hostname=server_hostname,
                                  do_handshake_on_connect=False)
        self.sock = tls
        if self.closed:  # close() raced with the wrapping and shut the old socket object
            tls.close()
            raise ConnectionClosed("connection closed locally")
        tls.settimeout(max(deadline - time.monotonic(), 1e-3))
        tls.do_handshake()  # the timeout bounds the whole handshake
        tls.settimeout(self.io_timeout)

    def send(self, message: Message) -> None:
        """Send one message; a stalled send or socket error closes the connection and raises OSError."""
        self.send_bytes(encode_frame(message))

    def send_bytes(self, frames: bytes) -> None:
        """Send whole frames already encoded (thread-safe; see ``send``)."""
        with self._send_lock:
            self._send_frame(frames)

    def read_some(self) -> bytes | None:
        """The bytes one socket read brings (None if none came within ``io_timeout``); ConnectionClosed at EOF."""
        if self.closed:
            raise ConnectionClosed("connection closed locally")
        try:
            chunk = self.sock.recv(_RECV_CHUNK)
        except (socket.timeout, TimeoutError):
            return None
        if not chunk:
            raise ConnectionClosed("connection closed by peer")
        return chunk

    def _send_frame(self, frame: bytes) -> None:
        """Called with the send lock held: write ``frame``, failing after ``stall_timeout`` without progress."""
        view = memoryview(frame)
        progress = time.monotonic()
        try:
            while view:
                try:
                    sent = self.sock.send(view)
                except (socket.timeout, TimeoutError):
                    if time.monotonic() - progress >= self.stall_timeout:
                        raise TimeoutError(f"send stalled for {time.monotonic() - progress:.1f}s with {len(view)} "
                                           f"of {len(frame)} bytes unsent") from None
                    continue
                view = view[sent:]
                progress = time.monotonic()
        except OSError:
            self.close()
            raise

    def recv(self, deadline: float | None = None) -> Message | None:
        """The next message, or None once ``deadline`` (time.monotonic) passes without a whole frame.

        Raises ConnectionClosed at EOF between frames, ProtocolError for a bad frame (too long, truncated
        by EOF, unknown type, undecodable payload or one off its message's fields) and OSError on socket errors.
        """
        while (message := self.decoder.next_message()) is None:
            if self.closed:
                raise ConnectionClosed("connection closed locally")
            if deadline is not None and time.monotonic() >= deadline:
                return None
            try:
                chunk = self.read_some()
            except ConnectionClosed:
                self.decoder.check_eof()
                raise
            if chunk is not None:
                self.decoder.buffer(chunk)
        return message

    def close(self) -> None:
        """Shut the socket down (waking any blocked reader) and close it; idempotent."""
        if self._closed.is_set():
            return
        self._closed.set()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
