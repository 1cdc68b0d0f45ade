"""Config models: one strict pydantic model per section of a stack's ``mlplatform:*`` config.

Every key is camelCase in the stack files and declared in ``Pulumi.yaml``. Unknown keys are
rejected; cross-field rules live in :mod:`stacks.config.checks`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from components.clusters.aks_spec import PLATFORM_POOL_NAME, SYSTEM_POOL_NAME
from components.versions import DEFAULT_KUBERNETES_VERSION
from stacks.config.base import ConfigModel
from stacks.config.platform import PlatformServicesConfig
from stacks.config.serving import ServingConfig

NAMESPACE = "mlplatform"
SUPPORTED_K8S_MINORS = range(30, 36)
"""Kubernetes minor versions the platform is tested against (1.30–1.35)."""

NVIDIA_AMI_TYPES = ("AL2023_x86_64_NVIDIA", "BOTTLEROCKET_x86_64_NVIDIA", "AL2_x86_64_GPU")
OPEN_CIDRS = ("0.0.0.0/0", "::/0")
AKS_RESERVED_POOL_NAMES = frozenset({SYSTEM_POOL_NAME, PLATFORM_POOL_NAME})
"""Names of the AKS cluster's own pools, which a GPU pool may not take."""


# --- GPU pools -------------------------------------------------------------------------------


class TimeSlicingConfig(ConfigModel):
    """Time-slicing: advertise each GPU ``replicas`` times."""

    replicas: int = Field(description="How many pods may share one GPU.")
    rename_by_default: bool = Field(
        False, description="Advertise shared GPUs as nvidia.com/gpu.shared instead of nvidia.com/gpu."
    )
    fail_requests_greater_than_one: bool = Field(
        False, description="Reject pods asking for more than one shared GPU."
    )


class MpsConfig(ConfigModel):
    """CUDA Multi-Process Service sharing."""

    replicas: int = Field(description="How many MPS clients share one GPU.")


class MigConfig(ConfigModel):
    """Multi-Instance GPU partitioning."""

    strategy: Literal["single", "mixed"] = Field(
        description="MIG resource strategy of the device plugin: single advertises every instance as "
        "nvidia.com/gpu, mixed as nvidia.com/mig-<profile>."
    )
    profile: str = Field(
        description="How every GPU is cut: one MIG profile of the pool's GPU (1g.10gb, same as all-1g.10gb) "
        "or all-balanced (mixed only). AKS takes the smallest profile of each slice count only."
    )


class SharingConfig(ConfigModel):
    """GPU sharing of one pool; leave empty for whole GPUs."""

    time_slicing: TimeSlicingConfig | None = Field(None, description="Time-slicing settings.")
    mps: MpsConfig | None = Field(None, description="MPS settings.")
    mig: MigConfig | None = Field(
        None, description="MIG partitioning (the pool's only sharing mode when set)."
    )


class GpuPoolConfig(ConfigModel):
    """One GPU node pool."""

    name: str = Field(
        pattern=r"^[a-z][a-z0-9]{0,11}$", description="Pool name: 1-12 lowercase letters/digits."
    )
    vm_size: str | None = Field(None, description="AKS: the VM size, e.g. Standard_NC4as_T4_v3.")
    instance_types: list[str] | None = Field(
        None, description="EKS: instance types of one GPU model; several give spot diversity."
    )
    gpu_model: str | None = Field(
        None, description="dev: the GPU model of the existing nodes; clouds derive it from the size."
    )
    min_count: int = Field(0, ge=0, description="Minimum nodes; 0 lets the pool scale from zero.")
    max_count: int = Field(1, ge=0, description="Maximum nodes.")
    spot: bool = Field(True, description="Use spot capacity.")
    spot_max_price: float | None = Field(
        None, description="AKS: highest hourly price in USD, or -1 for up to the on-demand price."
    )
    ami_type: str = Field("AL2023_x86_64_NVIDIA", description="EKS: AMI type; must be an NVIDIA one.")
    disk_size_gb: int = Field(100, ge=30, le=4096, description="OS disk size per node.")
    labels: dict[str, str] = Field(default_factory=dict, description="Extra node labels.")
    sharing: SharingConfig = Field(default_factory=SharingConfig, description="GPU sharing mode.")


# --- Clusters --------------------------------------------------------------------------------


class AksSystemPoolConfig(ConfigModel):
    """The AKS system pool (on-demand, critical add-ons only)."""

    vm_size: str = Field("Standard_D4s_v5", description="VM size of the system nodes (a CPU size).")
    min_count: int = Field(1, ge=1, description="Minimum system nodes.")
    max_count: int = Field(3, ge=1, description="Maximum system nodes.")
    spot: bool = Field(False, description="Must stay false: AKS system pools cannot be spot.")


class AksPlatformPoolConfig(ConfigModel):
    """The untainted on-demand AKS user pool that runs platform services (Prometheus, MinIO...)."""

    vm_size: str = Field("Standard_D4s_v5", description="VM size of the platform nodes (a CPU size).")
    min_count: int = Field(1, ge=1, description="Minimum platform nodes.")
    max_count: int = Field(3, ge=1, description="Maximum platform nodes.")


class AksConfig(ConfigModel):
    """Azure Kubernetes Service settings."""

    location: str | None = Field(None, description="Azure region, e.g. westeurope.")
    sku_tier: Literal["Free", "Standard", "Premium"] = Field(
        "Free", description="Control-plane tier; Standard adds the uptime SLA."
    )
    system_pool: AksSystemPoolConfig = Field(
        default_factory=AksSystemPoolConfig, description="The on-demand system pool."
    )
    platform_pool: AksPlatformPoolConfig = Field(
        default_factory=AksPlatformPoolConfig, description="The on-demand pool for platform services."
    )
    api_server_authorized_ranges: list[str] = Field(
        default_factory=list, description="CIDRs allowed to reach the API server."
    )
    allow_public_api_server: bool = Field(
        False, description="Opt in to an API server reachable from anywhere."
    )


class EksSystemNodeGroupConfig(ConfigModel):
    """The EKS on-demand system node group."""

    instance_types: list[str] = Field(
        default_factory=lambda: ["m6i.large"], description="On-demand CPU instance types."
    )
    min_size: int = Field(1, ge=1, description="Minimum system nodes.")
    max_size: int = Field(3, ge=1, description="Maximum system nodes.")
    desired_size: int = Field(2, ge=1, description="Initial system nodes.")


class EksConfig(ConfigModel):
    """Amazon EKS settings."""

    region: str | None = Field(None, description="AWS region, e.g. us-west-2.")
    vpc_cidr: str = Field("10.0.0.0/16", description="VPC address block (/16 to /20).")
    availability_zone_count: int = Field(3, ge=2, le=3, description="Availability zones the VPC spans.")
    system_node_group: EksSystemNodeGroupConfig = Field(
        default_factory=EksSystemNodeGroupConfig, description="The on-demand system node group."
    )
    endpoint_public_access: bool = Field(True, description="Expose the API endpoint publicly.")
    endpoint_private_access: bool = Field(True, description="Expose the API endpoint inside the VPC.")
    public_access_cidrs: list[str] = Field(
        default_factory=list, description="CIDRs allowed to reach the public endpoint."
    )
    allow_public_api_server: bool = Field(
        False, description="Opt in to a public endpoint reachable from anywhere."
    )
    autoscaler: Literal["cluster-autoscaler"] = Field(
        "cluster-autoscaler", description="GPU node autoscaler (see adr/0003)."
    )
    enabled_log_types: list[Literal["api", "audit", "authenticator", "controllerManager", "scheduler"]] = (
        Field(
            default_factory=lambda: ["api", "audit", "authenticator"],  # type: ignore[arg-type]
            description="Control-plane log types sent to CloudWatch.",
        )
    )


class LocalConfig(ConfigModel):
    """Local cluster settings."""

    kube_context: str | None = Field(None, description="Existing kube context; None uses the current one.")
    create_kind: bool = Field(False, description="Create a kind cluster instead of using a context.")
    kind_cluster_name: str = Field("mlplatform", description="Name of the kind cluster to create.")
    storage_class: str = Field("standard", description="Default storage class of the local cluster.")


# --- Platform add-ons ------------------------------------------------------------------------


class GpuConfig(ConfigModel):
    """Cluster-wide GPU software."""

    provider: Literal["device-plugin", "gpu-operator"] = Field(
        "device-plugin",
        description="device-plugin where nodes have drivers (AKS, EKS NVIDIA AMIs); gpu-operator otherwise.",
    )
    dcgm_exporter: bool = Field(True, description="Install the DCGM exporter on GPU nodes.")
    install_driver: bool = Field(
        True,
        description="gpu-operator only: let the operator install the NVIDIA driver (false when nodes have one).",
    )


class ObservabilityConfig(ConfigModel):
    """Prometheus, Grafana and alerting."""

    enabled: bool = Field(True, description="Install Prometheus, Grafana and the alert rules.")
    retention: str = Field("7d", pattern=r"^\d+[hdw]$", description="Prometheus retention, e.g. 7d.")
    storage_size_gi: int = Field(20, ge=1, description="Prometheus volume size in GiB.")


class QdrantConfig(ConfigModel):
    """Qdrant vector database."""

    enabled: bool = Field(True, description="Install Qdrant.")
    replicas: int = Field(1, ge=1, description="Qdrant pods (distributed mode above 1).")
    shard_number: int = Field(1, ge=1, description="Default shard number of new collections.")
    replication_factor: int = Field(1, ge=1, description="Default replication factor of new collections.")
    storage_size_gi: int = Field(10, ge=1, description="Volume size per pod in GiB.")
    snapshot_schedule: str = Field("0 3 * * *", description="Cron schedule of collection snapshots.")
    snapshot_retention_days: int = Field(
        7, ge=1, description="Keep snapshot runs this many days (the newest complete run is always kept)."
    )


class MilvusConfig(ConfigModel):
    """Milvus vector database."""

    enabled: bool = Field(True, description="Install Milvus.")
    mode: Literal["standalone", "cluster"] = Field(
        "standalone", description="standalone (one pod) or cluster (separate coordinators and nodes)."
    )
    storage_size_gi: int = Field(10, ge=1, description="Volume size in GiB.")
    proxies: int = Field(1, ge=1, description="cluster mode: proxy replicas (client connections, QPS).")
    query_nodes: int = Field(2, ge=1, description="cluster mode: query node replicas (search, loaded data).")
    data_nodes: int = Field(
        1, ge=1, description="cluster mode: data node replicas (flush, compaction, index builds)."
    )
    streaming_nodes: int = Field(1, ge=1, description="cluster mode: streaming node replicas (WAL owners).")
    backup_schedule: str = Field(
        "30 3 * * *",
        description="Cron schedule (UTC) of milvus-backup runs to the vectordb-snapshots bucket.",
    )
    backup_retention_days: int = Field(
        7, ge=1, description="Delete scheduled Milvus backups older than this (the newest is always kept)."
    )


class StorageConfig(ConfigModel):
    """Platform object storage (MinIO)."""

    size_gi: int = Field(
        50, ge=1, description="MinIO volume size in GiB (artifacts, pipeline data, snapshots)."
    )


class VectorDbConfig(ConfigModel):
    """Vector databases."""

    qdrant: QdrantConfig = Field(default_factory=QdrantConfig, description="Qdrant settings.")
    milvus: MilvusConfig = Field(default_factory=MilvusConfig, description="Milvus settings.")


# --- The whole stack -------------------------------------------------------------------------


class PlatformConfig(ConfigModel):
    """Everything a stack's config says, validated."""

    target: Literal["dev", "aks", "eks"] = Field(description="Where the cluster runs.")
    kubernetes_version: str = Field(
        DEFAULT_KUBERNETES_VERSION, description="Kubernetes minor version, e.g. 1.33."
    )
    cluster_name: str = Field(
        "mlplatform", pattern=r"^[a-z][a-z0-9-]{1,30}[a-z0-9]$", description="Base name of the cluster."
    )
    tags: dict[str, str] = Field(default_factory=dict, description="Cloud tags on every resource.")
    local: LocalConfig = Field(default_factory=LocalConfig, description="Local cluster (target dev).")
    aks: AksConfig = Field(default_factory=AksConfig, description="AKS cluster (target aks).")
    eks: EksConfig = Field(default_factory=EksConfig, description="EKS cluster (target eks).")
    gpu_pools: list[GpuPoolConfig] = Field(default_factory=list, description="GPU node pools.")
    gpu: GpuConfig = Field(default_factory=GpuConfig, description="GPU software.")
    observability: ObservabilityConfig = Field(
        default_factory=ObservabilityConfig, description="Metrics, dashboards, alerts."
    )
    storage: StorageConfig = Field(default_factory=StorageConfig, description="Object storage (MinIO).")
    vectordb: VectorDbConfig = Field(default_factory=VectorDbConfig, description="Vector databases.")
    serving: ServingConfig = Field(default_factory=ServingConfig, description="Model serving (KServe).")
    platform: PlatformServicesConfig = Field(
        default_factory=PlatformServicesConfig,
        description="ML platform services (KFP, Katib, MLflow, Argo Events).",
    )

    @property
    def kubernetes_minor(self) -> int:
        """The minor version number (33 for ``1.33``)."""
        return int(self.kubernetes_version.split(".")[1])
