"""Discovery through a scheduler file on a shared filesystem (Slurm, PBS): the master writes where it
listens, workers started anywhere (even before it) read the file and reread it whenever they lose it.

The file is JSON, written atomically (a temporary file in the same folder, then ``os.replace``), so a
reader sees the old file or the new one, never half of one::

    {"address": "tcp://node17:5000", "host": "node17", "port": 5000, "epoch": 1,
     "protocol_version": 4, "pid": 4711}

``epoch`` is the writing master's: 1 for a master started fresh (or its checkpoint's); a standby that
takes over rewrites the file with the next one. A worker never goes back to a lower epoch than one it
has read or served.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from neatify.io.schema import is_int

_ANY_ADDRESS = ("", "0.0.0.0", "::")


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
    """Write ``info`` to ``path`` atomically (readers never see a partial file); raises OSError naming it."""
    path = Path(path)
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


def read_scheduler_file(path: str | Path) -> SchedulerInfo | None:
    """What ``path`` says, or None while there is no such file; ValueError naming the file and the problem
    for one that is not a scheduler file."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
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
