"""Backup and restore of Qdrant collections, for real, against a fake Qdrant and moto's S3 server.

The snapshot job's program (``workloads.vectordb_snapshot``, run as its CronJob runs it) takes the
backups; ``workloads.vectordb_ops`` and ``mlp vectordb`` list and restore them. The fake Qdrant
speaks the REST endpoints both use (collections, snapshots create/download/delete, upload and
recover with checksum verification, api-key auth) and keeps points in memory.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import os
import subprocess
import sys
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from click.testing import CliRunner

from components.vectordb import snapshot as snapshot_job
from stacks import outputs as keys
from workloads import vectordb_ops as ops

API_KEY = "test-api-key-0123456789"
ACCESS_KEY = "minioadmin-test"
SECRET_KEY = "minio-secret-test-value"
BUCKET = "vectordb-snapshots"
PREFIX = "qdrant/qdrant"

pytestmark = pytest.mark.timeout(120)


# ---------------------------------------------------------------------------------------------
# A fake Qdrant


class FakeQdrant:
    """An in-memory Qdrant speaking the snapshot REST API on 127.0.0.1."""

    def __init__(
        self, collections: dict[str, list[dict[str, Any]]] | None = None, api_key: str = API_KEY
    ) -> None:
        self.collections = {name: list(points) for name, points in (collections or {}).items()}
        self.snapshots: dict[tuple[str, str], bytes] = {}
        self.api_key = api_key
        self.fail_snapshot: set[str] = set()
        self.requests: list[tuple[str, str]] = []
        self._counter = itertools.count(1)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, payload: Any = None, raw: bytes | None = None) -> None:
                body = raw if raw is not None else json.dumps(payload or {"status": "ok"}).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _route(self, method: str) -> None:
                url = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(url.query))
                parts = [urllib.parse.unquote(p) for p in url.path.strip("/").split("/")]
                fake.requests.append((method, url.path))
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if self.headers.get("api-key") != fake.api_key:
                    return self._send(403, {"status": {"error": "Invalid api-key"}})
                try:
                    status, payload, raw = fake.handle(method, parts, query, body, self.headers)
                except KeyError as error:
                    return self._send(404, {"status": {"error": f"Not found: {error}"}})
                self._send(status, payload, raw)

            def do_GET(self) -> None:  # noqa: N802
                self._route("GET")

            def do_POST(self) -> None:  # noqa: N802
                self._route("POST")

            def do_PUT(self) -> None:  # noqa: N802
                self._route("PUT")

            def do_DELETE(self) -> None:  # noqa: N802
                self._route("DELETE")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeQdrant:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _load(self, collection: str, data: bytes, checksum: str | None) -> tuple[int, Any, None]:
        if checksum and hashlib.sha256(data).hexdigest() != checksum:
            return 400, {"status": {"error": "Snapshot checksum mismatch"}}, None
        self.collections[collection] = json.loads(data)["points"]
        return 200, {"result": True, "status": "ok"}, None

    def handle(self, method: str, parts: list[str], query: dict[str, str], body: bytes, headers: Any) -> Any:
        if parts == ["collections"] and method == "GET":
            return 200, {"result": {"collections": [{"name": n} for n in sorted(self.collections)]}}, None
        if len(parts) == 2 and method == "GET":
            return 200, {"result": {"status": "green", "points_count": len(self.collections[parts[1]])}}, None
        name = parts[1]
        if parts[2:] == ["snapshots"] and method == "POST":
            if name in self.fail_snapshot:
                return 500, {"status": {"error": "disk full"}}, None
            data = json.dumps({"collection": name, "points": self.collections[name]}).encode()
            snap = f"{name}-{next(self._counter)}.snapshot"
            self.snapshots[(name, snap)] = data
            return (
                200,
                {"result": {"name": snap, "size": len(data), "checksum": hashlib.sha256(data).hexdigest()}},
                None,
            )
        if parts[2] == "snapshots" and len(parts) == 4 and parts[3] not in ("upload", "recover"):
            if method == "GET":
                return 200, None, self.snapshots[(name, parts[3])]
            if method == "DELETE":
                del self.snapshots[(name, parts[3])]
                return 200, {"result": True}, None
        if parts[2:] == ["snapshots", "upload"] and method == "POST":
            assert query.get("priority") == "snapshot"
            boundary = headers["Content-Type"].split("boundary=")[1].encode()
            part = body.split(b"--" + boundary)[1]
            data = part.split(b"\r\n\r\n", 1)[1].rsplit(b"\r\n", 1)[0]
            return self._load(name, data, query.get("checksum"))
        if parts[2:] == ["snapshots", "recover"] and method == "PUT":
            request = json.loads(body)
            assert request["priority"] == "snapshot"
            with urllib.request.urlopen(request["location"], timeout=30) as response:
                data = response.read()
            return self._load(name, data, request.get("checksum"))
        raise KeyError("/".join(parts))


def points(n: int, tag: str) -> list[dict[str, Any]]:
    return [{"id": i, "vector": [i * 0.5, 1.0], "payload": {"tag": tag}} for i in range(n)]


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

    with FakeQdrant({"docs": points(1, "stale")}) as target:
        qdrant = ops.QdrantHttp(target.url, API_KEY, timeout=30)
        results = [
            ops.restore_snapshot(s3, BUCKET, f, qdrant, work_dir=tmp_path) for f in ops.plan_restore(run)
        ]
        assert target.collections["docs"] == points(5, "d"), "the stale collection is replaced"
        assert target.collections["faq"] == points(3, "f"), "a missing collection is created"
        assert {r.collection: r.points for r in results} == {"docs": 5, "faq": 3}

        recovered = ops.restore_snapshot(
            s3, BUCKET, run.files("faq")[0], qdrant, restore_as="faq-copy", method="recover"
        )
        assert recovered.restored_as == "faq-copy" and target.collections["faq-copy"] == points(3, "f")


def test_job_snapshots_every_peer_and_reports_failures(s3_endpoint: str, s3: Any, tmp_path: Path) -> None:
    with (
        FakeQdrant({"docs": points(4, "n0"), "bad": points(1, "x")}) as node0,
        FakeQdrant({"docs": points(2, "n1")}) as node1,
    ):
        node0.fail_snapshot.add("bad")
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


def test_retention_prunes_old_runs_but_keeps_newest_complete(
    s3_endpoint: str, s3: Any, tmp_path: Path
) -> None:
    old = (dt.datetime.now(dt.UTC) - dt.timedelta(days=30)).strftime("%Y%m%dT%H%M%SZ")
    older = (dt.datetime.now(dt.UTC) - dt.timedelta(days=40)).strftime("%Y%m%dT%H%M%SZ")
    with FakeQdrant({"docs": points(2, "a")}) as qdrant:
        assert run_snapshot_job(s3_endpoint, [qdrant.url], tmp_path, run_id=older)[0] == 0
        code, events = run_snapshot_job(s3_endpoint, [qdrant.url], tmp_path, run_id=old)
        assert code == 0 and events[-1]["pruned"] == [older]
        qdrant.fail_snapshot.add("docs")
        code, events = run_snapshot_job(s3_endpoint, [qdrant.url], tmp_path)

    assert code == 1
    assert events[-1]["pruned"] == [], "a failed run never prunes the last complete one"
    runs = ops.list_runs(s3, ops.SnapshotsLocation(BUCKET, PREFIX))
    assert [r.run_id for r in runs][1:] == [old], "the newest complete run survives its retention"
    assert ops.find_run(runs).run_id == old, "latest prefers the newest complete run"


def test_corrupt_snapshot_and_wrong_api_key_are_refused(s3_endpoint: str, s3: Any, tmp_path: Path) -> None:
    with FakeQdrant({"docs": points(3, "d")}) as qdrant:
        assert run_snapshot_job(s3_endpoint, [qdrant.url], tmp_path)[0] == 0
    run = ops.list_runs(s3, ops.SnapshotsLocation(BUCKET, PREFIX))[0]
    file = run.files("docs")[0]

    with FakeQdrant() as target:
        with pytest.raises(ops.QdrantError, match="HTTP 403"):
            ops.restore_snapshot(s3, BUCKET, file, ops.QdrantHttp(target.url, "wrong", 30), work_dir=tmp_path)
        s3.put_object(Bucket=BUCKET, Key=file.key, Body=b"tampered")
        with pytest.raises(ops.SnapshotError, match="corrupt"):
            ops.restore_snapshot(s3, BUCKET, file, ops.QdrantHttp(target.url, API_KEY, 30), work_dir=tmp_path)
        assert target.collections == {}


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
        assert target.collections == {}

        aborted = runner.invoke(vectordb, ["restore", *base], input="n\n")
        assert aborted.exit_code == 1 and target.collections == {}

        done = runner.invoke(vectordb, ["restore", *base, "--yes", "--json"])
        assert done.exit_code == 0, done.output
        assert json.loads(done.output)["restored"][0]["points"] == 6
        assert target.collections["docs"] == points(6, "d")

        human = runner.invoke(vectordb, ["restore", *base, "--yes", "--collection", "docs", "--as", "docs-2"])
        assert human.exit_code == 0, human.output
        assert "restored docs as docs-2: 6 points" in human.output

        missing = runner.invoke(vectordb, ["restore", *base, "--yes", "--collection", "nope"])
        assert missing.exit_code == 4 and "no snapshot of collection 'nope'" in missing.output
        usage = runner.invoke(vectordb, ["restore", *base, "--as", "x"])
        assert usage.exit_code == 2


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
