"""Restore a Milvus backup made by ``milvus-backup`` and check what came back, collection by collection.

The scheduled job (components/vectordb/milvus_backup.py) writes backups to
``s3://<bucket>/<root>/<name>/``; the tool records every segment's row count in the backup's meta
(``meta/full_meta.json``, or the older per-level files ``collection_meta.json`` +
``segment_meta.json``). After a restore, every collection must be loaded and hold exactly the rows
the backup recorded: the failures milvus-backup users meet are restored collections with fewer rows
(an import that silently skipped segments) and collections left unloaded (no index rebuilt).

* :func:`read_backup_meta` / :func:`recorded_counts`: what the backup says (inserted rows minus the
  deletes recorded in its delta logs, per collection);
* :func:`run_tool_restore`: ``milvus-backup restore -n <name> -s <suffix> --rebuild_index`` with a
  generated ``backup.yaml`` that holds no credential (the tool reads them from the environment);
* :func:`verify_restore`: loads each restored collection if needed and compares ``count(*)``.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from workloads.s3uri import S3Prefix

DEFAULT_BACKUPS_URI = "s3://vectordb-snapshots/milvus/milvus"
"""Where the stack's backup CronJob writes (stacks/addons_data.py: SNAPSHOT_BUCKET/MILVUS_BACKUP_ROOT)."""
DEFAULT_SUFFIX = "_restored"
FULL_META = "full_meta.json"
LEVEL_META = ("backup_meta.json", "collection_meta.json", "partition_meta.json", "segment_meta.json")


class MilvusBackupError(Exception):
    """A backup could not be read or restored (exit 1)."""


class BackupNotFound(MilvusBackupError):
    """No backup of that name under the location (exit 4)."""


class BackupMetaError(MilvusBackupError):
    """The backup's meta is missing parts or malformed (exit 3: the backup cannot be trusted)."""


class BackupsLocation(S3Prefix):
    """``s3://bucket/root`` of a set of backups (a bad URI raises :class:`MilvusBackupError`)."""

    parse_error = MilvusBackupError

    def meta_key(self, backup: str, name: str) -> str:
        """Key of one meta file of ``backup``."""
        return f"{self.prefix}/{backup}/meta/{name}"


@dataclass(frozen=True)
class RecordedCollection:
    """Rows the backup recorded for one collection.

    Attributes:
        db: Database name (``default`` when the backup names none).
        name: Collection name at backup time.
        inserted: Sum of the segments' ``num_of_rows``.
        deleted: Delete records in the segments' delta logs.

    """

    db: str
    name: str
    inserted: int
    deleted: int

    @property
    def expected(self) -> int:
        """Rows a complete restore holds."""
        return self.inserted - self.deleted


@dataclass(frozen=True)
class CollectionCheck:
    """The outcome of checking one restored collection."""

    db: str
    collection: str
    restored_as: str
    expected: int
    actual: int | None
    loaded: bool
    problem: str

    @property
    def ok(self) -> bool:
        """Whether the collection is loaded and holds exactly the recorded rows."""
        return not self.problem

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {**asdict(self), "ok": self.ok}


def _field(obj: Mapping[str, Any], snake: str) -> Any:
    """A field by its proto name, in the tool's JSON (snake_case) or protojson (lowerCamel) form."""
    if snake in obj:
        return obj[snake]
    head, *rest = snake.split("_")
    return obj.get(head + "".join(p.title() for p in rest))


def _int(value: Any, what: str) -> int:
    if value is None:
        return 0
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise BackupMetaError(f"{what} is {value!r}, not a count") from None
    if number < 0:
        raise BackupMetaError(f"{what} is negative ({number})")
    return number


def _read_json(s3: Any, bucket: str, key: str) -> Any:
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except Exception as error:  # botocore ClientError (NoSuchKey...), connection errors
        code = getattr(error, "response", {}).get("Error", {}).get("Code", "")
        if code in ("NoSuchKey", "404", "NotFound"):
            raise FileNotFoundError(key) from None
        raise MilvusBackupError(f"cannot read s3://{bucket}/{key}: {error}") from None
    try:
        return json.loads(body)
    except ValueError as error:
        raise BackupMetaError(f"s3://{bucket}/{key} is not JSON: {error}") from None


def read_backup_meta(s3: Any, location: BackupsLocation, backup: str) -> dict[str, Any]:
    """The backup's meta as one tree (``collection_backups`` -> partitions -> segments).

    Raises:
        BackupNotFound: When the backup has no meta at all.
        BackupMetaError: When a level file is missing or malformed.
        MilvusBackupError: When the store cannot be read.

    """
    try:
        full = _read_json(s3, location.bucket, location.meta_key(backup, FULL_META))
    except FileNotFoundError:
        full = None
    if full is not None:
        if not isinstance(full, dict):
            raise BackupMetaError(f"{FULL_META} of {backup} is not an object")
        return full
    parts: dict[str, Any] = {}
    for name in LEVEL_META:
        try:
            parts[name] = _read_json(s3, location.bucket, location.meta_key(backup, name))
        except FileNotFoundError:
            if name == LEVEL_META[0]:
                raise BackupNotFound(f"no backup {backup!r} under {location.uri}") from None
            raise BackupMetaError(f"backup {backup!r} has no meta/{name}: incomplete backup") from None
    segments: dict[int, list[Any]] = {}
    for segment in _field(parts["segment_meta.json"], "infos") or []:
        segments.setdefault(_int(_field(segment, "collection_id"), "collection_id"), []).append(segment)
    collections = []
    for collection in _field(parts["collection_meta.json"], "infos") or []:
        cid = _int(_field(collection, "collection_id"), "collection_id")
        collections.append({**collection, "partition_backups": [{"segment_backups": segments.get(cid, [])}]})
    return {**parts["backup_meta.json"], "collection_backups": collections}


def recorded_counts(meta: Mapping[str, Any]) -> list[RecordedCollection]:
    """Rows per collection that ``meta`` records.

    Raises:
        BackupMetaError: When a count is missing or not a number, or no collection is recorded.

    """
    result = []
    for collection in _field(meta, "collection_backups") or []:
        name = _field(collection, "collection_name")
        if not name:
            raise BackupMetaError("a collection in the backup meta has no collection_name")
        inserted = deleted = 0
        for partition in _field(collection, "partition_backups") or []:
            for segment in _field(partition, "segment_backups") or []:
                inserted += _int(_field(segment, "num_of_rows"), f"{name}: num_of_rows")
                for field_log in _field(segment, "deltalogs") or []:
                    for binlog in _field(field_log, "binlogs") or []:
                        deleted += _int(_field(binlog, "entries_num"), f"{name}: delta entries_num")
        db = _field(collection, "db_name") or "default"
        result.append(RecordedCollection(db=db, name=name, inserted=inserted, deleted=deleted))
    if not result:
        raise BackupMetaError("the backup meta records no collection")
    return sorted(result, key=lambda r: (r.db, r.name))


def run_tool_restore(
    command: Callable[[str], Sequence[str]],
    config: Mapping[str, Any],
    *,
    env: Mapping[str, str] | None = None,
    runner: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run,
) -> str:
    """Run ``milvus-backup restore`` with ``config`` written to a temporary ``backup.yaml``.

    Credentials are never written: the tool reads ``MILVUS_PASSWORD``, ``MINIO_ACCESS_KEY``... from
    ``env`` (default: this process's environment).

    Returns:
        The tool's output.

    Raises:
        MilvusBackupError: When the tool is missing or exits non-zero.

    """
    import yaml

    with tempfile.TemporaryDirectory(prefix="mlp-milvus-restore-") as work:
        path = Path(work) / "backup.yaml"
        path.write_text(yaml.safe_dump(dict(config), sort_keys=True))
        argv = list(command(str(path)))
        try:
            done = runner(
                argv,
                cwd=work,
                env={**os.environ, **(env or {})},
                capture_output=True,
                text=True,
                check=False,
            )
        except FileNotFoundError:
            raise MilvusBackupError(f"milvus-backup not found at {argv[0]!r}") from None
    output = (done.stdout or "") + (done.stderr or "")
    if done.returncode != 0:
        tail = "\n".join(output.strip().splitlines()[-15:])
        raise MilvusBackupError(f"milvus-backup restore exited {done.returncode}:\n{tail}")
    return output


def verify_restore(
    client: Any,
    recorded: Iterable[RecordedCollection],
    suffix: str,
    *,
    load: bool = True,
    load_timeout: float = 300.0,
) -> list[CollectionCheck]:
    """Check every restored collection ``<name><suffix>``: present, loaded, exactly the recorded rows.

    Args:
        client: A ``pymilvus.MilvusClient`` connected to the Milvus restored into.
        recorded: What the backup recorded (:func:`recorded_counts`).
        suffix: The restore suffix (``""`` checks the collections under their own names).
        load: Load a collection that is not loaded (a restored collection must be loadable).
        load_timeout: Seconds to wait for each load.

    """
    checks = []
    current_db: str | None = None
    for item in recorded:
        target = f"{item.name}{suffix}"
        if item.db != current_db:
            if item.db != "default" or current_db is not None:
                client.using_database(item.db)
            current_db = item.db

        def check(actual: int | None, loaded: bool, problem: str, item: RecordedCollection = item) -> None:
            checks.append(
                CollectionCheck(
                    item.db, item.name, f"{item.name}{suffix}", item.expected, actual, loaded, problem
                )
            )

        if not client.has_collection(target):
            check(None, False, "missing: the restore did not create it")
            continue
        loaded = _is_loaded(client, target)
        if not loaded and load:
            try:
                client.load_collection(target, timeout=load_timeout)
                loaded = _is_loaded(client, target)
            except Exception as error:  # pymilvus MilvusException: no index, resources...
                check(None, False, f"not loaded: {_message(error)}")
                continue
        if not loaded:
            check(None, False, "not loaded")
            continue
        rows = client.query(target, filter="", output_fields=["count(*)"])
        actual = int(rows[0]["count(*)"])
        if actual != item.expected:
            missing = item.expected - actual
            what = f"{missing} rows missing" if missing > 0 else f"{-missing} rows more than recorded"
            check(actual, True, f"{what} (backup recorded {item.expected}, restored {actual})")
        else:
            check(actual, True, "")
    return checks


def _is_loaded(client: Any, name: str) -> bool:
    state = client.get_load_state(name).get("state")
    return str(getattr(state, "name", state)).lower() == "loaded"


def _message(error: Exception) -> str:
    return str(getattr(error, "message", "") or error).strip()
