"""A Qdrant server (the platform's, from the stack outputs) through the official ``qdrant-client``.

Every write passes ``wait=True``: the call returns once the update is applied and in the WAL,
which is the acknowledgement the crash checks rely on. Alias switches send the delete and the
create in one ``update_collection_aliases`` call, which Qdrant applies atomically.

Native backups use Qdrant's collection snapshots: create on the server, download, delete the
server copy; restore uploads the file into the new collection (``recover_from_uploaded_snapshot``
of the client's REST API). ``qdrant-client`` parses every response body as JSON, so the snapshot
*download* alone goes through :func:`download_snapshot`, a streamed GET with the same URL and
API key. In a distributed deployment a collection snapshot only holds the shards of the node that
answered; use logical backups there.

The client is injectable: the tests run this store against ``QdrantClient(":memory:")`` (the
client's local mode) and the snapshot paths against a recording HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from workloads.rag.stores.base import (
    PAYLOAD_INDEXES,
    BackupManifest,
    BackupVerificationError,
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

if TYPE_CHECKING:
    from qdrant_client import QdrantClient
    from qdrant_client.http import models


def qdrant_filter(filter_: Filter | None) -> models.Filter | None:
    """Translate a :class:`Filter` into a ``qdrant_client`` filter (``None`` for no filter)."""
    if not filter_:
        return None
    from qdrant_client.http import models

    def condition(cond: Condition) -> models.FieldCondition:
        if isinstance(cond, Match):
            return models.FieldCondition(key=cond.field, match=models.MatchValue(value=cond.value))
        if isinstance(cond, MatchAny):
            return models.FieldCondition(key=cond.field, match=models.MatchAny(any=list(cond.values)))
        return models.FieldCondition(key=cond.field, range=models.Range(**cond.bounds()))

    return models.Filter(
        must=[condition(c) for c in filter_.must] or None,
        must_not=[condition(c) for c in filter_.must_not] or None,
    )


def make_client(url: str, api_key: str | None = None, timeout: float = 60.0) -> QdrantClient:
    """A REST ``QdrantClient`` for ``url`` (the one way this project reaches a Qdrant server)."""
    from qdrant_client import QdrantClient

    return QdrantClient(url=url, api_key=api_key or None, timeout=int(timeout), prefer_grpc=False)


def download_snapshot(
    url: str,
    api_key: str | None,
    path: str,
    target: Path,
    timeout: float = 3600.0,
    progress: Callable[[int], None] | None = None,
) -> tuple[int, str]:
    """Stream ``GET {url}{path}`` (a snapshot file) to ``target``; return its size and sha256.

    ``qdrant-client``'s ``get_snapshot`` parses the body as JSON, so it cannot download a
    snapshot; this is the one request made outside the client, with the same URL and API key.

    Raises:
        StoreError: On a non-200 status or a connection failure.
    """
    import httpx

    headers = {"api-key": api_key} if api_key else {}
    digest = hashlib.sha256()
    written = 0
    try:
        with httpx.stream("GET", url.rstrip("/") + path, headers=headers, timeout=timeout) as response:
            if response.status_code != 200:
                raise StoreError(f"snapshot download {path} -> HTTP {response.status_code}")
            with target.open("wb") as out:
                for chunk in response.iter_bytes(1 << 20):
                    out.write(chunk)
                    digest.update(chunk)
                    written += len(chunk)
                    if progress:
                        progress(len(chunk))
    except httpx.HTTPError as exc:
        raise StoreError(f"cannot download {path} from {url}: {exc}") from None
    return written, digest.hexdigest()


def snapshot_path(collection: str, snapshot: str) -> str:
    """REST path of a collection snapshot file."""
    from urllib.parse import quote

    return f"/collections/{quote(collection, safe='')}/snapshots/{quote(snapshot, safe='')}"


def upload_snapshot(client: QdrantClient, collection: str, path: Path, checksum: str | None = None) -> None:
    """Upload a snapshot file into ``collection`` (created or replaced), Qdrant checking ``checksum``."""
    from qdrant_client.http import models

    with path.open("rb") as data:
        client.http.snapshots_api.recover_from_uploaded_snapshot(
            collection_name=collection,
            wait=True,
            priority=models.SnapshotPriority.SNAPSHOT,
            checksum=checksum,
            snapshot=data,
        )


def alias_switch_actions(alias: str, collection: str, *, replace: bool) -> list[Any]:
    """The ``update_collection_aliases`` actions that point ``alias`` at ``collection`` atomically.

    Qdrant applies them in one request: the old binding (when ``replace``) is deleted and the new
    one created together, so readers never see the alias missing.
    """
    from qdrant_client.http import models

    actions: list[Any] = []
    if replace:
        actions.append(models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=alias)))
    actions.append(
        models.CreateAliasOperation(
            create_alias=models.CreateAlias(collection_name=collection, alias_name=alias)
        )
    )
    return actions


class QdrantServerStore(VectorStore):
    """Vector store on a Qdrant server, through ``qdrant-client``.

    Args:
        url: Base URL, e.g. ``http://qdrant.qdrant.svc:6333``.
        api_key: API key, if the server requires one.
        timeout: Seconds per request.
        client: A ready client (tests pass ``QdrantClient(":memory:")``); built from ``url`` otherwise.
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
        client: QdrantClient | None = None,
        replication_factor: int | None = None,
        shard_number: int | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self._api_key = api_key
        self.timeout = timeout
        self._client_obj = client
        self._owns_client = client is None
        self.replication_factor = replication_factor
        self.shard_number = shard_number

    def describe(self) -> str:
        """The server URL."""
        return f"qdrant-server at {self.url}"

    @property
    def client(self) -> QdrantClient:
        """The ``qdrant-client`` instance (built on first use)."""
        if self._client_obj is None:
            self._client_obj = make_client(self.url, self._api_key, self.timeout)
        return self._client_obj

    def _do(self, what: str, call: Any, *args: Any, **kwargs: Any) -> Any:
        """Run a client call, turning its errors into :class:`StoreError` naming the server."""
        from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

        try:
            return call(*args, **kwargs)
        except UnexpectedResponse as exc:
            detail = exc.content[:500].decode(errors="replace") if exc.content else exc.reason_phrase
            raise StoreError(f"qdrant {what} -> HTTP {exc.status_code}: {detail}") from None
        except ResponseHandlingException as exc:
            raise StoreError(f"cannot reach {self.describe()} ({what}): {exc}") from None
        except (ValueError, KeyError) as exc:  # local mode raises these for unknown collections
            raise StoreError(f"qdrant {what}: {exc}") from None

    # --- collections -------------------------------------------------------------------------

    def create_collection(self, name: str, dim: int) -> None:
        """Create a collection with cosine vectors and payload indexes."""
        from qdrant_client.http import models

        check_collection_name(name)
        if self.has_collection(name):
            raise StoreError(f"collection {name!r} already exists in {self.describe()}")
        self._do(
            f"create collection {name}",
            self.client.create_collection,
            name,
            vectors_config=models.VectorParams(size=dim, distance=models.Distance.COSINE),
            replication_factor=self.replication_factor,
            shard_number=self.shard_number,
        )
        schemas = {"keyword": models.PayloadSchemaType.KEYWORD, "integer": models.PayloadSchemaType.INTEGER}
        for field, schema in PAYLOAD_INDEXES:
            self._do(
                f"index {name}.{field}",
                self.client.create_payload_index,
                name,
                field_name=field,
                field_schema=schemas[schema],
                wait=True,
            )

    def drop_collection(self, name: str) -> None:
        """Delete a collection (its aliases go with it on the server)."""
        if self.has_collection(name):
            self._do(f"delete collection {name}", self.client.delete_collection, name)

    def list_collections(self) -> list[str]:
        """Collection names."""
        result = self._do("list collections", self.client.get_collections)
        return sorted(c.name for c in result.collections)

    def collection_dim(self, name: str) -> int:
        """Dimension from the collection's config."""
        info = self._do(f"get collection {name}", self.client.get_collection, self._physical(name))
        vectors = info.config.params.vectors
        if isinstance(vectors, dict):
            vectors = vectors[""]
        return int(vectors.size)

    # --- aliases -----------------------------------------------------------------------------

    def aliases(self) -> dict[str, str]:
        """Map of alias to collection."""
        result = self._do("list aliases", self.client.get_aliases)
        return {a.alias_name: a.collection_name for a in result.aliases}

    def set_alias(self, alias: str, collection: str) -> None:
        """Bind ``alias`` to ``collection`` in one atomic request."""
        actions = alias_switch_actions(alias, collection, replace=alias in self.aliases())
        self._do(f"alias {alias} -> {collection}", self.client.update_collection_aliases, actions)

    def drop_alias(self, alias: str) -> None:
        """Remove an alias."""
        from qdrant_client.http import models

        if alias in self.aliases():
            self._do(
                f"drop alias {alias}",
                self.client.update_collection_aliases,
                [models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=alias))],
            )

    # --- points ------------------------------------------------------------------------------

    def _upsert(self, collection: str, points: Sequence[Point]) -> None:
        """Upsert points and wait for them to be applied."""
        from qdrant_client.http import models

        batch = [
            models.PointStruct(id=p.id, vector=as_floats(p.vector), payload=dict(p.payload)) for p in points
        ]
        self._do(f"upsert into {collection}", self.client.upsert, collection, points=batch, wait=True)

    def _delete(self, collection: str, ids: list[str]) -> None:
        """Delete points by id."""
        from qdrant_client.http import models

        self._do(
            f"delete from {collection}",
            self.client.delete,
            collection,
            points_selector=models.PointIdsList(points=ids),
            wait=True,
        )

    @staticmethod
    def _record(raw: Any, with_vectors: bool) -> Record:
        vector = raw.vector if with_vectors else None
        if isinstance(vector, dict):
            vector = vector.get("")
        return Record(str(raw.id), dict(raw.payload or {}), list(vector) if vector is not None else None)

    def _retrieve(self, collection: str, ids: list[str], with_vectors: bool) -> list[Record]:
        """Read points by id."""
        found = self._do(
            f"retrieve from {collection}",
            self.client.retrieve,
            collection,
            ids=ids,
            with_payload=True,
            with_vectors=with_vectors,
        )
        return [self._record(r, with_vectors) for r in found]

    def _scroll(
        self, collection: str, fields: Sequence[str] | None, with_vectors: bool, batch_size: int
    ) -> Iterator[Record]:
        """Page through every point."""
        offset: Any = None
        payload: Any = True if fields is None else (list(fields) or False)
        while True:
            records, offset = self._do(
                f"scroll {collection}",
                self.client.scroll,
                collection,
                limit=batch_size,
                offset=offset,
                with_payload=payload,
                with_vectors=with_vectors,
            )
            for raw in records:
                yield self._record(raw, with_vectors)
            if offset is None:
                return

    def count(self, collection: str) -> int:
        """Exact count."""
        return int(self._do(f"count {collection}", self.client.count, collection, exact=True).count)

    def _search(self, collection: str, vector: list[float], limit: int, filter_: Filter | None) -> list[Hit]:
        """Nearest neighbours through the universal query API."""
        result = self._do(
            f"query {collection}",
            self.client.query_points,
            collection,
            query=vector,
            limit=limit,
            query_filter=qdrant_filter(filter_),
            with_payload=True,
            with_vectors=False,
        )
        return [Hit(str(p.id), float(p.score), dict(p.payload or {})) for p in result.points]

    # --- native backups (server snapshots) ---------------------------------------------------

    def _native_backup(self, collection: str, archive: Path) -> BackupManifest:
        manifest = self._native_manifest(collection)
        snapshot = self._do(f"snapshot {collection}", self.client.create_snapshot, collection, wait=True)
        if snapshot is None:
            raise StoreError(f"{self.describe()} created no snapshot of {collection!r}")
        try:
            with tempfile.TemporaryDirectory(prefix="mlp-backup-") as tmp:
                local = Path(tmp) / "collection.snapshot"
                path = snapshot_path(collection, snapshot.name)
                download_snapshot(self.url, self._api_key, path, local, self.timeout)
                written = write_backup(archive, manifest, [("native/collection.snapshot", local)])
        finally:
            self._do(
                f"delete snapshot {snapshot.name}",
                self.client.delete_snapshot,
                collection,
                snapshot.name,
                wait=True,
            )
        return written

    def _native_restore(self, staging: Path, manifest: BackupManifest, collection: str) -> None:
        snapshot = staging / "native" / "collection.snapshot"
        if not snapshot.is_file():
            raise BackupVerificationError("the archive holds no Qdrant snapshot (native/collection.snapshot)")
        self._do(f"upload snapshot into {collection}", upload_snapshot, self.client, collection, snapshot)

    def close(self) -> None:
        """Close the client's connections."""
        if self._client_obj is not None and self._owns_client:
            self._client_obj.close()
            self._client_obj = None
