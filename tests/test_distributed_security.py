"""Security of the master at the network edge: bounded decoding before registration, mutual auth, TLS."""

from __future__ import annotations

import json
import logging
import socket
import ssl
import struct
import time
from contextlib import closing
from dataclasses import replace
from pathlib import Path

import pytest

from distributed_helpers import HOST, Processes, closed_by_peer, comparable, free_port, local_state, wait_until
from neatify.distributed.wire import auth
from neatify.distributed.wire.messages import ErrorReport, Message, RegistrationAck, WorkerRegistration
from neatify.distributed.io.connection import FramedConnection
from neatify.distributed.wire.framing import PROTOCOL_VERSION

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]

TOKEN = "s3cret"
EDGE = dict(pop_size=30, seed=5, handshake_timeout=2.0)
"""The in-process masters of these tests (``master`` fixture): a short handshake timeout."""


def _peak_rss_mib(pid: int) -> float:
    """The process's peak resident memory (VmHWM) in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmHWM in /proc/{pid}/status")


def _empty_maps_registration(count: int) -> bytes:
    """A WORKER_REGISTRATION frame whose payload is a msgpack array of ``count`` empty maps (1 byte each)."""
    body = b"\xdd" + struct.pack(">I", count) + b"\x80" * count
    return struct.pack(">IB", len(body) + 1, 1) + body


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc to read peak memory")
def test_unauthenticated_flood_frame_is_refused_unread_and_the_master_serves_on(tmp_path):
    """32 MiB of empty maps before authenticating: closed at once, peak memory flat, a real worker gets work."""
    port, out = free_port(), tmp_path / "final.json"
    with Processes(tmp_path) as procs:
        master = procs.start("master", "tests/distributed_helpers.py", "master", "--port", str(port), "--token", TOKEN,
                             "--pop-size", "30", "--seed", "4", "--generations", "1", "--out", str(out))

        def listening() -> bool:
            try:
                socket.create_connection((HOST, port), timeout=1).close()
            except OSError:
                return False
            return True

        wait_until(listening, 30, "the master to listen")
        before = _peak_rss_mib(master.pid)
        with socket.create_connection((HOST, port), timeout=5) as sock:
            try:
                sock.sendall(_empty_maps_registration(32 * 1024 * 1024))
            except (BrokenPipeError, ConnectionResetError):
                pass  # the master hung up mid-send: what we want
            assert closed_by_peer(sock, 30)
        growth = _peak_rss_mib(master.pid) - before
        print(f"master peak RSS {before:.0f} MiB before the flood frame, +{growth:.0f} MiB after")
        assert growth < 100, f"the master's peak memory grew by {growth:.0f} MiB"
        worker = procs.worker(port, "real", "--token", TOKEN)
        assert master.wait(30) == 0, procs.log(master)
        assert worker.wait(10) == 0
    assert json.loads(out.read_text()) == local_state(30, 4, 1)
    assert "refused (limit 4096)" in procs.log(master)


def _connect(port: int) -> closing[FramedConnection]:
    return closing(FramedConnection(socket.create_connection((HOST, port), timeout=5), 4096))


def _hello(worker_id: int | str, nonce: bytes | None = None) -> WorkerRegistration:
    return WorkerRegistration(PROTOCOL_VERSION, worker_id, 1, nonce=nonce or auth.new_nonce())


def _challenge(conn: FramedConnection, hello: WorkerRegistration) -> RegistrationAck:
    """Send a registration; the master's challenge (nonce and proof)."""
    conn.send(hello)
    reply = conn.recv(time.monotonic() + 5)
    assert isinstance(reply, RegistrationAck) and reply.status == "challenge", reply
    return reply


def _answer(conn: FramedConnection, hello: WorkerRegistration, proof: bytes) -> Message | None:
    conn.send(replace(hello, proof=proof))
    return conn.recv(time.monotonic() + 5)


def _refused_auth(message: Message | None) -> bool:
    return isinstance(message, ErrorReport) and message.code == "auth" and message.fatal


def test_mutual_proofs_cannot_be_replayed_on_another_connection_or_reflected(master):
    pop = master(**EDGE, auth_token=TOKEN)
    hello = _hello("w")
    with _connect(pop.port) as first:
        challenge = _challenge(first, hello)
        assert auth.verify(challenge.proof, TOKEN, "master", PROTOCOL_VERSION, hello.nonce, challenge.nonce, "w")
        recorded = auth.proof(TOKEN, "worker", PROTOCOL_VERSION, hello.nonce, challenge.nonce, "w")
        reply = _answer(first, hello, recorded)  # the legitimate session an eavesdropper records
        assert isinstance(reply, RegistrationAck) and reply.status == "accepted"
    wait_until(lambda: pop.coordinator.num_workers == 0, 10, "the recorded worker to be gone")
    with _connect(pop.port) as replay:  # the same registration and proof on a new connection
        _challenge(replay, hello)
        assert _refused_auth(_answer(replay, hello, recorded))
    with _connect(pop.port) as reflect:  # the master's own proof handed back as the worker's
        challenge = _challenge(reflect, hello)
        assert _refused_auth(_answer(reflect, hello, challenge.proof))
    assert pop.coordinator.num_workers == 0


def test_rogue_endpoint_gets_nothing_a_real_master_accepts(master, tmp_path):
    """The v1 relay: a rogue the victim dials gets a challenge from the real master and forwards it."""
    pop = master(**EDGE, auth_token=TOKEN)
    with socket.socket() as rogue, Processes(tmp_path) as procs:
        rogue.bind((HOST, 0))
        rogue.listen(1)
        rogue.settimeout(20)
        rogue_port = rogue.getsockname()[1]
        victim = procs.worker(rogue_port, "victim", "--token", TOKEN, "--max-connect-attempts", "2")
        with closing(FramedConnection(rogue.accept()[0], 4096)) as to_victim:
            first_hello = to_victim.recv(time.monotonic() + 10)
            assert isinstance(first_hello, WorkerRegistration)
        with _connect(pop.port) as to_master:  # what the real master proves for the victim's first nonce
            stale = _challenge(to_master, first_hello)
        with closing(FramedConnection(rogue.accept()[0], 4096)) as to_victim:  # the victim retries
            hello = to_victim.recv(time.monotonic() + 10)
            assert isinstance(hello, WorkerRegistration) and hello.nonce != first_hello.nonce
            to_victim.send(stale)
            assert _refused_auth(to_victim.recv(time.monotonic() + 10))  # never a proof
        assert victim.wait(20) == 1
        assert f"master at 127.0.0.1:{rogue_port} could not prove it knows the auth token" in procs.log(victim)
        with _connect(pop.port) as to_master:  # replaying what it holds to the real master gets nowhere
            _challenge(to_master, hello)
            assert _refused_auth(_answer(to_master, hello, stale.proof))
    assert pop.coordinator.num_workers == 0


def test_worker_ids_7_and_str_7_are_one_worker(master, caplog):
    pop = master(**EDGE)
    with _connect(pop.port) as first, _connect(pop.port) as second:
        first.send(_hello(7))
        assert first.recv(time.monotonic() + 5).status == "accepted"
        second.send(_hello("7"))
        reply = second.recv(time.monotonic() + 5)
        assert isinstance(reply, ErrorReport) and reply.code == "busy"
        assert reply.message == "worker id 7 is already connected"
        assert pop.coordinator.num_workers == 1


def test_worker_with_a_token_refuses_a_master_without_one(master, tmp_path):
    pop = master(**EDGE)
    with Processes(tmp_path) as procs:
        worker = procs.worker(pop.port, "careful", "--token", TOKEN, "--max-connect-attempts", "1")
        assert worker.wait(20) == 1
        assert (f"master at 127.0.0.1:{pop.port} accepted this worker without proving it knows the auth token"
                in procs.log(worker))
    wait_until(lambda: pop.coordinator.num_workers == 0, 10, "the master to drop the worker")


@pytest.fixture
def certificates(tmp_path):
    """A throwaway CA, a master certificate for 127.0.0.1 signed by it, and an unrelated CA (PEM paths)."""
    trustme = pytest.importorskip("trustme")
    ca, stranger = trustme.CA(), trustme.CA()
    paths = {name: tmp_path / f"{name}.pem" for name in ("ca", "master", "stranger")}
    ca.cert_pem.write_to_path(str(paths["ca"]))
    ca.issue_cert(HOST).private_key_and_cert_chain_pem.write_to_path(str(paths["master"]))
    stranger.cert_pem.write_to_path(str(paths["stranger"]))
    return {name: str(path) for name, path in paths.items()}


def test_tls_run_matches_a_local_run(master, certificates, tmp_path):
    pop = master(**EDGE, tls_cert=certificates["master"], auth_token=TOKEN)
    with Processes(tmp_path) as procs:
        worker = procs.worker(pop.port, "tls", "--tls-ca", certificates["ca"], "--token", TOKEN)
        for _ in range(2):
            pop.run_generation(lambda genomes: None)
        assert comparable(pop.state_dict()) == local_state(30, 5, 2)
        pop.shutdown()
        assert worker.wait(10) == 0


def test_a_registration_riding_with_the_last_tls_handshake_record_is_answered(master, certificates):
    """A TLS 1.3 client may send its first frame right behind its Finished record, so the master's TLS layer
    hands that frame over before ``start_tls`` returns: it must wait for the connection, not be dropped (it
    was, about one connection in five: the peer then waited for an answer that never came)."""
    pop = master(**EDGE, tls_cert=certificates["master"], auth_token=TOKEN)
    context = ssl.create_default_context(cafile=certificates["ca"])
    for attempt in range(30):
        with socket.create_connection((HOST, pop.port), timeout=5) as raw, \
                context.wrap_socket(raw, server_hostname=HOST) as sock:
            conn = FramedConnection(sock, 1 << 20)
            conn.send(WorkerRegistration(PROTOCOL_VERSION, f"w{attempt}", 1, nonce=auth.new_nonce()))
            answer = conn.recv(deadline=time.monotonic() + 3)
            assert isinstance(answer, RegistrationAck) and answer.status == "challenge", (attempt, answer)


def test_tls_master_refuses_untrusting_and_plain_peers_and_serves_on(master, certificates, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="neatify.distributed")
    pop = master(**EDGE, tls_cert=certificates["master"])
    with Processes(tmp_path) as procs, socket.create_connection((HOST, pop.port), timeout=5) as stalled:
        wrong_ca = procs.worker(pop.port, "wrong-ca", "--tls-ca", certificates["stranger"])
        wrong_name = procs.worker(pop.port, "wrong-name", "--tls-ca", certificates["ca"], "--tls-server-name",
                                  "elsewhere.example")
        plain = procs.worker(pop.port, "plain", "--max-connect-attempts", "2")
        assert [w.wait(20) for w in (wrong_ca, wrong_name, plain)] == [1, 1, 1]
        for worker, reason in ((wrong_ca, "unable to get local issuer certificate"), (wrong_name, "elsewhere.example")):
            assert f"TLS certificate of the master at 127.0.0.1:{pop.port} is not trusted" in procs.log(worker)
            assert reason in procs.log(worker)
        assert "a master using TLS does this to plain peers: give tls_ca" in procs.log(plain)
        procs.worker(pop.port, "good", "--tls-ca", certificates["ca"])  # while `stalled` never starts its handshake
        pop.run_generation(lambda genomes: None)
        assert closed_by_peer(stalled)
    assert "TLS handshake failed" in caplog.text


def test_tls_worker_against_a_plain_master_is_named_in_the_log(master, certificates, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="neatify.distributed")
    pop = master(**EDGE)
    with Processes(tmp_path) as procs:
        worker = procs.worker(pop.port, "tls", "--tls-ca", certificates["ca"], "--max-connect-attempts", "1")
        assert worker.wait(20) == 1
    assert "looks like a TLS handshake: the peer uses TLS, this side does not" in caplog.text
