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
import hashlib
import json
import operator
import re
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

from workloads.rag.stores.archive import (
    ArchiveVerificationError,
    extract_verified,
    read_manifest_only,
    write_verified,
)

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
BACKUP_VERSION = 2


class StoreError(RuntimeError):
    """A vector-store operation failed in a way the caller should report, not retry."""


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
                Match(name, values[0]) if len(values) == 1 else MatchAny(name, tuple(values))  # type: ignore[arg-type]
            )
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


class BackupVerificationError(StoreError, ArchiveVerificationError):
    """A backup archive is damaged, truncated or forged, or the restored data does not match it."""


class RestoreMismatchError(BackupVerificationError):
    """A restore produced a different number of points than the backup holds."""


PROBE_POINTS = 8
"""Points whose vectors a manifest records, compared after a restore (catches garbage vectors)."""


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
        ids_sha256: sha256 of the sorted point ids, one per line (checked after a restore).
        probe: Up to :data:`PROBE_POINTS` ``{id, vector}`` (base64 float32) checked after a restore.
        files: ``{path, size, sha256}`` of every other archive member (written by the archive writer).
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
    ids_sha256: str | None = None
    probe: tuple[dict[str, str], ...] = ()
    files: tuple[dict[str, Any], ...] = ()
    format: str = BACKUP_FORMAT
    version: int = BACKUP_VERSION

    def to_dict(self) -> dict[str, Any]:
        """Plain data (the manifest's JSON form)."""
        data = asdict(self)
        data["probe"] = list(self.probe)
        data["files"] = list(self.files)
        return data

    def to_json(self) -> bytes:
        """Serialise for the archive."""
        return json.dumps(self.to_dict(), indent=2).encode()

    @classmethod
    def from_dict(cls, raw: Any) -> BackupManifest:
        """Parse and check a manifest.

        Raises:
            BackupVerificationError: If it is not an mlp-rag backup manifest of this version, or
                a field is missing or of the wrong type.
        """
        if not isinstance(raw, dict) or raw.get("format") != BACKUP_FORMAT:
            raise BackupVerificationError("not an mlp rag backup (manifest format marker missing)")
        if raw.get("version") != BACKUP_VERSION:
            raise BackupVerificationError(
                f"backup format version {raw.get('version')!r} is not {BACKUP_VERSION}: archives written "
                "before checksums were recorded cannot be verified; take a new backup"
            )
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise BackupVerificationError(f"backup manifest has unknown fields {unknown}")
        checks: dict[str, tuple[type, ...]] = {
            "kind": (str,),
            "engine": (str,),
            "collection": (str,),
            "dim": (int,),
            "count": (int,),
            "created_at": (str,),
            "embedder": (str, type(None)),
            "ids_sha256": (str, type(None)),
            "probe": (list,),
            "files": (list,),
        }
        for name, types in checks.items():
            if name not in raw and name not in {"embedder", "ids_sha256", "probe", "files"}:
                raise BackupVerificationError(f"backup manifest has no {name!r}")
            value = raw.get(name)
            if name in raw and (not isinstance(value, types) or isinstance(value, bool)):
                raise BackupVerificationError(
                    f"backup manifest field {name!r} has the wrong type ({value!r})"
                )
        if raw["kind"] not in ("native", "logical"):
            raise BackupVerificationError(
                f"backup manifest kind {raw['kind']!r} is neither native nor logical"
            )
        if raw["dim"] <= 0 or raw["count"] < 0:
            raise BackupVerificationError("backup manifest has a non-positive dim or a negative count")
        probe = raw.get("probe", [])
        if not all(
            isinstance(p, dict) and isinstance(p.get("id"), str) and isinstance(p.get("vector"), str)
            for p in probe
        ):
            raise BackupVerificationError("backup manifest 'probe' entries need an id and a vector")
        return cls(**{**raw, "probe": tuple(probe), "files": tuple(raw.get("files", []))})

    @classmethod
    def from_json(cls, data: bytes) -> BackupManifest:
        """Parse :meth:`to_json` output (see :meth:`from_dict`)."""
        try:
            raw = json.loads(data)
        except ValueError as exc:
            raise BackupVerificationError(f"backup manifest is not valid JSON ({exc})") from None
        return cls.from_dict(raw)


@dataclass(frozen=True)
class RestoreReport:
    """Outcome of a restore: the manifest's count against what the store now holds."""

    collection: str
    expected: int
    restored: int
    kind: BackupKind
    seconds: float
    files_verified: int = 0

    @property
    def ok(self) -> bool:
        """Whether every point came back."""
        return self.expected == self.restored


def read_manifest(archive: Path) -> BackupManifest:
    """Read the manifest of a backup archive (without verifying the payload).

    Raises:
        BackupVerificationError: If the archive is unreadable or its manifest invalid.
    """
    try:
        return BackupManifest.from_dict(read_manifest_only(archive))
    except ArchiveVerificationError as exc:
        if isinstance(exc, BackupVerificationError):
            raise
        raise BackupVerificationError(str(exc)) from None


def write_backup(
    archive: Path, manifest: BackupManifest, files: Sequence[tuple[str, Path]]
) -> BackupManifest:
    """Write a compressed archive of ``files`` with ``manifest`` and their checksums.

    Returns:
        The manifest as written (with its ``files`` checksums).
    """
    entries = write_verified(archive, {k: v for k, v in manifest.to_dict().items() if k != "files"}, files)
    return replace(manifest, files=tuple(e.to_dict() for e in entries))


def utc_now() -> str:
    """Current UTC time, ISO 8601, second precision."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def ids_digest(ids: Iterable[str]) -> str:
    """sha256 of the sorted ids, one per line."""
    digest = hashlib.sha256()
    for point_id in sorted(ids):
        digest.update(point_id.encode() + b"\n")
    return digest.hexdigest()


def encode_vector(vector: Sequence[float] | np.ndarray) -> str:
    """Pack a vector as base64 little-endian float32 (exact, and a third the size of JSON floats)."""
    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode()


def decode_vector(text: str) -> list[float]:
    """Inverse of :func:`encode_vector`."""
    floats: list[float] = np.frombuffer(base64.b64decode(text), dtype="<f4").astype(np.float32).tolist()
    return floats


def as_floats(vector: Sequence[float] | np.ndarray) -> list[float]:
    """A vector as the plain list of float32 values the engines' clients send."""
    floats: list[float] = np.asarray(vector, dtype=np.float32).tolist()
    return floats


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

        The archive is a gzip-compressed tar whose manifest records every member's sha256, the
        point count, a digest of the point ids and a few probe vectors; :meth:`restore` checks
        all of them.

        Args:
            collection: Collection or alias.
            archive: Output file (parent directories are created; written atomically).
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
        """Restore an archive into a new collection ``collection``, verifying it end to end.

        The archive is first extracted into a staging directory with every member's size and
        sha256 checked against the manifest; only then is the collection created. After loading,
        the point count, the dimension, the digest of the point ids and the probe vectors must
        match the manifest. On any failure the new collection is dropped, so a retry starts clean.

        Raises:
            StoreError: If the collection exists, or a native archive comes from another engine.
            BackupVerificationError: If the archive is damaged, truncated or forged, or the
                restored data does not match it.
            RestoreMismatchError: If the restored count differs from the manifest's.
        """
        check_collection_name(collection)
        if self.has_collection(collection) or collection in self.aliases():
            raise StoreError(f"collection {collection!r} already exists; restore needs a new name")
        started = time.perf_counter()
        parent = self._staging_parent()
        if parent is not None:
            parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".mlp-restore-", dir=parent) as tmp:
            staging = Path(tmp)
            try:
                raw = extract_verified(archive, staging)
            except ArchiveVerificationError as exc:
                raise BackupVerificationError(str(exc)) from None
            manifest = BackupManifest.from_dict(raw)
            if manifest.kind == "native" and manifest.engine != self.engine:
                raise StoreError(
                    f"native {manifest.engine} backup cannot restore into {self.engine}; use a logical backup"
                )
            try:
                if manifest.kind == "native":
                    self._native_restore(staging, manifest, collection)
                else:
                    self._logical_restore(staging, manifest, collection)
                restored = self._verify_restored(manifest, collection)
            except BaseException as exc:
                self._discard(collection)
                if isinstance(exc, StoreError | KeyboardInterrupt | SystemExit):
                    raise
                raise BackupVerificationError(
                    f"{archive}: restore failed and was rolled back ({type(exc).__name__}: {exc})"
                ) from exc
        return RestoreReport(
            collection,
            manifest.count,
            restored,
            manifest.kind,
            time.perf_counter() - started,
            len(manifest.files),
        )

    def _staging_parent(self) -> Path | None:
        """Directory for restore staging (the system's temporary directory by default)."""
        return None

    def _discard(self, collection: str) -> None:
        """Drop a half-restored collection, ignoring errors (the original error is what matters)."""
        try:
            if self.has_collection(collection):
                self.drop_collection(collection)
        except Exception:  # noqa: BLE001 - best effort cleanup under an error being raised
            pass

    def _verify_restored(self, manifest: BackupManifest, collection: str) -> int:
        restored = self.count(collection)
        if restored != manifest.count:
            raise RestoreMismatchError(
                f"restore into {collection!r} holds {restored} points, backup manifest says {manifest.count}"
            )
        dim = self.collection_dim(collection)
        if dim != manifest.dim:
            raise BackupVerificationError(
                f"restored collection has dimension {dim}, manifest says {manifest.dim}"
            )
        if manifest.ids_sha256 is not None:
            got = ids_digest(r.id for r in self.scroll(collection, fields=[], batch_size=1024))
            if got != manifest.ids_sha256:
                raise BackupVerificationError(
                    "restored point ids differ from the ids recorded at backup time"
                )
        if manifest.probe:
            wanted = {p["id"]: np.asarray(decode_vector(p["vector"])) for p in manifest.probe}
            records = {r.id: r for r in self.retrieve(collection, list(wanted), with_vectors=True)}
            for point_id, expected in wanted.items():
                record = records.get(point_id)
                if record is None or record.vector is None:
                    raise BackupVerificationError(f"probe point {point_id} is missing after the restore")
                got_vec = np.asarray(record.vector)
                cosine = float(
                    got_vec @ expected / (np.linalg.norm(got_vec) * np.linalg.norm(expected) or 1.0)
                )
                if not cosine >= 0.999:
                    raise BackupVerificationError(
                        f"probe point {point_id} came back with a different vector (cosine {cosine:.4f}): "
                        "the restored data is damaged"
                    )
        return restored

    def _physical(self, name: str) -> str:
        physical = self.resolve(name)
        if physical is None:
            raise StoreError(f"no collection or alias named {name!r} in {self.describe()}")
        return physical

    def _native_backup(self, collection: str, archive: Path) -> BackupManifest:
        raise StoreError(f"{self.engine} has no native backup here; use a logical backup")

    def _fingerprint(self, collection: str) -> tuple[str, tuple[dict[str, str], ...]]:
        """Digest of the ids and the probe points of ``collection``."""
        ids = sorted(r.id for r in self.scroll(collection, fields=[], batch_size=1024))
        picks = (
            [ids[i * len(ids) // PROBE_POINTS] for i in range(PROBE_POINTS)]
            if len(ids) > PROBE_POINTS
            else ids
        )
        picks = sorted(set(picks))
        records = self.retrieve(collection, picks, with_vectors=True)
        probe = tuple(
            {"id": r.id, "vector": encode_vector(r.vector)} for r in records if r.vector is not None
        )
        return ids_digest(ids), probe

    def _native_manifest(self, collection: str) -> BackupManifest:
        """Manifest of a native backup of ``collection``, taken before the engine snapshots it."""
        count = self.count(collection)
        dim = self.collection_dim(collection)
        ids_sha, probe = self._fingerprint(collection)
        return BackupManifest(
            "native",
            self.engine,
            collection,
            dim,
            count,
            utc_now(),
            self.stored_embedder(collection),
            ids_sha,
            probe,
        )

    def _native_restore(self, staging: Path, manifest: BackupManifest, collection: str) -> None:
        raise StoreError(f"{self.engine} cannot restore native backups")

    def _logical_backup(self, collection: str, archive: Path) -> BackupManifest:
        dim = self.collection_dim(collection)
        count = 0
        embedder: str | None = None
        ids: list[str] = []
        with tempfile.TemporaryDirectory(prefix="mlp-backup-") as tmp:
            points_file = Path(tmp) / "points.jsonl"
            with points_file.open("wb") as out:
                for record in self.scroll(collection, with_vectors=True):
                    if record.vector is None:
                        raise StoreError(f"point {record.id} came back without its vector")
                    embedder = embedder or record.payload.get("embedder")
                    line = {
                        "id": record.id,
                        "vector": encode_vector(record.vector),
                        "payload": record.payload,
                    }
                    out.write(json.dumps(line, separators=(",", ":")).encode() + b"\n")
                    ids.append(record.id)
                    count += 1
            ids.sort()
            picks = sorted({ids[i * len(ids) // PROBE_POINTS] for i in range(min(PROBE_POINTS, len(ids)))})
            probe = tuple(
                {"id": r.id, "vector": encode_vector(r.vector)}
                for r in self.retrieve(collection, picks, with_vectors=True)
                if r.vector is not None
            )
            manifest = BackupManifest(
                "logical", self.engine, collection, dim, count, utc_now(), embedder, ids_digest(ids), probe
            )
            return write_backup(archive, manifest, [("points.jsonl", points_file)])

    def _logical_restore(
        self, staging: Path, manifest: BackupManifest, collection: str, batch: int = 256
    ) -> None:
        points_file = staging / "points.jsonl"
        if not points_file.is_file():
            raise BackupVerificationError("logical backup holds no points.jsonl")
        self.create_collection(collection, manifest.dim)
        with points_file.open("rb") as lines:
            pending: list[Point] = []
            for number, line in enumerate(lines, 1):
                try:
                    raw = json.loads(line)
                    point = Point(str(raw["id"]), decode_vector(raw["vector"]), dict(raw["payload"]))
                except (ValueError, KeyError, TypeError) as exc:
                    raise BackupVerificationError(
                        f"points.jsonl line {number} is malformed ({exc})"
                    ) from None
                if len(point.vector) != manifest.dim:
                    raise BackupVerificationError(
                        f"points.jsonl line {number}: vector of {len(point.vector)} values, manifest dim {manifest.dim}"
                    )
                pending.append(point)
                if len(pending) >= batch:
                    self.upsert(collection, pending)
                    pending = []
            if pending:
                self.upsert(collection, pending)
        self.finalize(collection)
