"""The small protocol every cluster component exposes, and the GPU scheduling vocabulary.

Add-ons are written once against ``Cluster``: they take its Kubernetes provider through
``opts``, its GPU pools' labels and taints for scheduling, and its storage class. The taint and
label keys below are the one source of truth for GPU placement; nothing else spells them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

import pulumi
import pulumi_kubernetes as k8s

TaintEffect = Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]

GPU_RESOURCE = "nvidia.com/gpu"
"""The extended resource a whole NVIDIA GPU is advertised as (also the GPU taint's key)."""
SHARED_GPU_RESOURCE = f"{GPU_RESOURCE}.shared"
"""What time-slicing with ``renameByDefault`` advertises instead."""
GPU_TAINT_KEY = GPU_RESOURCE
GPU_TAINT_VALUE = "present"
AKS_SPOT_TAINT_KEY = "kubernetes.azure.com/scalesetpriority"
AKS_SPOT_TAINT_VALUE = "spot"
EKS_SPOT_LABEL = "eks.amazonaws.com/capacityType"

LABEL_PREFIX = "mlplatform.io"
POOL_LABEL = f"{LABEL_PREFIX}/gpu-pool"
NODE_POOL_LABEL = f"{LABEL_PREFIX}/pool"
"""Names a node's non-GPU pool (``system`` on EKS), for platform pods that pin to it."""
GPU_MODEL_LABEL = f"{LABEL_PREFIX}/gpu-model"
CAPACITY_LABEL = f"{LABEL_PREFIX}/capacity"
DEVICE_PLUGIN_CONFIG_LABEL = "nvidia.com/device-plugin.config"
"""Label the NVIDIA device plugin reads to pick a named sharing config per node."""


@dataclass(frozen=True)
class Taint:
    """A Kubernetes node taint."""

    key: str
    value: str
    effect: TaintEffect = "NoSchedule"

    def toleration(self) -> dict[str, str]:
        """The pod toleration that matches this taint exactly."""
        return {"key": self.key, "operator": "Equal", "value": self.value, "effect": self.effect}

    def as_string(self) -> str:
        """The ``key=value:Effect`` form AKS and kubectl use."""
        return f"{self.key}={self.value}:{self.effect}"


GPU_TAINT = Taint(GPU_TAINT_KEY, GPU_TAINT_VALUE)
AKS_SPOT_TAINT = Taint(AKS_SPOT_TAINT_KEY, AKS_SPOT_TAINT_VALUE)


@dataclass(frozen=True)
class TimeSlicing:
    """Time-slicing: each GPU is advertised ``replicas`` times; no memory or fault isolation."""

    replicas: int
    rename_by_default: bool = False
    fail_requests_greater_than_one: bool = False


@dataclass(frozen=True)
class Mps:
    """CUDA MPS: ``replicas`` clients share each GPU with memory limits, one fault domain."""

    replicas: int


@dataclass(frozen=True)
class Mig:
    """Multi-Instance GPU: hardware partitions; ``single`` or ``mixed`` resource strategy.

    ``profile`` is how every GPU of the pool is cut: one MIG profile (``1g.10gb`` or
    ``all-1g.10gb``) or ``all-balanced``; ``components.gpu.mig.layout`` validates and expands it.
    """

    strategy: Literal["single", "mixed"]
    profile: str


@dataclass(frozen=True)
class GpuSharing:
    """How one pool shares its GPUs. All ``None`` means whole GPUs, no sharing."""

    time_slicing: TimeSlicing | None = None
    mps: Mps | None = None
    mig: Mig | None = None

    @property
    def enabled(self) -> bool:
        """Whether any sharing mode is on."""
        return any((self.time_slicing, self.mps, self.mig))


@dataclass(frozen=True)
class GpuPoolSpec:
    """What a GPU pool is, independent of the cloud that runs it.

    Attributes:
        name: Pool name (also the ``mlplatform.io/gpu-pool`` label value).
        gpu_model: GPU model name from ``components.gpu.catalog``.
        gpu_count: GPUs per node.
        min_count: Minimum nodes (0 enables scale from zero).
        max_count: Maximum nodes.
        spot: Spot / low-priority capacity.
        sharing: GPU sharing settings for the device plugin.
        extra_labels: User labels added to the nodes.

    """

    name: str
    gpu_model: str
    gpu_count: int
    min_count: int
    max_count: int
    spot: bool
    sharing: GpuSharing = field(default_factory=GpuSharing)
    extra_labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class GpuPoolInfo:
    """A provisioned GPU pool as add-ons see it: its spec plus node labels and taints."""

    spec: GpuPoolSpec
    labels: dict[str, str]
    taints: tuple[Taint, ...]

    @property
    def name(self) -> str:
        """The pool name."""
        return self.spec.name

    def tolerations(self) -> list[dict[str, str]]:
        """Tolerations a pod needs to run on this pool."""
        return [t.toleration() for t in self.taints]

    def node_selector(self) -> dict[str, str]:
        """A node selector that pins a pod to this pool."""
        return {POOL_LABEL: self.spec.name}


def gpu_node_labels(spec: GpuPoolSpec, *, device_plugin_config: str | None = None) -> dict[str, str]:
    """Labels every node of a GPU pool carries, whatever the cloud."""
    labels = {
        POOL_LABEL: spec.name,
        GPU_MODEL_LABEL: spec.gpu_model,
        CAPACITY_LABEL: "spot" if spec.spot else "on-demand",
        DEVICE_PLUGIN_CONFIG_LABEL: device_plugin_config or spec.name,
    }
    labels.update(spec.extra_labels)
    return labels


def union_tolerations(pools: list[GpuPoolInfo]) -> list[dict[str, str]]:
    """Tolerations that let one pod land on any of the given pools (deduplicated, ordered)."""
    seen: dict[tuple[str, str, str], dict[str, str]] = {}
    for pool in pools:
        for taint in pool.taints:
            seen.setdefault((taint.key, taint.value, taint.effect), taint.toleration())
    return list(seen.values())


@runtime_checkable
class Cluster(Protocol):
    """What every cluster component offers the add-ons.

    Attributes:
        cluster_name: The cluster's name.
        provider: Kubernetes provider bound to this cluster's kubeconfig.
        kubeconfig: Kubeconfig as a Pulumi secret.
        gpu_pools: GPU pools with their labels and taints.
        storage_class: Default storage class for persistent volumes.

    """

    cluster_name: pulumi.Output[str]
    provider: k8s.Provider
    kubeconfig: pulumi.Output[str]
    gpu_pools: list[GpuPoolInfo]
    storage_class: str
