"""The scheduled Qdrant snapshot job: every collection on every peer, uploaded to object storage.

The stack's CronJob (``components.vectordb.snapshot``) runs ``python -m workloads.vectordb_snapshot``
in the workload image, so nothing is installed at run time. What one run does (see
``docs/vectordb-operations.md``):

1. for every Qdrant peer (a snapshot covers only the shards local to the node that takes it),
   list collections (through the official ``qdrant-client``);
2. for each collection, record its exact point count, create a snapshot, stream it down
   (hashing it), upload it to ``s3://<bucket>/<prefix>/<run-id>/node-<i>/<collection>/<file>``,
   and delete it from the node so snapshots do not pile up on the Qdrant volume;
3. write ``<prefix>/<run-id>/manifest.json`` last: a run without a manifest is incomplete;
4. delete runs older than the retention (the newest complete run is always kept);
5. exit 1 if any collection failed, so the Job is marked failed and alerts can fire.

It is configured only through environment variables; credentials reach it only through
``secretKeyRef`` env entries.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

CHUNK = 1 << 20
RUN_ID_FORMAT = "%Y%m%dT%H%M%SZ"


def log(event: str, **fields: Any) -> None:
    """One JSON line per event on stdout (the cluster's log pipeline parses them)."""
    print(json.dumps({"event": event, **fields}, sort_keys=True), flush=True)


def env(name: str, default: str | None = None) -> str:
    """A required setting; exits with a message naming the variable when it is missing."""
    value = os.environ.get(name, default)
    if value is None or value == "":
        raise SystemExit(f"missing environment variable {name}")
    return value


class QdrantPeer:
    """The calls a snapshot run needs against one peer, through the official ``qdrant-client``."""

    def __init__(self, url: str, api_key: str, timeout: float) -> None:
        from workloads.rag.stores.qdrant_server import make_client

        self.url = url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        self.client = make_client(self.url, api_key, timeout)

    def collections(self) -> list[str]:
        """Names of the peer's collections, sorted."""
        return sorted(c.name for c in self.client.get_collections().collections)

    def count(self, collection: str) -> int:
        """Exact point count of ``collection`` on this peer (recorded so a restore can check it)."""
        return int(self.client.count(collection, exact=True).count)

    def create_snapshot(self, collection: str) -> dict[str, Any]:
        """Take a snapshot of ``collection`` on this peer and return its description."""
        info = self.client.create_snapshot(collection, wait=True)
        if info is None:
            raise RuntimeError(f"Qdrant created no snapshot of {collection!r}")
        return {"name": info.name, "size": info.size, "checksum": info.checksum}

    def download(self, collection: str, snapshot: str, path: Path) -> tuple[str, int]:
        """Stream a snapshot to ``path``; returns its sha256 and size."""
        from workloads.rag.stores.qdrant_server import download_snapshot, snapshot_path

        size, sha256 = download_snapshot(
            self.url, self.api_key, snapshot_path(collection, snapshot), path, self.timeout
        )
        return sha256, size

    def delete_snapshot(self, collection: str, snapshot: str) -> None:
        """Delete a snapshot from the peer's volume."""
        self.client.delete_snapshot(collection, snapshot, wait=True)


def s3_client() -> Any:
    """A boto3 S3 client from the job's environment."""
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=env("S3_ENDPOINT"),
        aws_access_key_id=env("AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=env("AWS_SECRET_ACCESS_KEY"),
        region_name=os.environ.get("AWS_REGION", "us-east-1"),
    )


def run_ids(s3: Any, bucket: str, prefix: str) -> list[str]:
    """Run ids (``<prefix>/<run-id>/``) under the prefix, oldest first."""
    ids = []
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=prefix + "/", Delimiter="/"
    ):
        for common in page.get("CommonPrefixes", []):
            ids.append(common["Prefix"][len(prefix) + 1 :].rstrip("/"))
    return sorted(ids)


def read_manifest(s3: Any, bucket: str, prefix: str, run_id: str) -> dict[str, Any] | None:
    """A run's manifest, or None for a run that never finished."""
    try:
        body = s3.get_object(Bucket=bucket, Key=f"{prefix}/{run_id}/manifest.json")["Body"].read()
    except s3.exceptions.NoSuchKey:
        return None
    manifest: dict[str, Any] = json.loads(body)
    return manifest


def prune(s3: Any, bucket: str, prefix: str, retention_days: int, keep_run: str) -> list[str]:
    """Delete runs older than the retention, never ``keep_run`` nor the newest complete run."""
    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(days=retention_days)
    complete = [
        run_id
        for run_id in run_ids(s3, bucket, prefix)
        if (read_manifest(s3, bucket, prefix, run_id) or {}).get("status") == "complete"
    ]
    newest_complete = complete[-1] if complete else None
    removed = []
    for run_id in run_ids(s3, bucket, prefix):
        if run_id in (keep_run, newest_complete):
            continue
        try:
            started = dt.datetime.strptime(run_id, RUN_ID_FORMAT).replace(tzinfo=dt.UTC)
        except ValueError:
            continue
        if started >= cutoff:
            continue
        keys = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/{run_id}/"):
            keys.extend({"Key": item["Key"]} for item in page.get("Contents", []))
        for start in range(0, len(keys), 1000):
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys[start : start + 1000], "Quiet": True})
        removed.append(run_id)
    return removed


def snapshot_peer(
    index: int,
    peer: QdrantPeer,
    s3: Any,
    bucket: str,
    key_prefix: str,
    work_dir: Path,
    manifest: dict[str, Any],
) -> None:
    """Snapshot every collection of one peer into the run; failures are recorded, not raised."""
    try:
        collections = peer.collections()
    except Exception as error:  # noqa: BLE001 - an unreachable peer is recorded, the others go on
        manifest["failures"].append({"node": index, "collection": None, "error": str(error)})
        log("node_failed", node=index, url=peer.url, error=str(error))
        return
    for collection in collections:
        began = time.monotonic()
        try:
            points = peer.count(collection)
            info = peer.create_snapshot(collection)
            local = work_dir / info["name"]
            sha256, size = peer.download(collection, info["name"], local)
            key = f"{key_prefix}/node-{index}/{collection}/{info['name']}"
            s3.upload_file(str(local), bucket, key, ExtraArgs={"Metadata": {"sha256": sha256}})
            local.unlink()
            peer.delete_snapshot(collection, info["name"])
        except Exception as error:  # noqa: BLE001 - one failed collection must not stop the others
            manifest["failures"].append({"node": index, "collection": collection, "error": str(error)})
            log("snapshot_failed", node=index, collection=collection, error=str(error))
            continue
        manifest["snapshots"].append(
            {
                "node": index,
                "collection": collection,
                "name": info["name"],
                "key": key,
                "size": size,
                "sha256": sha256,
                "points": points,
            }
        )
        log(
            "snapshot_uploaded",
            node=index,
            collection=collection,
            key=key,
            size=size,
            seconds=round(time.monotonic() - began, 3),
        )


def main() -> int:
    """Run one snapshot round; returns the job's exit status (1 when anything failed)."""
    peers = [url.strip() for url in env("QDRANT_URLS").split(",") if url.strip()]
    api_key = os.environ.get("QDRANT_API_KEY", "")
    bucket = env("S3_BUCKET")
    prefix = env("S3_PREFIX").strip("/")
    retention_days = int(env("RETENTION_DAYS", "7"))
    timeout = float(env("SNAPSHOT_TIMEOUT_S", "3600"))
    work_dir = Path(env("WORK_DIR"))
    started = dt.datetime.now(dt.UTC)
    run_id = os.environ.get("RUN_ID") or started.strftime(RUN_ID_FORMAT)
    s3 = s3_client()
    manifest: dict[str, Any] = {
        "format": 1,
        "engine": "qdrant",
        "run_id": run_id,
        "created_at": started.isoformat(),
        "nodes": [{"index": i, "url": url} for i, url in enumerate(peers)],
        "snapshots": [],
        "failures": [],
    }
    work_dir.mkdir(parents=True, exist_ok=True)
    for index, url in enumerate(peers):
        snapshot_peer(
            index, QdrantPeer(url, api_key, timeout), s3, bucket, f"{prefix}/{run_id}", work_dir, manifest
        )
    manifest["status"] = "partial" if manifest["failures"] else "complete"
    manifest["finished_at"] = dt.datetime.now(dt.UTC).isoformat()
    s3.put_object(
        Bucket=bucket,
        Key=f"{prefix}/{run_id}/manifest.json",
        Body=json.dumps(manifest, indent=2).encode(),
        ContentType="application/json",
    )
    removed = prune(s3, bucket, prefix, retention_days, run_id)
    log(
        "run_finished",
        run_id=run_id,
        status=manifest["status"],
        snapshots=len(manifest["snapshots"]),
        failures=len(manifest["failures"]),
        pruned=removed,
    )
    return 1 if manifest["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
