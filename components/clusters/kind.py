"""kind cluster configuration, generated from the stack's GPU pools.

One control-plane node (kind leaves it schedulable, so platform services run there) and, per
pool, worker nodes carrying the pool's labels and taints. Workers of a pool with a GPU get the
mount by which the NVIDIA container toolkit exposes every host GPU to the node container
(``accept-nvidia-visible-devices-as-volume-mounts`` must be on in the host's toolkit config, and
docker's default runtime must be ``nvidia``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from components.clusters.base import GpuPoolSpec, gpu_node_labels
from components.clusters.pools import local_pool_taints

KIND_API_VERSION = "kind.x-k8s.io/v1alpha4"
NVIDIA_DEVICES_MOUNT = {"hostPath": "/dev/null", "containerPath": "/var/run/nvidia-container-devices/all"}


def pool_worker_count(spec: GpuPoolSpec) -> int:
    """Workers a pool gets in kind, where node counts are fixed: ``min_count``, at least one."""
    return max(1, spec.min_count)


def kind_node(spec: GpuPoolSpec, node_image: str) -> dict[str, Any]:
    """One kind worker node of a pool: labels, taints (through kubeadm) and the GPU mount."""
    node: dict[str, Any] = {"role": "worker", "image": node_image, "labels": gpu_node_labels(spec)}
    taints = local_pool_taints(spec)
    if taints:
        patch = {
            "kind": "JoinConfiguration",
            "nodeRegistration": {
                "taints": [{"key": t.key, "value": t.value, "effect": t.effect} for t in taints]
            },
        }
        node["kubeadmConfigPatches"] = [_yaml(patch)]
    if spec.gpu_count:
        node["extraMounts"] = [dict(NVIDIA_DEVICES_MOUNT)]
    return node


def kind_cluster_config(
    cluster_name: str, *, node_image: str, pools: Sequence[GpuPoolSpec]
) -> dict[str, Any]:
    """The kind ``Cluster`` config for a local platform cluster.

    Args:
        cluster_name: kind cluster name.
        node_image: ``kindest/node`` image (pins the Kubernetes version).
        pools: GPU pools; each becomes ``pool_worker_count`` labelled, tainted workers.

    Returns:
        The config as plain data (see ``render_kind_config``).

    """
    nodes: list[dict[str, Any]] = [{"role": "control-plane", "image": node_image}]
    for spec in pools:
        nodes.extend(kind_node(spec, node_image) for _ in range(pool_worker_count(spec)))
    return {"kind": "Cluster", "apiVersion": KIND_API_VERSION, "name": cluster_name, "nodes": nodes}


def render_kind_config(config: dict[str, Any]) -> str:
    """YAML of a kind config, keys in their natural order."""
    return _yaml(config)


def _yaml(data: Any) -> str:
    import yaml

    class _BlockDumper(yaml.SafeDumper):
        """Writes multi-line strings (kubeadm patches) as readable ``|`` blocks."""

    def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    _BlockDumper.add_representer(str, _str)
    return yaml.dump(data, Dumper=_BlockDumper, sort_keys=False, default_flow_style=False)
