"""An exclusive lock on a checkpoint path, held while a distributed master leads the run saved there, so that a
second master given the same file (a restarted old primary, a resubmitted job) never evolves a second copy into it."""

from __future__ import annotations

import fcntl
from pathlib import Path
from typing import IO

from neatify.io.checkpoint import CheckpointError


class CheckpointLock:
    """``fcntl.flock`` on ``<checkpoint>.lock`` (a sibling file: the checkpoint itself is replaced on every save),
    holding a line that names the holder. Released when the process ends, however it ends."""

    def __init__(self, checkpoint: str | Path) -> None:
        self.checkpoint = Path(checkpoint)
        self.path = self.checkpoint.with_name(self.checkpoint.name + ".lock")
        self._file: IO[str] | None = None

    def acquire(self, holder: str) -> None:
        """Take the lock for ``holder`` (written into the lock file), or raise CheckpointError naming the path and
        the master that holds it."""
        if self._file is not None:
            return
        file = open(self.path, "a+")
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.seek(0)
            other = file.read().strip() or "a master that named no one"
            file.close()
            raise CheckpointError(f"{self.checkpoint}: another master leads the run saved here ({other} holds "
                                  f"{self.path}); refusing to lead a second copy of it") from None
        file.truncate(0)
        file.write(holder + "\n")
        file.flush()
        self._file = file

    def release(self) -> None:
        """Let the lock go (idempotent); the file stays, naming the last holder."""
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None
