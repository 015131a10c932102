"""Shared-secret authentication: the master sends a random nonce, the worker answers with an HMAC."""

from __future__ import annotations

import hashlib
import hmac
import os

NONCE_BYTES = 32


def new_nonce() -> bytes:
    """A fresh random challenge."""
    return os.urandom(NONCE_BYTES)


def proof(token: str, nonce: bytes, worker_id: int | str) -> bytes:
    """HMAC-SHA256 of the nonce and worker id under the shared token."""
    return hmac.new(token.encode(), nonce + str(worker_id).encode(), hashlib.sha256).digest()


def verify(token: str, nonce: bytes, worker_id: int | str, candidate: bytes) -> bool:
    """Whether ``candidate`` is the right proof (compared in constant time)."""
    return hmac.compare_digest(proof(token, nonce, worker_id), candidate)
