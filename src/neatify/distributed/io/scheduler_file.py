"""Discovery through a scheduler file on a shared filesystem (Slurm, PBS): the master writes where it
listens, workers started anywhere (even before it) read the file and reread it whenever they lose it.

The file is JSON, written atomically (a temporary file in the same folder, then ``os.replace``), so a
reader sees the old file or the new one, never half of one::

    {"address": "tcp://node17:5000", "host": "node17", "port": 5000, "epoch": 1,
     "protocol_version": 4, "pid": 4711}

``epoch`` is the writing master's: 1 for a master started fresh (or its checkpoint's); a standby that
takes over rewrites the file with the next one. A worker never goes back to a lower epoch than one it
has served (a file alone, which anyone who can write the folder may forge, never raises its epoch).

Reading is bounded: only a regular file of at most ``MAX_FILE_BYTES`` is read (a FIFO, a device such as
``/dev/zero`` or a directory is an error naming the path). A master that finds the file naming another
master of its epoch or a newer one warns, naming both: two masters must not share one scheduler file.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import stat
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from neatify.io.schema import is_int

logger = logging.getLogger("neatify.distributed.io.scheduler_file")

_ANY_ADDRESS = ("", "0.0.0.0", "::")

MAX_FILE_BYTES = 64 * 1024
"""Longest scheduler file read (one is about 150 bytes)."""


@dataclass(frozen=True)
class SchedulerInfo:
    """What a scheduler file says: where the master listens, its epoch, protocol version and process id."""

    host: str
    port: int
    epoch: int
    protocol_version: int
    pid: int

    @property
    def address(self) -> str:
        """``tcp://HOST:PORT`` (an IPv6 host in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"tcp://{host}:{self.port}"

    def to_json(self) -> dict[str, Any]:
        return {"address": self.address, **asdict(self)}


def advertised_host(listen_host: str) -> str:
    """The host workers should dial: the listening address, or this machine's name when it listens on all."""
    return socket.gethostname() if listen_host in _ANY_ADDRESS else listen_host


def write_scheduler_file(path: str | Path, info: SchedulerInfo) -> None:
    """Write ``info`` to ``path`` atomically (readers never see a partial file), warning when it named another
    master of this epoch or a newer one; raises OSError, or ValueError for a path that is no regular file."""
    path = Path(path)
    _warn_if_shared(path, info)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(info.to_json(), fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _warn_if_shared(path: Path, info: SchedulerInfo) -> None:
    """Warn when ``path`` names another master whose epoch is not older than ``info``'s (one that took over
    from it writes a newer epoch); a damaged file is simply replaced."""
    try:
        previous = read_scheduler_file(path)
    except _NotAFile:
        raise
    except ValueError:
        return
    if previous is None or previous.epoch < info.epoch or (previous.host, previous.port) == (info.host, info.port):
        return  # no file, a master this one takes over from, or this very address (bound now, so not another's)
    logger.warning("scheduler file %s already names master %s (epoch %d, pid %d): if it still runs, two masters "
                   "share this file and workers may leave it for this one; overwriting it with %s (epoch %d)",
                   path, previous.address, previous.epoch, previous.pid, info.address, info.epoch)


class _NotAFile(ValueError):
    """The scheduler file's path is a directory, a FIFO, a device...: no master writes such a thing."""


def _read_bounded(path: str | Path) -> str | None:
    """The text of the regular file ``path`` (None if there is none), read without blocking and at most
    ``MAX_FILE_BYTES``; ValueError naming the path otherwise."""
    try:  # O_NONBLOCK: opening a FIFO must not wait for a writer
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError:
        return None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = "a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "a device or socket"
            raise _NotAFile(f"scheduler file {path} is {kind}, not a regular file")
        chunks, size = [], 0
        while size <= MAX_FILE_BYTES and (chunk := os.read(fd, MAX_FILE_BYTES + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    if size > MAX_FILE_BYTES:
        raise ValueError(f"scheduler file {path}: larger than {MAX_FILE_BYTES} bytes, so not a scheduler file")
    return b"".join(chunks).decode("utf-8", errors="replace")


def read_scheduler_file(path: str | Path) -> SchedulerInfo | None:
    """What ``path`` says, or None while there is no such file; ValueError naming the file and the problem
    for one that is not a scheduler file (not a regular file, too long, not the expected JSON)."""
    text = _read_bounded(path)
    if text is None:
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"scheduler file {path}: not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"scheduler file {path}: expected a JSON object, got {type(data).__name__}")
    fields = {"host": str, "port": int, "epoch": int, "protocol_version": int, "pid": int}
    for name, kind in fields.items():
        value = data.get(name)
        if not (is_int(value) if kind is int else isinstance(value, kind)):
            raise ValueError(f"scheduler file {path}: {name!r} must be {kind.__name__}, got {value!r}")
    if not 0 < data["port"] < 65536 or data["epoch"] < 0:
        raise ValueError(f"scheduler file {path}: port {data['port']} or epoch {data['epoch']} out of range")
    return SchedulerInfo(**{name: data[name] for name in fields})


def remove_scheduler_file(path: str | Path, info: SchedulerInfo) -> bool:
    """Remove ``path`` if it still says ``info`` (a newer master's file is left alone); whether it did."""
    try:
        if read_scheduler_file(path) != info:
            return False
        Path(path).unlink()
    except (OSError, ValueError):
        return False
    return True
