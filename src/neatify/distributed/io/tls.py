"""TLS contexts (stdlib ``ssl``): the master presents a certificate, workers verify it against a CA."""

from __future__ import annotations

import ssl


def server_context(cert: str, key: str | None) -> ssl.SSLContext:
    """The master's context, serving ``cert`` (with ``key``, or the key inside ``cert``); ValueError if unloadable."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert, key)
    except OSError as exc:  # ssl.SSLError is an OSError
        raise ValueError(f"cannot load the master's TLS certificate {cert!r} (key {(key or cert)!r}): {exc}") from None
    return context


def client_context(ca: str) -> ssl.SSLContext:
    """A worker's context: the master's certificate must chain to ``ca`` and name the host dialled."""
    try:
        return ssl.create_default_context(cafile=ca)
    except OSError as exc:
        raise ValueError(f"cannot load the TLS CA certificate {ca!r}: {exc}") from None
