"""Milvus from its official chart, storing its data in the platform's MinIO.

Secrets never enter the Helm values (the chart would render them into a ConfigMap):

* the S3 credentials come from the MinIO credentials Secret, and the root password from a Secret
  filled by ``pulumi_random``, all through ``extraEnv[].valueFrom.secretKeyRef`` on every Milvus
  container;
* Milvus reads environment variables as a configuration source that outranks ``milvus.yaml``,
  matching names case- and separator-insensitively: ``MINIO_ACCESS_KEY_ID`` sets
  ``minio.accessKeyID``, ``COMMON_SECURITY_DEFAULTROOTPASSWORD`` sets
  ``common.security.defaultRootPassword``. So ``externalS3.accessKey/secretKey`` stay empty.

Modes: ``standalone`` (one pod, embedded Woodpecker WAL, one small etcd) for dev; ``cluster`` (proxy,
mixCoord, query/data/streaming nodes, Woodpecker WAL in object storage, three etcd members) for
clouds. Neither runs Pulsar or Kafka.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components.helm import pinned_release
from components.metrics import service_monitor
from components.storage import ContainerResources, S3Access, instance_labels
from components.vectordb import milvus_backup
from components.vectordb.snapshot import SecretRef
from components.vectordb.spread import zone_spread
from components.versions import CHARTS

MILVUS_PORT = 19530
METRICS_PORT = 9091
"""Milvus' HTTP port (metrics, health and the management API milvus-backup pauses GC through)."""
ROOT_USER = "root"
ROOT_PASSWORD_KEY = "password"
CLUSTER_COMPONENTS = ("proxy", "mixCoordinator", "queryNode", "dataNode", "streamingNode")
"""Chart sections of the Milvus processes in cluster mode (each takes ``extraEnv``)."""
MILVUS_CONTAINER_SECURITY: dict[str, Any] = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
"""Container ``securityContext`` of Milvus' own containers (the image needs uid 0, see values)."""

MilvusMode = Literal["standalone", "cluster"]
CHART_COMPONENT_LABELS = {
    "proxy": "proxy",
    "mixCoordinator": "mixcoord",
    "queryNode": "querynode",
    "dataNode": "datanode",
    "streamingNode": "streamingnode",
}
"""The chart's ``component`` pod label of each process (selectors of spreads and PDBs)."""
SPREAD_BY_AFFINITY = ("streamingNode",)
"""Chart sections whose template reads ``affinity`` but not ``topologySpreadConstraints``."""


@dataclass(frozen=True)
class MilvusBackupSettings:
    """Scheduled milvus-backup runs (see :mod:`components.vectordb.milvus_backup`).

    Attributes:
        schedule: Cron schedule in UTC.
        target: Access to the backup bucket (its own MinIO user, not Milvus').
        bucket: Bucket backups go to.
        root_path: Prefix of backups in that bucket.
        retention_days: Keep scheduled backups this many days (the newest always).

    """

    schedule: str
    target: S3Access
    bucket: str
    root_path: str
    retention_days: int = 7


@dataclass(frozen=True)
class MilvusClusterSize:
    """Replica counts of the horizontally scalable Milvus processes (cluster mode only).

    Attributes:
        proxies: Request routers (scale with client connections and QPS).
        query_nodes: Search and query serving (scale with QPS and loaded data).
        data_nodes: Compaction and flushing (scale with write volume).
        streaming_nodes: WAL owners (scale with the number of channels written).

    """

    proxies: int = 1
    query_nodes: int = 2
    data_nodes: int = 1
    streaming_nodes: int = 1


@dataclass(frozen=True)
class MilvusArgs:
    """Settings of one Milvus deployment.

    Attributes:
        namespace: Namespace (must exist and hold the S3 credential Secret).
        storage_class: Storage class of the standalone volume and etcd.
        s3: Object store access from that namespace.
        mode: ``standalone`` or ``cluster``.
        storage_size_gi: Standalone local volume size in GiB (cluster nodes keep data in S3).
        bucket: Bucket of Milvus data; must exist.
        etcd_size_gi: Volume size of each etcd member.
        cluster: Replica counts in cluster mode.
        resources: Resources of the standalone pod, or of each cluster process.
        service_monitor: Declare a ServiceMonitor on the ``metrics`` port (9091) of every Milvus
            Service (needs the Prometheus Operator CRDs).

    """

    namespace: str
    storage_class: str
    s3: S3Access
    mode: MilvusMode = "standalone"
    storage_size_gi: int = 10
    bucket: str = "milvus"
    etcd_size_gi: int = 2
    cluster: MilvusClusterSize = field(default_factory=MilvusClusterSize)
    service_monitor: bool = False
    backup: MilvusBackupSettings | None = None
    zone_spread: bool = False
    resources: ContainerResources = field(
        default_factory=lambda: ContainerResources(
            cpu_request="250m", memory_request="1Gi", memory_limit="4Gi"
        )
    )

    def __post_init__(self) -> None:
        if self.mode not in ("standalone", "cluster"):
            raise ValueError(f"mode must be 'standalone' or 'cluster', got {self.mode!r}")
        if self.storage_size_gi < 1 or self.etcd_size_gi < 1:
            raise ValueError("storage_size_gi and etcd_size_gi must be at least 1")


def root_secret_name(fullname: str) -> str:
    """Name of the Secret with the root password of release ``fullname``."""
    return f"{fullname}-root"


def milvus_env(s3: S3Access, root_secret: str) -> list[dict[str, Any]]:
    """Env entries every Milvus process gets: S3 credentials and root password by reference."""
    return [
        *s3.env("MINIO_ACCESS_KEY_ID", "MINIO_SECRET_ACCESS_KEY"),
        {"name": "COMMON_SECURITY_AUTHORIZATIONENABLED", "value": "true"},
        {
            "name": "COMMON_SECURITY_DEFAULTROOTPASSWORD",
            "valueFrom": {"secretKeyRef": {"name": root_secret, "key": ROOT_PASSWORD_KEY}},
        },
    ]


def milvus_values(args: MilvusArgs, *, fullname: str, root_secret: str) -> dict[str, Any]:
    """Helm values of the Milvus chart for ``args.mode``; no credential appears in them."""
    env = milvus_env(args.s3, root_secret)
    standalone = args.mode == "standalone"
    etcd_members = 1 if standalone else 3
    values: dict[str, Any] = {
        "fullnameOverride": fullname,
        "cluster": {"enabled": not standalone},
        "minio": {"enabled": False},
        "externalS3": {
            "enabled": True,
            "host": args.s3.host,
            "port": str(args.s3.port),
            "bucketName": args.bucket,
            "rootPath": fullname,
            "useSSL": args.s3.use_ssl,
            "useIAM": False,
            "cloudProvider": "aws",
            "accessKey": "",
            "secretKey": "",
        },
        "pulsar": {"enabled": False},
        "pulsarv3": {"enabled": False},
        "kafka": {"enabled": False},
        "woodpecker": {"enabled": True},
        "streaming": {"enabled": True},
        "indexNode": {"enabled": False},
        "attu": {"enabled": False},
        "etcd": {
            "replicaCount": etcd_members,
            "persistence": {
                "enabled": True,
                "storageClass": args.storage_class,
                "size": f"{args.etcd_size_gi}Gi",
            },
            "resources": ContainerResources(
                cpu_request="50m", memory_request="128Mi", memory_limit="512Mi"
            ).to_k8s(),
        },
        "metrics": {"serviceMonitor": {"enabled": False}},
        # Every Milvus container: no escalation, no capabilities, runtime seccomp. The stock image
        # only runs as root (its binary and libraries are root-only), so no non-root uid is forced
        # and the namespace stays at `baseline`.
        "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
        "containerSecurityContext": MILVUS_CONTAINER_SECURITY,
    }
    if standalone:
        values["standalone"] = {
            "messageQueue": "woodpecker",
            "extraEnv": env,
            "resources": args.resources.to_k8s(),
            "persistence": {
                "enabled": True,
                "persistentVolumeClaim": {
                    "storageClass": args.storage_class,
                    "size": f"{args.storage_size_gi}Gi",
                    "accessModes": "ReadWriteOnce",
                },
            },
        }
    else:
        size = args.cluster
        replicas = {
            "proxy": size.proxies,
            "mixCoordinator": 1,
            "queryNode": size.query_nodes,
            "dataNode": size.data_nodes,
            "streamingNode": size.streaming_nodes,
        }
        for component in CLUSTER_COMPONENTS:
            values[component] = {
                "replicas": replicas[component],
                "extraEnv": env,
                "resources": args.resources.to_k8s(),
            }
            if args.zone_spread:
                values[component].update(_spread_values(component, fullname))
        if args.zone_spread:
            values["etcd"]["pdb"] = {"create": True}
    return values


def _selector(fullname: str, component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "milvus",
        "app.kubernetes.io/instance": fullname,
        "component": CHART_COMPONENT_LABELS[component],
    }


def _spread_values(component: str, fullname: str) -> dict[str, Any]:
    """Zone (then node) spreading of one process's pods, through the key its template reads."""
    selector = _selector(fullname, component)
    if component in SPREAD_BY_AFFINITY:
        terms = [
            {
                "weight": weight,
                "podAffinityTerm": {"labelSelector": {"matchLabels": selector}, "topologyKey": key},
            }
            for weight, key in ((100, "topology.kubernetes.io/zone"), (50, "kubernetes.io/hostname"))
        ]
        return {"affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": terms}}}
    return {"topologySpreadConstraints": zone_spread(selector)}


def pdb_manifests(fullname: str, namespace: str, args: MilvusArgs) -> list[dict[str, Any]]:
    """``policy/v1`` PodDisruptionBudgets (the chart has none) of every process with two or more pods.

    At most one pod of each such process is evicted at a time by drains and upgrades.
    """
    if args.mode != "cluster":
        return []
    size = args.cluster
    counts = {
        "proxy": size.proxies,
        "queryNode": size.query_nodes,
        "dataNode": size.data_nodes,
        "streamingNode": size.streaming_nodes,
    }
    return [
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": {
                "name": f"{fullname}-{CHART_COMPONENT_LABELS[component]}",
                "namespace": namespace,
                "labels": instance_labels("vectordb", fullname),
            },
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": _selector(fullname, component)}},
        }
        for component, count in counts.items()
        if count >= 2
    ]


def backup_spec(
    name: str, args: MilvusArgs, settings: MilvusBackupSettings
) -> milvus_backup.MilvusBackupSpec:
    """The milvus-backup CronJob of Milvus release ``name``."""
    return milvus_backup.MilvusBackupSpec(
        name=f"{name}-backups",
        namespace=args.namespace,
        schedule=settings.schedule,
        milvus_host=name,
        milvus_port=MILVUS_PORT,
        root_password=SecretRef(root_secret_name(name), ROOT_PASSWORD_KEY),
        source=args.s3,
        milvus_bucket=args.bucket,
        milvus_root_path=name,
        target=settings.target,
        backup_bucket=settings.bucket,
        backup_root_path=settings.root_path,
        retention_days=settings.retention_days,
        gc_pause_address=f"http://{name}:{METRICS_PORT}",
        labels={"app.kubernetes.io/instance": name},
    )


class Milvus(pulumi.ComponentResource):
    """A Milvus deployment on the platform's object storage, with a generated root password.

    Attributes:
        uri: In-cluster URI for pymilvus, ``http://<name>.<namespace>.svc:19530``.
        root_password: The ``root`` user's password (secret).
        token: ``root:<password>``, what ``MilvusClient(token=...)`` takes (secret).
        root_secret_name: Secret holding the root password (key ``password``).
        mode: ``standalone`` or ``cluster``.

    """

    def __init__(self, name: str, args: MilvusArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplatform:vectordb:Milvus", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        labels = instance_labels("vectordb", name)

        password = random.RandomPassword(f"{name}-root-password", length=32, special=False, opts=child)
        self.root_password: pulumi.Output[str] = pulumi.Output.secret(password.result)
        self.token: pulumi.Output[str] = pulumi.Output.secret(
            pulumi.Output.concat(ROOT_USER, ":", password.result)
        )
        secret = k8s.core.v1.Secret(
            f"{name}-root",
            metadata={"name": root_secret_name(name), "namespace": args.namespace, "labels": labels},
            type="Opaque",
            string_data={ROOT_PASSWORD_KEY: self.root_password},
            opts=child,
        )
        self.root_secret_name: pulumi.Output[str] = secret.metadata.apply(lambda m: m.name)

        self.release = pinned_release(
            f"{name}-release",
            CHARTS["milvus"],
            release_name=name,
            namespace=args.namespace,
            values=milvus_values(args, fullname=name, root_secret=root_secret_name(name)),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[secret]),
        )
        if args.service_monitor:
            # Standalone: one Service; cluster: a Service per process type, each with a metrics port.
            service_monitor(
                f"{name}-metrics",
                namespace=args.namespace,
                selector={"app.kubernetes.io/name": "milvus", "app.kubernetes.io/instance": name},
                port="metrics",
                labels=labels,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.release]),
            )
        for pdb in pdb_manifests(name, args.namespace, args):
            k8s.policy.v1.PodDisruptionBudget(
                pdb["metadata"]["name"],
                metadata=pdb["metadata"],
                spec=pdb["spec"],
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.release]),
            )
        self.backup_schedule: str | None = None
        self.backup_location: str | None = None
        if args.backup is not None:
            spec = backup_spec(name, args, args.backup)
            config = milvus_backup.configmap_manifest(spec)
            config_map = k8s.core.v1.ConfigMap(
                f"{name}-backups-config", metadata=config["metadata"], data=config["data"], opts=child
            )
            cron = milvus_backup.cronjob_manifest(spec)
            k8s.batch.v1.CronJob(
                f"{name}-backups",
                metadata=cron["metadata"],
                spec=cron["spec"],
                opts=pulumi.ResourceOptions(parent=self, depends_on=[secret, config_map]),
            )
            self.backup_schedule = spec.schedule
            self.backup_location = f"s3://{spec.backup_bucket}/{spec.backup_root_path}"
        self.mode: str = args.mode
        self.uri: pulumi.Output[str] = pulumi.Output.from_input(
            f"http://{name}.{args.namespace}.svc:{MILVUS_PORT}"
        )
        self.register_outputs(
            {
                "uri": self.uri,
                "root_password": self.root_password,
                "token": self.token,
                "root_secret_name": self.root_secret_name,
                "mode": self.mode,
                "backup_schedule": self.backup_schedule,
                "backup_location": self.backup_location,
            }
        )
