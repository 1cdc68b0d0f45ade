"""Qdrant from its official chart, with a generated API key and scheduled snapshots to S3.

How the API key reaches Qdrant without entering the Helm values:

* ``pulumi_random.RandomPassword`` -> a Kubernetes Secret ``<name>-api-key`` (the value is a
  Pulumi secret, so previews and the offline plan show ``[secret]``);
* the chart's ``apiKey.valueFrom.secretKeyRef`` names that Secret (the chart copies it into its own
  config Secret at install), and the container also gets ``QDRANT__SERVICE__API_KEY`` from the same
  Secret through ``env[].valueFrom``. Qdrant gives environment variables precedence over config
  files, so the key is enforced even if the chart's copy were ever empty.

Sharding: every collection a client creates without explicit settings gets
``replication_factor`` replicas of each shard and ``shard_number_per_node`` shards on each peer
(so ``replicas * shard_number_per_node`` >= the configured shard number). Cluster mode is always on,
so scaling out is a change of ``replicas`` plus moving shards, never a migration.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components.helm import pinned_release
from components.metrics import service_monitor
from components.security import container_security, pod_security
from components.storage import ContainerResources, S3Access, instance_labels
from components.vectordb import snapshot
from components.vectordb.spread import zone_spread
from components.versions import CHARTS

HTTP_PORT = 6333
GRPC_PORT = 6334
API_KEY_SECRET_KEY = "api-key"
API_KEY_ENV = "QDRANT__SERVICE__API_KEY"
QDRANT_UID = 1000
"""Non-root uid the chart runs Qdrant as (its ``containerSecurityContext.runAsUser``)."""
QDRANT_FS_GROUP = 3000
"""Group that owns Qdrant's volumes (the chart's ``podSecurityContext.fsGroup``)."""


@dataclass(frozen=True)
class SnapshotSettings:
    """Where and when collection snapshots go.

    Attributes:
        schedule: Cron schedule in UTC.
        s3: Object store access from the Qdrant namespace.
        bucket: Destination bucket.
        prefix: Key prefix of this instance's runs (``qdrant/<name>`` when empty).
        retention_days: Keep runs this many days (the newest complete run is always kept).

    """

    schedule: str
    s3: S3Access
    bucket: str
    prefix: str = ""
    retention_days: int = 7


@dataclass(frozen=True)
class QdrantArgs:
    """Settings of one Qdrant deployment.

    Attributes:
        namespace: Namespace (must exist; holds the S3 credential Secret when snapshots are on).
        storage_class: Storage class of the data volumes.
        replicas: Qdrant peers (StatefulSet replicas).
        shard_number: Shards per collection that the defaults aim for.
        replication_factor: Copies of each shard; at most ``replicas``.
        storage_size_gi: Data volume size per peer in GiB.
        snapshots: Scheduled snapshots to S3, or None for none.
        resources: Qdrant container resources.
        service_monitor: Declare a ServiceMonitor on every peer's ``/metrics`` (needs the
            Prometheus Operator CRDs); it authenticates with the API key Secret.
        zone_spread: Spread the peers over zones, then nodes (``topologySpreadConstraints``).

    """

    namespace: str
    storage_class: str
    replicas: int = 1
    shard_number: int = 1
    replication_factor: int = 1
    storage_size_gi: int = 10
    snapshots: SnapshotSettings | None = None
    service_monitor: bool = False
    zone_spread: bool = False
    resources: ContainerResources = field(
        default_factory=lambda: ContainerResources(
            cpu_request="250m", memory_request="512Mi", memory_limit="2Gi"
        )
    )

    def __post_init__(self) -> None:
        for attr in ("replicas", "shard_number", "replication_factor", "storage_size_gi"):
            if getattr(self, attr) < 1:
                raise ValueError(f"{attr} must be at least 1, got {getattr(self, attr)}")
        if self.replication_factor > self.replicas:
            raise ValueError(
                f"replication_factor {self.replication_factor} needs at least that many peers, but replicas is "
                f"{self.replicas}: raise vectordb.qdrant.replicas or lower replicationFactor"
            )

    @property
    def shard_number_per_node(self) -> int:
        """Shards each peer holds for a new collection, so the total reaches ``shard_number``."""
        return max(1, math.ceil(self.shard_number / self.replicas))


def api_key_secret_name(fullname: str) -> str:
    """Name of the Secret with the API key of release ``fullname``."""
    return f"{fullname}-api-key"


def qdrant_values(args: QdrantArgs, *, fullname: str, api_key_secret: str) -> dict[str, Any]:
    """Helm values of the Qdrant chart; the API key is referenced, never included."""
    key_ref = {"secretKeyRef": {"name": api_key_secret, "key": API_KEY_SECRET_KEY}}
    spread = zone_spread({"app.kubernetes.io/name": "qdrant", "app.kubernetes.io/instance": fullname})
    return {
        "fullnameOverride": fullname,
        "replicaCount": args.replicas,
        "apiKey": {"valueFrom": key_ref},
        "env": [{"name": API_KEY_ENV, "valueFrom": key_ref}],
        "persistence": {
            "storageClassName": args.storage_class,
            "size": f"{args.storage_size_gi}Gi",
            "accessModes": ["ReadWriteOnce"],
        },
        "resources": args.resources.to_k8s(),
        # The chart's uid/gid/fsGroup and read-only root stay; these add what `restricted` needs.
        # Volume ownership comes from fsGroup, so the chart's root `chown` init container is off.
        "containerSecurityContext": container_security(run_as_user=QDRANT_UID),
        "podSecurityContext": pod_security(fs_group=QDRANT_FS_GROUP),
        "updateVolumeFsOwnership": False,
        "podDisruptionBudget": {"enabled": args.replicas > 1, "maxUnavailable": 1},
        "topologySpreadConstraints": spread if args.zone_spread else [],
        "config": {
            "cluster": {"enabled": True, "p2p": {"port": 6335}, "consensus": {"tick_period_ms": 100}},
            "storage": {
                "collection": {
                    "replication_factor": args.replication_factor,
                    "write_consistency_factor": 1,
                    "shard_number_per_node": args.shard_number_per_node,
                }
            },
            "telemetry_disabled": True,
        },
    }


def snapshot_job_spec(name: str, args: QdrantArgs, settings: SnapshotSettings) -> snapshot.SnapshotJobSpec:
    """The snapshot CronJob of Qdrant release ``name``."""
    return snapshot.SnapshotJobSpec(
        name=f"{name}-snapshots",
        namespace=args.namespace,
        schedule=settings.schedule,
        peer_urls=snapshot.peer_urls(name, args.replicas, HTTP_PORT),
        api_key=snapshot.SecretRef(api_key_secret_name(name), API_KEY_SECRET_KEY),
        s3=settings.s3,
        bucket=settings.bucket,
        prefix=settings.prefix or f"qdrant/{name}",
        retention_days=settings.retention_days,
        work_size_gi=args.storage_size_gi,
        labels={"app.kubernetes.io/instance": name},
    )


class Qdrant(pulumi.ComponentResource):
    """A Qdrant deployment with its API key in a Secret and scheduled snapshots to S3.

    Attributes:
        url: In-cluster REST URL, ``http://<name>.<namespace>.svc:6333``.
        grpc_url: In-cluster gRPC address.
        api_key: The API key (secret).
        api_key_secret_name: Secret holding the API key (key ``api-key``).
        snapshot_schedule: Cron schedule of snapshots, or None.
        snapshot_location: ``s3://bucket/prefix`` of the snapshot runs, or None.

    """

    def __init__(self, name: str, args: QdrantArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplatform:vectordb:Qdrant", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        labels = instance_labels("vectordb", name)

        password = random.RandomPassword(f"{name}-api-key", length=48, special=False, opts=child)
        self.api_key: pulumi.Output[str] = pulumi.Output.secret(password.result)
        secret = k8s.core.v1.Secret(
            f"{name}-api-key",
            metadata={"name": api_key_secret_name(name), "namespace": args.namespace, "labels": labels},
            type="Opaque",
            string_data={API_KEY_SECRET_KEY: self.api_key},
            opts=child,
        )
        self.api_key_secret_name: pulumi.Output[str] = secret.metadata.apply(lambda m: m.name)

        self.release = pinned_release(
            f"{name}-release",
            CHARTS["qdrant"],
            release_name=name,
            namespace=args.namespace,
            values=qdrant_values(args, fullname=name, api_key_secret=api_key_secret_name(name)),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[secret]),
        )

        self.snapshot_schedule: str | None = None
        self.snapshot_location: str | None = None
        if args.snapshots is not None:
            spec = snapshot_job_spec(name, args, args.snapshots)
            cron = snapshot.cronjob_manifest(spec)
            k8s.batch.v1.CronJob(
                f"{name}-snapshots",
                metadata=cron["metadata"],
                spec=cron["spec"],
                opts=pulumi.ResourceOptions(parent=self, depends_on=[secret]),
            )
            self.snapshot_schedule = spec.schedule
            self.snapshot_location = f"s3://{spec.bucket}/{spec.prefix}"

        if args.service_monitor:
            # The headless Service lists every peer; /metrics needs the API key (Bearer).
            service_monitor(
                f"{name}-metrics",
                namespace=args.namespace,
                selector={
                    "app.kubernetes.io/name": "qdrant",
                    "app.kubernetes.io/instance": name,
                    "app.kubernetes.io/component": "cluster-discovery",
                },
                port="http",
                bearer_secret=(api_key_secret_name(name), API_KEY_SECRET_KEY),
                labels=labels,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.release]),
            )

        host = f"{name}.{args.namespace}.svc"
        self.url: pulumi.Output[str] = pulumi.Output.from_input(f"http://{host}:{HTTP_PORT}")
        self.grpc_url: pulumi.Output[str] = pulumi.Output.from_input(f"{host}:{GRPC_PORT}")
        self.register_outputs(
            {
                "url": self.url,
                "grpc_url": self.grpc_url,
                "api_key": self.api_key,
                "api_key_secret_name": self.api_key_secret_name,
                "snapshot_schedule": self.snapshot_schedule,
                "snapshot_location": self.snapshot_location,
            }
        )
