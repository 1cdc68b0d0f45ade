"""Milvus through ``pymilvus.MilvusClient``: Milvus Lite locally, a Milvus server from the outputs.

One implementation serves both, which is the point of Milvus Lite: with a ``.db`` path pymilvus
starts Milvus Lite's gRPC server in this process (on loopback) and speaks the same protocol it
speaks to a cluster, so the code the tests exercise locally is the code that runs against the
platform's Milvus.

Schema: a ``VARCHAR`` primary key (the point's UUID string), one ``FLOAT_VECTOR`` with the COSINE
metric, and the payload as dynamic fields (filterable by name, like Qdrant payloads). Consistency
is ``Strong`` so a search right after an ingest sees it. Index: ``FLAT`` (exact) on Milvus Lite,
where the pure-Python engine would otherwise depend on whether faiss happens to be installed;
``HNSW`` on a server.

Native backups exist for Milvus Lite only, through its engine API: ``create_snapshot`` pins the
collection's immutable files, the archive carries them with the snapshot metadata, and restore
goes through ``restore_snapshot``. A Milvus server's own snapshots stay in its object storage
(``MilvusClient.create_snapshot``); to take data off the cluster use a logical backup.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

from workloads.rag.stores.base import (
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

ID_FIELD = "id"
VECTOR_FIELD = "vector"
RESERVED_FIELDS = frozenset({ID_FIELD, VECTOR_FIELD, "$meta"})
ID_MAX_LENGTH = 64


def _literal(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value, ensure_ascii=False)


def milvus_expr(filter_: Filter | None) -> str:
    """Translate a :class:`Filter` into a Milvus boolean expression (``""`` for no filter).

    Field names are validated identifiers and strings are JSON-quoted, so payload values cannot
    inject expression syntax.
    """
    if not filter_:
        return ""

    def condition(cond: Condition) -> str:
        if isinstance(cond, Match):
            return f"{cond.field} == {_literal(cond.value)}"
        if isinstance(cond, MatchAny):
            return f"{cond.field} in [{', '.join(_literal(v) for v in cond.values)}]"
        ops = {"gte": ">=", "gt": ">", "lte": "<=", "lt": "<"}
        return " and ".join(f"{cond.field} {ops[k]} {_literal(v)}" for k, v in cond.bounds().items())

    parts = [f"({condition(c)})" for c in filter_.must]
    parts += [f"not ({condition(c)})" for c in filter_.must_not]
    return " and ".join(parts)


class MilvusStore(VectorStore):
    """Vector store on Milvus (Lite or server) through ``MilvusClient``.

    Args:
        uri: A Milvus Lite data directory ending in ``.db``, or a server URI
            (``http://milvus.milvus.svc:19530``).
        token: Server token (``root:<password>``); ignored by Milvus Lite.
        index_type: Vector index; ``None`` picks ``FLAT`` on Lite and ``HNSW`` on a server.
        hnsw_ef: HNSW search breadth on a server.
        timeout: Seconds per RPC.
    """

    backend: ClassVar[str] = "milvus"

    def __init__(
        self,
        uri: str | Path,
        *,
        token: str | None = None,
        index_type: str | None = None,
        hnsw_ef: int = 64,
        timeout: float = 60.0,
    ) -> None:
        self.uri = str(uri)
        self.lite = self.uri.endswith(".db")
        self.engine = "milvus-lite" if self.lite else "milvus-server"
        self._token = token
        self.index_type = index_type or ("FLAT" if self.lite else "HNSW")
        self.hnsw_ef = hnsw_ef
        self.timeout = timeout
        self._client_obj: Any = None
        self._loaded: set[str] = set()

    def describe(self) -> str:
        """The data directory or server URI."""
        return f"{self.engine} at {self.uri}"

    @property
    def _client(self) -> Any:
        if self._client_obj is None:
            from pymilvus import MilvusClient

            # pymilvus configures its logger on import, then warns once per iterator on Milvus Lite
            # (no MVCC timestamp), which is harmless.
            logging.getLogger("pymilvus").setLevel(logging.ERROR)

            if self.lite:
                Path(self.uri).parent.mkdir(parents=True, exist_ok=True)
            try:
                self._client_obj = MilvusClient(uri=self.uri, token=self._token or "", timeout=self.timeout)
            except Exception as exc:
                hint = " (is another process using this Milvus Lite directory?)" if self.lite else ""
                raise StoreError(f"cannot connect to {self.describe()}: {exc}{hint}") from exc
        return self._client_obj

    def close(self) -> None:
        """Close the client; for Milvus Lite also stop its in-process server and release the data dir."""
        if self._client_obj is not None:
            self._client_obj.close()
            self._client_obj = None
        self._loaded.clear()
        if self.lite:
            from milvus_lite.server_manager import server_manager_instance

            server_manager_instance.release_server(self.uri)

    # --- collections -------------------------------------------------------------------------

    def create_collection(self, name: str, dim: int) -> None:
        """Create a collection: string ids, one cosine vector, dynamic payload fields."""
        from pymilvus import DataType

        check_collection_name(name)
        client = self._client
        if client.has_collection(name):
            raise StoreError(f"collection {name!r} already exists in {self.describe()}")
        schema = client.create_schema(auto_id=False, enable_dynamic_field=True)
        schema.add_field(ID_FIELD, DataType.VARCHAR, is_primary=True, max_length=ID_MAX_LENGTH)
        schema.add_field(VECTOR_FIELD, DataType.FLOAT_VECTOR, dim=dim)
        index = client.prepare_index_params()
        params = {"M": 16, "efConstruction": 200} if self.index_type == "HNSW" else {}
        index.add_index(
            field_name=VECTOR_FIELD, index_type=self.index_type, metric_type="COSINE", params=params
        )
        client.create_collection(name, schema=schema, index_params=index, consistency_level="Strong")
        self._loaded.add(name)

    def drop_collection(self, name: str) -> None:
        """Drop a collection after removing aliases that point at it (Milvus refuses otherwise)."""
        client = self._client
        if not client.has_collection(name):
            return
        for alias, target in self.aliases().items():
            if target == name:
                client.drop_alias(alias)
        client.drop_collection(name)
        self._loaded.discard(name)

    def list_collections(self) -> list[str]:
        """Collection names."""
        return sorted(self._client.list_collections())

    def collection_dim(self, name: str) -> int:
        """Dimension of the vector field."""
        info = self._client.describe_collection(self._physical(name))
        for field in info["fields"]:
            if field["name"] == VECTOR_FIELD:
                return int(field["params"]["dim"])
        raise StoreError(f"collection {name!r} has no {VECTOR_FIELD!r} field")

    def _ensure_loaded(self, name: str) -> str:
        physical = self._physical(name)
        if physical not in self._loaded:
            self._client.load_collection(physical)
            self._loaded.add(physical)
        return physical

    # --- aliases -----------------------------------------------------------------------------

    def aliases(self) -> dict[str, str]:
        """Map of alias to collection."""
        client = self._client
        names = client.list_aliases().get("aliases", [])
        return {alias: client.describe_alias(alias)["collection_name"] for alias in names}

    def set_alias(self, alias: str, collection: str) -> None:
        """Create the alias or switch it (``alter_alias`` is atomic in Milvus)."""
        client = self._client
        if not client.has_collection(collection):
            raise StoreError(f"collection {collection!r} does not exist")
        if alias in self.aliases():
            client.alter_alias(collection, alias)
        else:
            client.create_alias(collection, alias)

    def drop_alias(self, alias: str) -> None:
        """Remove an alias."""
        if alias in self.aliases():
            self._client.drop_alias(alias)

    # --- points ------------------------------------------------------------------------------

    @staticmethod
    def _row(point: Point) -> dict[str, Any]:
        clash = RESERVED_FIELDS.intersection(point.payload)
        if clash:
            raise StoreError(f"payload keys {sorted(clash)} are reserved by the Milvus schema")
        if len(point.id) > ID_MAX_LENGTH:
            raise StoreError(f"point id longer than {ID_MAX_LENGTH} characters: {point.id!r}")
        row = dict(point.payload)
        row[ID_FIELD] = point.id
        row[VECTOR_FIELD] = as_floats(point.vector)
        return row

    def _upsert(self, collection: str, points: Sequence[Point]) -> None:
        """Upsert points; acknowledged once the engine has logged them (WAL / message queue)."""
        self._client.upsert(collection, [self._row(p) for p in points])

    def _delete(self, collection: str, ids: list[str]) -> None:
        """Delete points by id."""
        self._client.delete(collection, ids=ids)

    @staticmethod
    def _record(row: dict[str, Any], with_vectors: bool) -> Record:
        payload = {k: v for k, v in row.items() if k not in RESERVED_FIELDS}
        vector = row.get(VECTOR_FIELD) if with_vectors else None
        return Record(str(row[ID_FIELD]), payload, [float(x) for x in vector] if vector is not None else None)

    def _fields(self, fields: Sequence[str] | None, with_vectors: bool) -> list[str]:
        out = ["*"] if fields is None else [f for f in fields if f not in RESERVED_FIELDS]
        return [*out, VECTOR_FIELD] if with_vectors else out

    def _retrieve(self, collection: str, ids: list[str], with_vectors: bool) -> list[Record]:
        """Read points by id."""
        physical = self._ensure_loaded(collection)
        rows = self._client.get(physical, ids=ids, output_fields=self._fields(None, with_vectors))
        return [self._record(dict(r), with_vectors) for r in rows]

    def _scroll(
        self, collection: str, fields: Sequence[str] | None, with_vectors: bool, batch_size: int
    ) -> Iterator[Record]:
        """Page through every point with a query iterator."""
        physical = self._ensure_loaded(collection)
        iterator = self._client.query_iterator(
            physical, batch_size=batch_size, filter="", output_fields=self._fields(fields, with_vectors)
        )
        try:
            while True:
                rows = iterator.next()
                if not rows:
                    return
                for row in rows:
                    yield self._record(dict(row), with_vectors)
        finally:
            iterator.close()

    def count(self, collection: str) -> int:
        """Exact count with ``count(*)`` (the statistics API lags deletes)."""
        physical = self._ensure_loaded(collection)
        rows = self._client.query(physical, filter="", output_fields=["count(*)"])
        return int(rows[0]["count(*)"])

    def _search(self, collection: str, vector: list[float], limit: int, filter_: Filter | None) -> list[Hit]:
        """Cosine nearest neighbours; Milvus reports cosine similarity as the distance."""
        physical = self._ensure_loaded(collection)
        params: dict[str, Any] = {"metric_type": "COSINE"}
        if self.index_type == "HNSW":
            params["params"] = {"ef": max(self.hnsw_ef, limit)}
        results = self._client.search(
            physical,
            data=[vector],
            limit=limit,
            filter=milvus_expr(filter_),
            output_fields=["*"],
            search_params=params,
        )
        hits = []
        for hit in results[0]:
            entity = {k: v for k, v in dict(hit.get("entity", {})).items() if k not in RESERVED_FIELDS}
            hits.append(Hit(str(hit["id"]), float(hit["distance"]), entity))
        return hits

    def finalize(self, collection: str) -> None:
        """Flush growing data to sealed segments (and let the index catch up)."""
        self._client.flush(self._physical(collection))

    # --- native backups (Milvus Lite) --------------------------------------------------------

    def _engine(self) -> Any:
        """Open the Milvus Lite engine directly; the gRPC server must be stopped (it holds the lock)."""
        if not self.lite:
            raise StoreError(
                "native backups of a Milvus server stay in its object storage "
                "(MilvusClient.create_snapshot); use a logical backup to take the data off the cluster"
            )
        self.close()
        from milvus_lite import MilvusLite

        return MilvusLite(self.uri)

    def _collection_dir(self, name: str) -> Path:
        # The default database keeps collections under <data_dir>/collections/<name>/ (milvus-lite 3.x layout).
        return Path(self.uri) / "collections" / name

    def _native_backup(self, collection: str, archive: Path) -> BackupManifest:
        manifest = self._native_manifest(collection)
        snapshot = f"mlp_backup_{uuid.uuid4().hex[:12]}"
        db = self._engine()
        try:
            meta = db.create_snapshot(collection, snapshot)
            col_dir = self._collection_dir(collection)
            rels = [meta["schema_file"], meta["manifest_file"]]
            for key in ("data_files", "delta_files", "index_files"):
                for partition, names in (meta.get(key) or {}).items():
                    rels += [f"partitions/{partition}/{rel}" for rel in names]
            with tempfile.TemporaryDirectory(prefix="mlp-backup-") as tmp:
                info_file = Path(tmp) / "snapshot.json"
                info_file.write_text(json.dumps({"name": snapshot, "meta": meta}))
                meta_file = Path(tmp) / "meta.json"
                meta_file.write_text(json.dumps(meta))
                files = [
                    ("native/snapshot.json", info_file),
                    (f"native/collection/snapshots/metadata/{snapshot}.json", meta_file),
                    *((f"native/collection/{rel}", col_dir / rel) for rel in sorted(set(rels))),
                ]
                written = write_backup(archive, manifest, files)
            db.drop_snapshot(collection, snapshot)
        finally:
            db.close()
        return written

    def _native_restore(self, staging: Path, manifest: BackupManifest, collection: str) -> None:
        info_file = staging / "native" / "snapshot.json"
        source = staging / "native" / "collection"
        try:
            info = json.loads(info_file.read_text())
            name, schema_file = str(info["name"]), str(info["meta"]["schema_file"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise BackupVerificationError(
                f"the archive holds no readable Milvus Lite snapshot ({exc})"
            ) from None
        if not (source / schema_file).is_file():
            raise BackupVerificationError(f"the Milvus Lite snapshot has no schema file {schema_file!r}")
        staging_name = f"_mlp_restore_{uuid.uuid4().hex[:12]}"
        db = self._engine()
        staging_dir = self._collection_dir(staging_name)
        try:
            staging_dir.parent.mkdir(parents=True, exist_ok=True)
            shutil.copytree(source, staging_dir)
            # The engine recognises a collection directory by its schema file.
            shutil.copy2(staging_dir / schema_file, staging_dir / "schema.json")
            db.restore_snapshot(staging_name, name, collection)
        finally:
            shutil.rmtree(staging_dir, ignore_errors=True)
            db.close()
        # Give the restarted server a moment to see the new collection before counting.
        deadline = time.monotonic() + 10
        while not self.has_collection(collection) and time.monotonic() < deadline:
            time.sleep(0.1)
