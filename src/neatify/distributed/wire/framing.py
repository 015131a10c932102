"""The wire protocol's framing, pure bytes in and out (no socket): frames of msgpack plain data.

A frame is ``[4-byte unsigned big-endian length][1-byte message type][msgpack payload]`` where the
length counts the type byte plus the payload. Nothing received is ever unpickled: payloads are
msgpack maps of plain data, each decoded into its message class (``messages``), which checks it first.
"""

from __future__ import annotations

import struct
from typing import Any

import msgpack
import msgspec

from neatify.distributed.errors import ProtocolError
from neatify.distributed.wire.messages import MESSAGES, Message, MessageType

PROTOCOL_VERSION = 5
"""Sent in the registration; master and worker must agree (2: mutual authentication; 3: genes as packed records;
4: epochs and the hot standby; 5: a task's genomes and a report's fitness values as columns)."""

HANDSHAKE_FRAME_BYTES = 4096
"""Longest frame either side accepts before registration completes (``max_frame_bytes`` applies after)."""

_HEADER = struct.Struct(">IB")
_LENGTH = struct.Struct(">I")
_TLS_HANDSHAKE = b"\x16\x03"
"""How a TLS ClientHello record starts (record type 22, version 3.x)."""


def encode_frame(message: Message) -> bytes:
    """The frame of ``message`` (its ``payload`` map, written by msgspec)."""
    body = msgspec.msgpack.encode(message.payload())
    return _HEADER.pack(len(body) + 1, int(message.TYPE)) + body


def encode_raw(mtype: MessageType, payload: Any) -> bytes:
    """A frame of type ``mtype`` holding any plain data, valid or not (the tests' hostile frames use it)."""
    body = msgpack.packb(payload, use_bin_type=True)
    return _HEADER.pack(len(body) + 1, int(mtype)) + body


_BULK = {MessageType.TASK_ASSIGNMENT, MessageType.FITNESS_REPORT}
"""The only messages holding lists (activation names, error pairs); every other payload is a small flat map."""
_MAX_MAP_LEN = 11
"""No map of the protocol has more keys (but a TASK_ASSIGNMENT's ``context``, plain data of the fitness function's:
its maps are bounded like its lists)."""
_MAX_BIN_LEN = 64
"""Bytes fields are nonces and proofs (32 bytes), except the columns of a task or a report and a state snapshot."""
_LONG_BYTES = {MessageType.TASK_ASSIGNMENT, MessageType.FITNESS_REPORT, MessageType.STATE_SNAPSHOT}


def _unpack_limits(mtype: MessageType, size: int, max_items: int | None) -> dict[str, int]:
    """msgpack limits for a ``size``-byte payload of ``mtype``: no container or string larger than it may hold.

    msgpack's defaults (all ``size``) would let a frame of one-byte empty maps decode into ~60 times
    its size in Python objects; lists only appear in bulk messages, and there at most ``max_items``.
    Bytes fields are short but in a TASK_ASSIGNMENT and a FITNESS_REPORT, whose genomes and fitness values are
    columns of bytes (``columns``), and in a STATE_SNAPSHOT, whose state is one msgpack document (decoded
    by the standby alone, ``neatify.distributed.core.standby``).
    """
    items = 0 if mtype not in _BULK else size if max_items is None else min(size, max(2, max_items))
    long_bytes = mtype in _LONG_BYTES
    return {"max_str_len": size, "max_bin_len": size if long_bytes else _MAX_BIN_LEN, "max_array_len": items,
            "max_map_len": max(_MAX_MAP_LEN, items) if mtype is MessageType.TASK_ASSIGNMENT else _MAX_MAP_LEN,
            "max_ext_len": 0}


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
