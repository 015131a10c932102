"""Ask a running master how it is doing (``neatify status``): the numbers an autoscaler acts on.

A status client sends STATUS_REQUEST on a fresh connection instead of registering, so it never
counts as a worker; the master answers one STATUS_REPORT and hangs up. With an auth token both
sides prove it first, exactly as in a worker's registration (the client under role ``"status"``).
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any

from neatify.distributed.io import tls
from neatify.distributed.wire import auth
from neatify.distributed.config import AUTH_TOKEN_ENV
from neatify.distributed.errors import AuthenticationError, DistributedError, ProtocolError
from neatify.distributed.wire.messages import ErrorReport, RegistrationAck, StatusReport, StatusRequest
from neatify.distributed.io.connection import FramedConnection
from neatify.distributed.wire.framing import HANDSHAKE_FRAME_BYTES, PROTOCOL_VERSION

STATUS_FIELDS = {
    "workers": "workers registered",
    "busy": "workers evaluating a batch",
    "idle": "workers without a batch",
    "pending": "genomes of the current generation still without a fitness",
    "generation": "generation being evaluated, or the last one (-1: none yet)",
    "evaluating": "whether a generation is being evaluated",
    "genomes_per_s": "genomes per second of the last generation evaluated",
    "uptime": "seconds since the master started",
    "quarantined": "genomes given up on so far in the run: each failed max_genome_attempts times alone",
}
"""The fields of a STATUS_REPORT and what they mean."""


def master_status(host: str, port: int, auth_token: str | None = None, tls_ca: str | None = None,
                  tls_server_name: str | None = None, timeout: float = 10.0) -> dict[str, Any]:
    """The master's STATUS_REPORT (see ``STATUS_FIELDS``), asked on a connection of its own.

    Raises OSError when the master cannot be reached, AuthenticationError when it refuses the token
    (or cannot prove it knows ours), DistributedError for anything else it answers.
    """
    token = auth_token if auth_token is not None else (os.environ.get(AUTH_TOKEN_ENV) or None)
    deadline = time.monotonic() + timeout
    where = f"{host}:{port}"
    conn = FramedConnection(socket.create_connection((host, port), timeout=timeout), HANDSHAKE_FRAME_BYTES)
    try:
        if tls_ca is not None:
            conn.start_tls(tls.client_context(tls_ca), deadline, tls_server_name or host)
        return _exchange(conn, token, where, deadline)
    finally:
        conn.close()


def _exchange(conn: FramedConnection, token: str | None, where: str, deadline: float) -> dict[str, Any]:
    """Request the status, answering the master's challenge when it sends one."""
    nonce = auth.new_nonce()
    conn.send(StatusRequest(nonce=nonce))
    master_proven = False
    while True:
        message = conn.recv(deadline)
        if message is None:
            raise DistributedError(f"master at {where} did not answer the status request in time")
        if isinstance(message, StatusReport):
            if token and not master_proven:
                raise AuthenticationError(f"master at {where} answered without proving it knows the auth token "
                                          "(it has none set, or it is not the real master)")
            return message.payload()
        if isinstance(message, ErrorReport):
            error = AuthenticationError if message.code == "auth" else DistributedError
            raise error(f"master at {where} refused the status request: {message.message}")
        if not isinstance(message, RegistrationAck) or message.status != "challenge" or master_proven \
                or message.nonce is None or message.proof is None:
            raise ProtocolError(f"unexpected {message.TYPE.name} from the master at {where} in answer to a status "
                                "request")
        if not token:
            raise AuthenticationError(f"master at {where} requires an auth token (give one or set "
                                      f"${AUTH_TOKEN_ENV})")
        answer = auth.answer_challenge(token, "status", PROTOCOL_VERSION, nonce, message.nonce, message.proof,
                                       auth.STATUS_CLIENT_ID)
        if answer is None:
            raise AuthenticationError(f"master at {where} could not prove it knows the auth token (the tokens "
                                      "differ, or it is not the real master)")
        master_proven = True
        conn.send(StatusRequest(nonce=nonce, proof=answer))
