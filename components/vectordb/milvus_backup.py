"""Scheduled Milvus backups to object storage with the official ``milvus-backup`` tool, as plain data.

Nothing here declares resources; :class:`components.vectordb.milvus.Milvus` wires the ConfigMap and
the ``batch/v1`` CronJob built here, and ``mlp vectordb milvus-restore`` renders the restore Job
from the same spec. Keeping the manifests pure lets tests validate them without Pulumi.

How the tool is configured (milvus-backup v0.5.x, ``--config backup.yaml``):

* ``backup.yaml`` in a ConfigMap carries addresses, buckets and paths only: the Milvus proxy
  (``milvus.address``/``port``, user ``root``), the store Milvus writes to (``minio.bucketName``/
  ``rootPath``) and where backups go (``minio.backupBucketName``/``backupRootPath``);
* credentials reach the container only through ``secretKeyRef`` env entries, which the tool reads
  over the file: ``MILVUS_PASSWORD``, ``MINIO_ACCESS_KEY``/``MINIO_SECRET_KEY`` (the ``milvus``
  MinIO user: read the Milvus bucket; a restore writes into it) and
  ``MINIO_BACKUP_ACCESS_KEY``/``MINIO_BACKUP_SECRET_KEY`` (the ``snapshots`` user: write the backup
  bucket). ``crossStorage: true`` makes the tool copy through itself with the two identities, so
  neither MinIO user needs the other's bucket (least privilege: the Milvus server cannot touch
  backups, the Qdrant snapshot job cannot read Milvus data).

Each run creates ``<prefix>_<UTC yyyymmddHHMMSS>`` (``milvus-backup create -n``), then deletes
backups of the same prefix older than the retention (``milvus-backup list`` / ``delete -n``), never
the one just made.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from components.storage import COMMON_LABELS, ContainerResources, S3Access
from components.vectordb.snapshot import SecretRef, job_pod_spec, scheduled_cronjob, validate_schedule
from components.versions import IMAGES, ImagePin

TOOL = "/app/milvus-backup"
"""The binary in the official image (its ``WORKDIR`` is ``/app``)."""
CONFIG_DIR = "/config"
CONFIG_KEY = "backup.yaml"
WORK_DIR = "/work"
BACKUP_NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_]*$"
"""What this project names backups: the tool accepts letters, digits and ``_``."""

BACKUP_SCRIPT = """\
set -eu
cfg="$CONFIG_DIR/backup.yaml"
name="${BACKUP_PREFIX}_$(date -u +%Y%m%d%H%M%S)"
echo "creating backup $name"
"$MILVUS_BACKUP_BIN" create --config "$cfg" -n "$name"
"$MILVUS_BACKUP_BIN" get --config "$cfg" -n "$name" > /dev/null
cutoff="$(date -u -d "@$(( $(date +%s) - RETENTION_DAYS * 86400 ))" +%Y%m%d%H%M%S)"
"$MILVUS_BACKUP_BIN" list --config "$cfg" 2>&1 | grep -E "^${BACKUP_PREFIX}_[0-9]{14}$" | while read -r old; do
  stamp="${old##*_}"
  if [ "$old" != "$name" ] && [ "$stamp" -lt "$cutoff" ]; then
    echo "deleting expired backup $old"
    "$MILVUS_BACKUP_BIN" delete --config "$cfg" -n "$old"
  fi
done
echo "backup $name done"
"""
"""The CronJob's shell program (``sh`` of the tool's Alpine image); settings arrive as env values."""


@dataclass(frozen=True)
class MilvusBackupSpec:
    """Everything the backup CronJob and a restore Job need, as plain values.

    Attributes:
        name: CronJob and ConfigMap name.
        namespace: Namespace of Milvus, MinIO's Secrets and the jobs.
        schedule: Cron schedule (``minute hour day month weekday``) in UTC.
        milvus_host: Milvus proxy Service host.
        milvus_port: Milvus gRPC port.
        root_password: Secret key with the Milvus ``root`` password.
        source: Access to the store Milvus writes to (the ``milvus`` MinIO user).
        milvus_bucket: Bucket of Milvus' data.
        milvus_root_path: Milvus' root path in that bucket (the chart's ``externalS3.rootPath``).
        target: Access to the backup store (the ``snapshots`` MinIO user).
        backup_bucket: Bucket backups go to.
        backup_root_path: Prefix of backups in that bucket.
        prefix: Name prefix of scheduled backups.
        retention_days: Scheduled backups older than this are deleted (the newest one never).
        gc_pause_address: Milvus HTTP endpoint (port 9091) whose garbage collection the tool pauses
            while it copies.
        image: The milvus-backup image.
        resources: Container resources.
        labels: Extra labels.

    """

    name: str
    namespace: str
    schedule: str
    milvus_host: str
    milvus_port: int
    root_password: SecretRef
    source: S3Access
    milvus_bucket: str
    milvus_root_path: str
    target: S3Access
    backup_bucket: str
    backup_root_path: str
    prefix: str = "scheduled"
    retention_days: int = 7
    gc_pause_address: str = ""
    image: ImagePin = field(default_factory=lambda: IMAGES["milvus-backup"])
    resources: ContainerResources = field(
        default_factory=lambda: ContainerResources(
            cpu_request="100m", memory_request="256Mi", memory_limit="1Gi"
        )
    )
    labels: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problems = validate_schedule(self.schedule)
        if problems:
            raise ValueError(f"invalid Milvus backup schedule {self.schedule!r}: {problems}")
        if self.retention_days < 1:
            raise ValueError(f"retention_days must be at least 1, got {self.retention_days}")
        if not re.match(BACKUP_NAME_PATTERN, self.prefix):
            raise ValueError(f"backup prefix {self.prefix!r} must match {BACKUP_NAME_PATTERN}")

    @property
    def config_map_name(self) -> str:
        """The ConfigMap holding ``backup.yaml``."""
        return f"{self.name}-config"


def backup_config(spec: MilvusBackupSpec) -> dict[str, Any]:
    """``backup.yaml`` of milvus-backup: endpoints, buckets and paths; credentials are env-only."""
    return {
        "log": {"level": "info", "console": True, "file": {"rootPath": f"{WORK_DIR}/logs/backup.log"}},
        "http": {"simpleResponse": True},
        "milvus": {
            "address": spec.milvus_host,
            "port": spec.milvus_port,
            "authorizationEnabled": True,
            "tlsMode": 0,
            "user": "root",
        },
        "minio": {
            "storageType": "minio",
            "address": spec.source.host,
            "port": spec.source.port,
            "useSSL": spec.source.use_ssl,
            "useIAM": False,
            "bucketName": spec.milvus_bucket,
            "rootPath": spec.milvus_root_path,
            "backupStorageType": "minio",
            "backupAddress": spec.target.host,
            "backupPort": spec.target.port,
            "backupUseSSL": spec.target.use_ssl,
            "backupBucketName": spec.backup_bucket,
            "backupRootPath": spec.backup_root_path,
            "crossStorage": True,
        },
        "backup": {
            "gcPause": {
                "enable": bool(spec.gc_pause_address),
                "seconds": 7200,
                "address": spec.gc_pause_address,
            },
        },
    }


def job_environment(spec: MilvusBackupSpec) -> list[dict[str, Any]]:
    """Env entries of the tool's container: credentials only as ``secretKeyRef``."""
    return [
        spec.root_password.env("MILVUS_PASSWORD"),
        *spec.source.env("MINIO_ACCESS_KEY", "MINIO_SECRET_KEY"),
        *spec.target.env("MINIO_BACKUP_ACCESS_KEY", "MINIO_BACKUP_SECRET_KEY"),
        {"name": "MILVUS_BACKUP_BIN", "value": TOOL},
        {"name": "CONFIG_DIR", "value": CONFIG_DIR},
        {"name": "BACKUP_PREFIX", "value": spec.prefix},
        {"name": "RETENTION_DAYS", "value": str(spec.retention_days)},
        {"name": "HOME", "value": WORK_DIR},
    ]


def configmap_manifest(spec: MilvusBackupSpec) -> dict[str, Any]:
    """The ``v1`` ConfigMap with ``backup.yaml`` (no credential in it)."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": spec.config_map_name, "namespace": spec.namespace, "labels": _labels(spec)},
        "data": {CONFIG_KEY: yaml.safe_dump(backup_config(spec), sort_keys=True)},
    }


def _pod_spec(spec: MilvusBackupSpec, command: list[str], restart: str) -> dict[str, Any]:
    container = {
        "name": "milvus-backup",
        "image": spec.image.ref,
        "imagePullPolicy": "IfNotPresent",
        "command": command,
        "workingDir": WORK_DIR,
        "env": job_environment(spec),
        "resources": spec.resources.to_k8s(),
        "volumeMounts": [
            {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
            {"name": "work", "mountPath": WORK_DIR},
        ],
    }
    volumes = [
        {"name": "config", "configMap": {"name": spec.config_map_name}},
        {"name": "work", "emptyDir": {"sizeLimit": "1Gi"}},
    ]
    return job_pod_spec(container, volumes, restart=restart)


def cronjob_manifest(spec: MilvusBackupSpec) -> dict[str, Any]:
    """The ``batch/v1`` CronJob: one run at a time, restricted pod security, bounded resources."""
    labels = _labels(spec)
    pod_spec = _pod_spec(spec, ["/bin/sh", "-c", BACKUP_SCRIPT], "OnFailure")
    return scheduled_cronjob(spec.name, spec.namespace, spec.schedule, labels, pod_spec)


def restore_command(backup: str, suffix: str, *, tool: str = TOOL, config: str | None = None) -> list[str]:
    """``milvus-backup restore`` of every collection of ``backup`` into ``<collection><suffix>``.

    ``--rebuild_index`` recreates the indexes recorded in the backup, so the restored collections
    can be loaded.
    """
    if not suffix:
        raise ValueError("a restore suffix is required: restoring over the live collections is refused")
    return [
        tool,
        "restore",
        "--config",
        config or f"{CONFIG_DIR}/{CONFIG_KEY}",
        "-n",
        backup,
        "-s",
        suffix,
        "--rebuild_index",
    ]


def restore_job_manifest(spec: MilvusBackupSpec, backup: str, suffix: str) -> dict[str, Any]:
    """A ``batch/v1`` Job that restores ``backup`` in-cluster with the CronJob's config and Secrets."""
    if not re.match(BACKUP_NAME_PATTERN, backup):
        raise ValueError(f"backup name {backup!r} must match {BACKUP_NAME_PATTERN}")
    name = f"{spec.name}-restore-{backup.lower().replace('_', '-')}"[:63].rstrip("-")
    labels = {**_labels(spec), "app.kubernetes.io/component": "vectordb-restore"}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": spec.namespace, "labels": labels},
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": 6 * 3600,
            "ttlSecondsAfterFinished": 7 * 24 * 3600,
            "template": {
                "metadata": {"labels": labels},
                "spec": _pod_spec(spec, restore_command(backup, suffix), "Never"),
            },
        },
    }


def _labels(spec: MilvusBackupSpec) -> dict[str, str]:
    return {**COMMON_LABELS, "app.kubernetes.io/component": "vectordb-backups", **spec.labels}
