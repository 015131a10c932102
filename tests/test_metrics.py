"""The master's Prometheus metrics and the HTTP server behind them and the dashboard: a real master with a real
worker on 127.0.0.1, scraped over HTTP and parsed with prometheus_client's own parser; the token asked for."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import socket
import threading
from pathlib import Path

import pytest

from distributed_helpers import HOST, free_port, wait_until
from xor_task import xor_fitness

parser = pytest.importorskip("prometheus_client.parser", reason="prometheus-client is not installed (extra 'metrics')")

from neatify.distributed import WorkerNode  # noqa: E402
from neatify.distributed.core.scheduler import GenerationJob  # noqa: E402
from neatify.distributed.wire.messages import HeartbeatResponse  # noqa: E402
from neatify.distributed.io.dashboard import RunServers  # noqa: E402
from neatify.distributed.io.http import HttpServer, Response, authorized, listen_address  # noqa: E402
from neatify.distributed.io.metrics import METRICS  # noqa: E402
from neatify.distributed.io.watch import worker_rows  # noqa: E402
from test_http import get  # noqa: E402
from test_master_protocol import Net, genomes  # noqa: E402

DOCS = Path(__file__).resolve().parent.parent / "docs" / "distributed.md"
TOKEN = "s3cret-token"


def scrape(port: int, headers: dict[str, str] | None = None) -> dict[tuple[str, tuple], float]:
    """The samples of ``/metrics``: (name, sorted labels) -> value."""
    status, body, _ = get(port, "/metrics", headers)
    assert status == 200, body
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in parser.text_string_to_metric_families(body.decode()) for sample in family.samples}


class Worker:
    """A real ``WorkerNode`` evaluating XOR in a thread of this process."""

    def __init__(self, port: int, worker_id: str, token: str | None = None) -> None:
        self.node = WorkerNode(HOST, port, worker_id, xor_fitness, capacity=10, auth_token=token,
                               max_connect_attempts=20)
        self.thread = threading.Thread(target=self.node.start, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.node.stop()
        self.thread.join(10)


@pytest.fixture
def watched(master):
    """A master with metrics and dashboard on free ports and one worker, after two generations."""
    pop = master(pop_size=30)
    with RunServers(pop, pop.coordinator, metrics=(HOST, 0), dashboard=(HOST, 0)) as servers:
        assert servers.metrics is not servers.dashboard  # port 0 twice: two free ports
        worker = Worker(pop.port, "w1")
        try:
            for _ in range(2):
                pop.run_generation()
            yield pop, servers.metrics.port, servers.dashboard.port
        finally:
            worker.stop()


def test_metrics_show_the_run_and_its_worker(watched):
    pop, port, _ = watched
    samples = scrape(port)
    last = pop.history[-1]
    assert samples[("neatify_generation", ())] == 1
    assert samples[("neatify_best_fitness", ())] == pytest.approx(last.best_fitness)
    assert samples[("neatify_mean_fitness", ())] == pytest.approx(last.mean_fitness)
    assert samples[("neatify_species", ())] == len(pop.species)
    assert samples[("neatify_genomes_evaluated_total", ())] == last.evaluations == 60
    assert samples[("neatify_workers", ())] == 1
    assert samples[("neatify_workers_busy", ())] == 0
    assert samples[("neatify_genomes_per_second", ())] > 0
    assert samples[("neatify_batches_resent_total", ())] == 0
    assert samples[("neatify_sent_bytes_total", ())] == pop.coordinator.bytes_out > 0
    assert samples[("neatify_received_bytes_total", ())] == pop.coordinator.bytes_in > 0
    worker = (("worker", "w1"),)
    assert samples[("neatify_worker_batches_total", worker)] >= 6  # 30 genomes in batches of at most 10, twice
    assert samples[("neatify_worker_batches_resent_total", worker)] == 0
    assert samples[("neatify_worker_genomes_per_second", worker)] > 0


def test_two_masters_in_one_process_keep_their_own_metrics(master):
    """Each master has a registry of its own: the second one's workers never show in the first one's."""
    first, second = master(pop_size=10), master(pop_size=10)
    with RunServers(first, first.coordinator, metrics=(HOST, 0)) as one, \
            RunServers(second, second.coordinator, metrics=(HOST, 0)) as two:
        worker = Worker(second.port, "only-second")
        try:
            wait_until(lambda: second.coordinator.num_workers == 1, 10, "the worker to register")
            assert scrape(one.metrics.port)[("neatify_workers", ())] == 0
            assert scrape(two.metrics.port)[("neatify_workers", ())] == 1
            assert not any(labels for _, labels in scrape(one.metrics.port))
        finally:
            worker.stop()


def test_with_a_token_metrics_and_dashboard_ask_for_it_and_never_show_it(master):
    pop = master(pop_size=10, auth_token=TOKEN)
    port = free_port()  # one address for both: one server
    with RunServers(pop, pop.coordinator, metrics=(HOST, port), dashboard=(HOST, port), token=TOKEN) as servers:
        assert servers.metrics is servers.dashboard
        worker = Worker(pop.port, "w1", token=TOKEN)
        try:
            pop.run_generation()
            for path in ("/metrics", "/", "/api/state", "/api/champion.svg", "/dashboard.js"):
                status, _, headers = get(port, path)
                assert status == 401 and headers["WWW-Authenticate"].startswith("Basic"), path
                assert get(port, path, {"Authorization": "Bearer wrong"})[0] == 401, path
            assert scrape(port, {"Authorization": f"Bearer {TOKEN}"})[("neatify_workers", ())] == 1
            basic = base64.b64encode(f"anyone:{TOKEN}".encode()).decode()
            pages = [get(port, path, {"Authorization": f"Basic {basic}"}) for path in
                     ("/", "/api/state", "/api/champion.svg", "/dashboard.js")]
            assert [status for status, _, _ in pages] == [200] * 4
            for _, body, _ in pages:
                assert TOKEN.encode() not in body
            state = json.loads(pages[1][1])
            assert set(state["champion"]) == {"genome", "fitness"}  # a summary, not the genes
            assert "connections" not in pages[1][1].decode()
        finally:
            worker.stop()


def test_the_core_counts_each_workers_batches_and_those_resent_for_its_lateness():
    """On a fake clock: a worker silent past task_timeout has its batch re-sent (counted on it, and flagged late);
    the other reports every batch it got, counted too."""
    net = Net(task_timeout=2.0)
    stale, honest = net.connect("stale"), net.connect("honest")
    net.deliver(net.master.submit(GenerationJob(0, genomes(40)), 0.0))
    for now in (1.0, 2.0, 2.5):
        honest.answer_tasks(now)
        net.deliver(net.master.tick(now))
        for worker in (stale, honest):
            worker.say(HeartbeatResponse(now), now)
    assert net.run_until_done(2.5, silent=(stale,)).job.batches_resent == 1
    rows = {row["id"]: row for row in worker_rows(net.master.workers.values(), 2.5)}
    assert (rows["stale"]["resent"], rows["stale"]["reported"], rows["stale"]["late"]) == (1, 0, True)
    assert rows["honest"]["reported"] == len(honest.answered) >= 2
    assert (rows["honest"]["resent"], rows["honest"]["late"]) == (0, False)


def test_authorization_header_forms():
    basic = base64.b64encode(f"user:{TOKEN}".encode()).decode()
    assert authorized(None, None) and authorized("Bearer anything", "")
    assert authorized(f"Bearer {TOKEN}", TOKEN) and authorized(f"bearer  {TOKEN} ", TOKEN)
    assert authorized(f"Basic {basic}", TOKEN)
    for header in (None, "", TOKEN, f"Token {TOKEN}", f"Bearer {TOKEN}x", "Basic !!!notbase64",
                   "Basic " + base64.b64encode(TOKEN.encode()).decode(),  # no colon: no password at all
                   "Basic " + base64.b64encode(f"{TOKEN}:".encode()).decode()):  # the token as the user name
        assert not authorized(header, TOKEN), header


def test_the_server_answers_bad_requests_by_status():
    def answer(server: HttpServer, head: bytes) -> Response:
        return asyncio.run(server.respond(head))[0]

    server = HttpServer({"/here": lambda query: Response(200, repr(query).encode())})
    assert answer(server, b"GET /here?a=1&a=2 HTTP/1.1\r\nHost: x\r\n\r\n").body == b"{'a': ['1', '2']}"
    assert answer(server, b"GET /there HTTP/1.1\r\n\r\n").status == 404
    assert answer(server, b"POST /here HTTP/1.1\r\n\r\n").status == 405
    assert answer(server, b"nonsense\r\n\r\n").status == 400

    def broken(query):
        raise RuntimeError("page bug")

    async def broken_later(query):
        await asyncio.sleep(0)
        raise RuntimeError("page bug after a wait")

    async def later(query):
        await asyncio.sleep(0)
        return Response(200, b"waited\n")
    assert answer(HttpServer({"/": broken}), b"GET / HTTP/1.1\r\n\r\n").status == 500
    assert answer(HttpServer({"/": broken_later}), b"GET / HTTP/1.1\r\n\r\n").status == 500
    assert answer(HttpServer({"/": later}), b"GET / HTTP/1.1\r\n\r\n").body == b"waited\n"


def test_a_request_head_too_long_is_refused(master):
    pop = master(pop_size=10)
    with RunServers(pop, pop.coordinator, metrics=(HOST, 0)) as servers:
        with socket.create_connection((HOST, servers.metrics.port), timeout=10) as sock:
            sock.sendall(b"GET /metrics HTTP/1.1\r\nX-Long: " + b"a" * 10_000 + b"\r\n\r\n")
            assert sock.recv(100).startswith(b"HTTP/1.1 431 ")


def test_listen_addresses():
    assert listen_address("9100") == ("127.0.0.1", 9100)
    assert listen_address("0.0.0.0:9100") == ("0.0.0.0", 9100)
    assert listen_address("[::1]:0") == ("::1", 0)
    for bad in ("", "host:", "host:port", "70000"):
        with pytest.raises(ValueError, match=re.escape(repr(bad))):
            listen_address(bad)


def test_metric_names_follow_the_conventions_and_are_documented():
    docs = DOCS.read_text()
    for name, (kind, text) in METRICS.items():
        assert name.startswith("neatify_") and name.endswith("_total") == (kind == "counter"), name
        assert "_ms" not in name and "milli" not in name, name  # base units
        assert f"| `{name}` | {kind} |" in docs, f"{name} is not in docs/distributed.md's metrics table"
