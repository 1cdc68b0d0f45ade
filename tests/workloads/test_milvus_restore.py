"""The row-count check after a milvus-backup restore, against a real Milvus (Milvus Lite) and S3 (moto).

The backup meta is written the way milvus-backup writes it (``full_meta.json``, or the older
per-level files); the "restored" collections are real Milvus collections: one complete, one with
deletes, one short of rows, one never loaded, one missing. Milvus Lite loads even a collection
without an index, so a load that fails is produced by a client whose ``load_collection`` raises
pymilvus' own exception.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from click.testing import CliRunner

from mlp.cli import main
from mlp.common import ExitCode
from workloads import milvus_backup_ops as ops

pytestmark = pytest.mark.slow

DIM = 8
BUCKET = "vectordb-snapshots"
LOCATION = ops.BackupsLocation(BUCKET, "milvus/milvus")
SUFFIX = "_restored"
KEYS = {"AWS_ACCESS_KEY_ID": "test-key", "AWS_SECRET_ACCESS_KEY": "test-secret"}


def segment(collection_id: int, segment_id: int, rows: int, deletes: int = 0) -> dict[str, Any]:
    """One SegmentBackupInfo as the tool's JSON has it (snake_case proto names)."""
    entry: dict[str, Any] = {
        "segment_id": segment_id,
        "collection_id": collection_id,
        "partition_id": 1,
        "num_of_rows": rows,
        "binlogs": [{"fieldID": 100, "binlogs": [{"entries_num": rows, "log_path": "x"}]}],
    }
    if deletes:
        entry["deltalogs"] = [{"fieldID": 0, "binlogs": [{"entries_num": deletes}]}]
    return entry


def collection_meta(collection_id: int, name: str, segments: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "collection_id": collection_id,
        "db_name": "default",
        "collection_name": name,
        "partition_backups": [{"partition_id": 1, "segment_backups": segments}],
    }


# Recorded in the backup: docs 50 rows (two segments), edits 20 inserted - 5 deleted,
# notes 40, raw 10, gone 7.
RECORDED = [
    collection_meta(1, "docs", [segment(1, 11, 30), segment(1, 12, 20)]),
    collection_meta(2, "edits", [segment(2, 21, 20, deletes=5)]),
    collection_meta(3, "notes", [segment(3, 31, 40)]),
    collection_meta(4, "raw", [segment(4, 41, 10)]),
    collection_meta(5, "gone", [segment(5, 51, 7)]),
]


def put_full(s3: Any, backup: str, collections: list[dict[str, Any]]) -> None:
    meta = {"name": backup, "state_code": 2, "collection_backups": collections}
    s3.put_object(Bucket=BUCKET, Key=LOCATION.meta_key(backup, ops.FULL_META), Body=json.dumps(meta))


def put_levels(s3: Any, backup: str, collections: list[dict[str, Any]]) -> None:
    segments = [s for c in collections for p in c["partition_backups"] for s in p["segment_backups"]]
    flat = [{k: v for k, v in c.items() if k != "partition_backups"} for c in collections]
    files = {
        "backup_meta.json": {"name": backup},
        "collection_meta.json": {"infos": flat},
        "partition_meta.json": {"infos": [{"partition_id": 1}]},
        "segment_meta.json": {"infos": segments},
    }
    for name, body in files.items():
        s3.put_object(Bucket=BUCKET, Key=LOCATION.meta_key(backup, name), Body=json.dumps(body))


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **_keys())
    s3.create_bucket(Bucket=BUCKET)
    put_full(s3, "full", RECORDED)
    put_levels(s3, "levels", RECORDED)
    put_full(s3, "good", RECORDED[:2])
    s3.put_object(Bucket=BUCKET, Key=LOCATION.meta_key("broken", ops.FULL_META), Body=b"{not json")
    put_full(s3, "badcount", [collection_meta(1, "docs", [segment(1, 11, 0) | {"num_of_rows": "many"}])])
    yield endpoint
    server.stop()


def _keys() -> dict[str, str]:
    return {
        "aws_access_key_id": KEYS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": KEYS["AWS_SECRET_ACCESS_KEY"],
    }


@pytest.fixture(scope="module")
def s3(s3_endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1", **_keys())


@pytest.fixture(scope="module")
def milvus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, str]]:
    """A Milvus Lite holding what a restore left behind."""
    from pymilvus import DataType, MilvusClient

    uri = str(tmp_path_factory.mktemp("milvus") / "restored.db")
    client = MilvusClient(uri)

    def indexed(name: str, rows: int) -> None:
        client.create_collection(f"{name}{SUFFIX}", dimension=DIM)
        client.insert(f"{name}{SUFFIX}", [{"id": i, "vector": [float(i)] * DIM} for i in range(rows)])

    indexed("docs", 50)
    indexed("edits", 20)
    client.delete(f"edits{SUFFIX}", ids=list(range(5)))
    indexed("notes", 30)  # the restore lost 10 rows
    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=DIM)
    client.create_collection(f"raw{SUFFIX}", schema=schema)  # no index: Lite serves it by brute force
    client.insert(f"raw{SUFFIX}", [{"id": i, "vector": [0.5] * DIM} for i in range(10)])
    client.release_collection(f"docs{SUFFIX}")  # restored but not loaded: the check loads it
    yield client, uri
    client.close()


def test_recorded_counts_from_full_and_level_meta_agree(s3: Any) -> None:
    full = ops.recorded_counts(ops.read_backup_meta(s3, LOCATION, "full"))
    levels = ops.recorded_counts(ops.read_backup_meta(s3, LOCATION, "levels"))
    assert full == levels
    by_name = {r.name: r for r in full}
    assert (by_name["docs"].inserted, by_name["docs"].expected) == (50, 50)
    assert (by_name["edits"].inserted, by_name["edits"].deleted, by_name["edits"].expected) == (20, 5, 15)


def test_missing_and_malformed_meta_are_told_apart(s3: Any) -> None:
    with pytest.raises(ops.BackupNotFound):
        ops.read_backup_meta(s3, LOCATION, "nosuch")
    with pytest.raises(ops.BackupMetaError, match="not JSON"):
        ops.read_backup_meta(s3, LOCATION, "broken")
    with pytest.raises(ops.BackupMetaError, match="not a count"):
        ops.recorded_counts(ops.read_backup_meta(s3, LOCATION, "badcount"))
    with pytest.raises(ops.BackupMetaError, match="no collection"):
        ops.recorded_counts({"collection_backups": []})


def test_verify_restore_finds_short_unloadable_and_missing_collections(
    s3: Any, milvus: tuple[Any, str]
) -> None:
    client, _ = milvus
    recorded = ops.recorded_counts(ops.read_backup_meta(s3, LOCATION, "full"))
    checks = {c.collection: c for c in ops.verify_restore(client, recorded, SUFFIX)}
    assert checks["docs"].ok and checks["docs"].loaded and checks["docs"].actual == 50, checks["docs"]
    assert checks["edits"].ok and checks["edits"].actual == 15
    assert not checks["notes"].ok and checks["notes"].actual == 30
    assert "10 rows missing" in checks["notes"].problem
    assert checks["raw"].ok, "Milvus Lite loads an unindexed collection; a cluster would not"
    assert not checks["gone"].ok and checks["gone"].problem.startswith("missing")


class FailingLoad:
    """The real client, except that loading fails as Milvus does for a collection it cannot load."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def load_collection(self, name: str, **_: Any) -> None:
        from pymilvus.exceptions import MilvusException

        raise MilvusException(code=700, message=f"index not found[collection={name}]")


def test_a_collection_left_unloaded_fails_the_check(s3: Any, milvus: tuple[Any, str]) -> None:
    client, _ = milvus
    recorded = [
        r for r in ops.recorded_counts(ops.read_backup_meta(s3, LOCATION, "full")) if r.name == "docs"
    ]
    client.release_collection(f"docs{SUFFIX}")
    (unloaded,) = ops.verify_restore(client, recorded, SUFFIX, load=False)
    assert (unloaded.ok, unloaded.loaded, unloaded.problem) == (False, False, "not loaded")
    (refused,) = ops.verify_restore(FailingLoad(client), recorded, SUFFIX)
    assert not refused.ok and refused.problem == "not loaded: index not found[collection=docs_restored]"


def _run(args: list[str], s3_endpoint: str, uri: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    for key, value in KEYS.items():
        monkeypatch.setenv(key, value)
    base = [
        "vectordb",
        "milvus-restore",
        "--s3-endpoint",
        s3_endpoint,
        "--milvus-uri",
        uri,
        "--token",
        "root:pw",
    ]
    return CliRunner().invoke(main, [*base, *args])


def test_cli_verify_only_exit_codes(
    s3_endpoint: str, milvus: tuple[Any, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, uri = milvus
    good = _run(["--backup", "good", "--verify-only", "--json"], s3_endpoint, uri, monkeypatch)
    assert good.exit_code == ExitCode.OK, good.output
    assert {c["collection"] for c in json.loads(good.stdout)["collections"]} == {"docs", "edits"}
    bad = _run(["--backup", "full", "--verify-only"], s3_endpoint, uri, monkeypatch)
    assert bad.exit_code == ExitCode.CHECK_FAILED, bad.output
    assert "notes_restored: 30/40 rows, FAILED" in bad.output
    missing = _run(["--backup", "nosuch", "--verify-only"], s3_endpoint, uri, monkeypatch)
    assert missing.exit_code == ExitCode.NOT_FOUND
    forged = _run(["--backup", "broken", "--verify-only"], s3_endpoint, uri, monkeypatch)
    assert forged.exit_code == ExitCode.CHECK_FAILED and "Traceback" not in forged.output
    usage = _run(["--backup", "x; rm", "--verify-only"], s3_endpoint, uri, monkeypatch)
    assert usage.exit_code == ExitCode.BAD_INPUT


def test_cli_runs_the_tool_with_credentials_in_env_only(
    tmp_path: Path, s3_endpoint: str, milvus: tuple[Any, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, uri = milvus
    record = tmp_path / "record.json"
    tool = tmp_path / "milvus-backup"
    tool.write_text(
        "#!/usr/bin/env python3\n"
        "import json, os, sys\n"
        "cfg = open(sys.argv[sys.argv.index('--config') + 1]).read()\n"
        f"json.dump({{'argv': sys.argv[1:], 'config': cfg, 'password': os.environ.get('MILVUS_PASSWORD')}},"
        f" open({str(record)!r}, 'w'))\n"
    )
    tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
    result = _run(["--backup", "good", "--tool", str(tool)], s3_endpoint, uri, monkeypatch)
    assert result.exit_code == ExitCode.OK, result.output
    seen = json.loads(record.read_text())
    assert seen["argv"][0] == "restore" and seen["argv"][-1] == "--rebuild_index"
    assert seen["argv"][seen["argv"].index("-s") + 1] == "_restored"
    assert seen["password"] == "pw"
    config = yaml.safe_load(seen["config"])
    assert "pw" not in seen["config"] and KEYS["AWS_SECRET_ACCESS_KEY"] not in seen["config"]
    assert (config["minio"]["backupBucketName"], config["minio"]["backupRootPath"]) == (
        BUCKET,
        "milvus/milvus",
    )

    failing = tmp_path / "failing"
    failing.write_text("#!/bin/sh\necho 'restore failed: import job error' >&2\nexit 1\n")
    failing.chmod(failing.stat().st_mode | stat.S_IEXEC)
    failed = _run(["--backup", "good", "--tool", str(failing)], s3_endpoint, uri, monkeypatch)
    assert failed.exit_code == ExitCode.FAILED and "import job error" in failed.output


def test_render_job_writes_the_in_cluster_restore(tmp_path: Path) -> None:
    out = tmp_path / "restore.yaml"
    result = CliRunner().invoke(
        main, ["vectordb", "milvus-restore", "--backup", "scheduled_20260101033000", "--render-job", str(out)]
    )
    assert result.exit_code == ExitCode.OK, result.output
    config_map, job = yaml.safe_load_all(out.read_text())
    assert (config_map["kind"], job["kind"]) == ("ConfigMap", "Job")
    command = job["spec"]["template"]["spec"]["containers"][0]["command"]
    assert "scheduled_20260101033000" in command and "--rebuild_index" in command
    import kubernetes_validate

    for manifest in (config_map, job):
        kubernetes_validate.validate(manifest, "1.33", strict=True)
