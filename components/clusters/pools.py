"""Cloud-independent GPU pool math: which taints a pool carries and what its nodes advertise."""

from __future__ import annotations

from collections.abc import Mapping

from components.clusters.base import (
    AKS_SPOT_TAINT,
    GPU_TAINT,
    GpuPoolInfo,
    GpuPoolSpec,
    Taint,
    gpu_node_labels,
)

GPU_RESOURCE = "nvidia.com/gpu"
SHARED_GPU_RESOURCE = "nvidia.com/gpu.shared"


def advertised_gpu_resources(spec: GpuPoolSpec) -> dict[str, int]:
    """Extended resources one node of the pool advertises once the device plugin runs.

    Time-slicing and MPS multiply the count by their replicas (time-slicing may rename the
    resource to ``nvidia.com/gpu.shared``). MIG depends on the partition profile applied at run
    time, so the whole-GPU count is returned as a lower bound.
    """
    if spec.gpu_count == 0:
        return {}
    sharing = spec.sharing
    if sharing.time_slicing is not None:
        name = SHARED_GPU_RESOURCE if sharing.time_slicing.rename_by_default else GPU_RESOURCE
        return {name: spec.gpu_count * sharing.time_slicing.replicas}
    if sharing.mps is not None:
        return {GPU_RESOURCE: spec.gpu_count * sharing.mps.replicas}
    return {GPU_RESOURCE: spec.gpu_count}


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
    objects, the shape Kubernetes uses for tolerations), ``minCount``, ``maxCount``, ``spot``.
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
    }
