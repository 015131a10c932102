"""The master's side of registration: what a new connection is, and with an auth token the mutual proof.

A peer's first request names its role (a worker's, a status client's or a standby's request). Without a
token it may be served at once; with one, the master answers a challenge (its nonce and its proof of the
token) and serves the peer only once its answer, the same request plus its proof under its own role,
checks out. Serving it (admitting a worker, following by a standby, a status report) is the caller's.
"""

from __future__ import annotations

from dataclasses import replace

from neatify.distributed.core._state import Phase, Role
from neatify.distributed.core.actions import Action, Send
from neatify.distributed.core.peers import Challenge, Connection, Peers, Request, logger
from neatify.distributed.errors import ProtocolError
from neatify.distributed.wire import auth
from neatify.distributed.wire.framing import PROTOCOL_VERSION, encode_frame
from neatify.distributed.wire.messages import (
    ErrorReport, Message, RegistrationAck, StandbyRegistration, StatusRequest, WorkerRegistration,
)

_REQUEST: dict[Role, type[Request]] = {
    Role.WORKER: WorkerRegistration, Role.STATUS: StatusRequest, Role.STANDBY: StandbyRegistration,
}
"""The request of each role."""
_ROLE = {request: role for role, request in _REQUEST.items()}
_PROVER: dict[Role, auth.Role] = {Role.WORKER: "worker", Role.STATUS: "status", Role.STANDBY: "standby"}
"""The role each peer's proof is made under (a proof made under another role is worthless)."""


def _client_id(request: Request) -> str:
    """The name a request's proofs are bound to: a worker's own id, else the role's fixed client id."""
    if isinstance(request, WorkerRegistration):
        return auth.canonical_worker_id(request.worker_id)
    return auth.STATUS_CLIENT_ID if isinstance(request, StatusRequest) else auth.STANDBY_CLIENT_ID


def _auth_failure(role: Role, request: Request, worker_why: str, client_why: str) -> str:
    """The ERROR_REPORT of a failed authentication: a worker's names it, a status client's or standby's its role."""
    if role is Role.WORKER:
        return f"authentication failed for worker {_client_id(request)}: {worker_why}"
    return f"{role.value} refused: {client_why}"


class Registration:
    """Reads the requests of unregistered connections: refuses, challenges, or hands back one to serve."""

    def __init__(self, peers: Peers) -> None:
        self.peers = peers

    def on_message(self, connection: Connection, message: Message, standby: bool,
                   actions: list[Action]) -> Request | None:
        """The request to serve, once it may be (``connection``'s role tells which kind); None while it is
        challenged, or once refused. ``standby``: this master is one, and refuses workers (for now)."""
        state = connection.state
        if isinstance(message, ErrorReport):
            who = "standby" if state.role is Role.STANDBY else "worker"
            logger.warning("%s from %s refused this master: %s", who, connection.address, message.message)
            self.peers.close(connection, f"the {who} refused this master", actions)
            return None
        if state.role is None:
            role = _ROLE.get(type(message))  # type: ignore[arg-type]
            if role is None:
                raise ProtocolError(f"expected WORKER_REGISTRATION, got {message.TYPE.name}")
            state.claim(role)
            return self._first(connection, message, standby, actions)  # type: ignore[arg-type]
        expected = _REQUEST[state.role]
        if not isinstance(message, expected):
            raise ProtocolError(f"expected {expected.TYPE.name}, got {message.TYPE.name}")
        return self._answer(connection, message, actions)

    def _first(self, connection: Connection, request: Request, standby: bool, actions: list[Action]) -> Request | None:
        """A first request: refused (a standby taking no workers yet, another protocol version), served (no
        token), or challenged."""
        role = connection.state.role
        assert role is not None
        refusal = self._refusal(role, request, standby)
        if refusal is not None:
            self.peers.refuse(connection, *refusal, actions)
        elif not self.peers.config.auth_token:
            return request
        elif request.nonce is None:
            self.peers.refuse(connection, _auth_failure(role, request, "its registration has no nonce", "the request "
                                                        "has no nonce and this master requires the auth token"),
                              "auth", actions)
        else:
            self._challenge(connection, request, actions)
        return None

    def _refusal(self, role: Role, request: Request, standby: bool) -> tuple[str, str] | None:
        """Why a first request is refused before any proof, and the code, if it is."""
        if role is Role.WORKER and standby:
            return (f"this master on {self.peers.where} is a standby; it takes workers once its primary is gone",
                    "standby")
        if isinstance(request, StatusRequest) or request.protocol_version == PROTOCOL_VERSION:
            return None
        if role is Role.WORKER:
            return (f"protocol version mismatch: worker {_client_id(request)} speaks version "
                    f"{request.protocol_version}, master speaks {PROTOCOL_VERSION}", "version")
        return (f"protocol version mismatch: the standby speaks version {request.protocol_version}, this master "
                f"{PROTOCOL_VERSION}", "version")

    def _challenge(self, connection: Connection, request: Request, actions: list[Action]) -> None:
        """Answer a first request that carries a nonce with this master's nonce and proof of the token."""
        token = self.peers.config.auth_token
        assert token and request.nonce is not None
        connection.state.advance(Phase.CHALLENGED)
        nonce = auth.new_nonce()
        connection.challenge = Challenge(request, nonce)
        proof = auth.proof(token, "master", PROTOCOL_VERSION, request.nonce, nonce, _client_id(request))
        actions.append(Send(encode_frame(RegistrationAck("challenge", nonce=nonce, proof=proof)), connection.id))

    def _answer(self, connection: Connection, answer: Request, actions: list[Action]) -> Request | None:
        """The answer to the challenge: the request challenged, once the answer repeats it unchanged plus the
        proof of the peer's role over both nonces; else refused."""
        challenge, token, role = connection.challenge, self.peers.config.auth_token, connection.state.role
        assert challenge is not None and challenge.request.nonce is not None and token and role is not None
        request = challenge.request
        if replace(answer, proof=None) == request and auth.verify(
                answer.proof or b"", token, _PROVER[role], PROTOCOL_VERSION, request.nonce, challenge.nonce,
                _client_id(request)):
            return request
        self.peers.refuse(connection, _auth_failure(role, request, "wrong or missing auth token (or a proof not made "
                                                    "for this connection)", "wrong or missing auth token"),
                          "auth", actions)
        return None
