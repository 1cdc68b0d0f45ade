"""Typed arguments of ``AksCluster`` and the pure functions that turn them into agent pool specs.

Kept free of the Azure SDK so the pool settings (spot priority, eviction, taints, autoscaling
from zero, GPU driver) are unit-tested as plain data. Keys are the azure-native Python argument
names, so a spec is passed straight to ``containerservice.AgentPool(**spec)`` or used as one entry
of ``ManagedCluster(agent_pool_profiles=[...])``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from components.clusters.base import AKS_SPOT_TAINT, GpuPoolInfo, GpuPoolSpec, Taint
from components.clusters.pools import aks_pool_taints, pool_info
from components.gpu.mig import aks_gpu_instance_profile, pool_layout

SkuTier = Literal["Free", "Standard", "Premium"]
GpuDriver = Literal["Install", "None"]
"""``Install``: AKS installs the NVIDIA driver; ``None``: the GPU Operator brings its own."""

CRITICAL_ADDONS_TAINT = Taint("CriticalAddonsOnly", "true")
"""Keeps everything but critical system pods off the system pool."""

SPOT_ANY_PRICE = -1.0
"""AKS spot max price meaning 'up to the on-demand price; evict only for capacity'."""

RESERVED_LABEL_PREFIX = "kubernetes.azure.com/"
AUTOSCALED_COUNT_PATHS = ("count",)
"""AgentPool inputs owned by the AKS autoscaler once the pool exists."""

SYSTEM_POOL_NAME = "system"
PLATFORM_POOL_NAME = "platform"
RESERVED_POOL_NAMES = frozenset({SYSTEM_POOL_NAME, PLATFORM_POOL_NAME})


@dataclass(frozen=True)
class AksNodePool:
    """An on-demand CPU pool (the system pool, or the pool that runs platform services).

    Attributes:
        vm_size: Azure VM size.
        min_count: Minimum nodes (at least 1).
        max_count: Maximum nodes.
        os_disk_size_gb: OS disk size per node.

    """

    vm_size: str
    min_count: int
    max_count: int
    os_disk_size_gb: int = 128


@dataclass(frozen=True)
class AksGpuPool:
    """One AKS GPU user pool.

    Attributes:
        spec: The cloud-independent pool description (name, GPU model, counts, spot, sharing).
        vm_size: Azure GPU VM size.
        spot_max_price: Highest hourly USD price for spot nodes; ``None`` means ``-1``
            (up to the on-demand price). Ignored for on-demand pools.
        os_disk_size_gb: OS disk size per node.
        gpu_driver: Whether AKS installs the NVIDIA driver.

    """

    spec: GpuPoolSpec
    vm_size: str
    spot_max_price: float | None = None
    os_disk_size_gb: int = 100
    gpu_driver: GpuDriver = "Install"


@dataclass(frozen=True)
class AksClusterArgs:
    """Everything ``AksCluster`` needs.

    Attributes:
        cluster_name: AKS resource name and DNS prefix.
        location: Azure region.
        kubernetes_version: Kubernetes version (``1.33``: AKS picks the latest patch).
        system_pool: The on-demand system pool, tainted ``CriticalAddonsOnly``.
        platform_pool: On-demand untainted user pool for platform services (Prometheus, MLflow,
            vector databases...), which cannot run on the tainted system pool. ``None`` skips it.
        gpu_pools: GPU user pools.
        sku_tier: AKS control-plane tier (``Standard`` has an uptime SLA).
        api_server_authorized_ranges: CIDRs allowed to reach the API server; empty means any.
        tags: Azure tags on every resource.

    """

    cluster_name: str
    location: str
    kubernetes_version: str
    system_pool: AksNodePool
    platform_pool: AksNodePool | None = None
    gpu_pools: tuple[AksGpuPool, ...] = ()
    sku_tier: SkuTier = "Free"
    api_server_authorized_ranges: tuple[str, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)


def check_pool_names(args: AksClusterArgs) -> None:
    """Raise ``ValueError`` if a GPU pool takes the name of the system or platform pool."""
    taken = sorted(p.spec.name for p in args.gpu_pools if p.spec.name in RESERVED_POOL_NAMES)
    if taken:
        raise ValueError(
            f"AKS GPU pool name(s) {', '.join(taken)} are reserved for the cluster's own pools; rename them"
        )


def on_demand_pool_settings(pool: AksNodePool, *, role: str, kubernetes_version: str) -> dict[str, Any]:
    """What the system and platform pools share: on-demand Azure Linux VMSS, autoscaled from ``min_count``.

    Args:
        pool: The pool's size and bounds.
        role: The pool's name, also its ``mlplatform.io/pool`` label value.
        kubernetes_version: Kubernetes version of the nodes.

    """
    return {
        "type": "VirtualMachineScaleSets",
        "os_type": "Linux",
        "os_sku": "AzureLinux",
        "vm_size": pool.vm_size,
        "os_disk_size_gb": pool.os_disk_size_gb,
        "count": pool.min_count,
        "enable_auto_scaling": True,
        "min_count": pool.min_count,
        "max_count": pool.max_count,
        "scale_set_priority": "Regular",
        "node_labels": {"mlplatform.io/pool": role},
        "orchestrator_version": kubernetes_version,
        "upgrade_settings": {"max_surge": "33%"},
    }


def system_pool_profile(pool: AksNodePool, *, kubernetes_version: str) -> dict[str, Any]:
    """The system pool as a ``ManagedCluster`` agent pool profile (on-demand, critical add-ons only)."""
    return {
        "name": SYSTEM_POOL_NAME,
        "mode": "System",
        **on_demand_pool_settings(pool, role=SYSTEM_POOL_NAME, kubernetes_version=kubernetes_version),
        "node_taints": [CRITICAL_ADDONS_TAINT.as_string()],
    }


def platform_pool_spec(
    pool: AksNodePool, *, kubernetes_version: str, tags: Mapping[str, str]
) -> dict[str, Any]:
    """The on-demand, untainted user pool that runs platform services, as ``AgentPool`` arguments."""
    return {
        "agent_pool_name": PLATFORM_POOL_NAME,
        "mode": "User",
        **on_demand_pool_settings(pool, role=PLATFORM_POOL_NAME, kubernetes_version=kubernetes_version),
        "tags": dict(tags),
    }


def gpu_pool_info(pool: AksGpuPool) -> GpuPoolInfo:
    """Labels and taints the nodes of an AKS GPU pool carry (AKS's spot label included)."""
    cloud_labels = {AKS_SPOT_TAINT.key: AKS_SPOT_TAINT.value} if pool.spec.spot else {}
    return pool_info(pool.spec, aks_pool_taints(pool.spec), cloud_labels)


def settable_labels(labels: Mapping[str, str]) -> dict[str, str]:
    """The labels a pool may set itself (AKS owns ``kubernetes.azure.com/*``)."""
    return {k: v for k, v in labels.items() if not k.startswith(RESERVED_LABEL_PREFIX)}


def gpu_agent_pool_spec(
    pool: AksGpuPool, *, kubernetes_version: str, tags: Mapping[str, str]
) -> dict[str, Any]:
    """An AKS GPU user pool as ``containerservice.AgentPool`` arguments.

    Spot pools get Spot priority, eviction policy ``Delete`` (evicted VMs free their quota), a max
    price, and the spot taint written out explicitly (AKS adds it anyway; declaring it avoids a
    perpetual diff). Every GPU pool autoscales from ``min_count`` (0 scales from zero) and carries
    the GPU taint and the labels naming pool and model. A MIG pool sets ``gpu_instance_profile``
    (``MIG1g`` ... ``MIG7g``), so AKS creates the MIG instances on every node.
    """
    spec = pool.spec
    info = gpu_pool_info(pool)
    args: dict[str, Any] = {
        "agent_pool_name": spec.name,
        "mode": "User",
        "type": "VirtualMachineScaleSets",
        "os_type": "Linux",
        "os_sku": "Ubuntu",
        "vm_size": pool.vm_size,
        "os_disk_size_gb": pool.os_disk_size_gb,
        "count": spec.min_count,
        "enable_auto_scaling": True,
        "min_count": spec.min_count,
        "max_count": spec.max_count,
        "node_taints": [t.as_string() for t in info.taints],
        "node_labels": settable_labels(info.labels),
        "gpu_profile": {"driver": pool.gpu_driver},
        "orchestrator_version": kubernetes_version,
        "tags": dict(tags),
    }
    mig = pool_layout(spec)
    if mig is not None:
        # AKS partitions every GPU of the pool itself when a node joins.
        args["gpu_instance_profile"] = aks_gpu_instance_profile(mig)
    if spec.spot:
        args["scale_set_priority"] = "Spot"
        args["scale_set_eviction_policy"] = "Delete"
        args["spot_max_price"] = SPOT_ANY_PRICE if pool.spot_max_price is None else pool.spot_max_price
    else:
        args["scale_set_priority"] = "Regular"
        args["upgrade_settings"] = {"max_surge": "1"}
    return args


def decode_kubeconfig(value: str) -> str:
    """Decode the base64 kubeconfig that ``listManagedClusterUserCredentials`` returns."""
    import base64

    return base64.b64decode(value).decode("utf-8")
