"""Cloud-independent GPU pool math: which taints a pool carries and what its nodes advertise."""

from __future__ import annotations

from collections.abc import Mapping

from components.clusters.base import (
    AKS_SPOT_TAINT,
    GPU_RESOURCE,
    GPU_TAINT,
    POOL_LABEL,
    GpuPoolInfo,
    GpuPoolSpec,
    Taint,
    gpu_node_labels,
)
from components.gpu.mig import layout
from components.gpu.sharing import advertised_resources, shares_per_device, sharing_mode


def advertised_gpu_resources(spec: GpuPoolSpec) -> dict[str, int]:
    """Extended resources one node of the pool advertises once the device plugin runs.

    Time-slicing and MPS multiply the count by their replicas (time-slicing may rename the
    resource to ``nvidia.com/gpu.shared``). MIG advertises the instances of the pool's layout.
    """
    if spec.gpu_count == 0:
        return {}
    sharing = spec.sharing
    if sharing.mig is not None:
        mig = layout(spec.gpu_model, sharing.mig.strategy, sharing.mig.profile)
        return mig.resources_per_node(spec.gpu_count)
    if sharing.time_slicing is None and sharing.mps is None:
        return {GPU_RESOURCE: spec.gpu_count}
    return {pool_resource_name(spec): spec.gpu_count * shares_per_device(sharing)}


def pool_resource_name(spec: GpuPoolSpec) -> str:
    """The extended resource a pod requests to land on the pool (the first one its nodes advertise)."""
    if spec.gpu_count == 0:
        return GPU_RESOURCE
    return advertised_resources(spec.sharing, spec.gpu_model)[0]


def aks_pool_taints(spec: GpuPoolSpec) -> tuple[Taint, ...]:
    """Taints of an AKS GPU pool: the GPU taint, plus the spot taint AKS puts on spot pools."""
    if spec.gpu_count == 0:
        return (AKS_SPOT_TAINT,) if spec.spot else ()
    return (GPU_TAINT, AKS_SPOT_TAINT) if spec.spot else (GPU_TAINT,)


def eks_pool_taints(spec: GpuPoolSpec) -> tuple[Taint, ...]:
    """Taints of an EKS GPU node group: the GPU taint only.

    EKS puts no taint on spot nodes (only the ``eks.amazonaws.com/capacityType=SPOT`` label), and
    we add none: pods already opt in to GPU pools through the GPU taint, and a pod that must avoid
    spot uses node affinity on the capacity label.
    """
    return (GPU_TAINT,) if spec.gpu_count else ()


def local_pool_taints(spec: GpuPoolSpec) -> tuple[Taint, ...]:
    """Taints of a local GPU pool: the GPU taint where the nodes have a GPU."""
    return (GPU_TAINT,) if spec.gpu_count else ()


def pool_info(
    spec: GpuPoolSpec,
    taints: tuple[Taint, ...],
    cloud_labels: Mapping[str, str] | None = None,
) -> GpuPoolInfo:
    """The ``GpuPoolInfo`` add-ons see: common GPU labels, cloud-specific labels, taints."""
    labels = gpu_node_labels(spec)
    labels.update(cloud_labels or {})
    return GpuPoolInfo(spec=spec, labels=labels, taints=taints)


def pool_summary(info: GpuPoolInfo) -> dict[str, object]:
    """A pool as plain data, in the shape of the ``gpuPools`` stack output.

    Keys: ``name``, ``gpuModel``, ``gpuCount``, ``labels``, ``taints`` (``{key, value, effect}``
    objects, the shape Kubernetes uses for tolerations), ``minCount``, ``maxCount``, ``spot``,
    ``sharing`` (``none``, ``time-slicing``, ``mps`` or ``mig``), ``resourceName`` (what a pod
    requests), ``sharesPerGpu`` (pods one advertised device holds) and ``nodeSelector`` (what pins
    a pod to the pool).
    """
    spec = info.spec
    return {
        "name": spec.name,
        "gpuModel": spec.gpu_model,
        "gpuCount": spec.gpu_count,
        "labels": dict(info.labels),
        "taints": [{"key": t.key, "value": t.value, "effect": t.effect} for t in info.taints],
        "minCount": spec.min_count,
        "maxCount": spec.max_count,
        "spot": spec.spot,
        "sharing": sharing_mode(spec.sharing),
        "resourceName": pool_resource_name(spec),
        "sharesPerGpu": shares_per_device(spec.sharing),
        "nodeSelector": {POOL_LABEL: info.labels.get(POOL_LABEL, spec.name)},
    }
