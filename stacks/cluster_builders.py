"""Build the cluster component a stack's target asks for, and export its part of the contract.

This is where validated config models become the components' own typed arguments: components
never see ``stacks.config``. The argument classes are SDK-free; each target's component (and its
cloud SDK) is imported only when that target is built, so a dev plan does not load Azure or AWS.
"""

from __future__ import annotations

from typing import Any

import pulumi

from components.clusters.aks_spec import AksClusterArgs, AksGpuPool, AksNodePool, GpuDriver
from components.clusters.base import (
    Cluster,
    GpuPoolSpec,
    GpuSharing,
    Mig,
    Mps,
    TimeSlicing,
    union_tolerations,
)
from components.clusters.eks_spec import EksClusterArgs, EksGpuNodeGroup, EksSystemNodeGroup
from components.clusters.local_spec import KindSettings, LocalClusterArgs
from components.clusters.pools import pool_summary
from stacks import outputs
from stacks.config import GpuPoolConfig, PlatformConfig, SharingConfig, pool_gpu


def sharing_from_config(sharing: SharingConfig) -> GpuSharing:
    """The cluster-protocol sharing dataclass for a pool's validated ``sharing`` block."""
    ts = sharing.time_slicing
    return GpuSharing(
        time_slicing=(
            TimeSlicing(
                replicas=ts.replicas,
                rename_by_default=ts.rename_by_default,
                fail_requests_greater_than_one=ts.fail_requests_greater_than_one,
            )
            if ts
            else None
        ),
        mps=Mps(replicas=sharing.mps.replicas) if sharing.mps else None,
        mig=Mig(strategy=sharing.mig.strategy, profile=sharing.mig.profile) if sharing.mig else None,
    )


def gpu_pool_spec(pool: GpuPoolConfig, target: str) -> GpuPoolSpec:
    """The cloud-independent spec of one configured GPU pool (model and count from the catalog)."""
    model, count = pool_gpu(pool, target)
    return GpuPoolSpec(
        name=pool.name,
        gpu_model=model or "none",
        gpu_count=count,
        min_count=pool.min_count,
        max_count=pool.max_count,
        spot=pool.spot,
        sharing=sharing_from_config(pool.sharing),
        extra_labels=dict(pool.labels),
    )


def aks_args(cfg: PlatformConfig) -> AksClusterArgs:
    """``AksClusterArgs`` from a validated ``aks`` config.

    The platform pool (untainted, on-demand, for platform services) reuses the system pool's
    size and bounds: the system pool is tainted ``CriticalAddonsOnly``.
    """
    aks = cfg.aks
    if aks.location is None:
        raise ValueError("mlplatform:aks.location is required for target aks")
    system = AksNodePool(aks.system_pool.vm_size, aks.system_pool.min_count, aks.system_pool.max_count)
    # Exactly one party installs the NVIDIA driver: AKS, unless the GPU Operator is told to.
    operator_driver = cfg.gpu.provider == "gpu-operator" and cfg.gpu.install_driver
    driver: GpuDriver = "None" if operator_driver else "Install"
    return AksClusterArgs(
        cluster_name=cfg.cluster_name,
        location=aks.location,
        kubernetes_version=cfg.kubernetes_version,
        system_pool=system,
        platform_pool=AksNodePool(
            aks.platform_pool.vm_size, aks.platform_pool.min_count, aks.platform_pool.max_count
        ),
        gpu_pools=tuple(
            AksGpuPool(
                spec=gpu_pool_spec(pool, "aks"),
                vm_size=pool.vm_size or "",
                spot_max_price=pool.spot_max_price,
                os_disk_size_gb=pool.disk_size_gb,
                gpu_driver=driver,
            )
            for pool in cfg.gpu_pools
        ),
        sku_tier=aks.sku_tier,
        api_server_authorized_ranges=tuple(aks.api_server_authorized_ranges),
        tags=dict(cfg.tags),
    )


def eks_args(cfg: PlatformConfig) -> EksClusterArgs:
    """``EksClusterArgs`` from a validated ``eks`` config."""
    eks = cfg.eks
    if eks.region is None:
        raise ValueError("mlplatform:eks.region is required for target eks")
    system = eks.system_node_group
    return EksClusterArgs(
        cluster_name=cfg.cluster_name,
        region=eks.region,
        kubernetes_version=cfg.kubernetes_version,
        system_node_group=EksSystemNodeGroup(
            instance_types=tuple(system.instance_types),
            min_size=system.min_size,
            max_size=system.max_size,
            desired_size=system.desired_size,
        ),
        gpu_node_groups=tuple(
            EksGpuNodeGroup(
                spec=gpu_pool_spec(pool, "eks"),
                instance_types=tuple(pool.instance_types or ()),
                ami_type=pool.ami_type,
                disk_size_gb=pool.disk_size_gb,
            )
            for pool in cfg.gpu_pools
        ),
        vpc_cidr=eks.vpc_cidr,
        availability_zone_count=eks.availability_zone_count,
        endpoint_public_access=eks.endpoint_public_access,
        endpoint_private_access=eks.endpoint_private_access,
        public_access_cidrs=tuple(eks.public_access_cidrs),
        enabled_log_types=tuple(eks.enabled_log_types),
        tags=dict(cfg.tags),
    )


def local_args(cfg: PlatformConfig) -> LocalClusterArgs:
    """``LocalClusterArgs`` from a validated ``local`` config."""
    local = cfg.local
    return LocalClusterArgs(
        cluster_name=cfg.cluster_name,
        kube_context=local.kube_context,
        kind=KindSettings(cluster_name=local.kind_cluster_name) if local.create_kind else None,
        storage_class=local.storage_class,
        gpu_pools=tuple(gpu_pool_spec(pool, "dev") for pool in cfg.gpu_pools),
    )


def build_cluster(cfg: PlatformConfig, opts: pulumi.ResourceOptions | None = None) -> Cluster:
    """Declare the cluster component of ``cfg.target``, named after ``cfg.cluster_name``."""
    if cfg.target == "aks":
        from components.clusters.aks import AksCluster

        return AksCluster(cfg.cluster_name, aks_args(cfg), opts)
    if cfg.target == "eks":
        from components.clusters.eks import EksCluster

        return EksCluster(cfg.cluster_name, eks_args(cfg), opts)
    from components.clusters.local import LocalCluster

    return LocalCluster(cfg.cluster_name, local_args(cfg), opts)


def cluster_outputs(cfg: PlatformConfig, cluster: Cluster) -> dict[str, Any]:
    """The cluster's share of the output contract, by key from ``stacks.outputs``.

    ``KUBECONFIG`` is the component's secret output; ``GPU_POOLS`` is plain data per pool
    (name, gpuModel, gpuCount, labels, taints as ``{key, value, effect}``, minCount, maxCount, spot).
    """
    return {
        outputs.TARGET: cfg.target,
        outputs.CLUSTER_NAME: cluster.cluster_name,
        outputs.KUBERNETES_VERSION: cfg.kubernetes_version,
        outputs.KUBECONFIG: pulumi.Output.secret(cluster.kubeconfig),
        outputs.STORAGE_CLASS: cluster.storage_class,
        outputs.GPU_POOLS: [pool_summary(pool) for pool in cluster.gpu_pools],
        outputs.GPU_TOLERATIONS: union_tolerations(cluster.gpu_pools),
    }
