"""Embedded Qdrant: Qdrant Edge shards in this process.

Layout under the store's root directory::

    collections/<name>/   one Edge shard per collection (segments + WAL)
    aliases.json          alias -> collection, replaced atomically (write, fsync, rename)

Qdrant Edge has no collections or aliases of its own, so this module supplies them: a
collection is a shard directory and an alias switch is one ``rename(2)``, atomic for readers
that resolve the alias afterwards. Edge indexes nothing in the background, so
:meth:`QdrantEdgeStore.finalize` calls ``optimize()`` after bulk loads. A shard directory admits
one open handle (its WAL is locked), hence one handle per shard per process, cached here;
another process opening the same shard meanwhile gets a clear error.

Native backups are compressed, checksummed archives (:mod:`workloads.rag.stores.archive`) of a
flushed, closed shard directory, which Edge reloads as is.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

from workloads.rag.stores.base import (
    COLLECTION_NAME,
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


def _qe() -> Any:
    import qdrant_edge

    return qdrant_edge


def edge_filter(filter_: Filter | None) -> Any:
    """Translate a :class:`Filter` into a ``qdrant_edge.Filter`` (``None`` for no filter)."""
    if not filter_:
        return None
    qe = _qe()

    def condition(cond: Condition) -> Any:
        if isinstance(cond, Match):
            return qe.FieldCondition(cond.field, match=qe.MatchValue(cond.value))
        if isinstance(cond, MatchAny):
            return qe.FieldCondition(cond.field, match=qe.MatchAny(list(cond.values)))
        return qe.FieldCondition(cond.field, range=qe.RangeFloat(**cond.bounds()))

    return qe.Filter(
        must=[condition(c) for c in filter_.must] or None,
        must_not=[condition(c) for c in filter_.must_not] or None,
    )


class QdrantEdgeStore(VectorStore):
    """Vector store on embedded Qdrant Edge shards.

    Args:
        root: Directory holding the shards and the alias table.
    """

    backend: ClassVar[str] = "qdrant"
    engine = "qdrant-edge"

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._shards: dict[str, Any] = {}

    def describe(self) -> str:
        """The data directory."""
        return f"qdrant-edge at {self.root}"

    # --- collections -------------------------------------------------------------------------

    @property
    def _collections_dir(self) -> Path:
        return self.root / "collections"

    def _dir(self, name: str) -> Path:
        return self._collections_dir / check_collection_name(name)

    def create_collection(self, name: str, dim: int) -> None:
        """Create a shard with a cosine vector and keyword/integer payload indexes."""
        qe = _qe()
        path = self._dir(name)
        if path.exists():
            raise StoreError(f"collection {name!r} already exists in {self.describe()}")
        if name in self.aliases():
            raise StoreError(f"{name!r} is an alias; pick another collection name")
        path.parent.mkdir(parents=True, exist_ok=True)
        shard = qe.EdgeShard.create(
            str(path), qe.EdgeConfig(vectors=qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine))
        )
        schemas = {"keyword": qe.PayloadSchemaType.Keyword, "integer": qe.PayloadSchemaType.Integer}
        for field, schema in PAYLOAD_INDEXES:
            shard.update(qe.UpdateOperation.create_field_index(field, schemas[schema]))
        shard.flush()
        self._shards[name] = shard

    def drop_collection(self, name: str) -> None:
        """Close and delete a shard; aliases pointing at it are removed first."""
        for alias, target in self.aliases().items():
            if target == name:
                self.drop_alias(alias)
        self._close_shard(name)
        shutil.rmtree(self._dir(name), ignore_errors=True)

    def list_collections(self) -> list[str]:
        """Shard directories under ``collections/``."""
        if not self._collections_dir.is_dir():
            return []
        return sorted(p.name for p in self._collections_dir.iterdir() if (p / "edge_config.json").is_file())

    def has_collection(self, name: str) -> bool:
        """Whether a shard directory exists for ``name``."""
        return COLLECTION_NAME.match(name) is not None and (self._dir(name) / "edge_config.json").is_file()

    def collection_dim(self, name: str) -> int:
        """Dimension from the shard's persisted config."""
        physical = self._physical(name)
        config = json.loads((self._dir(physical) / "edge_config.json").read_text())
        return int(config["vectors"][""]["size"])

    def _shard(self, name: str) -> Any:
        physical = self._physical(name)
        shard = self._shards.get(physical)
        if shard is None:
            try:
                shard = _qe().EdgeShard.load(str(self._dir(physical)))
            except Exception as exc:  # the engine raises a bare runtime error on a held WAL lock
                raise StoreError(
                    f"cannot open Qdrant Edge shard {physical!r} ({exc}); "
                    "is another process (an ingest or ask) using it?"
                ) from exc
            self._shards[physical] = shard
        return shard

    def _close_shard(self, name: str) -> None:
        shard = self._shards.pop(name, None)
        if shard is not None:
            shard.flush()
            shard.close()

    # --- aliases -----------------------------------------------------------------------------

    @property
    def _aliases_file(self) -> Path:
        return self.root / "aliases.json"

    def aliases(self) -> dict[str, str]:
        """Read the alias table."""
        try:
            return dict(json.loads(self._aliases_file.read_text()))
        except FileNotFoundError:
            return {}

    def _write_aliases(self, table: dict[str, str]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".aliases-", dir=self.root)
        with os.fdopen(fd, "w") as handle:
            json.dump(table, handle, indent=2, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self._aliases_file)
        dir_fd = os.open(self.root, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def set_alias(self, alias: str, collection: str) -> None:
        """Point ``alias`` at ``collection`` with one atomic rename of the alias table."""
        if not COLLECTION_NAME.match(alias):
            raise StoreError(f"invalid alias {alias!r}")
        if not self.has_collection(collection):
            raise StoreError(f"collection {collection!r} does not exist")
        if self.has_collection(alias):
            raise StoreError(f"alias {alias!r} would shadow a collection of that name")
        table = self.aliases()
        table[alias] = collection
        self._write_aliases(table)

    def drop_alias(self, alias: str) -> None:
        """Remove an alias."""
        table = self.aliases()
        if table.pop(alias, None) is not None:
            self._write_aliases(table)

    # --- points ------------------------------------------------------------------------------

    def _upsert(self, collection: str, points: Sequence[Point]) -> None:
        """Upsert points; acknowledged once written to the shard's WAL."""
        qe = _qe()
        edge_points = [qe.Point(p.id, as_floats(p.vector), dict(p.payload)) for p in points]
        self._shard(collection).update(qe.UpdateOperation.upsert_points(edge_points))

    def _delete(self, collection: str, ids: list[str]) -> None:
        """Delete points by id."""
        self._shard(collection).update(_qe().UpdateOperation.delete_points(ids))

    def _retrieve(self, collection: str, ids: list[str], with_vectors: bool) -> list[Record]:
        """Read points by id."""
        records = self._shard(collection).retrieve(ids, with_payload=True, with_vector=with_vectors)
        return [self._record(r, with_vectors) for r in records]

    @staticmethod
    def _record(raw: Any, with_vectors: bool) -> Record:
        vector = raw.vector if with_vectors else None
        if isinstance(vector, dict):  # named-vector form: our vector is the unnamed one
            vector = vector.get("")
        return Record(str(raw.id), dict(raw.payload or {}), list(vector) if vector is not None else None)

    def _scroll(
        self, collection: str, fields: Sequence[str] | None, with_vectors: bool, batch_size: int
    ) -> Iterator[Record]:
        """Page through every point in id order."""
        qe = _qe()
        shard = self._shard(collection)
        payload: Any = True if fields is None else qe.PayloadSelector.Include(list(fields))
        offset = None
        while True:
            records, offset = shard.scroll(
                qe.ScrollRequest(
                    offset=offset, limit=batch_size, with_payload=payload, with_vector=with_vectors
                )
            )
            for raw in records:
                yield self._record(raw, with_vectors)
            if offset is None:
                return

    def count(self, collection: str) -> int:
        """Exact point count."""
        return int(self._shard(collection).count(_qe().CountRequest(exact=True)))

    def _search(self, collection: str, vector: list[float], limit: int, filter_: Filter | None) -> list[Hit]:
        """Nearest neighbours (exact below the indexing threshold, HNSW above it after optimize)."""
        qe = _qe()
        request = qe.QueryRequest(
            limit=limit,
            query=qe.Query.Nearest(vector),
            filter=edge_filter(filter_),
            with_payload=True,
            with_vector=False,
        )
        return [
            Hit(str(p.id), float(p.score), dict(p.payload or {}))
            for p in self._shard(collection).query(request)
        ]

    def finalize(self, collection: str) -> None:
        """Build indexes (Edge has no background optimizer) and flush segments."""
        shard = self._shard(collection)
        shard.optimize()
        shard.flush()

    def close(self) -> None:
        """Flush and close every open shard."""
        for name in list(self._shards):
            self._close_shard(name)

    # --- native backups ----------------------------------------------------------------------

    def _native_backup(self, collection: str, archive: Path) -> BackupManifest:
        manifest = self._native_manifest(collection)
        # A consistent copy needs a closed shard: flush and release it, copy, reopen lazily.
        self._close_shard(collection)
        shard_dir = self._dir(collection)
        files = [
            (f"native/shard/{path.relative_to(shard_dir).as_posix()}", path)
            for path in sorted(shard_dir.rglob("*"))
            if path.is_file() and not path.is_symlink()
        ]
        return write_backup(archive, manifest, files)

    def _staging_parent(self) -> Path:
        """Stage restores under the store's root, so the shard moves into place with one rename."""
        return self.root

    def _native_restore(self, staging: Path, manifest: BackupManifest, collection: str) -> None:
        shard_dir = staging / "native" / "shard"
        if not (shard_dir / "edge_config.json").is_file():
            raise BackupVerificationError(
                "the archive holds no Qdrant Edge shard (no native/shard/edge_config.json)"
            )
        target = self._dir(collection)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(shard_dir, target)
        try:
            self._shard(collection)
        except StoreError as exc:
            raise BackupVerificationError(f"the restored Qdrant Edge shard does not load: {exc}") from None
