"""Backup and restore of Qdrant collections, for real, against a fake Qdrant and moto's S3 server.

The snapshot job's program (``workloads.vectordb_snapshot``, run as its CronJob runs it) takes the
backups; ``workloads.vectordb_ops`` and ``mlp vectordb`` list and restore them. The fake Qdrant
speaks the REST endpoints both use (collections, snapshots create/download/delete, upload and
recover with checksum verification, api-key auth) and keeps points in memory.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from click.testing import CliRunner
from qdrant_client.http import models

from components.vectordb import snapshot as snapshot_job
from stacks import outputs as keys
from tests.workloads.qdrant_fake import FakeQdrantServer, Recorded
from workloads import vectordb_ops as ops

API_KEY = "test-api-key-0123456789"
ACCESS_KEY = "minioadmin-test"
SECRET_KEY = "minio-secret-test-value"
BUCKET = "vectordb-snapshots"
PREFIX = "qdrant/qdrant"

pytestmark = pytest.mark.timeout(120)


# ---------------------------------------------------------------------------------------------
# A fake Qdrant: qdrant-client's local mode behind real HTTP on 127.0.0.1 (tests/workloads/qdrant_fake.py)


def FakeQdrant(
    collections: dict[str, list[dict[str, Any]]] | None = None, api_key: str = API_KEY
) -> FakeQdrantServer:  # noqa: N802
    """A fake Qdrant holding ``collections`` (points as ``{id, vector, payload}``)."""
    fake = FakeQdrantServer(api_key=api_key)
    for name, pts in (collections or {}).items():
        fake.local.create_collection(name, models.VectorParams(size=2, distance=models.Distance.COSINE))
        fake.local.upsert(name, [models.PointStruct(**p) for p in pts])
    return fake


def contents(fake: FakeQdrantServer) -> dict[str, list[tuple[int, dict[str, Any]]]]:
    """Every collection's ``(id, payload)`` pairs, sorted by id."""
    out = {}
    for c in fake.local.get_collections().collections:
        records, _ = fake.local.scroll(c.name, limit=10_000, with_payload=True)
        out[c.name] = sorted((int(r.id), dict(r.payload or {})) for r in records)
    return out


def fail_snapshots_of(fake: FakeQdrantServer, *names: str) -> None:
    """Make snapshot creation of these collections fail with HTTP 500."""

    def fail(record: Recorded) -> tuple[int, Any] | None:
        path = record.path.split("?")[0]
        if record.method == "POST" and any(path == f"/collections/{n}/snapshots" for n in names):
            return 500, {"status": {"error": "disk full"}}
        return None

    fake.fail = fail


def points(n: int, tag: str) -> list[dict[str, Any]]:
    return [{"id": i, "vector": [i * 0.5, 1.0], "payload": {"tag": tag}} for i in range(n)]


def stored(pts: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    return [(p["id"], p["payload"]) for p in pts]


# ---------------------------------------------------------------------------------------------
# S3 and the snapshot job


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(s3_endpoint: str) -> Any:
    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name="us-east-1",
    )
    existing = [b["Name"] for b in client.list_buckets().get("Buckets", [])]
    if BUCKET in existing:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
            for item in page.get("Contents", []):
                client.delete_object(Bucket=BUCKET, Key=item["Key"])
    else:
        client.create_bucket(Bucket=BUCKET)
    return client


def run_snapshot_job(
    s3_endpoint: str, peers: list[str], tmp_path: Path, run_id: str | None = None, retention_days: int = 7
) -> tuple[int, list[dict[str, Any]]]:
    """Run the CronJob's command as the cluster would: same command, same env names."""
    command = snapshot_job.job_command()
    env = {
        # the project's Python stands in for the workload image's
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "QDRANT_URLS": ",".join(peers),
        "QDRANT_API_KEY": API_KEY,
        "S3_ENDPOINT": s3_endpoint,
        "S3_BUCKET": BUCKET,
        "S3_PREFIX": PREFIX,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "RETENTION_DAYS": str(retention_days),
        "WORK_DIR": str(tmp_path / "work"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    if run_id:
        env["RUN_ID"] = run_id
    done = subprocess.run(
        command,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, events


@pytest.mark.slow
def test_backup_then_restore_round_trip(s3_endpoint: str, s3: Any, tmp_path: Path) -> None:
    with FakeQdrant({"docs": points(5, "d"), "faq": points(3, "f")}) as source:
        code, events = run_snapshot_job(s3_endpoint, [source.url], tmp_path)
        assert code == 0
        assert source.snapshots == {}, "snapshots are deleted from the node after upload"

    runs = ops.list_runs(s3, ops.SnapshotsLocation(BUCKET, PREFIX))
    assert len(runs) == 1
    run = runs[0]
    assert run.status == "complete" and run.collections == ["docs", "faq"] and len(run.nodes) == 1
    for file in run.snapshots:
        assert file.key.startswith(f"{PREFIX}/{run.run_id}/node-0/{file.collection}/")
        body = s3.get_object(Bucket=BUCKET, Key=file.key)["Body"].read()
        assert hashlib.sha256(body).hexdigest() == file.sha256 and len(body) == file.size
    assert events[-1]["event"] == "run_finished" and events[-1]["status"] == "complete"

    assert [f.points for f in run.snapshots] == [5, 3], "the job records each collection's count"

    with FakeQdrant({"docs_old": points(1, "stale")}) as target:
        target.local.update_collection_aliases(
            [
                models.CreateAliasOperation(
                    create_alias=models.CreateAlias(collection_name="docs_old", alias_name="docs")
                )
            ]
        )
        qdrant = ops.QdrantServer(target.url, API_KEY, timeout=30)
        results = [
            ops.restore_snapshot(s3, BUCKET, f, qdrant, alias=f.collection, work_dir=tmp_path)
            for f in ops.plan_restore(run)
        ]
        new = {r.collection: r.restored_as for r in results}
        assert new == {"docs": f"docs_{run.run_id.lower()}", "faq": f"faq_{run.run_id.lower()}"}
        state = contents(target)
        assert state[new["docs"]] == stored(points(5, "d")) and state[new["faq"]] == stored(points(3, "f"))
        assert state["docs_old"] == stored(points(1, "stale")), "restores never overwrite a collection"
        assert qdrant.aliases() == {"docs": new["docs"], "faq": new["faq"]}, (
            "aliases switched after the check"
        )
        assert {r.collection: (r.points, r.expected) for r in results} == {"docs": (5, 5), "faq": (3, 3)}

        with pytest.raises(ops.SnapshotError, match="already exists"):
            ops.restore_snapshot(s3, BUCKET, run.files("faq")[0], qdrant, work_dir=tmp_path)

        recovered = ops.restore_snapshot(
            s3, BUCKET, run.files("faq")[0], qdrant, restore_as="faq-copy", method="recover"
        )
        assert recovered.restored_as == "faq-copy" and contents(target)["faq-copy"] == stored(points(3, "f"))


@pytest.mark.slow
def test_a_restore_that_loses_points_is_rolled_back(s3_endpoint: str, s3: Any, tmp_path: Path) -> None:
    with FakeQdrant({"docs": points(4, "d")}) as source:
        assert run_snapshot_job(s3_endpoint, [source.url], tmp_path)[0] == 0
    run = ops.list_runs(s3, ops.SnapshotsLocation(BUCKET, PREFIX))[0]
    with FakeQdrant() as target:

        def lossy(record: Recorded) -> tuple[int, Any] | None:
            if "/snapshots/upload" not in record.path:
                return None
            answer = target.handle(record, record.raw)
            target.local.delete(record.path.split("/")[2], [0])
            return answer

        target.fail = lossy
        qdrant = ops.QdrantServer(target.url, API_KEY, timeout=30)
        with pytest.raises(ops.RestoreVerificationError, match="holds 3 points, the snapshot run recorded 4"):
            ops.restore_snapshot(s3, BUCKET, run.files("docs")[0], qdrant, alias="docs", work_dir=tmp_path)
        assert contents(target) == {} and qdrant.aliases() == {}, "nothing is left behind"
        target.fail = None
        retried = ops.restore_snapshot(
            s3, BUCKET, run.files("docs")[0], qdrant, alias="docs", work_dir=tmp_path
        )
        assert retried.points == 4 and qdrant.aliases() == {"docs": retried.restored_as}


@pytest.mark.slow
def test_job_snapshots_every_peer_and_reports_failures(s3_endpoint: str, s3: Any, tmp_path: Path) -> None:
    with (
        FakeQdrant({"docs": points(4, "n0"), "bad": points(1, "x")}) as node0,
        FakeQdrant({"docs": points(2, "n1")}) as node1,
    ):
        fail_snapshots_of(node0, "bad")
        code, events = run_snapshot_job(s3_endpoint, [node0.url, node1.url], tmp_path)

    assert code == 1, "a failed collection fails the Job"
    assert any(e["event"] == "snapshot_failed" and e["collection"] == "bad" for e in events)
    run = ops.list_runs(s3, ops.SnapshotsLocation(BUCKET, PREFIX))[0]
    assert run.status == "partial"
    assert [(f["node"], f["collection"]) for f in run.failures] == [(0, "bad")]
    assert {(s.node, s.collection) for s in run.snapshots} == {(0, "docs"), (1, "docs")}
    with pytest.raises(ops.SnapshotError, match="pick one with --node"):
        ops.plan_restore(run)
    assert [f.node for f in ops.plan_restore(run, ["docs"], node=1)] == [1]
    with pytest.raises(ops.SnapshotError, match="no snapshot of collection 'bad'"):
        ops.plan_restore(run, ["bad"], node=0)
    assert ops.find_run([run]) is run, "latest falls back to a partial run when no complete one exists"


@pytest.mark.slow
def test_retention_prunes_old_runs_but_keeps_newest_complete(
    s3_endpoint: str, s3: Any, tmp_path: Path
) -> None:
    old = (dt.datetime.now(dt.UTC) - dt.timedelta(days=30)).strftime("%Y%m%dT%H%M%SZ")
    older = (dt.datetime.now(dt.UTC) - dt.timedelta(days=40)).strftime("%Y%m%dT%H%M%SZ")
    with FakeQdrant({"docs": points(2, "a")}) as qdrant:
        assert run_snapshot_job(s3_endpoint, [qdrant.url], tmp_path, run_id=older)[0] == 0
        code, events = run_snapshot_job(s3_endpoint, [qdrant.url], tmp_path, run_id=old)
        assert code == 0 and events[-1]["pruned"] == [older]
        fail_snapshots_of(qdrant, "docs")
        code, events = run_snapshot_job(s3_endpoint, [qdrant.url], tmp_path)

    assert code == 1
    assert events[-1]["pruned"] == [], "a failed run never prunes the last complete one"
    runs = ops.list_runs(s3, ops.SnapshotsLocation(BUCKET, PREFIX))
    assert [r.run_id for r in runs][1:] == [old], "the newest complete run survives its retention"
    assert ops.find_run(runs).run_id == old, "latest prefers the newest complete run"


@pytest.mark.slow
def test_corrupt_snapshot_and_wrong_api_key_are_refused(s3_endpoint: str, s3: Any, tmp_path: Path) -> None:
    with FakeQdrant({"docs": points(3, "d")}) as qdrant:
        assert run_snapshot_job(s3_endpoint, [qdrant.url], tmp_path)[0] == 0
    run = ops.list_runs(s3, ops.SnapshotsLocation(BUCKET, PREFIX))[0]
    file = run.files("docs")[0]

    with FakeQdrant() as target:
        with pytest.raises(ops.QdrantError, match="HTTP 403"):
            ops.restore_snapshot(
                s3, BUCKET, file, ops.QdrantServer(target.url, "wrong", 30), work_dir=tmp_path
            )
        s3.put_object(Bucket=BUCKET, Key=file.key, Body=b"tampered")
        with pytest.raises(ops.SnapshotError, match="corrupt"):
            ops.restore_snapshot(
                s3, BUCKET, file, ops.QdrantServer(target.url, API_KEY, 30), work_dir=tmp_path
            )
        assert contents(target) == {}


def test_snapshots_location_and_run_lookup() -> None:
    location = ops.SnapshotsLocation.parse("s3://vectordb-snapshots/qdrant/qdrant/")
    assert (location.bucket, location.prefix, location.uri) == (BUCKET, PREFIX, f"s3://{BUCKET}/{PREFIX}")
    for bad in ("vectordb-snapshots/qdrant", "s3://bucket-only", "http://x/y"):
        with pytest.raises(ops.SnapshotError):
            ops.SnapshotsLocation.parse(bad)
    with pytest.raises(ops.SnapshotError, match="has the snapshot CronJob run"):
        ops.find_run([ops.SnapshotRun("20260101T000000Z", "incomplete")])
    with pytest.raises(ops.SnapshotError, match="no snapshot run 'nope'"):
        ops.find_run([], "nope")


def test_default_location_matches_the_stack() -> None:
    from stacks import addons_data

    assert ops.DEFAULT_SNAPSHOTS_URI == f"s3://{addons_data.SNAPSHOT_BUCKET}/{addons_data.SNAPSHOT_PREFIX}"


# ---------------------------------------------------------------------------------------------
# The CLI against stack outputs


@pytest.mark.slow
def test_cli_lists_and_restores_from_stack_outputs(s3_endpoint: str, s3: Any, tmp_path: Path) -> None:
    from mlp.commands.vectordb import vectordb

    with FakeQdrant({"docs": points(6, "d")}) as source:
        assert run_snapshot_job(s3_endpoint, [source.url], tmp_path)[0] == 0

    with FakeQdrant() as target:
        outputs_file = tmp_path / "outputs.json"
        outputs_file.write_text(
            json.dumps(
                {
                    keys.TARGET: "dev",
                    keys.QDRANT_URL: target.url,
                    keys.QDRANT_API_KEY: API_KEY,
                    keys.S3_ENDPOINT: s3_endpoint,
                    keys.S3_BUCKET: "pipelines",
                    keys.S3_ACCESS_KEY_ID: ACCESS_KEY,
                    keys.S3_SECRET_ACCESS_KEY: SECRET_KEY,
                }
            )
        )
        runner = CliRunner()
        base = ["--outputs-file", str(outputs_file)]
        listed = runner.invoke(vectordb, ["snapshots", "list", *base, "--json"])
        assert listed.exit_code == 0, listed.output
        runs = json.loads(listed.output)["runs"]
        assert runs[0]["collections"] == ["docs"] and runs[0]["status"] == "complete"

        dry = runner.invoke(vectordb, ["restore", *base, "--dry-run", "--json"])
        assert dry.exit_code == 0 and json.loads(dry.output)["plan"][0]["collection"] == "docs"
        assert contents(target) == {}

        aborted = runner.invoke(vectordb, ["restore", *base], input="n\n")
        assert aborted.exit_code == 1 and contents(target) == {}

        done = runner.invoke(vectordb, ["restore", *base, "--yes", "--json"])
        assert done.exit_code == 0, done.output
        restored = json.loads(done.output)["restored"][0]
        assert restored["points"] == restored["expected"] == 6
        assert contents(target)[restored["restored_as"]] == stored(points(6, "d"))

        human = runner.invoke(vectordb, ["restore", *base, "--yes", "--collection", "docs", "--as", "docs-2"])
        assert human.exit_code == 0, human.output
        assert "restored docs as docs-2: 6 points" in human.output

        missing = runner.invoke(vectordb, ["restore", *base, "--yes", "--collection", "nope"])
        assert missing.exit_code == 4 and "no snapshot of collection 'nope'" in missing.output
        usage = runner.invoke(vectordb, ["restore", *base, "--as", "x"])
        assert usage.exit_code == 2


@pytest.mark.slow
def test_cli_exits_3_when_there_are_no_runs(
    s3_endpoint: str, s3: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    from mlp.commands.vectordb import vectordb

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.delenv("MLP_TARGET", raising=False)
    monkeypatch.delenv("MLP_OUTPUTS_FILE", raising=False)
    result = CliRunner().invoke(
        vectordb, ["snapshots", "list", "--target", "local", "--s3-endpoint", s3_endpoint]
    )
    assert result.exit_code == 4, result.output
    assert "no snapshot runs" in result.output
