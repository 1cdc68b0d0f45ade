"""Pure builders of the AKS interruption path: a drain DaemonSet on the spot GPU pools.

Azure announces spot evictions through Scheduled Events (``Preempt``) in each VM's metadata
service, so the watcher must run on the spot nodes themselves. ``workloads.gpu.spot_drain`` (in the
workload image) polls them and cordons and drains its own node; these functions build its
ServiceAccount, ClusterRole (nodes get/patch, pods list, pods/eviction create), ClusterRoleBinding
and DaemonSet, placed only on spot GPU pools. See adr/0010-spot-interruption-handling.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from components.clusters.base import POOL_LABEL, GpuPoolInfo, union_tolerations
from components.security import container_security, pod_security

DRAIN_NAME: Final = "mlp-spot-drain"
DRAIN_NAMESPACE: Final = "kube-system"
DRAIN_MODULE: Final = "workloads.gpu.spot_drain"
WORKLOAD_IMAGE_UID: Final = 10001
"""The workload image's non-root user (Dockerfile ``ARG MLP_UID``)."""
POLL_INTERVAL_SECONDS: Final = 2
"""Preempt notices come at least 30 s ahead; a 2 s poll leaves the drain ~28 s of them."""

CLUSTER_ROLE_RULES: Final[list[dict[str, list[str]]]] = [
    {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "patch"]},
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]},
    {"apiGroups": [""], "resources": ["pods/eviction"], "verbs": ["create"]},
]
"""Cordon its node, find the pods on it, evict them (the Eviction API honours disruption budgets)."""


def spot_pools(pools: Sequence[GpuPoolInfo]) -> list[GpuPoolInfo]:
    """The pools whose nodes can be preempted."""
    return [p for p in pools if p.spec.spot]


def drain_labels() -> dict[str, str]:
    """Labels of the drain objects and the selector of its pods."""
    return {"app.kubernetes.io/name": DRAIN_NAME, "app.kubernetes.io/part-of": "mlplatform"}


def drain_command() -> list[str]:
    """The container's command: the drain program of the workload image."""
    return ["python", "-m", DRAIN_MODULE, "--interval", str(POLL_INTERVAL_SECONDS)]


def cluster_role() -> dict[str, Any]:
    """The ``ClusterRole`` body (metadata + rules)."""
    return {"metadata": {"name": DRAIN_NAME, "labels": drain_labels()}, "rules": CLUSTER_ROLE_RULES}


def cluster_role_binding() -> dict[str, Any]:
    """The ``ClusterRoleBinding`` body binding the role to the drain's ServiceAccount."""
    return {
        "metadata": {"name": DRAIN_NAME, "labels": drain_labels()},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": DRAIN_NAME},
        "subjects": [{"kind": "ServiceAccount", "name": DRAIN_NAME, "namespace": DRAIN_NAMESPACE}],
    }


def daemonset(pools: Sequence[GpuPoolInfo], image: str) -> dict[str, Any]:
    """The ``apps/v1`` DaemonSet: one drain pod on every node of the given spot pools.

    Args:
        pools: The spot GPU pools (node affinity on their pool label, their tolerations).
        image: The workload image reference.

    Raises:
        ValueError: When ``pools`` is empty or holds an on-demand pool.

    """
    if not pools:
        raise ValueError("the spot drain needs at least one spot pool")
    on_demand = [p.name for p in pools if not p.spec.spot]
    if on_demand:
        raise ValueError(f"pools {on_demand} are not spot; the drain runs only on spot pools")
    labels = drain_labels()
    container = {
        "name": "drain",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": drain_command(),
        "env": [{"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
        "resources": {
            "requests": {"cpu": "10m", "memory": "64Mi"},
            "limits": {"cpu": "100m", "memory": "128Mi"},
        },
        "securityContext": container_security(),
    }
    affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {"key": POOL_LABEL, "operator": "In", "values": sorted(p.name for p in pools)}
                        ]
                    }
                ]
            }
        }
    }
    return {
        "metadata": {"name": DRAIN_NAME, "namespace": DRAIN_NAMESPACE, "labels": labels},
        "spec": {
            "selector": {"matchLabels": labels},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "100%"}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "serviceAccountName": DRAIN_NAME,
                    "priorityClassName": "system-node-critical",
                    "terminationGracePeriodSeconds": 5,
                    "securityContext": pod_security(run_as_user=WORKLOAD_IMAGE_UID),
                    "affinity": affinity,
                    "tolerations": union_tolerations(list(pools)),
                    "containers": [container],
                },
            },
        },
    }
