"""Pieces of the fake HTTP servers the tests run on 127.0.0.1 (fake Kubernetes API, IMDS, ...)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def reply_json(handler: BaseHTTPRequestHandler, status: int, body: Any) -> None:
    """Answer the handler's request with ``status`` and ``body`` as JSON (a ``str`` is sent as it is)."""
    data = (body if isinstance(body, str) else json.dumps(body)).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


def read_json_body(handler: BaseHTTPRequestHandler) -> Any:
    """The request's JSON body, or ``None`` when it has none (no or zero ``Content-Length``)."""
    length = int(handler.headers.get("Content-Length") or 0)
    return json.loads(handler.rfile.read(length)) if length else None


@contextmanager
def serving(server: ThreadingHTTPServer) -> Iterator[ThreadingHTTPServer]:
    """Serve ``server`` from a daemon thread; shut it down and close its socket on exit."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def token_kubeconfig(server: str) -> str:
    """A kubeconfig (JSON text) whose one context reaches ``server`` with a bearer token."""
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": server}}],
            "users": [{"name": "u", "user": {"token": "test-token"}}],
            "contexts": [{"name": "c", "context": {"cluster": "fake", "user": "u"}}],
            "current-context": "c",
        }
    )
