"""The data layer: object storage, and the vector databases that keep their data and backups in it.

MinIO, Qdrant and Milvus share one namespace so that Milvus and the Qdrant snapshot job can read
the object-store credentials from MinIO's own Secret (a ``secretKeyRef`` cannot cross namespaces),
and no credential is ever copied.
"""

from __future__ import annotations

from typing import Any

import pulumi

from components.clusters.base import Cluster
from components.storage import ObjectStorage, ObjectStorageArgs, ServiceUser
from components.vectordb.milvus import Milvus, MilvusArgs, MilvusBackupSettings, MilvusClusterSize
from components.vectordb.qdrant import Qdrant, QdrantArgs, SnapshotSettings
from stacks import outputs
from stacks.config import PlatformConfig

DATA_NAMESPACE = "mlp-data"
STORAGE_NAME = "minio"
QDRANT_NAME = "qdrant"
MILVUS_NAME = "milvus"
PLATFORM_BUCKET = "pipelines"
"""The bucket exported as ``S3_BUCKET``: pipeline data, checkpoints and other workload artifacts."""
SNAPSHOT_BUCKET = "vectordb-snapshots"
SNAPSHOT_PREFIX = f"qdrant/{QDRANT_NAME}"
MILVUS_BACKUP_ROOT = f"milvus/{MILVUS_NAME}"
"""Where milvus-backup writes in SNAPSHOT_BUCKET (with the ``snapshots`` user; Milvus' data is read
with the ``milvus`` user, so neither user gets the other's bucket)."""
DATASETS_BUCKET = "datasets"
"""New objects here start a training run (Argo Events)."""
MLFLOW_BUCKET = "mlflow"
MILVUS_BUCKET = "milvus"
"""Milvus' own object storage (segments, logs)."""
BUCKETS = (MLFLOW_BUCKET, PLATFORM_BUCKET, SNAPSHOT_BUCKET, MILVUS_BUCKET, DATASETS_BUCKET)
"""Every bucket the platform creates; the names are spelled here and nowhere else in the program."""
VERSIONED_BUCKETS = (MLFLOW_BUCKET, PLATFORM_BUCKET, SNAPSHOT_BUCKET)
"""Model artifacts, pipeline data and backups keep every version of an object."""
SERVICE_USERS = (
    ServiceUser("mlflow", (MLFLOW_BUCKET,)),
    ServiceUser("kfp", (PLATFORM_BUCKET, DATASETS_BUCKET)),  # steps read new datasets (preprocess)
    ServiceUser("milvus", (MILVUS_BUCKET,)),
    ServiceUser("snapshots", (SNAPSHOT_BUCKET,)),
    ServiceUser("kserve", (MLFLOW_BUCKET,)),
    ServiceUser("events", (DATASETS_BUCKET,)),
    ServiceUser("workloads", (PLATFORM_BUCKET, DATASETS_BUCKET, SNAPSHOT_BUCKET)),
)
"""One MinIO user per service, limited to its buckets; workloads get ``workloads``, never root."""
WORKLOADS_USER = "workloads"


def add_data_layer(cfg: PlatformConfig, cluster: Cluster) -> dict[str, Any]:
    """Declare MinIO, and Qdrant and Milvus where enabled, on ``cluster``.

    Args:
        cfg: The validated stack configuration.
        cluster: The cluster (its provider, storage class).

    Returns:
        Output-contract values: ``S3_*`` always, ``QDRANT_*`` and ``MILVUS_*`` for enabled
        databases. Keys, passwords and tokens are Pulumi secrets.

    """
    provider = pulumi.ResourceOptions(provider=cluster.provider)
    vectordb = cfg.vectordb
    storage = ObjectStorage(
        STORAGE_NAME,
        ObjectStorageArgs(
            namespace=DATA_NAMESPACE,
            storage_class=cluster.storage_class,
            storage_size_gi=cfg.storage.size_gi,
            buckets=BUCKETS,
            versioned_buckets=VERSIONED_BUCKETS,
            users=SERVICE_USERS,
            service_monitor=cfg.observability.enabled,
        ),
        opts=provider,
    )
    after_storage = pulumi.ResourceOptions(provider=cluster.provider, depends_on=[storage])
    result: dict[str, Any] = {
        outputs.S3_ENDPOINT: storage.endpoint,
        outputs.S3_BUCKET: PLATFORM_BUCKET,
        outputs.S3_ACCESS_KEY_ID: storage.users[WORKLOADS_USER].access_key_id,
        outputs.S3_SECRET_ACCESS_KEY: storage.users[WORKLOADS_USER].secret_access_key,
        outputs.DATASETS_BUCKET: DATASETS_BUCKET,
        outputs.S3_SERVICE_CREDENTIALS: pulumi.Output.secret(
            pulumi.Output.all(**{name: user.secret_access_key for name, user in storage.users.items()}).apply(
                lambda keys: {
                    name: {
                        "accessKeyId": storage.users[name].access_key_id,
                        "secretAccessKey": key,
                        "buckets": list(storage.users[name].buckets),
                    }
                    for name, key in keys.items()
                }
            )
        ),
    }

    if vectordb.qdrant.enabled:
        qcfg = vectordb.qdrant
        qdrant = Qdrant(
            QDRANT_NAME,
            QdrantArgs(
                namespace=DATA_NAMESPACE,
                storage_class=cluster.storage_class,
                replicas=qcfg.replicas,
                shard_number=qcfg.shard_number,
                replication_factor=qcfg.replication_factor,
                storage_size_gi=qcfg.storage_size_gi,
                service_monitor=cfg.observability.enabled,
                zone_spread=cfg.target != "dev",
                snapshots=SnapshotSettings(
                    schedule=qcfg.snapshot_schedule,
                    s3=storage.users["snapshots"].access,
                    bucket=SNAPSHOT_BUCKET,
                    prefix=SNAPSHOT_PREFIX,
                    retention_days=qcfg.snapshot_retention_days,
                ),
            ),
            opts=after_storage,
        )
        result[outputs.QDRANT_URL] = qdrant.url
        result[outputs.QDRANT_API_KEY] = qdrant.api_key
        result[outputs.QDRANT_SNAPSHOTS_URI] = f"s3://{SNAPSHOT_BUCKET}/{SNAPSHOT_PREFIX}"

    if vectordb.milvus.enabled:
        mcfg = vectordb.milvus
        milvus = Milvus(
            MILVUS_NAME,
            MilvusArgs(
                namespace=DATA_NAMESPACE,
                storage_class=cluster.storage_class,
                s3=storage.users["milvus"].access,
                bucket=MILVUS_BUCKET,
                mode=mcfg.mode,
                storage_size_gi=mcfg.storage_size_gi,
                service_monitor=cfg.observability.enabled,
                cluster=MilvusClusterSize(
                    proxies=mcfg.proxies,
                    query_nodes=mcfg.query_nodes,
                    data_nodes=mcfg.data_nodes,
                    streaming_nodes=mcfg.streaming_nodes,
                ),
                zone_spread=cfg.target != "dev",
                backup=MilvusBackupSettings(
                    schedule=mcfg.backup_schedule,
                    target=storage.users["snapshots"].access,
                    bucket=SNAPSHOT_BUCKET,
                    root_path=MILVUS_BACKUP_ROOT,
                    retention_days=mcfg.backup_retention_days,
                ),
            ),
            opts=after_storage,
        )
        result[outputs.MILVUS_URI] = milvus.uri
        result[outputs.MILVUS_TOKEN] = milvus.token
    return result
