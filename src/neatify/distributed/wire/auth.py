"""Mutual shared-secret authentication: each side proves the token with an HMAC over both sides' nonces.

A proof covers the prover's role, the protocol version, the worker's and the master's nonces and the
worker's canonical id, so it is worthless on another connection (fresh nonces) or in the other role.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from typing import Literal

import msgpack

NONCE_BYTES = 32
PROOF_BYTES = hashlib.sha256().digest_size
_DOMAIN = "neatify-distributed-registration"

Role = Literal["master", "worker", "status", "standby"]
"""Who proves: the master, a worker registering, a status client (``neatify status``) or a standby master
following the primary, never one for another."""

STATUS_CLIENT_ID = "status"
"""The id proofs of a status request are bound to (a status client is no worker and has none)."""
STANDBY_CLIENT_ID = "standby"
"""The id proofs of a standby's registration are bound to (a standby is no worker and has none)."""


def new_nonce() -> bytes:
    """A fresh random challenge."""
    return os.urandom(NONCE_BYTES)


def canonical_worker_id(worker_id: int | str) -> str:
    """The one form of a worker id the master identifies workers by (so ``7`` and ``"7"`` are one worker)."""
    return str(worker_id)


def proof(token: str, role: Role, version: int, worker_nonce: bytes, master_nonce: bytes,
          worker_id: int | str) -> bytes:
    """HMAC-SHA256 under the token of an unambiguous (msgpack) encoding of everything the proof is bound to."""
    message = msgpack.packb([_DOMAIN, role, version, worker_nonce, master_nonce, canonical_worker_id(worker_id)],
                            use_bin_type=True)
    return hmac.new(token.encode(), message, hashlib.sha256).digest()


def verify(candidate: bytes, token: str, role: Role, version: int, worker_nonce: bytes, master_nonce: bytes,
           worker_id: int | str) -> bool:
    """Whether ``candidate`` is the proof ``role`` must give (compared in constant time)."""
    return hmac.compare_digest(proof(token, role, version, worker_nonce, master_nonce, worker_id), candidate)


def answer_challenge(token: str, role: Role, version: int, client_nonce: bytes, master_nonce: bytes,
                     master_proof: bytes, client_id: int | str) -> bytes | None:
    """A client's (``role``'s) proof in answer to the master's challenge, or None when the master's own proof is
    wrong: a client proves nothing to a peer that has not proven it knows the token."""
    if not verify(master_proof, token, "master", version, client_nonce, master_nonce, client_id):
        return None
    return proof(token, role, version, client_nonce, master_nonce, client_id)
