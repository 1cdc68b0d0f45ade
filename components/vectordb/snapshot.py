"""Scheduled Qdrant snapshots to object storage: the job's script and its CronJob, as plain data.

Nothing here declares resources; :class:`components.vectordb.qdrant.Qdrant` wires these into a
ConfigMap and a ``batch/v1`` CronJob. Keeping them pure lets tests run the very script the cluster
runs against a fake Qdrant and an S3 server, and validate the CronJob without Pulumi.

What one run does (see ``docs/vectordb-operations.md``):

1. for every Qdrant peer (a snapshot covers only the shards local to the node that takes it),
   list collections with ``GET /collections``;
2. for each collection, ``POST /collections/{name}/snapshots?wait=true``, stream the snapshot down
   (hashing it), upload it to ``s3://<bucket>/<prefix>/<run-id>/node-<i>/<collection>/<file>``,
   and delete it from the node so snapshots do not pile up on the Qdrant volume;
3. write ``<prefix>/<run-id>/manifest.json`` last: a run without a manifest is incomplete;
4. delete runs older than the retention (the newest complete run is always kept);
5. exit 1 if any collection failed, so the Job is marked failed and alerts can fire.

The script needs only the standard library and boto3 (installed at start, pinned by
:data:`BOTO3_VERSION`). Credentials reach it only through ``secretKeyRef`` env entries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from components.storage import COMMON_LABELS, ContainerResources, S3Access
from components.versions import IMAGES, ImagePin

BOTO3_VERSION = "1.44.8"
"""boto3 the job installs at start (the version the project's own tests run the script with)."""

SCRIPT_KEY = "qdrant_snapshot.py"
WORK_DIR = "/work"
RUN_AS_USER = 65532
"""A non-root uid with no entry in the image; the job needs no home beyond its work volume."""

SNAPSHOT_SCRIPT = r'''
"""Snapshot every Qdrant collection on every peer and upload the files to S3 (see module docs)."""

import datetime as dt
import hashlib
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import boto3

CHUNK = 1 << 20


def log(event, **fields):
    print(json.dumps({"event": event, **fields}, sort_keys=True), flush=True)


def env(name, default=None):
    value = os.environ.get(name, default)
    if value is None or value == "":
        raise SystemExit(f"missing environment variable {name}")
    return value


class Qdrant:
    def __init__(self, url, api_key, timeout):
        self.url = url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout

    def _request(self, method, path, stream=False):
        request = urllib.request.Request(self.url + path, method=method)
        if self.api_key:
            request.add_header("api-key", self.api_key)
        response = urllib.request.urlopen(request, timeout=self.timeout)
        if stream:
            return response
        with response:
            return json.loads(response.read() or b"{}")

    def collections(self):
        return sorted(c["name"] for c in self._request("GET", "/collections")["result"]["collections"])

    def create_snapshot(self, collection):
        name = urllib.parse.quote(collection, safe="")
        return self._request("POST", f"/collections/{name}/snapshots?wait=true")["result"]

    def download(self, collection, snapshot, path):
        name = urllib.parse.quote(collection, safe="")
        digest = hashlib.sha256()
        size = 0
        with (
            self._request(
                "GET", f"/collections/{name}/snapshots/{urllib.parse.quote(snapshot)}", stream=True
            ) as src,
            open(path, "wb") as dst,
        ):
            while True:
                chunk = src.read(CHUNK)
                if not chunk:
                    break
                digest.update(chunk)
                dst.write(chunk)
                size += len(chunk)
        return digest.hexdigest(), size

    def delete_snapshot(self, collection, snapshot):
        name = urllib.parse.quote(collection, safe="")
        self._request("DELETE", f"/collections/{name}/snapshots/{urllib.parse.quote(snapshot)}?wait=true")


def s3_client():
    return boto3.client(
        "s3",
        endpoint_url=env("S3_ENDPOINT"),
        aws_access_key_id=env("AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=env("AWS_SECRET_ACCESS_KEY"),
        region_name=os.environ.get("AWS_REGION", "us-east-1"),
    )


def run_ids(s3, bucket, prefix):
    ids = []
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=prefix + "/", Delimiter="/"
    ):
        for common in page.get("CommonPrefixes", []):
            ids.append(common["Prefix"][len(prefix) + 1 :].rstrip("/"))
    return sorted(ids)


def read_manifest(s3, bucket, prefix, run_id):
    try:
        body = s3.get_object(Bucket=bucket, Key=f"{prefix}/{run_id}/manifest.json")["Body"].read()
    except s3.exceptions.NoSuchKey:
        return None
    return json.loads(body)


def prune(s3, bucket, prefix, retention_days, keep_run):
    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(days=retention_days)
    complete = []
    for run_id in run_ids(s3, bucket, prefix):
        manifest = read_manifest(s3, bucket, prefix, run_id)
        if manifest and manifest.get("status") == "complete":
            complete.append(run_id)
    newest_complete = complete[-1] if complete else None
    removed = []
    for run_id in run_ids(s3, bucket, prefix):
        if run_id in (keep_run, newest_complete):
            continue
        try:
            started = dt.datetime.strptime(run_id, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
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


def main():
    peers = [url.strip() for url in env("QDRANT_URLS").split(",") if url.strip()]
    api_key = os.environ.get("QDRANT_API_KEY", "")
    bucket = env("S3_BUCKET")
    prefix = env("S3_PREFIX").strip("/")
    retention_days = int(env("RETENTION_DAYS", "7"))
    timeout = float(env("SNAPSHOT_TIMEOUT_S", "3600"))
    work_dir = env("WORK_DIR")
    started = dt.datetime.now(dt.UTC)
    run_id = os.environ.get("RUN_ID") or started.strftime("%Y%m%dT%H%M%SZ")
    s3 = s3_client()
    manifest = {
        "format": 1,
        "engine": "qdrant",
        "run_id": run_id,
        "created_at": started.isoformat(),
        "nodes": [{"index": i, "url": url} for i, url in enumerate(peers)],
        "snapshots": [],
        "failures": [],
    }
    os.makedirs(work_dir, exist_ok=True)
    for index, url in enumerate(peers):
        qdrant = Qdrant(url, api_key, timeout)
        try:
            collections = qdrant.collections()
        except (urllib.error.URLError, OSError, ValueError, KeyError) as error:
            manifest["failures"].append({"node": index, "collection": None, "error": str(error)})
            log("node_failed", node=index, url=url, error=str(error))
            continue
        for collection in collections:
            began = time.monotonic()
            try:
                info = qdrant.create_snapshot(collection)
                local = os.path.join(work_dir, info["name"])
                sha256, size = qdrant.download(collection, info["name"], local)
                key = f"{prefix}/{run_id}/node-{index}/{collection}/{info['name']}"
                s3.upload_file(local, bucket, key, ExtraArgs={"Metadata": {"sha256": sha256}})
                os.remove(local)
                qdrant.delete_snapshot(collection, info["name"])
            except Exception as error:  # one failed collection must not stop the others
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
'''
"""The job's script: standard library + boto3, configured only through environment variables."""


@dataclass(frozen=True)
class SecretRef:
    """A key in a Kubernetes Secret."""

    name: str
    key: str

    def env(self, var: str) -> dict[str, Any]:
        """An env entry that reads this key (``valueFrom.secretKeyRef``)."""
        return {"name": var, "valueFrom": {"secretKeyRef": {"name": self.name, "key": self.key}}}


@dataclass(frozen=True)
class SnapshotJobSpec:
    """Everything the snapshot CronJob needs, as plain values.

    Attributes:
        name: CronJob (and ConfigMap) name.
        namespace: Namespace of Qdrant, the Secrets and the job.
        schedule: Cron schedule (``minute hour day month weekday``), evaluated in UTC.
        peer_urls: Base URL of every Qdrant peer, in pod-ordinal order.
        api_key: Secret key holding the Qdrant API key.
        s3: Object store access (endpoint and credential Secret).
        bucket: Destination bucket.
        prefix: Key prefix of this Qdrant instance's runs.
        retention_days: Runs older than this are deleted (the newest complete run is kept).
        work_size_gi: Scratch space for one snapshot file at a time.
        image: Python image running the script.
        resources: Container resources.
        labels: Extra labels on the CronJob and its pods.

    """

    name: str
    namespace: str
    schedule: str
    peer_urls: tuple[str, ...]
    api_key: SecretRef
    s3: S3Access
    bucket: str
    prefix: str
    retention_days: int = 7
    work_size_gi: int = 10
    image: ImagePin = field(default_factory=lambda: IMAGES["python-slim"])
    resources: ContainerResources = field(default_factory=ContainerResources)
    labels: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problems = validate_schedule(self.schedule)
        if problems:
            raise ValueError(f"invalid snapshot schedule {self.schedule!r}: {problems}")
        if not self.peer_urls:
            raise ValueError("peer_urls must name at least one Qdrant peer")
        if self.retention_days < 1:
            raise ValueError(f"retention_days must be at least 1, got {self.retention_days}")


_CRON_FIELDS = (
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 7),
)
_CRON_MACROS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}


def validate_schedule(schedule: str) -> str:
    """Check a five-field cron expression (numbers, ``*``, ranges, lists, steps) or a macro.

    Returns:
        An empty string when valid, else what is wrong.

    """
    text = schedule.strip()
    if text in _CRON_MACROS:
        return ""
    parts = text.split()
    if len(parts) != len(_CRON_FIELDS):
        return f"expected 5 fields (minute hour day month weekday), got {len(parts)}"
    for part, (label, low, high) in zip(parts, _CRON_FIELDS, strict=True):
        for item in part.split(","):
            base, _, step = item.partition("/")
            if step and (not step.isdigit() or int(step) == 0):
                return f"{label}: bad step in {item!r}"
            if base == "*":
                continue
            bounds = base.split("-")
            if len(bounds) > 2 or not all(b.isdigit() for b in bounds):
                return f"{label}: {item!r} is not a number, range or '*'"
            values = [int(b) for b in bounds]
            if any(v < low or v > high for v in values) or values != sorted(values):
                return f"{label}: {item!r} is outside {low}-{high}"
    return ""


def peer_urls(fullname: str, replicas: int, port: int = 6333) -> tuple[str, ...]:
    """Base URLs of every pod of a Qdrant StatefulSet, reachable from its own namespace.

    The chart's StatefulSet uses the ``<fullname>-headless`` Service, so pod ``i`` resolves as
    ``<fullname>-<i>.<fullname>-headless`` through the namespace's DNS search path.
    """
    return tuple(f"http://{fullname}-{i}.{fullname}-headless:{port}" for i in range(replicas))


def job_environment(spec: SnapshotJobSpec) -> list[dict[str, Any]]:
    """Env entries of the job container: settings as values, credentials only as secretKeyRef."""
    return [
        {"name": "QDRANT_URLS", "value": ",".join(spec.peer_urls)},
        spec.api_key.env("QDRANT_API_KEY"),
        {"name": "S3_ENDPOINT", "value": spec.s3.endpoint},
        {"name": "S3_BUCKET", "value": spec.bucket},
        {"name": "S3_PREFIX", "value": spec.prefix},
        *spec.s3.env("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
        {"name": "RETENTION_DAYS", "value": str(spec.retention_days)},
        {"name": "WORK_DIR", "value": f"{WORK_DIR}/snapshots"},
        {"name": "PYTHONPATH", "value": f"{WORK_DIR}/pylib"},
        {"name": "HOME", "value": WORK_DIR},
        {"name": "PYTHONUNBUFFERED", "value": "1"},
        {"name": "PIP_DISABLE_PIP_VERSION_CHECK", "value": "1"},
        {"name": "AWS_EC2_METADATA_DISABLED", "value": "true"},
    ]


def job_command() -> list[str]:
    """Install the pinned boto3 into the scratch volume unless the image has it, then run the script.

    An image with boto3 baked in (set ``IMAGES["python-slim"]`` to it) needs no package index.
    """
    install = f"python -m pip install --quiet --no-cache-dir --target {WORK_DIR}/pylib boto3=={BOTO3_VERSION}"
    return [
        "/bin/sh",
        "-c",
        f"{{ python -c 'import boto3' 2>/dev/null || {install}; }} && exec python /scripts/{SCRIPT_KEY}",
    ]


def configmap_manifest(spec: SnapshotJobSpec) -> dict[str, Any]:
    """The ConfigMap that carries the script."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": spec.name, "namespace": spec.namespace, "labels": _labels(spec)},
        "data": {SCRIPT_KEY: SNAPSHOT_SCRIPT.lstrip()},
    }


def cronjob_manifest(spec: SnapshotJobSpec) -> dict[str, Any]:
    """The ``batch/v1`` CronJob: one run at a time, restricted pod security, bounded resources."""
    labels = _labels(spec)
    container = {
        "name": "snapshot",
        "image": spec.image.ref,
        "imagePullPolicy": "IfNotPresent",
        "command": job_command(),
        "env": job_environment(spec),
        "resources": spec.resources.to_k8s(),
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [
            {"name": "work", "mountPath": WORK_DIR},
            {"name": "script", "mountPath": "/scripts", "readOnly": True},
        ],
    }
    pod_spec = {
        "restartPolicy": "OnFailure",
        "automountServiceAccountToken": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUN_AS_USER,
            "runAsGroup": RUN_AS_USER,
            "fsGroup": RUN_AS_USER,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": [
            {"name": "work", "emptyDir": {"sizeLimit": f"{spec.work_size_gi}Gi"}},
            {"name": "script", "configMap": {"name": spec.name, "defaultMode": 0o444}},
        ],
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": spec.name, "namespace": spec.namespace, "labels": labels},
        "spec": {
            "schedule": spec.schedule,
            "timeZone": "Etc/UTC",
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": 3600,
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {
                "metadata": {"labels": labels},
                "spec": {
                    "backoffLimit": 2,
                    "activeDeadlineSeconds": 6 * 3600,
                    "ttlSecondsAfterFinished": 7 * 24 * 3600,
                    "template": {"metadata": {"labels": labels}, "spec": pod_spec},
                },
            },
        },
    }


def _labels(spec: SnapshotJobSpec) -> dict[str, str]:
    return {**COMMON_LABELS, "app.kubernetes.io/component": "vectordb-snapshots", **spec.labels}
