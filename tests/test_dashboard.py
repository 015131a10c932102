"""The live dashboard: in a real headless Chromium during a real run (a ``neatify master --dashboard`` process and
a worker process on 127.0.0.1), from a checkpoint through ``neatify dashboard``, and its pieces (the history, the
champion's picture, the workers table) on their own."""

from __future__ import annotations

import asyncio
import json
import math
import re
import select
import socket
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from distributed_helpers import HOST, free_port, wait_until
from test_http import get, read_to_end, served
from xor_task import xor_fitness

from neatify import Checkpoint, Population
from neatify.distributed.core.peers import Worker
from neatify.distributed.core.scheduler import SentBatch
from neatify.distributed.io.dashboard import StatusAsker, checkpoint_state, dashboard_routes, finite_or_null, \
    source_routes
from neatify.distributed.io.http import HttpServer
from neatify.distributed.io.watch import RunWatch, worker_rows
from neatify.genome.genome import Genome
from neatify.reporting.svg import network_columns, network_svg

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
TOKEN = "dash-token"
RUN_FILE = """
[run]
num_inputs = 2
num_outputs = 1
generations = 400
seed = 5

[evolution]
population_size = 20
"""


def browser_or_skip():
    """Playwright's sync API, or a skip saying what is missing."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Debian's Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright package is not installed (extra 'browser')")
    return sync_playwright


@pytest.mark.slow
def test_the_page_follows_a_live_run_in_a_real_browser(procs, tmp_path):
    """The page loads (behind the token), the generation it shows goes up, and it lists the connected worker."""
    sync_playwright = browser_or_skip()
    (tmp_path / "run.toml").write_text(RUN_FILE)
    master = procs.start("master", "-m", "neatify", "master", "run.toml", "--port", "0", "--dashboard", "0",
                         "--metrics", "0", "--auth-token", TOKEN, "-q", cwd=tmp_path, split=True)
    wait_until(lambda: "dashboard on http://" in procs.log(master), 30, "the master to serve its dashboard")
    log = procs.log(master)
    port = re.search(r"master listening on 127\.0\.0\.1:(\d+)", log).group(1)
    url = re.search(r"dashboard on (http://\S+)", log).group(1)
    procs.worker(int(port), "w1", "--sleep", "0.02", "--token", TOKEN)  # 20 genomes: ~0.4 s a generation
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            errors: list[str] = []
            page = browser.new_context(http_credentials={"username": "me", "password": TOKEN}).new_page()
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(url, timeout=20_000)
            shown = "() => Number(document.getElementById('generation').textContent)"
            page.wait_for_function(f"({shown})() >= 1", timeout=30_000)
            first = page.evaluate(shown)
            page.wait_for_function(f"({shown})() > {first}", timeout=30_000)
            page.wait_for_selector('#workers tr[data-worker="w1"]', timeout=20_000)
            page.wait_for_function("document.getElementById('champion').naturalWidth > 0", timeout=20_000)
            assert page.locator("#fitness polyline").count() == 2
            assert page.locator("#species polygon").count() >= 1
            assert TOKEN not in page.content()
            assert errors == []
        finally:
            browser.close()
    scrape = urllib.request.Request(re.search(r"metrics on (http://\S+)", log).group(1) + "metrics",
                                    headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(scrape, timeout=10) as answer:
        text = answer.read().decode()
    assert "\nneatify_workers 1.0\n" in text and 'neatify_worker_batches_total{worker="w1"}' in text


@pytest.mark.slow
def test_neatify_dashboard_serves_a_checkpoint(procs, tmp_path):
    pop = Population(20, 2, 1, seed=3)
    for _ in range(3):
        pop.run_generation(xor_fitness)
    Checkpoint.save(pop, tmp_path / "run.json")
    server = procs.start("dashboard", "-m", "neatify", "dashboard", str(tmp_path / "run.json"), "--address",
                         f"{HOST}:0", cwd=tmp_path, split=True)
    wait_until(lambda: "dashboard on http://" in procs.log(server), 30, "the dashboard to listen")
    url = re.search(r"dashboard on (http://\S+)", procs.log(server)).group(1)
    with urllib.request.urlopen(url + "api/state", timeout=10) as answer:
        state = json.load(answer)
    assert state["source"] == "checkpoint" and state["workers"] is None
    assert [(row["best"], row["mean"]) for row in state["history"]] == \
        [(stats.best_fitness, stats.mean_fitness) for stats in pop.history]
    assert state["champion"]["genome"] == pop.best_genome.id
    with urllib.request.urlopen(url + "api/champion.svg", timeout=10) as answer:
        assert answer.headers["Content-Type"] == "image/svg+xml"
        assert answer.read().decode() == network_svg(pop.best_genome, f"genome {pop.best_genome.id}")
    with urllib.request.urlopen(url, timeout=10) as answer:
        assert b'<script src="dashboard.js">' in answer.read()


def test_a_checkpoint_history_has_every_generation_and_the_last_species():
    pop = Population(20, 2, 1, seed=4)
    for _ in range(4):
        pop.run_generation(xor_fitness)
    state = checkpoint_state(pop)
    rows = asyncio.run(state(0))["history"]
    assert [row["generation"] for row in rows] == [0, 1, 2, 3]
    assert [row["species"] for row in rows[:-1]] == [{}, {}, {}]
    assert rows[-1]["species"] == {str(s.id): len(s.members) for s in pop.species}
    assert [row["generation"] for row in asyncio.run(state(2))["history"]] == [2, 3]
    assert asyncio.run(state(9))["history"] == []


def test_the_watch_draws_the_champion_only_when_asked_and_once():
    pop = Population(20, 2, 1, seed=6)
    watch = RunWatch()
    pop.add_reporter(watch)
    seen = []
    for _ in range(6):
        pop.run_generation(xor_fitness)
        seen.append(watch.champion)
    assert seen[-1].genome is pop.best_genome and seen[-1]._svg is None  # nothing drawn while no one looks
    for before, after in zip(seen, seen[1:]):
        assert (before is after) == (before.genome is after.genome)
    assert seen[-1].svg == network_svg(pop.best_genome, f"genome {pop.best_genome.id}")
    assert seen[-1].svg is seen[-1].svg
    assert watch.last()["evaluations"] == 6 * 20


def test_a_running_master_seen_through_its_status_port(master):
    pop = master(pop_size=10)
    state = asyncio.run(StatusAsker(HOST, pop.port, None)(0))
    assert state["source"] == "status" and state["error"] is None
    assert state["status"]["workers"] == 0 and state["status"]["generation"] == -1
    port = free_port()
    gone = asyncio.run(StatusAsker(HOST, port, None, timeout=2.0)(0))
    assert gone["status"] == {} and f"{HOST}:{port}" in gone["error"]
    assert set(source_routes(f"{HOST}:{pop.port}", None)) >= {"/", "/api/state", "/api/champion.svg"}


def test_a_tls_master_with_a_token_seen_through_its_status_port(master, tmp_path):
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    ca.issue_cert(HOST).private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "master.pem"))
    pop = master(pop_size=10, tls_cert=str(tmp_path / "master.pem"), auth_token=TOKEN)
    state = asyncio.run(StatusAsker(HOST, pop.port, TOKEN, str(tmp_path / "ca.pem"))(0))
    assert state["error"] is None and state["status"]["workers"] == 0
    refused = asyncio.run(StatusAsker(HOST, pop.port, "not-the-token", str(tmp_path / "ca.pem"))(0))
    assert refused["status"] == {} and "auth" in refused["error"]


def test_a_genome_file_is_no_dashboard_source(tmp_path):
    Checkpoint.export_genome_json(Population(4, 2, 1, seed=1).genomes[0], tmp_path / "g.json")
    with pytest.raises(ValueError, match="g.json is a genome file"):
        source_routes(str(tmp_path / "g.json"), None)


def test_the_network_is_drawn_in_layers_with_edges_coloured_by_sign():
    genome = Genome.from_dict({
        "id": 9, "num_inputs": 2, "num_outputs": 1, "fitness": 1.0,
        "nodes": [[2, "output", 0.0, "neat_sigmoid"], [3, "hidden", 0.0, "neat_sigmoid"],
                  [4, "hidden", 0.0, "neat_sigmoid"]],
        "connections": [[0, 0, 3, 1.5, True], [1, 3, 4, -0.5, True], [2, 4, 2, 2.0, True], [3, 1, 2, -1.0, True],
                        [4, 0, 2, 3.0, False], [5, 4, 3, 0.7, True]],
    })
    assert network_columns(genome) == [[0, 1], [3], [4], [2]]
    svg = network_svg(genome, "genome 9")
    assert svg.count("<circle") == 5 and "<title>genome 9</title>" in svg
    assert svg.count('stroke="#2f6fb5"') == 3 and svg.count('stroke="#c4403a"') == 2  # the disabled edge not drawn
    assert svg.count("stroke-dasharray") == 1  # 4 -> 3 runs backwards: recurrent


def test_the_workers_table_reads_rate_batches_and_lateness():
    worker = Worker(connection=None, worker_id="w7", capacity=8, speed=10.0, batches_done=4, resent=1)
    worker.batches.append(SentBatch(1, None, np.arange(5), np.arange(5), sent_at=100.0))
    on_time, late = worker_rows([worker], 100.4), worker_rows([worker], 102.0)
    assert on_time == [{"id": "w7", "capacity": 8, "rate": 10.0, "batches_out": 1, "reported": 4, "resent": 1,
                        "lateness": 0.0, "late": False}]
    assert late[0]["lateness"] == pytest.approx(1.5)  # 5 genomes at 10/s are due 0.5 s after the send
    worker.batches[0].timed_out = True
    assert worker_rows([worker], 102.0)[0]["late"]
    assert worker_rows([Worker(connection=None, worker_id="idle", capacity=1)], 5.0)[0]["lateness"] == 0.0


def test_the_token_is_never_asked_for_off_loopback():
    """Plain HTTP would carry the cluster's token in clear: with a token only loopback addresses are served."""
    from neatify.distributed.io.dashboard import _check_address

    with pytest.raises(ValueError, match="in clear"):
        _check_address(("0.0.0.0", 8787), "secret")
    _check_address(("127.0.0.1", 8787), "secret")
    _check_address(("::1", 8787), "secret")


def test_a_master_that_never_answers_does_not_stall_the_page():
    """``neatify dashboard HOST:PORT`` against a master that takes the connection and never replies: the page is
    served while the question waits, and once that master hangs up the state says it is unreachable."""
    with socket.create_server((HOST, 0)) as dead:
        dead.settimeout(10)
        where = f"{HOST}:{dead.getsockname()[1]}"
        with served(HttpServer(source_routes(where, None, status_timeout=60.0))) as port, \
                socket.create_connection((HOST, port), timeout=10) as asking:
            asking.sendall(b"GET /api/state HTTP/1.1\r\n\r\n")
            held, _ = dead.accept()  # the dashboard's question reached the master, which says nothing
            with held:
                status, page, _ = get(port, "/")
                assert status == 200 and b'<script src="dashboard.js">' in page
                assert select.select([asking], [], [], 0)[0] == []  # the state still waits for the master
            head, _, body = read_to_end(asking).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    state = json.loads(body)
    assert state["source"] == "status" and state["status"] == {} and state["error"].startswith(f"master at {where}: ")


def test_pages_polling_together_share_one_question_to_the_master():
    with socket.create_server((HOST, 0)) as dead:
        dead.settimeout(10)
        asker = StatusAsker(HOST, dead.getsockname()[1], None, timeout=60.0)

        async def two_pages() -> list[dict]:
            pages = [asyncio.ensure_future(asker(0)) for _ in range(2)]
            held, _ = await asyncio.get_running_loop().run_in_executor(None, dead.accept)
            dead.settimeout(0)
            with pytest.raises(BlockingIOError):  # no second connection: one question for both
                dead.accept()
            held.close()
            return await asyncio.gather(*pages)
        first, second = asyncio.run(two_pages())
    assert first == second and first["error"] is not None


def test_numbers_that_are_not_finite_are_served_as_null():
    """A mean fitness overflowing to infinity (JSON has none) is served as null, not as an error."""
    pop = Population(20, 2, 1, seed=3)

    def huge(genomes):
        for genome in genomes:
            genome.fitness = 1e308
    pop.run_generation(huge)  # the mean's sum overflows
    pop.run_generation(xor_fitness)
    assert math.isinf(pop.history[0].mean_fitness)
    with served(HttpServer(dashboard_routes(checkpoint_state(pop), lambda: None))) as port:
        status, body, _ = get(port, "/api/state")
    assert status == 200, body
    rows = json.loads(body)["history"]
    assert (rows[0]["best"], rows[0]["mean"]) == (1e308, None)
    assert (rows[1]["best"], rows[1]["mean"]) == (pop.history[1].best_fitness, pop.history[1].mean_fitness)


def test_finite_or_null_walks_plain_data():
    worker = Worker(connection=None, worker_id="w", capacity=1, speed=math.inf)
    state = {"workers": worker_rows([worker], 0.0), "champion": {"genome": 3, "fitness": np.float32("nan")},
             "history": [{"best": -math.inf, "mean": 0.5, "species": {"1": 4}}], "ok": True, "name": "x"}
    assert finite_or_null(state) == {
        "workers": [{"id": "w", "capacity": 1, "rate": None, "batches_out": 0, "reported": 0, "resent": 0,
                     "lateness": 0.0, "late": False}],
        "champion": {"genome": 3, "fitness": None}, "history": [{"best": None, "mean": 0.5, "species": {"1": 4}}],
        "ok": True, "name": "x"}


GAPPY_STATE = {
    "source": "master", "error": None, "champion": None,
    "status": {"generation": 4, "evaluating": True, "workers": 1, "busy": 1, "genomes_per_s": None, "uptime": None},
    "workers": [{"id": "w1", "capacity": 2, "rate": None, "batches_out": 1, "reported": 3, "resent": 0,
                 "lateness": None, "late": False}],
    "history": [{"generation": g, "best": best, "mean": mean, "evaluations": 10 * (g + 1), "species": {"1": 10}}
                for g, (best, mean) in enumerate([(1.0, 0.5), (2.0, 1.0), (2.5, math.nan), (3.0, 1.5),
                                                  (math.inf, 2.0)])],
}


@pytest.mark.slow
def test_the_page_draws_around_numbers_that_are_not_finite(tmp_path):
    """In a real Chromium: the state's nulls show as "-", break the fitness lines into runs, and raise nothing."""
    sync_playwright = browser_or_skip()

    async def state(since):
        return GAPPY_STATE
    with served(HttpServer(dashboard_routes(state, lambda: None))) as port, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            errors: list[str] = []
            page = browser.new_page()
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(f"http://{HOST}:{port}/", timeout=20_000)
            page.wait_for_selector('#workers tr[data-worker="w1"]', timeout=20_000)
            lines = page.eval_on_selector_all("#fitness polyline", "els => els.map(e => e.getAttribute('points'))")
            cells = page.eval_on_selector_all('#workers tr[data-worker="w1"] td', "els => els.map(e => e.textContent)")
            tiles = [page.text_content(f"#{name}") for name in ("rate", "uptime", "best", "error")]
        finally:
            browser.close()
    assert errors == []
    assert [len(points.split()) for points in lines] == [2, 2, 4]  # mean: gens 0-1 and 3-4; best: gens 0-3
    assert all(not re.search("NaN|Infinity", points) for points in lines)
    assert cells == ["w1", "-", "2", "1", "3", "0", "-"]
    assert tiles == ["-", "-", "-", ""]
