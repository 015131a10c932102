"""The HTTP server behind the metrics and the dashboard: its bound on connections served at once, over real sockets
on 127.0.0.1 (every wait bounded), and helpers the other HTTP tests share."""

from __future__ import annotations

import asyncio
import re
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from distributed_helpers import HOST, ROOT, wait_until

from neatify.cli.main import build_parser
from neatify.distributed.io import http
from neatify.distributed.io.dashboard import RunServers
from neatify.distributed.io.http import (DRAIN_TIMEOUT, HEAD_BYTES, MAX_CONNECTIONS, READ_TIMEOUT, HttpServer,
                                         Response)
from neatify.distributed.io.status import master_status


def get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes, dict[str, str]]:
    """GET ``path`` from 127.0.0.1:``port``: (status, body, headers), an error status included."""
    request = urllib.request.Request(f"http://{HOST}:{port}{path}", headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.read(), dict(answer.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read(), dict(error.headers)


def read_to_end(sock: socket.socket) -> bytes:
    """Everything ``sock`` receives until the server closes it (each read bounded by the socket's timeout)."""
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


@contextmanager
def served(server: HttpServer) -> Iterator[int]:
    """``server`` listening on a free loopback port (yielded), from an event loop in a thread of its own."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(server.start(HOST, 0), loop).result(10)
        yield server.port
    finally:
        loop.call_soon_threadsafe(server.close)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def test_connections_past_the_bound_are_answered_503_and_the_master_goes_on(master, caplog):
    """Two connections held open (sending nothing) fill a bound of 2: a third, sending its request at once as a
    browser does, reads a 503 (its request is read and dropped, not left to reset the connection), the master's
    loop (its status port) goes on answering, and once one is let go the pages are served again."""
    pop = master(pop_size=10)
    with RunServers(pop, pop.coordinator, dashboard=(HOST, 0), max_connections=2) as servers:
        server = servers.dashboard
        held = [socket.create_connection((HOST, server.port), timeout=10) for _ in range(2)]
        try:
            wait_until(lambda: server.open == 2, 10, "the server to take both connections")
            for _ in range(3):
                with socket.create_connection((HOST, server.port), timeout=10) as extra:
                    extra.sendall(b"GET /api/state HTTP/1.1\r\nHost: x\r\n\r\n")
                    answer = read_to_end(extra)
                assert answer.startswith(b"HTTP/1.1 503 Service Unavailable\r\n") and b"Retry-After: 1" in answer
            assert (server.refused, server.open) == (3, 2)
            refusals = [record.getMessage() for record in caplog.records if "answered 503" in record.getMessage()]
            assert refusals == ["HTTP: 1 connection(s) answered 503 so far, 2 being served at once already "
                                "(--http-connections)"]  # once, not once a connection
            assert master_status(HOST, pop.port, timeout=10)["generation"] == -1  # the loop is not held up
            held.pop().close()
            wait_until(lambda: server.open == 1, 10, "the server to let the closed connection go")
            status, body, _ = get(server.port, "/api/state")
            assert status == 200 and body.startswith(b'{"source": "master"')
        finally:
            for sock in held:
                sock.close()


def test_a_refused_request_is_read_and_dropped_within_bounds(monkeypatch):
    """A request already sent when its connection is refused is read, so the client gets the 503 rather than a
    reset; that drain stops at HEAD_BYTES or DRAIN_TIMEOUT, and past ``max_connections`` drains a refusal is closed
    at once."""
    monkeypatch.setattr(http, "DRAIN_TIMEOUT", 30.0)
    server = HttpServer({"/": lambda query: Response(200, b"here\n")}, max_connections=1)
    with served(server) as port:
        held = socket.create_connection((HOST, port), timeout=10)
        wait_until(lambda: server.open == 1, 10, "the server to take the held connection")
        entered, gate = threading.Event(), threading.Event()
        server.server.get_loop().call_soon_threadsafe(lambda: (entered.set(), gate.wait(10)))
        assert entered.wait(10)  # the loop is held: the request is in before the server sees the connection
        with socket.create_connection((HOST, port), timeout=10) as browser:
            browser.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            gate.set()
            assert read_to_end(browser).startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
            assert server.draining == 1  # still open on the client's side: the server waits for its end
            with socket.create_connection((HOST, port), timeout=10) as extra:
                assert read_to_end(extra).startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
            assert (server.refused, server.draining) == (2, 1)  # closed at once: one drain at most
            browser.sendall(b"x" * 2 * HEAD_BYTES)
            wait_until(lambda: server.draining == 0, 10, "the drain to stop at HEAD_BYTES")
        monkeypatch.setattr(http, "DRAIN_TIMEOUT", 0.1)
        with socket.create_connection((HOST, port), timeout=10):
            wait_until(lambda: server.refused == 3 and server.draining == 0, 10, "the drain to time out")
        held.close()
        wait_until(lambda: server.open == 0, 10, "the server to let the held connection go")


def test_the_bound_counts_connections_being_served_not_those_served():
    server = HttpServer({"/": lambda query: Response(200, b"here\n")}, max_connections=1)
    with served(server) as port:
        for _ in range(5):
            assert get(port, "/")[:2] == (200, b"here\n")
            wait_until(lambda: server.open == 0, 10, "the server to be done with the connection")
    assert server.refused == 0
    with pytest.raises(ValueError, match="max_connections 0"):
        HttpServer({}, max_connections=0)


def test_the_cli_takes_the_bound(capsys):
    parser = build_parser()
    assert parser.parse_args(["dashboard", "run.json"]).http_connections == 64
    assert parser.parse_args(["dashboard", "run.json", "--http-connections", "3"]).http_connections == 3
    assert parser.parse_args(["master", "run.toml", "--http-connections", "5"]).http_connections == 5
    with pytest.raises(SystemExit):
        parser.parse_args(["dashboard", "run.json", "--http-connections", "0"])
    assert "must be at least 1" in capsys.readouterr().err


def test_the_docs_give_the_bounds_and_every_option(capsys):
    """docs/distributed.md states the server's bounds as the code sets them; docs/cli.md's usage of ``neatify
    dashboard`` names every option it takes, and that of ``neatify master`` its HTTP ones."""
    docs = (ROOT / "docs" / "distributed.md").read_text()
    assert f"a request head of {HEAD_BYTES // 1024} KiB sent within {READ_TIMEOUT:g} s" in docs
    assert f"`--http-connections` (default {MAX_CONNECTIONS})" in docs
    assert f"at most {HEAD_BYTES // 1024} KiB for at most\n{DRAIN_TIMEOUT:g} s" in docs
    usage = (ROOT / "docs" / "cli.md").read_text().split("```")[1]
    entries = {entry.split()[0]: entry for entry in re.split(r"\nneatify ", usage) if entry.strip()}
    with pytest.raises(SystemExit):
        build_parser().parse_args(["dashboard", "--help"])
    options = set(re.findall(r"^ +(?:-\w, )?(--[a-z][a-z-]+)", capsys.readouterr().out, re.M)) - {"--help", "--verbose", "--quiet"}
    assert options >= {"--address", "--http-connections"}
    assert [option for option in sorted(options) if option not in entries["dashboard"]] == []
    assert all(option in entries["master"] for option in ("--metrics", "--dashboard", "--http-connections"))
