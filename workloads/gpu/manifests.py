"""Kubernetes manifests that exercise GPU scheduling on a stack's GPU pools.

* **smoke**: one Job that requests one GPU on a pool (node selector + the pool's tolerations) and
  runs CUDA's ``vectorAdd``; it passes only if the pool scales up, the driver works and the device
  plugin advertises the GPU.
* **sharing demo**: ``N`` pods, each requesting one GPU replica, co-located on one node so that
  under time-slicing or MPS they all land on the same physical GPU; every pod prints the GPU UUID
  it sees (they match) and runs ``vectorAdd`` in a loop.
* **priority classes**: ``mlp-serving`` (preempts) over ``mlp-batch`` (never preempts), for
  serving and pipeline work competing for scarce GPUs.

Everything here is pure: the placement (pool label key, tolerations, resource name) is passed in,
so this module needs neither the components nor a cluster.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from stacks import outputs as keys
from workloads.pipelines.interrupt import CHECKPOINT_GRACE_SECONDS
from workloads.target import WHOLE_GPU_RESOURCE

NAMESPACE: Final = "mlp-gpu-workloads"
SERVING_PRIORITY_CLASS: Final = "mlp-serving"
BATCH_PRIORITY_CLASS: Final = "mlp-batch"
WHOLE_GPU: Final = WHOLE_GPU_RESOURCE
SMOKE_DEADLINE_S: Final = 1800
"""Scale-from-zero GPU nodes take minutes (VM boot, driver, device plugin); leave room for it."""

SharingMode = Literal["none", "time-slicing", "mps", "mig"]
Workload = Literal["smoke", "sharing-demo", "priority-classes"]
WORKLOADS: Final[tuple[str, ...]] = ("smoke", "sharing-demo", "priority-classes")

_LABELS: Final = {"app.kubernetes.io/part-of": "mlplatform", "app.kubernetes.io/managed-by": "mlp"}
_SECURITY: Final = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


class PlacementError(ValueError):
    """No usable GPU pool for the requested workload."""


@dataclass(frozen=True)
class GpuPlacement:
    """Where and how a pod gets a GPU on one pool.

    Attributes:
        pool: Pool name.
        node_selector: Labels that pin a pod to the pool's nodes.
        tolerations: Tolerations for the pool's taints.
        resource: Extended resource to request (``nvidia.com/gpu``, ``nvidia.com/gpu.shared``,
            ``nvidia.com/mig-1g.10gb``...).
        shares_per_gpu: Pods one GPU holds (time-slicing or MPS replicas; 1 otherwise).
        gpus_per_node: GPUs per node.
        sharing: The pool's sharing mode.

    """

    pool: str
    node_selector: Mapping[str, str]
    tolerations: tuple[Mapping[str, Any], ...] = ()
    resource: str = WHOLE_GPU
    shares_per_gpu: int = 1
    gpus_per_node: int = 1
    sharing: SharingMode = "none"
    extra: Mapping[str, Any] = field(default_factory=dict)


def placement_from_outputs(
    stack_outputs: Any,
    pool_label: str,
    pool: str | None = None,
) -> GpuPlacement:
    """A placement on one GPU pool of a stack, from its outputs.

    Args:
        stack_outputs: ``workloads.target.StackOutputs`` of the stack.
        pool_label: The node label key naming a node's GPU pool.
        pool: Pool name; the first pool when omitted.

    The resource to request, the pods per GPU and the sharing mode come from the pool's own
    entry in the ``gpuPools`` output.

    Raises:
        PlacementError: When the stack has no (such) GPU pool.

    """
    pools = [p for p in stack_outputs.gpu_pools if p.gpu_count > 0]
    if not pools:
        raise PlacementError(f"the stack exports no GPU pools (output {keys.GPU_POOLS!r} is empty)")
    chosen = pools[0] if pool is None else next((p for p in pools if p.name == pool), None)
    if chosen is None:
        raise PlacementError(f"no GPU pool '{pool}'; pools: {', '.join(p.name for p in pools)}")
    tolerations = tuple(
        {
            k: v
            for k, v in {"key": t.key, "operator": "Equal", "value": t.value, "effect": t.effect}.items()
            if v
        }
        for t in chosen.taints
    )
    return GpuPlacement(
        pool=chosen.name,
        node_selector=dict(chosen.node_selector) or {pool_label: chosen.labels.get(pool_label, chosen.name)},
        tolerations=tolerations,
        resource=chosen.resource_name,
        shares_per_gpu=chosen.shares_per_gpu,
        gpus_per_node=chosen.gpu_count,
        sharing=chosen.sharing,
    )


def namespace(name: str = NAMESPACE) -> dict[str, Any]:
    """The namespace the GPU workloads run in."""
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": dict(_LABELS)}}


def _pod_spec(placement: GpuPlacement, container: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "restartPolicy": "Never",
        # A drained spot node sends SIGTERM; GPU pods get the training checkpoint grace.
        "terminationGracePeriodSeconds": CHECKPOINT_GRACE_SECONDS,
        "nodeSelector": dict(placement.node_selector),
        "tolerations": [dict(t) for t in placement.tolerations],
        "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [container],
        **extra,
    }


def smoke_job(placement: GpuPlacement, image: str, *, ns: str = NAMESPACE) -> dict[str, Any]:
    """A Job that needs one GPU of the pool and runs CUDA ``vectorAdd`` once."""
    name = f"gpu-smoke-{placement.pool}"
    labels = {**_LABELS, "app.kubernetes.io/name": "gpu-smoke", "mlplatform.io/workload": "gpu-smoke"}
    container = {
        "name": "vector-add",
        "image": image,
        "resources": {"limits": {placement.resource: 1}, "requests": {"cpu": "100m", "memory": "128Mi"}},
        "securityContext": dict(_SECURITY),
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": SMOKE_DEADLINE_S,
            "ttlSecondsAfterFinished": 3600,
            "template": {"metadata": {"labels": dict(labels)}, "spec": _pod_spec(placement, container)},
        },
    }


def sharing_demo(
    placement: GpuPlacement, image: str, *, pods: int | None = None, seconds: int = 120, ns: str = NAMESPACE
) -> dict[str, Any]:
    """A Job of ``pods`` parallel pods sharing one physical GPU.

    Each pod requests one replica of the pool's resource; pod affinity keeps them on one node, and
    on a one-GPU node the device plugin hands every replica of that GPU out. Each pod prints the
    GPU UUID it sees and how many ``vectorAdd`` runs it completed in ``seconds``.

    Raises:
        PlacementError: When the pool does not share GPUs, or ``pods`` exceeds what one GPU holds.

    """
    if placement.shares_per_gpu < 2:
        raise PlacementError(
            f"pool '{placement.pool}' does not share GPUs (sharing: {placement.sharing}); "
            "configure timeSlicing or mps on it, or choose a pool that has it"
        )
    count = placement.shares_per_gpu if pods is None else pods
    if not 1 <= count <= placement.shares_per_gpu:
        raise PlacementError(
            f"one GPU of pool '{placement.pool}' holds {placement.shares_per_gpu} pods, not {count}"
        )
    name = f"gpu-sharing-demo-{placement.pool}"
    selector = {"mlplatform.io/workload": name}
    labels = {**_LABELS, "app.kubernetes.io/name": "gpu-sharing-demo", **selector}
    script = (
        "nvidia-smi -L || echo 'nvidia-smi not mounted'; "
        f"end=$(( $(date +%s) + {seconds} )); n=0; "
        'while [ "$(date +%s)" -lt "$end" ]; do /cuda-samples/vectorAdd >/dev/null && n=$((n+1)); done; '
        'echo "pod $POD_NAME on $NODE_NAME: $n vectorAdd runs on GPU $NVIDIA_VISIBLE_DEVICES"'
    )
    container = {
        "name": "vector-add-loop",
        "image": image,
        "command": ["/bin/sh", "-c", script],
        "env": [
            {"name": "NVIDIA_DRIVER_CAPABILITIES", "value": "compute,utility"},
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        ],
        "resources": {"limits": {placement.resource: 1}, "requests": {"cpu": "100m", "memory": "128Mi"}},
        "securityContext": dict(_SECURITY),
    }
    affinity = {
        "podAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": selector}, "topologyKey": "kubernetes.io/hostname"}
            ]
        }
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": {
            "completions": count,
            "parallelism": count,
            "backoffLimit": 0,
            "activeDeadlineSeconds": SMOKE_DEADLINE_S + seconds,
            "ttlSecondsAfterFinished": 3600,
            "template": {
                "metadata": {"labels": labels},
                "spec": _pod_spec(placement, container, affinity=affinity),
            },
        },
    }


def priority_classes() -> list[dict[str, Any]]:
    """Serving over batch: serving pods may preempt batch pods for a GPU; batch never preempts."""
    return [
        {
            "apiVersion": "scheduling.k8s.io/v1",
            "kind": "PriorityClass",
            "metadata": {"name": SERVING_PRIORITY_CLASS, "labels": dict(_LABELS)},
            "value": 100000,
            "globalDefault": False,
            "preemptionPolicy": "PreemptLowerPriority",
            "description": "Online model serving: may preempt batch pods to get a GPU.",
        },
        {
            "apiVersion": "scheduling.k8s.io/v1",
            "kind": "PriorityClass",
            "metadata": {"name": BATCH_PRIORITY_CLASS, "labels": dict(_LABELS)},
            "value": 1000,
            "globalDefault": False,
            "preemptionPolicy": "Never",
            "description": "Training, tuning and pipeline steps: wait for GPUs, never preempt.",
        },
    ]


def render(
    workload: str, placement: GpuPlacement | None, image: str, *, pods: int | None = None, ns: str = NAMESPACE
) -> list[dict[str, Any]]:
    """Every object of one workload, in apply order (namespace first).

    Raises:
        PlacementError: When a GPU workload has no placement, or the placement cannot run it.
        ValueError: For an unknown workload name.

    """
    if workload == "priority-classes":
        return priority_classes()
    if workload not in WORKLOADS:
        raise ValueError(f"unknown workload '{workload}'; choose one of {', '.join(WORKLOADS)}")
    if placement is None:
        raise PlacementError(f"'{workload}' needs a GPU pool")
    if workload == "smoke":
        return [namespace(ns), smoke_job(placement, image, ns=ns)]
    return [namespace(ns), sharing_demo(placement, image, pods=pods, ns=ns)]


def to_yaml(objects: Sequence[dict[str, Any]]) -> str:
    """Objects as one multi-document YAML stream."""
    import yaml

    class _NoAliases(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:
            return True

    return "---\n".join(yaml.dump(obj, Dumper=_NoAliases, sort_keys=False) for obj in objects)
