"""The live dashboard and the metrics of a run, served over HTTP: by the master from its own event loop
(``RunServers``), or on their own by ``neatify dashboard`` from a checkpoint or a running master's status port
(``serve_dashboard``).

The page (``dashboard_static/``: one HTML file, its script and style, no build step) polls ``/api/state`` about
once a second for what is new, and shows the champion from ``/api/champion.svg``. Neither hands out a genome's
genes nor the token. A number that is not finite (a mean fitness overflowing, say) is sent as null, as JSON has no
NaN or infinity, and the page draws around it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from neatify.distributed.errors import DistributedError
from neatify.distributed.config import parse_address
from neatify.distributed.io.http import MAX_CONNECTIONS, HttpServer, Response, Route
from neatify.distributed.io.master import SystemCoordinator, is_loopback
from neatify.distributed.io.metrics import metrics_route
from neatify.distributed.io.status import master_status
from neatify.distributed.io.watch import Champion, RunWatch, worker_rows
from neatify.io.checkpoint import Checkpoint
from neatify.population import Population

logger = logging.getLogger("neatify.distributed.io.dashboard")

STATIC_FILES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/dashboard.js": ("dashboard.js", "text/javascript; charset=utf-8"),
    "/dashboard.css": ("dashboard.css", "text/css; charset=utf-8"),
}
"""URL path -> (file under ``dashboard_static/``, media type) of the page's files."""
_START_TIMEOUT = 10.0
State = Callable[[int], Awaitable[dict[str, Any]]]
"""The dashboard's state with the history from a generation on (``/api/state?since=N``), awaited in the event
loop's thread."""


def dashboard_routes(state: State, champion: Callable[[], Champion | None]) -> dict[str, Route]:
    """The page, its state and its champion's picture."""
    root = resources.files("neatify.distributed.io") / "dashboard_static"
    routes: dict[str, Route] = {}
    for path, (name, kind) in STATIC_FILES.items():
        routes[path] = _fixed(Response(200, (root / name).read_bytes(), kind))

    async def api_state(query: Mapping[str, list[str]]) -> Response:
        return _json(await state(_since(query)))
    routes["/api/state"] = api_state
    routes["/api/champion.svg"] = lambda query: _picture(champion())
    return routes


def _fixed(response: Response) -> Route:
    return lambda query: response


def _since(query: Mapping[str, list[str]]) -> int:
    """The ``since`` parameter (0 when absent or not a number: the whole history)."""
    try:
        return int(query.get("since", ["0"])[0])
    except ValueError:
        return 0


def _json(state: dict[str, Any]) -> Response:
    try:
        text = json.dumps(state, allow_nan=False, default=float)
    except ValueError:  # a NaN or an infinity somewhere: rare, so only then is the state walked
        text = json.dumps(finite_or_null(state), allow_nan=False, default=float)
    return Response(200, text.encode(), "application/json")


def finite_or_null(value: Any) -> Any:
    """``value`` (plain data: dicts, lists, numbers, text) with every number that is not finite replaced by None."""
    if isinstance(value, dict):
        return {key: finite_or_null(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_null(item) for item in value]
    if isinstance(value, (str, bool, int)) or value is None:
        return value
    number = float(value)
    return number if math.isfinite(number) else None


def _picture(champion: Champion | None) -> Response:
    if champion is None:
        return Response(404, b"no champion yet\n")
    return Response(200, champion.svg.encode(), "image/svg+xml")


async def master_state(coordinator: SystemCoordinator, watch: RunWatch, since: int) -> dict[str, Any]:
    """A live master's state (read in its event loop's thread): status, workers, history, champion."""
    now = time.monotonic()
    protocol = coordinator.protocol
    champion = watch.champion
    return {"source": "master", "status": protocol.status(now).payload(),
            "workers": worker_rows(protocol.workers.values(), now), "history": watch.since(since),
            "champion": None if champion is None else champion.summary()}


class RunServers:
    """A master's metrics (``metrics``: ``(host, port)``) and dashboard (``dashboard``), served from its event loop
    (on one server when both name the same address, port 0 aside), asking for ``token`` if given, each serving at
    most ``max_connections`` at once; a ``RunWatch`` added to ``population`` records what they show. ``close()`` (or
    leaving a ``with`` block) stops them."""

    def __init__(self, population: Population, coordinator: SystemCoordinator,
                 metrics: tuple[str, int] | None = None, dashboard: tuple[str, int] | None = None,
                 token: str | None = None, max_connections: int = MAX_CONNECTIONS) -> None:
        self.watch = RunWatch()
        population.add_reporter(self.watch)
        self._loop = coordinator.loop
        self.metrics = None if metrics is None else HttpServer({"/metrics": metrics_route(coordinator, self.watch)},
                                                               token, max_connections)
        """The server of ``/metrics`` (None without ``metrics``)."""
        self.dashboard: HttpServer | None = None
        """The server of the dashboard's pages (None without ``dashboard``)."""
        if dashboard is not None:
            shared = self.metrics is not None and metrics == dashboard and dashboard[1] != 0
            self.dashboard = self.metrics if shared else HttpServer({}, token, max_connections)
            self.dashboard.routes.update(dashboard_routes(
                lambda since: master_state(coordinator, self.watch, since), lambda: self.watch.champion))
        self._servers = {id(server): (server, address) for server, address in
                         ((self.metrics, metrics), (self.dashboard, dashboard)) if server is not None}
        try:
            for server, address in self._servers.values():
                _check_address(address, token)
                asyncio.run_coroutine_threadsafe(server.start(*address), self._loop).result(_START_TIMEOUT)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Stop serving (idempotent)."""
        servers, self._servers = self._servers, {}
        for server, _ in servers.values():
            self._loop.call_soon_threadsafe(server.close)

    def __enter__(self) -> RunServers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _check_address(address: tuple[str, int], token: str | None) -> None:
    """Refuse to ask for the cluster's token off loopback (plain HTTP would carry it in clear); warn of an open
    page."""
    if token and not is_loopback(address[0]):
        raise ValueError(f"the dashboard/metrics on {address[0]}:{address[1]} would ask for the cluster's auth token "
                         f"over plain HTTP, in clear: serve them on 127.0.0.1 and reach them through an SSH tunnel")
    if not token and not is_loopback(address[0]):
        logger.warning("serving the dashboard/metrics on %s:%d without an auth token: anyone who can reach it sees "
                       "the run", *address)


def checkpoint_state(population: Population) -> State:
    """A checkpoint's dashboard: its history and champion, no workers (the run is not live)."""
    watch = RunWatch.from_population(population)
    status = {"generation": population.generation, "evaluating": False}
    champion = watch.champion

    async def state(since: int) -> dict[str, Any]:
        return {"source": "checkpoint", "status": status, "workers": None, "history": watch.since(since),
                "champion": None if champion is None else champion.summary()}
    return state


class StatusAsker:
    """A running master seen through its status port (over TLS trusting ``tls_ca`` if given): its status only (no
    fitness history or workers table), asked in a thread so that a slow or dead master never stalls the event
    loop, and once at a time however many pages poll (they share the answer)."""

    def __init__(self, host: str, port: int, token: str | None, tls_ca: str | None = None,
                 timeout: float = 5.0) -> None:
        self.host, self.port, self.token, self.tls_ca, self.timeout = host, port, token, tls_ca, timeout
        self._asking: asyncio.Future[tuple[dict[str, Any], str | None]] | None = None

    async def __call__(self, since: int) -> dict[str, Any]:
        if self._asking is None or self._asking.done():
            self._asking = asyncio.get_running_loop().run_in_executor(None, self.ask)
        status, error = await asyncio.shield(self._asking)
        return {"source": "status", "status": status, "error": error, "workers": None, "history": [],
                "champion": None}

    def ask(self) -> tuple[dict[str, Any], str | None]:
        """The master's status and None, or no status and why not (blocking: bounded by ``timeout``)."""
        try:
            return master_status(self.host, self.port, auth_token=self.token, tls_ca=self.tls_ca,
                                 timeout=self.timeout), None
        except (DistributedError, OSError) as exc:
            return {}, f"master at {self.host}:{self.port}: {exc}"


def source_routes(source: str, token: str | None, tls_ca: str | None = None,
                  status_timeout: float = 5.0) -> dict[str, Route]:
    """The dashboard of ``source``: a checkpoint file, or else ``HOST:PORT`` of a running master's status port
    (asked with ``status_timeout``)."""
    if Path(source).exists():
        population = Checkpoint.load_file(source)
        if not isinstance(population, Population):
            raise ValueError(f"{source} is a genome file, not a checkpoint of a run")
        champion = RunWatch.from_population(population).champion
        return dashboard_routes(checkpoint_state(population), lambda: champion)
    host, port = parse_address(source)
    return dashboard_routes(StatusAsker(host, port, token, tls_ca, status_timeout), lambda: None)


def serve_dashboard(source: str, address: tuple[str, int], token: str | None,
                    ready: Callable[[int], None] = lambda port: None, tls_ca: str | None = None,
                    max_connections: int = MAX_CONNECTIONS) -> None:
    """Serve the dashboard of ``source`` (``source_routes``) on ``address`` to at most ``max_connections`` at once
    until interrupted; ``ready`` is told the port once it listens."""
    routes = source_routes(source, token, tls_ca)
    _check_address(address, token)

    async def run() -> None:
        server = HttpServer(routes, token, max_connections)
        await server.start(*address)
        ready(server.port)
        assert server.server is not None
        await server.server.serve_forever()

    asyncio.run(run())
