"""Milvus restores composed from the stack's own backup builders: the tool's config, the in-cluster Job.

``mlp vectordb milvus-restore`` runs the restore either here (the ``milvus-backup`` tool with
:func:`tool_config`) or in the stack's data namespace (:func:`stack_restore_manifests`), then checks
row counts with :mod:`workloads.milvus_backup_ops`. Both reuse the CronJob's builders in
``components.vectordb``, so a restore reads backups exactly where the schedule writes them.
"""

from __future__ import annotations

from typing import Any

from components.vectordb.milvus_backup import restore_command

__all__ = ["restore_command", "stack_restore_manifests", "tool_config"]


def tool_config(
    *,
    milvus_host: str,
    milvus_port: int,
    s3_host: str,
    s3_port: int,
    s3_ssl: bool,
    milvus_bucket: str,
    milvus_root_path: str,
    backup_bucket: str,
    backup_root_path: str,
) -> dict[str, Any]:
    """``backup.yaml`` for running the tool from this machine (same layout as the CronJob's)."""
    from components.storage import S3Access
    from components.vectordb.milvus_backup import MilvusBackupSpec, backup_config
    from components.vectordb.snapshot import SecretRef

    access = S3Access(endpoint="", host=s3_host, port=s3_port, secret_name="-", use_ssl=s3_ssl)
    spec = MilvusBackupSpec(
        name="local",
        namespace="-",
        schedule="@daily",
        milvus_host=milvus_host,
        milvus_port=milvus_port,
        root_password=SecretRef("-", "-"),
        source=access,
        milvus_bucket=milvus_bucket,
        milvus_root_path=milvus_root_path,
        target=access,
        backup_bucket=backup_bucket,
        backup_root_path=backup_root_path,
    )
    return backup_config(spec)


def stack_restore_manifests(backup: str, suffix: str) -> list[dict[str, Any]]:
    """The ConfigMap and restore Job that run the restore in the stack's data namespace."""
    from components.storage import user_access
    from components.vectordb.milvus import MilvusArgs, MilvusBackupSettings, backup_spec
    from components.vectordb.milvus_backup import configmap_manifest, restore_job_manifest
    from stacks import addons_data as data

    users = {user.name: user for user in data.SERVICE_USERS}
    args = MilvusArgs(
        namespace=data.DATA_NAMESPACE,
        storage_class="-",
        s3=user_access(data.STORAGE_NAME, users["milvus"]),
    )
    settings = MilvusBackupSettings(
        schedule="@daily",
        target=user_access(data.STORAGE_NAME, users["snapshots"]),
        bucket=data.SNAPSHOT_BUCKET,
        root_path=data.MILVUS_BACKUP_ROOT,
    )
    spec = backup_spec(data.MILVUS_NAME, args, settings)
    return [configmap_manifest(spec), restore_job_manifest(spec, backup, suffix)]
