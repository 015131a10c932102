"""The wire protocol: message types and frames of msgpack plain data, read and written over TCP.

A frame is ``[4-byte unsigned big-endian length][1-byte message type][msgpack payload]`` where the
length counts the type byte plus the payload. Nothing received is ever unpickled: payloads are
msgpack maps of plain data, checked against their message type's schema (``schema.payload_problem``).
"""

from __future__ import annotations

import enum
import socket
import struct
import threading
import time
from typing import Any

import msgpack

from neatify.distributed.errors import ConnectionClosed, ProtocolError
from neatify.distributed.schema import payload_problem

PROTOCOL_VERSION = 1
"""Sent in the registration; master and worker must agree."""

_HEADER = struct.Struct(">IB")
_LENGTH = struct.Struct(">I")
_RECV_CHUNK = 1 << 16


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


def encode_frame(mtype: MessageType, payload: dict[str, Any]) -> bytes:
    """One frame: header plus the msgpack encoding of ``payload`` (plain data only)."""
    body = msgpack.packb(payload, use_bin_type=True)
    return _HEADER.pack(len(body) + 1, int(mtype)) + body


def decode_payload(mtype_code: int, body: bytes) -> tuple[MessageType, dict[str, Any]]:
    """The message type and schema-checked payload of one frame's content."""
    try:
        mtype = MessageType(mtype_code)
    except ValueError:
        raise ProtocolError(f"unknown message type {mtype_code}") from None
    try:
        payload = msgpack.unpackb(body, raw=False, strict_map_key=True)
    except Exception as exc:  # msgpack raises several unrelated exception types on bad input
        raise ProtocolError(f"{mtype.name} payload is not valid msgpack ({type(exc).__name__}: {exc})") from None
    problem = payload_problem(mtype.name, payload)
    if problem is not None:
        raise ProtocolError(problem)
    return mtype, payload


class FramedConnection:
    """A TCP socket speaking frames: thread-safe ``send``, buffered ``recv`` with a deadline."""

    def __init__(self, sock: socket.socket, max_frame_bytes: int, io_timeout: float = 1.0) -> None:
        self.sock = sock
        self.max_frame_bytes = max_frame_bytes
        sock.settimeout(io_timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buffer = bytearray()
        self._send_lock = threading.Lock()
        self._closed = threading.Event()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def send(self, mtype: MessageType, payload: dict[str, Any]) -> None:
        """Send one message; a timeout or socket error closes the connection and raises OSError."""
        frame = encode_frame(mtype, payload)
        with self._send_lock:
            try:
                self.sock.sendall(frame)
            except OSError:
                self.close()
                raise

    def recv(self, deadline: float | None = None) -> tuple[MessageType, dict[str, Any]] | None:
        """The next message, or None once ``deadline`` (time.monotonic) passes without a whole frame.

        Raises ConnectionClosed at EOF between frames, ProtocolError for a bad frame (too long,
        truncated by EOF, unknown type, undecodable or off-schema payload) and OSError on socket errors.
        """
        while True:
            frame = self._take_frame()
            if frame is not None:
                return decode_payload(*frame)
            if self.closed:
                raise ConnectionClosed("connection closed locally")
            if deadline is not None and time.monotonic() >= deadline:
                return None
            try:
                chunk = self.sock.recv(_RECV_CHUNK)
            except (socket.timeout, TimeoutError):
                continue
            if not chunk:
                if self._buffer:
                    raise ProtocolError(f"connection closed in the middle of a frame ({len(self._buffer)} bytes)")
                raise ConnectionClosed("connection closed by peer")
            self._buffer += chunk

    def _take_frame(self) -> tuple[int, bytes] | None:
        if len(self._buffer) < _LENGTH.size:
            return None
        (length,) = _LENGTH.unpack_from(self._buffer)
        if length < 1:
            raise ProtocolError("frame length 0 (it must count the type byte)")
        if length > self.max_frame_bytes:
            raise ProtocolError(f"frame of {length} bytes refused (limit {self.max_frame_bytes})")
        end = _LENGTH.size + length
        if len(self._buffer) < end:
            return None
        mtype_code = self._buffer[_LENGTH.size]
        body = bytes(self._buffer[_LENGTH.size + 1:end])
        del self._buffer[:end]
        return mtype_code, body

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
