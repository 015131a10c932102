"""The wire protocol: message types and frames of msgpack plain data, read and written over TCP.

A frame is ``[4-byte unsigned big-endian length][1-byte message type][msgpack payload]`` where the
length counts the type byte plus the payload. Nothing received is ever unpickled: payloads are
msgpack maps of plain data, each decoded into its message class (``messages``), which checks it first.
"""

from __future__ import annotations

import fcntl
import socket
import ssl
import struct
import termios
import threading
import time
from typing import Any

import msgpack

from neatify.distributed.errors import ConnectionClosed, ProtocolError
from neatify.distributed.messages import MESSAGES, Message, MessageType

PROTOCOL_VERSION = 5
"""Sent in the registration; master and worker must agree (2: mutual authentication; 3: genes as packed records;
4: epochs and the hot standby; 5: a task's genomes and a report's fitness values as columns)."""

HANDSHAKE_FRAME_BYTES = 4096
"""Longest frame either side accepts before registration completes (``max_frame_bytes`` applies after)."""

_HEADER = struct.Struct(">IB")
_LENGTH = struct.Struct(">I")
_RECV_CHUNK = 1 << 16
_TLS_HANDSHAKE = b"\x16\x03"
"""How a TLS ClientHello record starts (record type 22, version 3.x)."""


def encode_frame(message: Message) -> bytes:
    """The frame of ``message``."""
    return encode_raw(message.TYPE, message.payload())


def encode_raw(mtype: MessageType, payload: Any) -> bytes:
    """A frame of type ``mtype`` holding any plain data, valid or not (the tests' hostile frames use it)."""
    body = msgpack.packb(payload, use_bin_type=True)
    return _HEADER.pack(len(body) + 1, int(mtype)) + body


_BULK = {MessageType.TASK_ASSIGNMENT, MessageType.FITNESS_REPORT}
"""The only messages holding lists (activation names, error pairs); every other payload is a small flat map."""
_MAX_MAP_LEN = 10
"""No map of the protocol has more keys."""
_MAX_BIN_LEN = 64
"""Bytes fields are nonces and proofs (32 bytes), except the columns of a task or a report and a state snapshot."""
_LONG_BYTES = {MessageType.TASK_ASSIGNMENT, MessageType.FITNESS_REPORT, MessageType.STATE_SNAPSHOT}


def _unpack_limits(mtype: MessageType, size: int, max_items: int | None) -> dict[str, int]:
    """msgpack limits for a ``size``-byte payload of ``mtype``: no container or string larger than it may hold.

    msgpack's defaults (all ``size``) would let a frame of one-byte empty maps decode into ~60 times
    its size in Python objects; lists only appear in bulk messages, and there at most ``max_items``.
    Bytes fields are short but in a TASK_ASSIGNMENT and a FITNESS_REPORT, whose genomes and fitness values are
    columns of bytes (``genome_wire``), and in a STATE_SNAPSHOT, whose state is one msgpack document (decoded
    by the standby alone, ``standby_protocol``).
    """
    items = 0 if mtype not in _BULK else size if max_items is None else min(size, max(2, max_items))
    long_bytes = mtype in _LONG_BYTES
    return {"max_str_len": size, "max_bin_len": size if long_bytes else _MAX_BIN_LEN, "max_array_len": items,
            "max_map_len": _MAX_MAP_LEN, "max_ext_len": 0}


def decode_message(mtype_code: int, body: bytes, max_items: int | None = None) -> Message:
    """The checked message of one frame's content.

    ``max_items`` bounds the length of every list in it (None: bounded by the frame size only).
    """
    try:
        mtype = MessageType(mtype_code)
    except ValueError:
        raise ProtocolError(f"unknown message type {mtype_code}") from None
    try:
        payload = msgpack.unpackb(body, raw=False, strict_map_key=True,
                                  **_unpack_limits(mtype, len(body), max_items))
    except Exception as exc:  # msgpack raises several unrelated exception types on bad input
        raise ProtocolError(f"{mtype.name} payload is not valid msgpack or beyond the limits of its type "
                            f"({type(exc).__name__}: {exc})") from None
    return MESSAGES[mtype].from_payload(payload)


class FrameDecoder:
    """Sans-IO framing: fed the bytes of one connection, returns its whole messages, checked.

    Frames are refused from their length field beyond ``frame_limit``: small until ``mark_registered``,
    so an unregistered peer costs little. Raises ProtocolError for a bad frame.
    """

    def __init__(self, max_frame_bytes: int) -> None:
        self.max_frame_bytes = max_frame_bytes
        self.frame_limit = min(HANDSHAKE_FRAME_BYTES, max_frame_bytes)
        self.max_items: int | None = None
        """Most items of any list in a received message (None: bounded by the frame size)."""
        self._buffer = bytearray()

    def mark_registered(self, max_items: int | None = None) -> None:
        """Registration is complete: accept frames up to ``max_frame_bytes``, lists up to ``max_items``."""
        self.frame_limit = self.max_frame_bytes
        self.max_items = max_items

    def buffer(self, data: bytes) -> None:
        """Add received bytes (``next_message`` takes them out a message at a time)."""
        self._buffer += data

    def next_message(self) -> Message | None:
        """The next whole message buffered, if any. Take them one at a time, acting on each before the
        next: a registration changes the frame limit for the frames behind it."""
        frame = self._take_frame()
        return None if frame is None else decode_message(*frame, self.max_items)

    def check_eof(self) -> None:
        """The peer closed: a ProtocolError if it did so in the middle of a frame."""
        if self._buffer:
            raise ProtocolError(f"connection closed in the middle of a frame ({len(self._buffer)} bytes)")

    def _take_frame(self) -> tuple[int, bytes] | None:
        if len(self._buffer) < _LENGTH.size:
            return None
        (length,) = _LENGTH.unpack_from(self._buffer)
        if length < 1:
            raise ProtocolError("frame length 0 (it must count the type byte)")
        if length > self.frame_limit:
            hint = " (it looks like a TLS handshake: the peer uses TLS, this side does not)" \
                if self._buffer.startswith(_TLS_HANDSHAKE) else ""
            raise ProtocolError(f"frame of {length} bytes refused (limit {self.frame_limit}){hint}")
        end = _LENGTH.size + length
        if len(self._buffer) < end:
            return None
        mtype_code = self._buffer[_LENGTH.size]
        body = bytes(self._buffer[_LENGTH.size + 1:end])
        del self._buffer[:end]
        return mtype_code, body


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
