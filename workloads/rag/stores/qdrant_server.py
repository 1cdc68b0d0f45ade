"""A Qdrant server (the platform's, from the stack outputs) over its REST API.

``qdrant-client`` is not a dependency: its local mode is a numpy brute force and the server part
is a thin REST wrapper, so this module speaks the documented REST API with the standard library.
Requests are built by small pure methods and sent through an injectable transport, which is what
the unit tests exercise; no server runs on the machine that builds this project.

Every write passes ``wait=true``: the call returns once the update is applied and in the WAL,
which is the acknowledgement the crash checks rely on. Alias switches send the delete and the
create in one ``POST /collections/aliases`` request, which Qdrant applies atomically.

Native backups use Qdrant's collection snapshots: create on the server, download, delete the
server copy; restore uploads the file into the new collection. In a distributed deployment a
collection snapshot only holds the shards of the node that answered; use logical backups there.
"""

from __future__ import annotations

import json
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from workloads.rag.stores.base import (
    PAYLOAD_INDEXES,
    BackupManifest,
    Condition,
    Filter,
    Hit,
    Match,
    MatchAny,
    Point,
    Record,
    StoreError,
    VectorStore,
    as_floats,
    check_collection_name,
    write_backup,
)


@dataclass(frozen=True)
class HttpRequest:
    """One REST call: method, path with query string, JSON body (or raw bytes), extra headers."""

    method: str
    path: str
    body: Any = None
    raw: bytes | None = None
    content_type: str = "application/json"


Transport = Callable[[HttpRequest], tuple[int, bytes]]
"""Sends a request, returns ``(status, body)``."""


def rest_filter(filter_: Filter | None) -> dict[str, Any] | None:
    """Translate a :class:`Filter` into Qdrant's JSON filter."""
    if not filter_:
        return None

    def condition(cond: Condition) -> dict[str, Any]:
        if isinstance(cond, Match):
            return {"key": cond.field, "match": {"value": cond.value}}
        if isinstance(cond, MatchAny):
            return {"key": cond.field, "match": {"any": list(cond.values)}}
        return {"key": cond.field, "range": cond.bounds()}

    out: dict[str, Any] = {}
    if filter_.must:
        out["must"] = [condition(c) for c in filter_.must]
    if filter_.must_not:
        out["must_not"] = [condition(c) for c in filter_.must_not]
    return out


class QdrantServerStore(VectorStore):
    """Vector store on a Qdrant server's REST API.

    Args:
        url: Base URL, e.g. ``http://qdrant.qdrant.svc:6333``.
        api_key: API key (sent as ``api-key``), if the server requires one.
        timeout: Seconds per request.
        transport: Replaces HTTP (tests); defaults to ``urllib``.
        replication_factor: Copies of each shard for new collections; ``None`` keeps the server's
            default (the platform sets it from ``vectordb.qdrant.replicationFactor``).
        shard_number: Shards of new collections; ``None`` keeps the server's default.
    """

    backend: ClassVar[str] = "qdrant"
    engine = "qdrant-server"

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        timeout: float = 60.0,
        transport: Transport | None = None,
        replication_factor: int | None = None,
        shard_number: int | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self._api_key = api_key
        self.timeout = timeout
        self._transport = transport or self._urllib
        self.replication_factor = replication_factor
        self.shard_number = shard_number

    def describe(self) -> str:
        """The server URL."""
        return f"qdrant-server at {self.url}"

    # --- transport ---------------------------------------------------------------------------

    def _urllib(self, request: HttpRequest) -> tuple[int, bytes]:
        headers = {"Accept": "application/json"}
        if self._api_key:
            headers["api-key"] = self._api_key
        data = (
            request.raw
            if request.raw is not None
            else (json.dumps(request.body).encode() if request.body is not None else None)
        )
        if data is not None:
            headers["Content-Type"] = request.content_type
        req = urllib.request.Request(
            self.url + request.path, data=data, headers=headers, method=request.method
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as response:  # noqa: S310
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()
        except urllib.error.URLError as exc:
            raise StoreError(f"cannot reach {self.describe()}: {exc.reason}") from exc

    def _call(self, request: HttpRequest, *, ok: tuple[int, ...] = (200,)) -> Any:
        status, body = self._transport(request)
        if status not in ok:
            detail = body[:500].decode(errors="replace")
            raise StoreError(f"qdrant {request.method} {request.path} -> HTTP {status}: {detail}")
        if not body:
            return None
        try:
            return json.loads(body).get("result")
        except (json.JSONDecodeError, AttributeError):
            return body

    @staticmethod
    def _quote(name: str) -> str:
        return urllib.parse.quote(name, safe="")

    # --- request builders (pure) -------------------------------------------------------------

    def create_requests(self, name: str, dim: int) -> list[HttpRequest]:
        """Requests that create a collection and its payload indexes."""
        collection = self._quote(name)
        body: dict[str, Any] = {"vectors": {"size": dim, "distance": "Cosine"}}
        if self.replication_factor is not None:
            body["replication_factor"] = self.replication_factor
        if self.shard_number is not None:
            body["shard_number"] = self.shard_number
        indexes = [
            HttpRequest(
                "PUT",
                f"/collections/{collection}/index?wait=true",
                {"field_name": field, "field_schema": schema},
            )
            for field, schema in PAYLOAD_INDEXES
        ]
        return [HttpRequest("PUT", f"/collections/{collection}", body), *indexes]

    @staticmethod
    def upsert_request(collection: str, points: Sequence[Point]) -> HttpRequest:
        """The upsert call (``wait=true``: acknowledged when applied)."""
        body = {
            "points": [
                {"id": p.id, "vector": as_floats(p.vector), "payload": dict(p.payload)} for p in points
            ]
        }
        return HttpRequest(
            "PUT", f"/collections/{QdrantServerStore._quote(collection)}/points?wait=true", body
        )

    @staticmethod
    def search_request(
        collection: str, vector: Sequence[float] | np.ndarray, limit: int, filter_: Filter | None
    ) -> HttpRequest:
        """The universal query call for a nearest-neighbour search."""
        body: dict[str, Any] = {
            "query": as_floats(vector),
            "limit": limit,
            "with_payload": True,
            "with_vector": False,
        }
        rest = rest_filter(filter_)
        if rest:
            body["filter"] = rest
        return HttpRequest("POST", f"/collections/{QdrantServerStore._quote(collection)}/points/query", body)

    @staticmethod
    def alias_request(alias: str, collection: str, *, exists: bool) -> HttpRequest:
        """One atomic alias update: drop the old binding (if any) and create the new one."""
        actions: list[dict[str, Any]] = []
        if exists:
            actions.append({"delete_alias": {"alias_name": alias}})
        actions.append({"create_alias": {"collection_name": collection, "alias_name": alias}})
        return HttpRequest("POST", "/collections/aliases?wait=true", {"actions": actions})

    # --- collections -------------------------------------------------------------------------

    def create_collection(self, name: str, dim: int) -> None:
        """Create a collection with cosine vectors and payload indexes."""
        check_collection_name(name)
        if self.has_collection(name):
            raise StoreError(f"collection {name!r} already exists in {self.describe()}")
        for request in self.create_requests(name, dim):
            self._call(request)

    def drop_collection(self, name: str) -> None:
        """Delete a collection (its aliases go with it on the server)."""
        self._call(HttpRequest("DELETE", f"/collections/{self._quote(name)}"), ok=(200, 404))

    def list_collections(self) -> list[str]:
        """Collection names."""
        result = self._call(HttpRequest("GET", "/collections"))
        return sorted(c["name"] for c in result.get("collections", []))

    def collection_dim(self, name: str) -> int:
        """Dimension from the collection's config."""
        info = self._call(HttpRequest("GET", f"/collections/{self._quote(name)}"))
        vectors = info["config"]["params"]["vectors"]
        return int(vectors["size"] if "size" in vectors else vectors[""]["size"])

    # --- aliases -----------------------------------------------------------------------------

    def aliases(self) -> dict[str, str]:
        """Map of alias to collection."""
        result = self._call(HttpRequest("GET", "/aliases"))
        return {a["alias_name"]: a["collection_name"] for a in result.get("aliases", [])}

    def set_alias(self, alias: str, collection: str) -> None:
        """Bind ``alias`` to ``collection`` in one atomic request."""
        self._call(self.alias_request(alias, collection, exists=alias in self.aliases()))

    def drop_alias(self, alias: str) -> None:
        """Remove an alias."""
        if alias in self.aliases():
            self._call(
                HttpRequest(
                    "POST",
                    "/collections/aliases?wait=true",
                    {"actions": [{"delete_alias": {"alias_name": alias}}]},
                )
            )

    # --- points ------------------------------------------------------------------------------

    def _upsert(self, collection: str, points: Sequence[Point]) -> None:
        """Upsert points and wait for them to be applied."""
        self._call(self.upsert_request(collection, points))

    def _delete(self, collection: str, ids: list[str]) -> None:
        """Delete points by id."""
        self._call(
            HttpRequest(
                "POST", f"/collections/{self._quote(collection)}/points/delete?wait=true", {"points": ids}
            )
        )

    @staticmethod
    def _record(raw: dict[str, Any], with_vectors: bool) -> Record:
        vector = raw.get("vector") if with_vectors else None
        if isinstance(vector, dict):
            vector = vector.get("")
        return Record(
            str(raw["id"]), dict(raw.get("payload") or {}), list(vector) if vector is not None else None
        )

    def _retrieve(self, collection: str, ids: list[str], with_vectors: bool) -> list[Record]:
        """Read points by id."""
        result = self._call(
            HttpRequest(
                "POST",
                f"/collections/{self._quote(collection)}/points",
                {"ids": ids, "with_payload": True, "with_vector": with_vectors},
            )
        )
        return [self._record(r, with_vectors) for r in result]

    def _scroll(
        self, collection: str, fields: Sequence[str] | None, with_vectors: bool, batch_size: int
    ) -> Iterator[Record]:
        """Page through every point."""
        offset: Any = None
        while True:
            body: dict[str, Any] = {
                "limit": batch_size,
                "with_payload": True if fields is None else list(fields),
                "with_vector": with_vectors,
            }
            if offset is not None:
                body["offset"] = offset
            result = self._call(
                HttpRequest("POST", f"/collections/{self._quote(collection)}/points/scroll", body)
            )
            for raw in result.get("points", []):
                yield self._record(raw, with_vectors)
            offset = result.get("next_page_offset")
            if offset is None:
                return

    def count(self, collection: str) -> int:
        """Exact count."""
        result = self._call(
            HttpRequest("POST", f"/collections/{self._quote(collection)}/points/count", {"exact": True})
        )
        return int(result["count"])

    def _search(self, collection: str, vector: list[float], limit: int, filter_: Filter | None) -> list[Hit]:
        """Nearest neighbours through the universal query API."""
        result = self._call(self.search_request(collection, vector, limit, filter_))
        points = result.get("points", []) if isinstance(result, dict) else result
        return [Hit(str(p["id"]), float(p["score"]), dict(p.get("payload") or {})) for p in points]

    # --- native backups (server snapshots) ---------------------------------------------------

    def _native_backup(self, collection: str, archive: Path) -> BackupManifest:
        name = self._quote(collection)
        manifest = self._native_manifest(collection)
        snapshot = self._call(HttpRequest("POST", f"/collections/{name}/snapshots?wait=true"))
        snap_name = self._quote(snapshot["name"])
        try:
            status, body = self._transport(HttpRequest("GET", f"/collections/{name}/snapshots/{snap_name}"))
            if status != 200:
                raise StoreError(f"snapshot download failed with HTTP {status}")
            with tempfile.TemporaryDirectory(prefix="mlp-backup-") as tmp:
                local = Path(tmp) / "collection.snapshot"
                local.write_bytes(body)
                written = write_backup(archive, manifest, [("native/collection.snapshot", local)])
        finally:
            self._call(
                HttpRequest("DELETE", f"/collections/{name}/snapshots/{snap_name}?wait=true"), ok=(200, 404)
            )
        return written

    def _native_restore(self, staging: Path, manifest: BackupManifest, collection: str) -> None:
        snapshot = staging / "native" / "collection.snapshot"
        if not snapshot.is_file():
            raise StoreError("the archive holds no Qdrant snapshot")
        with snapshot.open("rb") as data:
            boundary = uuid.uuid4().hex
            head = (
                f'--{boundary}\r\nContent-Disposition: form-data; name="snapshot"; '
                f'filename="collection.snapshot"\r\nContent-Type: application/octet-stream\r\n\r\n'
            ).encode()
            body = head + data.read() + f"\r\n--{boundary}--\r\n".encode()
        self._call(
            HttpRequest(
                "POST",
                f"/collections/{self._quote(collection)}/snapshots/upload?wait=true&priority=snapshot",
                raw=body,
                content_type=f"multipart/form-data; boundary={boundary}",
            )
        )
