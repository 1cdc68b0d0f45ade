"""Qdrant backup operations: list the snapshot runs in object storage, restore collections from them.

The scheduled snapshot job (``docs/vectordb-operations.md``) writes, per run::

    s3://<bucket>/<prefix>/<run-id>/node-<i>/<collection>/<snapshot-file>
    s3://<bucket>/<prefix>/<run-id>/manifest.json      # written last; lists every file + sha256

This module reads those manifests, and restores a collection into a Qdrant server, through the
official ``qdrant-client``, in one of two ways:

* ``upload`` (default): download the file from S3 to a temporary file, check its sha256 against the
  manifest, and upload it (Qdrant checks the checksum again). Works wherever this process can reach
  both S3 and Qdrant (for example through port-forwards).
* ``recover``: hand Qdrant a presigned S3 URL with the checksum. Nothing passes through this
  machine, but Qdrant itself must be able to reach the S3 endpoint (run it with the in-cluster
  endpoint).

Either way the snapshot goes into a *new* collection (``<collection>_<run-id>`` by default); its
exact point count must equal the count the job recorded before taking the snapshot, and only then
is an alias switched to it. A failed restore drops the new collection. A snapshot holds the shards
local to the node that took it: restore node ``i``'s files into peer ``i``.

Endpoints and credentials come from a stack's outputs (``stacks.outputs`` keys), overridable for
port-forwards.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from stacks import outputs as keys
from workloads.s3uri import S3Prefix

DEFAULT_SNAPSHOTS_URI = "s3://vectordb-snapshots/qdrant/qdrant"
"""Where the platform's snapshot job writes (bucket ``vectordb-snapshots``, prefix ``qdrant/<release>``)."""
MANIFEST_NAME = "manifest.json"
SUPPORTED_FORMAT = 1
CHUNK = 1 << 20

RestoreMethod = Literal["upload", "recover"]
Progress = Callable[[int], None]


class SnapshotError(RuntimeError):
    """A snapshot run or file could not be found, read or verified."""


class RestoreVerificationError(SnapshotError):
    """A snapshot file or the collection restored from it does not match the run's manifest."""


class QdrantError(RuntimeError):
    """The Qdrant server refused a request or could not be reached."""


# ---------------------------------------------------------------------------------------------
# Where the runs are


class SnapshotsLocation(S3Prefix):
    """A bucket and key prefix holding snapshot runs (a bad URI raises :class:`SnapshotError`)."""

    parse_error = SnapshotError


@dataclass(frozen=True)
class SnapshotFile:
    """One collection snapshot of one node, as the manifest lists it."""

    node: int
    collection: str
    name: str
    key: str
    size: int
    sha256: str
    points: int | None = None
    """Exact point count recorded just before the snapshot (``None`` in runs that predate it)."""

    @property
    def run_id(self) -> str:
        """The run the file belongs to (``<prefix>/<run-id>/node-<i>/<collection>/<file>``)."""
        parts = self.key.split("/")
        return parts[-4] if len(parts) >= 4 else ""


@dataclass(frozen=True)
class SnapshotRun:
    """One run of the snapshot job.

    Attributes:
        run_id: ``YYYYmmddTHHMMSSZ`` (UTC start time).
        status: ``complete``, ``partial`` (some collections failed) or ``incomplete`` (no manifest:
            the run crashed or is still going).
        created_at: ISO start time ("" when unknown).
        nodes: Qdrant peer URLs in node order.
        snapshots: The files of the run.
        failures: ``{node, collection, error}`` for each collection that failed.

    """

    run_id: str
    status: str
    created_at: str = ""
    nodes: tuple[str, ...] = ()
    snapshots: tuple[SnapshotFile, ...] = ()
    failures: tuple[dict[str, Any], ...] = ()

    @property
    def collections(self) -> list[str]:
        """Collections with at least one snapshot in this run."""
        return sorted({s.collection for s in self.snapshots})

    @property
    def total_size(self) -> int:
        """Bytes in this run's snapshot files."""
        return sum(s.size for s in self.snapshots)

    def files(self, collection: str | None = None, node: int | None = None) -> list[SnapshotFile]:
        """This run's files, optionally for one collection and/or node."""
        return [
            s
            for s in self.snapshots
            if (collection is None or s.collection == collection) and (node is None or s.node == node)
        ]

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``--json`` output."""
        data = asdict(self)
        data["collections"] = self.collections
        data["total_size"] = self.total_size
        return data


def _run_from_manifest(run_id: str, manifest: dict[str, Any]) -> SnapshotRun:
    if manifest.get("format") != SUPPORTED_FORMAT:
        raise SnapshotError(f"run {run_id}: unsupported manifest format {manifest.get('format')!r}")
    try:
        snapshots = tuple(
            SnapshotFile(
                node=int(s["node"]),
                collection=str(s["collection"]),
                name=str(s["name"]),
                key=str(s["key"]),
                size=int(s["size"]),
                sha256=str(s["sha256"]),
                points=int(s["points"]) if s.get("points") is not None else None,
            )
            for s in manifest.get("snapshots", [])
        )
    except (KeyError, TypeError, ValueError) as error:
        raise SnapshotError(f"run {run_id}: malformed manifest entry ({error})") from None
    return SnapshotRun(
        run_id=run_id,
        status=str(manifest.get("status", "incomplete")),
        created_at=str(manifest.get("created_at", "")),
        nodes=tuple(n.get("url", "") for n in manifest.get("nodes", [])),
        snapshots=snapshots,
        failures=tuple(manifest.get("failures", [])),
    )


def list_runs(s3: Any, location: SnapshotsLocation) -> list[SnapshotRun]:
    """Every run under ``location``, newest first.

    Args:
        s3: A boto3 S3 client.
        location: Bucket and prefix of the runs.

    Raises:
        SnapshotError: When the bucket cannot be listed.

    """
    import botocore.exceptions

    run_ids: list[str] = []
    try:
        pages = s3.get_paginator("list_objects_v2").paginate(
            Bucket=location.bucket, Prefix=location.prefix + "/", Delimiter="/"
        )
        for page in pages:
            for common in page.get("CommonPrefixes", []):
                run_ids.append(common["Prefix"][len(location.prefix) + 1 :].rstrip("/"))
    except botocore.exceptions.ClientError as error:
        raise SnapshotError(f"cannot list {location.uri}: {error}") from None
    runs = []
    for run_id in sorted(run_ids, reverse=True):
        key = f"{location.prefix}/{run_id}/{MANIFEST_NAME}"
        try:
            body = s3.get_object(Bucket=location.bucket, Key=key)["Body"].read()
        except s3.exceptions.NoSuchKey:
            runs.append(SnapshotRun(run_id=run_id, status="incomplete"))
            continue
        try:
            manifest = json.loads(body)
        except json.JSONDecodeError as error:
            raise SnapshotError(f"s3://{location.bucket}/{key} is not valid JSON: {error}") from None
        runs.append(_run_from_manifest(run_id, manifest))
    return runs


def find_run(runs: Sequence[SnapshotRun], run_id: str = "latest") -> SnapshotRun:
    """The run named ``run_id``, or the newest run with snapshots for ``latest``.

    ``latest`` prefers the newest ``complete`` run and falls back to the newest ``partial`` one.

    Raises:
        SnapshotError: When no such run exists.

    """
    if run_id != "latest":
        for run in runs:
            if run.run_id == run_id:
                return run
        known = ", ".join(r.run_id for r in runs[:5]) or "none"
        raise SnapshotError(f"no snapshot run {run_id!r} (newest runs: {known})")
    for wanted in ("complete", "partial"):
        for run in runs:
            if run.status == wanted and run.snapshots:
                return run
    raise SnapshotError("no snapshot run with snapshots yet: has the snapshot CronJob run?")


# ---------------------------------------------------------------------------------------------
# Qdrant, through the official client


@dataclass
class QdrantServer:
    """The calls a restore needs, through ``qdrant-client``.

    Attributes:
        url: Base URL, e.g. ``http://localhost:6333``.
        api_key: API key (empty for none).
        timeout: Seconds per request (uploads of large snapshots need long ones).

    """

    url: str
    api_key: str = field(default="", repr=False)
    timeout: float = 3600.0
    _client: Any = field(default=None, repr=False, compare=False)

    @property
    def client(self) -> Any:
        """The ``QdrantClient`` (built on first use)."""
        if self._client is None:
            from workloads.rag.stores.qdrant_server import make_client

            self._client = make_client(self.url, self.api_key, self.timeout)
        return self._client

    def _do(self, what: str, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

        from workloads.rag.stores.base import StoreError

        try:
            return call(*args, **kwargs)
        except UnexpectedResponse as error:
            raise QdrantError(f"{what}: HTTP {error.status_code} {_detail(error.content or b'')}") from None
        except (ResponseHandlingException, StoreError) as error:
            raise QdrantError(f"cannot reach Qdrant at {self.url} ({what}): {error}") from None

    def collections(self) -> list[str]:
        """Names of the server's collections."""
        return sorted(c.name for c in self._do("list collections", self.client.get_collections).collections)

    def aliases(self) -> dict[str, str]:
        """Map of alias to collection."""
        return {
            a.alias_name: a.collection_name for a in self._do("list aliases", self.client.get_aliases).aliases
        }

    def points_count(self, collection: str) -> int:
        """Exact point count of ``collection``."""
        return int(self._do(f"count {collection}", self.client.count, collection, exact=True).count)

    def drop(self, collection: str) -> None:
        """Delete a collection (no-op when absent)."""
        if collection in self.collections():
            self._do(f"delete {collection}", self.client.delete_collection, collection)

    def switch_alias(self, alias: str, collection: str) -> None:
        """Point ``alias`` at ``collection`` in one atomic request."""
        from workloads.rag.stores.qdrant_server import alias_switch_actions

        actions = alias_switch_actions(alias, collection, replace=alias in self.aliases())
        self._do(f"alias {alias} -> {collection}", self.client.update_collection_aliases, actions)

    def recover(self, collection: str, location: str, checksum: str | None = None) -> None:
        """Make Qdrant fetch a snapshot from ``location`` into ``collection``."""
        from qdrant_client.http import models

        self._do(
            f"recover {collection}",
            self.client.recover_snapshot,
            collection,
            location,
            priority=models.SnapshotPriority.SNAPSHOT,
            checksum=checksum,
            wait=True,
        )

    def upload(self, collection: str, path: Path, checksum: str | None = None) -> None:
        """Upload a snapshot file into ``collection`` (Qdrant verifies ``checksum``)."""
        from workloads.rag.stores.qdrant_server import upload_snapshot

        self._do(
            f"snapshot upload for {collection!r}", upload_snapshot, self.client, collection, path, checksum
        )


def _detail(payload: bytes) -> str:
    try:
        status = json.loads(payload).get("status")
    except (ValueError, AttributeError):
        return payload[:200].decode(errors="replace")
    if isinstance(status, dict):
        return str(status.get("error", status))
    return str(status)


# ---------------------------------------------------------------------------------------------
# Restore


@dataclass(frozen=True)
class RestoreResult:
    """What one restored snapshot did."""

    collection: str
    restored_as: str
    node: int
    key: str
    size: int
    method: str
    seconds: float
    points: int | None
    expected: int | None = None
    alias: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``--json`` output."""
        return asdict(self)


def download_verified(
    s3: Any, bucket: str, snapshot: SnapshotFile, path: Path, progress: Progress | None = None
) -> None:
    """Download a snapshot file and check its sha256 against the manifest.

    Raises:
        SnapshotError: When the object is missing or its content does not match.

    """
    import botocore.exceptions

    digest = hashlib.sha256()
    try:
        body = s3.get_object(Bucket=bucket, Key=snapshot.key)["Body"]
        with path.open("wb") as handle:
            for chunk in iter(lambda: body.read(CHUNK), b""):
                digest.update(chunk)
                handle.write(chunk)
                if progress:
                    progress(len(chunk))
    except botocore.exceptions.ClientError as error:
        raise SnapshotError(f"cannot download s3://{bucket}/{snapshot.key}: {error}") from None
    if digest.hexdigest() != snapshot.sha256:
        raise RestoreVerificationError(
            f"s3://{bucket}/{snapshot.key} is corrupt: sha256 {digest.hexdigest()} != manifest {snapshot.sha256}"
        )


def default_restore_name(snapshot: SnapshotFile) -> str:
    """The new collection a snapshot restores into by default: ``<collection>_<run-id>``."""
    return (
        f"{snapshot.collection}_{snapshot.run_id.lower()}"
        if snapshot.run_id
        else f"{snapshot.collection}_restored"
    )


def restore_snapshot(
    s3: Any,
    bucket: str,
    snapshot: SnapshotFile,
    qdrant: QdrantServer,
    *,
    restore_as: str | None = None,
    alias: str | None = None,
    method: RestoreMethod = "upload",
    work_dir: Path | None = None,
    progress: Progress | None = None,
) -> RestoreResult:
    """Restore one snapshot file into a new collection of ``qdrant``, verified, then switch ``alias``.

    The file's sha256 is checked against the run's manifest (by this process on download, and
    by Qdrant itself on upload or recover); the restored collection's exact count must equal the
    count recorded when the snapshot was taken. Only then is ``alias`` pointed at it. On any
    failure the new collection is dropped, so nothing is left behind and a retry starts clean.

    Args:
        s3: A boto3 S3 client.
        bucket: Bucket of the snapshot.
        snapshot: The file, from a run's manifest.
        qdrant: The server to restore into.
        restore_as: New collection to create (default :func:`default_restore_name`); must not exist.
        alias: Alias to point at the restored collection once verified (``None``: leave aliases).
        method: ``upload`` through this process, or ``recover`` from a presigned URL.
        work_dir: Where to stage the download (a temporary directory by default).
        progress: Called with byte counts as the file moves (download then upload).

    Raises:
        SnapshotError: When the file is missing or corrupt, or the target collection exists.
        RestoreVerificationError: When the restored count differs from the recorded one.
        QdrantError: When Qdrant rejects the snapshot or cannot be reached.

    """
    target = restore_as or default_restore_name(snapshot)
    if method not in ("upload", "recover"):
        raise ValueError(f"method must be 'upload' or 'recover', got {method!r}")
    existing = qdrant.collections()
    if target in existing or target in qdrant.aliases():
        raise SnapshotError(
            f"collection {target!r} already exists in {qdrant.url}; restore into a new name (--as)"
        )
    if alias is not None and alias in existing:
        raise SnapshotError(
            f"{alias!r} is a collection, not an alias, in {qdrant.url}: an alias cannot take its name; "
            "restore without switching and repoint clients, or drop it first"
        )
    started = time.monotonic()
    try:
        if method == "recover":
            url = s3.generate_presigned_url(
                "get_object", Params={"Bucket": bucket, "Key": snapshot.key}, ExpiresIn=6 * 3600
            )
            qdrant.recover(target, url, checksum=snapshot.sha256)
        else:
            with tempfile.TemporaryDirectory(dir=work_dir, prefix="qdrant-restore-") as tmp:
                local = Path(tmp) / snapshot.name
                download_verified(s3, bucket, snapshot, local, progress)
                qdrant.upload(target, local, checksum=snapshot.sha256)
        points = qdrant.points_count(target)
        if snapshot.points is not None and points != snapshot.points:
            raise RestoreVerificationError(
                f"restored {target!r} holds {points} points, the snapshot run recorded {snapshot.points}: "
                "the restore was rolled back"
            )
        if alias is not None:
            qdrant.switch_alias(alias, target)
    except BaseException:
        try:
            qdrant.drop(target)
        except QdrantError:
            pass
        raise
    return RestoreResult(
        collection=snapshot.collection,
        restored_as=target,
        node=snapshot.node,
        key=snapshot.key,
        size=snapshot.size,
        method=method,
        seconds=round(time.monotonic() - started, 3),
        points=points,
        expected=snapshot.points,
        alias=alias,
    )


def plan_restore(
    run: SnapshotRun, collections: Sequence[str] = (), node: int | None = None
) -> list[SnapshotFile]:
    """The files to restore from ``run``: the named collections (all by default) of one node.

    Args:
        run: The run.
        collections: Collections to restore; empty for every collection of the run.
        node: Node whose files to use. May be omitted only when the run has one node.

    Raises:
        SnapshotError: When a collection is not in the run, or the node is ambiguous or absent.

    """
    nodes = sorted({s.node for s in run.snapshots})
    if node is None:
        if len(nodes) > 1:
            raise SnapshotError(
                f"run {run.run_id} has snapshots of nodes {nodes}: pick one with --node and restore each node's "
                "files into the matching Qdrant peer (see docs/vectordb-operations.md)"
            )
        node = nodes[0] if nodes else 0
    if node not in nodes:
        raise SnapshotError(f"run {run.run_id} has no snapshots of node {node} (nodes: {nodes})")
    wanted = list(collections) or run.collections
    files = []
    for name in wanted:
        found = run.files(collection=name, node=node)
        if not found:
            raise SnapshotError(
                f"run {run.run_id} has no snapshot of collection {name!r} on node {node} "
                f"(collections: {', '.join(run.collections)})"
            )
        files.extend(found)
    return files


# ---------------------------------------------------------------------------------------------
# Connecting through a stack's outputs


@dataclass(frozen=True)
class Connection:
    """Endpoints and credentials of a stack's Qdrant and object store."""

    qdrant_url: str
    qdrant_api_key: str = field(repr=False)
    s3_endpoint: str
    s3_access_key_id: str
    s3_secret_access_key: str = field(repr=False)

    def qdrant(self, timeout: float = 3600.0) -> QdrantServer:
        """A Qdrant client for this connection."""
        return QdrantServer(self.qdrant_url, self.qdrant_api_key, timeout)

    def s3(self) -> Any:
        """A boto3 S3 client for this connection (path-style addressing, as MinIO needs)."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.s3_endpoint,
            aws_access_key_id=self.s3_access_key_id,
            aws_secret_access_key=self.s3_secret_access_key,
            region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}, signature_version="s3v4"),
        )


def connection_from_outputs(
    require: Callable[[str], Any],
    *,
    qdrant_url: str | None = None,
    qdrant_api_key: str | None = None,
    s3_endpoint: str | None = None,
) -> Connection:
    """Build a :class:`Connection` from stack outputs, with overrides for port-forwards.

    Args:
        require: Returns an output by ``stacks.outputs`` key or raises naming it (e.g.
            ``StackOutputs.require`` of a target).
        qdrant_url: Use this Qdrant URL instead of the stack's in-cluster one.
        qdrant_api_key: Use this API key instead of the stack's.
        s3_endpoint: Use this S3 endpoint instead of the stack's in-cluster one.

    """
    return Connection(
        qdrant_url=qdrant_url or require(keys.QDRANT_URL),
        qdrant_api_key=qdrant_api_key if qdrant_api_key is not None else require(keys.QDRANT_API_KEY),
        s3_endpoint=s3_endpoint or require(keys.S3_ENDPOINT),
        s3_access_key_id=require(keys.S3_ACCESS_KEY_ID),
        s3_secret_access_key=require(keys.S3_SECRET_ACCESS_KEY),
    )
