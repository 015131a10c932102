"""A tiny HTTP/1.1 server on an asyncio loop: a master's metrics and dashboard, served by its own event loop
(no thread of their own to contend with the master's).

GET only, one request per connection (``Connection: close``), the request head bounded in bytes and in time, and
the connections served at once bounded in number (more are answered 503 at once; what such a client sent is read and
dropped, bounded in bytes and time, before closing, since closing with it unread would reset the connection).
With a token every request must carry it: ``Authorization: Bearer TOKEN``, or Basic with the token as the
password (any user name, so a browser's login prompt works), compared in constant time.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

logger = logging.getLogger("neatify.distributed.io.http")

HEAD_BYTES = 8192
"""Longest request head (request line and headers) read; a longer one is answered 431."""
READ_TIMEOUT = 10.0
"""Seconds a client has to send its request head."""
MAX_CONNECTIONS = 64
"""Connections served at once by default; one more is answered 503 (its request read and dropped, not served)."""
DRAIN_TIMEOUT = 1.0
"""Seconds a connection answered 503 is given to finish sending (at most ``HEAD_BYTES``) and close before it is
closed anyway."""
_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed",
            431: "Request Header Fields Too Large", 500: "Internal Server Error", 503: "Service Unavailable"}


@dataclass(frozen=True)
class Response:
    """What a route answers: a status, a body and its media type."""

    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"


Route = Callable[[Mapping[str, list[str]]], Response | Awaitable[Response]]
"""A page: called with the request's query parameters, in the event loop's thread; a coroutine function when it
has to wait (it must not block the loop)."""
_BUSY = Response(503, b"too many connections at once; try again\n")


def listen_address(text: str) -> tuple[str, int]:
    """Where to serve: ``HOST:PORT`` or a bare ``PORT`` (on 127.0.0.1, this machine only; port 0 picks a free
    one); ValueError naming ``text`` otherwise."""
    host, _, port = text.rpartition(":")
    try:
        number = int(port)
    except ValueError:
        raise ValueError(f"address {text!r}: expected HOST:PORT or PORT") from None
    if not 0 <= number <= 65535:
        raise ValueError(f"address {text!r}: port {number} is not in 0..65535")
    return host.strip("[]") or "127.0.0.1", number


def authorized(header: str | None, token: str | None) -> bool:
    """Whether an ``Authorization`` header carries ``token`` (always, without a token)."""
    if not token:
        return True
    scheme, _, value = (header or "").strip().partition(" ")
    if scheme.lower() == "bearer":
        given = value.strip()
    elif scheme.lower() == "basic":
        try:
            given = base64.b64decode(value.strip(), validate=True).decode().partition(":")[2]
        except (binascii.Error, UnicodeDecodeError):
            return False
    else:
        return False
    return hmac.compare_digest(given.encode(), token.encode())


class HttpServer:
    """Serves ``routes`` (path -> page) over HTTP from the running event loop, asking for ``token`` if set, to at
    most ``max_connections`` connections at once."""

    def __init__(self, routes: Mapping[str, Route], token: str | None = None,
                 max_connections: int = MAX_CONNECTIONS) -> None:
        if max_connections < 1:
            raise ValueError(f"max_connections {max_connections}: expected at least 1")
        self.routes = dict(routes)
        self.token = token
        self.max_connections = max_connections
        self.open = 0
        """Connections being served now (read in the event loop's thread)."""
        self.refused = 0
        """Connections answered 503 so far because ``max_connections`` were open."""
        self.draining = 0
        """Connections answered 503 whose request is being read and dropped now (at most ``max_connections``)."""
        self.server: asyncio.base_events.Server | None = None

    async def start(self, host: str, port: int) -> None:
        """Listen on ``host:port`` (port 0: any free one, see ``port``)."""
        self.server = await asyncio.start_server(self._serve, host, port, limit=HEAD_BYTES, reuse_address=True)

    @property
    def port(self) -> int:
        """The port bound."""
        assert self.server is not None, "server not started"
        return self.server.sockets[0].getsockname()[1]

    def close(self) -> None:
        """Stop listening (in the event loop's thread)."""
        if self.server is not None:
            self.server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.open >= self.max_connections:
            await self._refuse(reader, writer)
            return
        self.open += 1
        try:
            await self._answer(reader, writer)
        finally:
            self.open -= 1

    async def _refuse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Answer 503 and half-close, then drop what the client sends (bounded) before closing: a request left
        unread would turn the close into a reset that loses the answer. Past ``max_connections`` such drains at
        once, the connection is closed at once instead."""
        self.refused += 1
        if self.refused == 1 or self.refused % 1000 == 0:  # logged, but not once a connection
            logger.warning("HTTP: %d connection(s) answered 503 so far, %d being served at once already "
                           "(--http-connections)", self.refused, self.max_connections)
        writer.write(_encode(_BUSY, {"Retry-After": "1"}))
        if self.draining >= self.max_connections:
            writer.close()
            return
        self.draining += 1
        try:
            writer.write_eof()
            await asyncio.wait_for(_discard(reader, HEAD_BYTES), DRAIN_TIMEOUT)
        except (asyncio.TimeoutError, ConnectionError):
            pass
        finally:
            self.draining -= 1
            writer.close()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT)
            response, extra = await self.respond(head)
        except asyncio.LimitOverrunError:
            response, extra = Response(431, b"request head too long\n"), {}
        except (asyncio.IncompleteReadError, asyncio.TimeoutError, ConnectionError):
            writer.close()
            return
        writer.write(_encode(response, extra))
        try:
            await asyncio.wait_for(writer.drain(), READ_TIMEOUT)
        except (asyncio.TimeoutError, ConnectionError):
            pass
        writer.close()

    async def respond(self, head: bytes) -> tuple[Response, dict[str, str]]:
        """The response to one request head, with any extra headers it needs."""
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            return Response(400, b"bad request line\n"), {}
        method, target, _ = parts
        headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
        if not authorized(headers.get("authorization"), self.token):
            return Response(401, b"this master asks for its auth token\n"), \
                {"WWW-Authenticate": 'Basic realm="neatify", charset="UTF-8"'}
        if method != "GET":
            return Response(405, f"method {method} not allowed\n".encode()), {"Allow": "GET"}
        url = urlsplit(target)
        route = self.routes.get(url.path)
        if route is None:
            return Response(404, f"no page {url.path}\n".encode()), {}
        try:
            answer = route(parse_qs(url.query))
            return (await answer if inspect.isawaitable(answer) else answer), {}
        except Exception:  # a page's failure is logged and answered, the server goes on
            logger.exception("HTTP page %s failed", url.path)
            return Response(500, b"internal error (see the master's log)\n"), {}


async def _discard(reader: asyncio.StreamReader, limit: int) -> None:
    """Read and drop what ``reader`` receives until its end or ``limit`` bytes."""
    while limit > 0 and (chunk := await reader.read(limit)):
        limit -= len(chunk)


def _encode(response: Response, extra: Mapping[str, str]) -> bytes:
    reason = _REASONS.get(response.status, "")
    headers = {"Content-Type": response.content_type, "Content-Length": str(len(response.body)),
               "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "Connection": "close", **extra}
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return f"HTTP/1.1 {response.status} {reason}\r\n{head}\r\n".encode("latin-1") + response.body
