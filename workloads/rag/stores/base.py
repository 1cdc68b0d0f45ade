"""One vector-store interface, whatever the engine behind it.

The interface is deliberately small: collections of points (a string id, one dense vector,
a JSON payload), upsert/delete/retrieve/scroll/count, filtered nearest-neighbour search, aliases
for zero-downtime re-indexing, and backups. Every backend keeps cosine distance and stores unit
vectors, so scores are comparable across engines.

Backups are single tar files with a ``manifest.json``. A *logical* backup (every point's id,
vector and payload) works on every backend and restores into any of them; a *native* backup is
the engine's own snapshot (Qdrant Edge shard, Milvus Lite snapshot, Qdrant server snapshot) and
restores only into the same engine. Restores compare the restored count with the manifest's and
fail loudly on a mismatch: restore tools have shipped that silently lost rows.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import operator
import re
import tarfile
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

BackupKind = Literal["native", "logical"]

FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
COLLECTION_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")

PayloadSchema = Literal["keyword", "integer"]
PAYLOAD_INDEXES: tuple[tuple[str, PayloadSchema], ...] = (
    ("source", "keyword"),
    ("kind", "keyword"),
    ("doc_hash", "keyword"),
    ("position", "integer"),
)
"""Payload fields indexed for filtering, with their schema, where the engine has payload indexes."""

BACKUP_FORMAT = "mlp-rag-backup"
BACKUP_VERSION = 1


class StoreError(RuntimeError):
    """A vector-store operation failed in a way the caller should report, not retry."""


class RestoreMismatchError(StoreError):
    """A restore produced a different number of points than the backup holds."""


def check_collection_name(name: str) -> str:
    """Return ``name`` if it can name a collection on every engine.

    Raises:
        StoreError: If it cannot.
    """
    if not COLLECTION_NAME.match(name):
        raise StoreError(f"invalid collection name {name!r}")
    return name


# --- points ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Point:
    """A point to upsert.

    Attributes:
        id: String id; a UUID string for portability (Qdrant accepts only UUIDs or integers).
        vector: Dense vector (unit length for cosine).
        payload: JSON-serialisable metadata.
    """

    id: str
    vector: Sequence[float] | np.ndarray
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Record:
    """A stored point as read back."""

    id: str
    payload: dict[str, Any]
    vector: list[float] | None = None


@dataclass(frozen=True)
class Hit:
    """A search result: the point's id, cosine similarity and payload."""

    id: str
    score: float
    payload: dict[str, Any]


# --- filters -----------------------------------------------------------------------------------


def _check_field(name: str) -> str:
    if not FIELD_NAME.match(name):
        raise ValueError(f"invalid payload field name {name!r}: use letters, digits and underscores")
    return name


@dataclass(frozen=True)
class Match:
    """``field == value``."""

    field: str
    value: str | int | bool

    def __post_init__(self) -> None:
        _check_field(self.field)


@dataclass(frozen=True)
class MatchAny:
    """``field`` equals one of ``values``."""

    field: str
    values: tuple[str, ...] | tuple[int, ...]

    def __post_init__(self) -> None:
        _check_field(self.field)
        if not self.values:
            raise ValueError(f"empty value list for {self.field!r}")


@dataclass(frozen=True)
class Range:
    """Numeric range on ``field``; unset bounds are open."""

    field: str
    gte: float | None = None
    gt: float | None = None
    lte: float | None = None
    lt: float | None = None

    def __post_init__(self) -> None:
        _check_field(self.field)
        if all(b is None for b in (self.gte, self.gt, self.lte, self.lt)):
            raise ValueError(f"range on {self.field!r} has no bound")

    def bounds(self) -> dict[str, float]:
        """The set bounds, by operator name."""
        return {
            k: v
            for k, v in (("gte", self.gte), ("gt", self.gt), ("lte", self.lte), ("lt", self.lt))
            if v is not None
        }


Condition = Match | MatchAny | Range


@dataclass(frozen=True)
class Filter:
    """A conjunction of payload conditions, some of them negated."""

    must: tuple[Condition, ...] = ()
    must_not: tuple[Condition, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.must or self.must_not)

    @classmethod
    def parse(cls, expressions: Iterable[str]) -> Filter:
        """Parse CLI filter expressions.

        Forms: ``field=value``, ``field=a,b`` (any of), ``field!=value``, ``field>=n``,
        ``field<=n``, ``field>n``, ``field<n``. Values that look like integers are integers.

        Raises:
            ValueError: On a malformed expression.
        """
        must: list[Condition] = []
        must_not: list[Condition] = []
        for expr in expressions:
            match = re.match(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(!=|>=|<=|=|>|<)\s*(.+?)\s*$", expr)
            if not match:
                raise ValueError(
                    f"cannot parse filter {expr!r}; expected e.g. source=docs/a.md or position>=3"
                )
            name, op, raw = match.groups()
            if op in {">=", "<=", ">", "<"}:
                try:
                    number = float(raw)
                except ValueError as exc:
                    raise ValueError(f"range filter {expr!r} needs a number") from exc
                key = {">=": "gte", "<=": "lte", ">": "gt", "<": "lt"}[op]
                must.append(Range(name, **{key: number}))
                continue
            values = [_coerce(v.strip()) for v in raw.split(",") if v.strip()]
            condition: Condition = (
                Match(name, values[0]) if len(values) == 1 else MatchAny(name, tuple(values))
            )  # type: ignore[arg-type]
            (must_not if op == "!=" else must).append(condition)
        return cls(tuple(must), tuple(must_not))


def _coerce(raw: str) -> str | int:
    return int(raw) if re.fullmatch(r"-?\d+", raw) else raw


_COMPARE = {"gte": operator.ge, "gt": operator.gt, "lte": operator.le, "lt": operator.lt}


def matches(filter_: Filter | None, payload: dict[str, Any]) -> bool:
    """Evaluate a filter against a payload in Python (the reference semantics backends follow)."""
    if not filter_:
        return True

    def check(cond: Condition) -> bool:
        value = payload.get(cond.field)
        if isinstance(cond, Match):
            return value == cond.value
        if isinstance(cond, MatchAny):
            return value in cond.values
        if not isinstance(value, int | float) or isinstance(value, bool):
            return False
        return all(_COMPARE[op](value, bound) for op, bound in cond.bounds().items())

    return all(check(c) for c in filter_.must) and not any(check(c) for c in filter_.must_not)


# --- backups -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BackupManifest:
    """What a backup archive holds.

    Attributes:
        kind: ``native`` (engine snapshot) or ``logical`` (points).
        engine: Engine that wrote it (``qdrant-edge``, ``milvus-lite``, ``qdrant-server``, ...).
        collection: Physical collection that was backed up.
        dim: Vector dimension.
        count: Points in the collection at backup time.
        created_at: UTC timestamp (ISO 8601).
        embedder: Embedder name found in the points' payloads, if any.
        format: Archive format marker.
        version: Archive format version.
    """

    kind: BackupKind
    engine: str
    collection: str
    dim: int
    count: int
    created_at: str
    embedder: str | None = None
    format: str = BACKUP_FORMAT
    version: int = BACKUP_VERSION

    def to_json(self) -> bytes:
        """Serialise for the archive."""
        return json.dumps(asdict(self), indent=2).encode()

    @classmethod
    def from_json(cls, data: bytes) -> BackupManifest:
        """Parse and check the archive marker.

        Raises:
            StoreError: If the data is not an mlp-rag backup manifest of a known version.
        """
        raw = json.loads(data)
        if raw.get("format") != BACKUP_FORMAT or raw.get("version") != BACKUP_VERSION:
            raise StoreError("not an mlp rag backup (manifest format/version mismatch)")
        return cls(**raw)


@dataclass(frozen=True)
class RestoreReport:
    """Outcome of a restore: the manifest's count against what the store now holds."""

    collection: str
    expected: int
    restored: int
    kind: BackupKind
    seconds: float

    @property
    def ok(self) -> bool:
        """Whether every point came back."""
        return self.expected == self.restored


def read_manifest(archive: Path) -> BackupManifest:
    """Read the manifest of a backup archive."""
    with tarfile.open(archive, "r") as tar:
        member = tar.extractfile("manifest.json")
        if member is None:
            raise StoreError(f"{archive} has no manifest.json")
        return BackupManifest.from_json(member.read())


def add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    """Add an in-memory file to a tar archive."""
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(time.time())
    tar.addfile(info, io.BytesIO(data))


@contextmanager
def write_archive(archive: Path, manifest: BackupManifest) -> Iterator[tarfile.TarFile]:
    """Open a new backup archive for writing, ``manifest`` already in it (read by :func:`read_manifest`)."""
    with tarfile.open(archive, "w") as tar:
        add_bytes(tar, "manifest.json", manifest.to_json())
        yield tar


def utc_now() -> str:
    """Current UTC time, ISO 8601, second precision."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def encode_vector(vector: Sequence[float] | np.ndarray) -> str:
    """Pack a vector as base64 little-endian float32 (exact, and a third the size of JSON floats)."""
    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode()


def decode_vector(text: str) -> list[float]:
    """Inverse of :func:`encode_vector`."""
    return np.frombuffer(base64.b64decode(text), dtype="<f4").astype(np.float32).tolist()


def as_floats(vector: Sequence[float] | np.ndarray) -> list[float]:
    """A vector as the plain list of float32 values the engines' clients send."""
    return np.asarray(vector, dtype=np.float32).tolist()


# --- the interface -----------------------------------------------------------------------------


class VectorStore(ABC):
    """A vector database holding collections of points, addressed by collection name or alias.

    Subclasses implement the engine-specific methods; logical backup/restore and alias-aware
    helpers are shared. The point operations are defined here once, with their defaults and
    their no-op on empty input, and call the engine's ``_upsert``, ``_delete``, ``_retrieve``,
    ``_scroll`` and ``_search``. Methods that take ``collection`` accept an alias wherever the
    engine resolves aliases for reads; writes and admin operations take physical names (use
    :meth:`resolve`).
    """

    backend: ClassVar[str]
    """``qdrant`` or ``milvus``."""
    engine: str
    """``qdrant-edge``, ``qdrant-server``, ``milvus-lite`` or ``milvus-server``."""

    # collections
    @abstractmethod
    def create_collection(self, name: str, dim: int) -> None:
        """Create an empty collection of ``dim``-dimensional cosine vectors with payload indexes."""

    @abstractmethod
    def drop_collection(self, name: str) -> None:
        """Delete a collection and its data (no-op when absent)."""

    @abstractmethod
    def list_collections(self) -> list[str]:
        """Physical collection names, sorted."""

    def has_collection(self, name: str) -> bool:
        """Whether a physical collection exists."""
        return name in self.list_collections()

    @abstractmethod
    def collection_dim(self, name: str) -> int:
        """Vector dimension of a collection (or alias)."""

    # aliases
    @abstractmethod
    def aliases(self) -> dict[str, str]:
        """Map of alias to physical collection."""

    @abstractmethod
    def set_alias(self, alias: str, collection: str) -> None:
        """Point ``alias`` at ``collection`` atomically, creating the alias if needed."""

    @abstractmethod
    def drop_alias(self, alias: str) -> None:
        """Remove an alias (no-op when absent)."""

    def resolve(self, name: str) -> str | None:
        """Physical collection behind an alias or collection name, or ``None`` if neither exists."""
        target = self.aliases().get(name)
        if target is not None:
            return target
        return name if self.has_collection(name) else None

    # points
    def upsert(self, collection: str, points: Sequence[Point]) -> None:
        """Insert or replace points; when this returns the engine has acknowledged them."""
        if points:
            self._upsert(collection, points)

    def delete(self, collection: str, ids: Sequence[str]) -> None:
        """Delete points by id (missing ids are ignored)."""
        if ids:
            self._delete(collection, list(ids))

    def retrieve(self, collection: str, ids: Sequence[str], *, with_vectors: bool = False) -> list[Record]:
        """Read points by id; missing ids are absent from the result."""
        return self._retrieve(collection, list(ids), with_vectors) if ids else []

    def scroll(
        self,
        collection: str,
        *,
        fields: Sequence[str] | None = None,
        with_vectors: bool = False,
        batch_size: int = 256,
    ) -> Iterator[Record]:
        """Iterate over every point, with the given payload fields (all when ``None``)."""
        return self._scroll(collection, fields, with_vectors, batch_size)

    @abstractmethod
    def count(self, collection: str) -> int:
        """Exact number of points."""

    def search(
        self,
        collection: str,
        vector: Sequence[float] | np.ndarray,
        *,
        limit: int = 5,
        filter: Filter | None = None,
    ) -> list[Hit]:
        """Nearest neighbours by cosine similarity, best first, restricted by ``filter``."""
        return self._search(collection, as_floats(vector), limit, filter)

    def stored_embedder(self, collection: str) -> str | None:
        """Embedder name in the payload of the collection's first point (``None`` if empty or unnamed)."""
        sample = next(iter(self.scroll(collection, fields=["embedder"], batch_size=1)), None)
        return sample.payload.get("embedder") if sample else None

    # what each engine implements behind the point operations above
    @abstractmethod
    def _upsert(self, collection: str, points: Sequence[Point]) -> None:
        """Write a non-empty batch of points and wait for the engine's acknowledgement."""

    @abstractmethod
    def _delete(self, collection: str, ids: list[str]) -> None:
        """Delete a non-empty list of ids."""

    @abstractmethod
    def _retrieve(self, collection: str, ids: list[str], with_vectors: bool) -> list[Record]:
        """Read a non-empty list of ids."""

    @abstractmethod
    def _scroll(
        self, collection: str, fields: Sequence[str] | None, with_vectors: bool, batch_size: int
    ) -> Iterator[Record]:
        """Page through every point, ``batch_size`` at a time."""

    @abstractmethod
    def _search(self, collection: str, vector: list[float], limit: int, filter_: Filter | None) -> list[Hit]:
        """The ``limit`` nearest neighbours of ``vector`` that pass ``filter_``, best first."""

    def finalize(self, collection: str) -> None:  # noqa: B027 - optional hook
        """Make bulk-loaded data durable and indexed (flush, optimise); default no-op."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release handles, locks and connections."""

    def __enter__(self) -> VectorStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def describe(self) -> str:
        """Human-readable location, e.g. the data directory or server URL."""
        return self.engine

    # backups
    def backup(self, collection: str, archive: Path, *, kind: BackupKind = "logical") -> BackupManifest:
        """Write a backup archive of ``collection`` (or the collection behind an alias).

        Args:
            collection: Collection or alias.
            archive: Output tar file (parent directories are created).
            kind: ``logical`` (portable) or ``native`` (engine snapshot, where supported).

        Returns:
            The manifest written into the archive.
        """
        physical = self._physical(collection)
        archive.parent.mkdir(parents=True, exist_ok=True)
        if kind == "native":
            return self._native_backup(physical, archive)
        return self._logical_backup(physical, archive)

    def restore(self, archive: Path, collection: str) -> RestoreReport:
        """Restore an archive into a new collection ``collection``.

        Raises:
            StoreError: If the collection exists, or a native archive comes from another engine.
            RestoreMismatchError: If the restored count differs from the manifest's.
        """
        check_collection_name(collection)
        if self.has_collection(collection):
            raise StoreError(f"collection {collection!r} already exists; restore needs a new name")
        manifest = read_manifest(archive)
        started = time.perf_counter()
        if manifest.kind == "native":
            if manifest.engine != self.engine:
                raise StoreError(
                    f"native {manifest.engine} backup cannot restore into {self.engine}; use a logical backup"
                )
            self._native_restore(archive, manifest, collection)
        else:
            self._logical_restore(archive, manifest, collection)
        restored = self.count(collection)
        report = RestoreReport(
            collection, manifest.count, restored, manifest.kind, time.perf_counter() - started
        )
        if not report.ok:
            raise RestoreMismatchError(
                f"restore into {collection!r} holds {restored} points, backup manifest says {manifest.count}"
            )
        return report

    def _physical(self, name: str) -> str:
        physical = self.resolve(name)
        if physical is None:
            raise StoreError(f"no collection or alias named {name!r} in {self.describe()}")
        return physical

    def _native_backup(self, collection: str, archive: Path) -> BackupManifest:
        raise StoreError(f"{self.engine} has no native backup here; use a logical backup")

    def _native_manifest(self, collection: str) -> BackupManifest:
        """Manifest of a native backup of ``collection``, taken before the engine snapshots it."""
        count = self.count(collection)
        dim = self.collection_dim(collection)
        return BackupManifest(
            "native", self.engine, collection, dim, count, utc_now(), self.stored_embedder(collection)
        )

    def _native_restore(self, archive: Path, manifest: BackupManifest, collection: str) -> None:
        raise StoreError(f"{self.engine} cannot restore native backups")

    def _logical_backup(self, collection: str, archive: Path) -> BackupManifest:
        dim = self.collection_dim(collection)
        count = 0
        embedder: str | None = None
        with tempfile.TemporaryFile() as buffer:
            with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=3) as gz:
                for record in self.scroll(collection, with_vectors=True):
                    if record.vector is None:
                        raise StoreError(f"point {record.id} came back without its vector")
                    embedder = embedder or record.payload.get("embedder")
                    line = {
                        "id": record.id,
                        "vector": encode_vector(record.vector),
                        "payload": record.payload,
                    }
                    gz.write(json.dumps(line, separators=(",", ":")).encode() + b"\n")
                    count += 1
            manifest = BackupManifest("logical", self.engine, collection, dim, count, utc_now(), embedder)
            size = buffer.tell()
            buffer.seek(0)
            with write_archive(archive, manifest) as tar:
                info = tarfile.TarInfo("points.jsonl.gz")
                info.size = size
                info.mtime = int(time.time())
                tar.addfile(info, buffer)
        return manifest

    def _logical_restore(
        self, archive: Path, manifest: BackupManifest, collection: str, batch: int = 256
    ) -> None:
        self.create_collection(collection, manifest.dim)
        with tarfile.open(archive, "r") as tar:
            member = tar.extractfile("points.jsonl.gz")
            if member is None:
                raise StoreError(f"{archive} has no points.jsonl.gz")
            with gzip.GzipFile(fileobj=member, mode="rb") as gz:
                pending: list[Point] = []
                for line in gz:
                    raw = json.loads(line)
                    pending.append(Point(raw["id"], decode_vector(raw["vector"]), raw["payload"]))
                    if len(pending) >= batch:
                        self.upsert(collection, pending)
                        pending = []
                if pending:
                    self.upsert(collection, pending)
        self.finalize(collection)
