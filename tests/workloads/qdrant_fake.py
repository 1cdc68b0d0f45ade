"""A Qdrant REST server on 127.0.0.1 for tests: qdrant-client's local mode behind real HTTP.

Every request is recorded (method, path with query, JSON body). Data operations are answered by
``QdrantClient(":memory:")`` and serialised as the REST API does, so the official client talking
to this server parses real response models. Collection snapshots (create, download, delete,
multipart upload, recover from a URL, with ``checksum``) are JSON dumps of the points, which is
all a restore needs to be checked end to end. ``api_key`` is enforced when set.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import threading
import urllib.parse
import urllib.request
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from qdrant_client import QdrantClient
from qdrant_client.http import models


@dataclass
class Recorded:
    """One request as the server saw it."""

    method: str
    path: str
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes = b""


def _ok(result: Any) -> tuple[int, Any]:
    return 200, {"result": result, "status": "ok", "time": 0.0}


def _dump(value: Any) -> Any:
    if isinstance(value, list):
        return [_dump(v) for v in value]
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json", exclude_none=True)
    return value


class FakeQdrantServer:
    """Qdrant's REST API on 127.0.0.1, answered by the client's local mode (use as a context manager)."""

    def __init__(self, api_key: str | None = None) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.local = QdrantClient(":memory:")
        self.api_key = api_key
        self.requests: list[Recorded] = []
        self.snapshots: dict[tuple[str, str], bytes] = {}
        self.fail: Callable[[Recorded], tuple[int, Any] | None] | None = None
        self._counter = itertools.count(1)
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _route(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                record = Recorded(self.command, self.path, None, dict(self.headers.items()), raw)
                if self.headers.get("Content-Type", "").startswith("application/json") and raw:
                    record.body = json.loads(raw)
                fake.requests.append(record)
                if fake.api_key and self.headers.get("api-key") != fake.api_key:
                    status, payload = 403, {"status": {"error": "Invalid api-key"}}
                else:
                    with fake._lock:
                        try:
                            answer = fake.fail(record) if fake.fail else None
                            status, payload = answer or fake.handle(record, raw)
                        except (KeyError, ValueError) as error:
                            status, payload = 404, {"status": {"error": f"Not found: {error}"}}
                body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.send_header(
                    "Content-Type",
                    "application/octet-stream" if isinstance(payload, bytes) else "application/json",
                )
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _route  # noqa: N815

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeQdrantServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def calls(self) -> list[tuple[str, str]]:
        """``(method, path without query)`` of every request so far."""
        return [(r.method, r.path.split("?")[0]) for r in self.requests]

    # --- snapshots ---------------------------------------------------------------------------

    def _snapshot_bytes(self, name: str) -> bytes:
        info = self.local.get_collection(name)
        points, _ = self.local.scroll(name, limit=1_000_000, with_payload=True, with_vectors=True)
        return json.dumps(
            {"dim": info.config.params.vectors.size, "points": _dump(points)}  # type: ignore[union-attr]
        ).encode()

    def _load(self, name: str, data: bytes, checksum: str | None) -> tuple[int, Any]:
        if checksum and hashlib.sha256(data).hexdigest() != checksum:
            return 400, {"status": {"error": "Snapshot checksum mismatch"}}
        try:
            raw = json.loads(data)
            dim = int(raw["dim"])
        except (ValueError, KeyError, TypeError):
            return 400, {"status": {"error": "Invalid snapshot"}}
        if self.local.collection_exists(name):
            self.local.delete_collection(name)
        self.local.create_collection(name, models.VectorParams(size=dim, distance=models.Distance.COSINE))
        batch = [
            models.PointStruct(id=p["id"], vector=p["vector"], payload=p.get("payload"))
            for p in raw["points"]
        ]
        if batch:
            self.local.upsert(name, batch)
        return _ok(True)

    # --- routing -----------------------------------------------------------------------------

    def handle(self, record: Recorded, raw: bytes) -> tuple[int, Any]:
        url = urllib.parse.urlsplit(record.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        parts = [urllib.parse.unquote(p) for p in url.path.strip("/").split("/")] if url.path != "/" else []
        method, body = record.method, record.body or {}
        local = self.local
        if not parts:
            return 200, {"title": "qdrant - fake", "version": "1.17.0"}
        if parts == ["collections"] and method == "GET":
            return _ok(_dump(local.get_collections()))
        if parts == ["aliases"] and method == "GET":
            return _ok(_dump(local.get_aliases()))
        if parts == ["collections", "aliases"] and method == "POST":
            ops = [
                models.CreateAliasOperation(**a) if "create_alias" in a else models.DeleteAliasOperation(**a)
                for a in body["actions"]
            ]
            return _ok(local.update_collection_aliases(ops))
        name = parts[1]
        rest = parts[2:]
        if not rest:
            if method == "GET":
                return _ok(_dump(local.get_collection(name)))
            if method == "PUT":
                vectors = body["vectors"]
                return _ok(local.create_collection(name, models.VectorParams(**vectors)))
            if method == "DELETE":
                return _ok(local.delete_collection(name))
        if rest == ["exists"]:
            return _ok({"exists": local.collection_exists(name)})
        if rest == ["index"] and method == "PUT":
            return _ok({"operation_id": next(self._counter), "status": "completed"})
        if rest == ["points"] and method == "PUT":
            batch = [models.PointStruct(**p) for p in body["points"]]
            return _ok(_dump(local.upsert(name, batch)))
        if rest == ["points"] and method == "POST":
            found = local.retrieve(
                name,
                body["ids"],
                with_payload=body.get("with_payload", True),
                with_vectors=body.get("with_vector", False),
            )
            return _ok(_dump(found))
        if rest == ["points", "delete"]:
            return _ok(_dump(local.delete(name, models.PointIdsList(points=body["points"]))))
        if rest == ["points", "count"]:
            return _ok(_dump(local.count(name, exact=True)))
        if rest == ["points", "scroll"]:
            points, offset = local.scroll(
                name,
                limit=body.get("limit", 10),
                offset=body.get("offset"),
                with_payload=body.get("with_payload", True),
                with_vectors=body.get("with_vector", False),
            )
            return _ok({"points": _dump(points), "next_page_offset": offset})
        if rest == ["points", "query"]:
            query_filter = models.Filter(**body["filter"]) if body.get("filter") else None
            vector = body["query"]["nearest"] if isinstance(body["query"], dict) else body["query"]
            result = local.query_points(
                name, query=vector, limit=body.get("limit", 10), query_filter=query_filter
            )
            return _ok(_dump(result))
        if rest == ["snapshots"] and method == "POST":
            data = self._snapshot_bytes(name)
            snap = f"{name}-{next(self._counter)}.snapshot"
            self.snapshots[(name, snap)] = data
            return _ok({"name": snap, "size": len(data), "checksum": hashlib.sha256(data).hexdigest()})
        if rest == ["snapshots", "upload"] and method == "POST":
            boundary = record.headers["Content-Type"].split("boundary=")[1].encode()
            part = raw.split(b"--" + boundary)[1]
            data = part.split(b"\r\n\r\n", 1)[1].rsplit(b"\r\n", 1)[0]
            return self._load(name, data, query.get("checksum"))
        if rest == ["snapshots", "recover"] and method == "PUT":
            with urllib.request.urlopen(body["location"], timeout=30) as response:  # noqa: S310 - test server
                data = response.read()
            return self._load(name, data, body.get("checksum"))
        if len(rest) == 2 and rest[0] == "snapshots":
            if method == "GET":
                return 200, self.snapshots[(name, rest[1])]
            if method == "DELETE":
                del self.snapshots[(name, rest[1])]
                return _ok(True)
        raise KeyError("/".join(parts))
