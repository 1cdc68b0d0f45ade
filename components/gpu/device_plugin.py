"""The NVIDIA device plugin (official ``nvidia-device-plugin`` chart) with per-pool GPU sharing.

The chart runs three DaemonSets on GPU nodes: the device plugin (advertises ``nvidia.com/gpu`` to
the kubelet), GPU feature discovery (labels nodes with model, memory, MIG and sharing facts) and,
when a config enables MPS, the MPS control daemon. Sharing comes from ``components.gpu.sharing``;
placement (node affinity and tolerations) comes from the cluster's GPU pools, so the taints and
labels are spelled once, in ``components.clusters.base``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.clusters.base import POOL_LABEL, GpuPoolInfo, union_tolerations
from components.gpu.sharing import PluginConfigs, build_configs
from components.helm import pinned_release
from components.security import namespace_labels, namespace_policies
from components.storage import ContainerResources
from components.versions import CHARTS, ChartPin

CRITICAL_ADDONS_TOLERATION = {"key": "CriticalAddonsOnly", "operator": "Exists"}
PRIVILEGED_NAMESPACE_LABELS = namespace_labels("privileged")
DAEMON_RESOURCES = ContainerResources(cpu_request="50m", memory_request="64Mi", memory_limit="256Mi")
"""Requests and limits of the device plugin and GFD containers on every GPU node."""
"""GPU daemons mount host paths (device-plugin sockets, driver libraries), so Pod Security must allow it."""


def gpu_pools_only(pools: Sequence[GpuPoolInfo]) -> list[GpuPoolInfo]:
    """The pools whose nodes carry at least one GPU."""
    return [p for p in pools if p.spec.gpu_count > 0]


def gpu_node_affinity(pools: Sequence[GpuPoolInfo]) -> dict[str, Any]:
    """A required node affinity matching exactly the nodes of the given GPU pools.

    Raises:
        ValueError: When no pool has a GPU (an ``In`` expression needs at least one value).

    """
    names = sorted({p.labels.get(POOL_LABEL, p.name) for p in gpu_pools_only(pools)})
    if not names:
        raise ValueError("no GPU pools: nothing to place GPU daemons on")
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": POOL_LABEL, "operator": "In", "values": names}]}
                ]
            }
        }
    }


def gpu_daemon_tolerations(pools: Sequence[GpuPoolInfo]) -> list[dict[str, str]]:
    """Tolerations a per-node GPU daemon needs: every pool's taints plus critical add-ons."""
    return [*union_tolerations(gpu_pools_only(pools)), CRITICAL_ADDONS_TOLERATION]


def device_plugin_values(
    pools: Sequence[GpuPoolInfo], *, gfd: bool = True, configs: PluginConfigs | None = None
) -> dict[str, Any]:
    """Helm values of the ``nvidia-device-plugin`` chart for the given pools.

    Args:
        pools: The cluster's GPU pools (pools without GPUs are ignored).
        gfd: Deploy GPU feature discovery (and its node-feature-discovery dependency).
        configs: Named sharing configs; built from the pools when omitted.

    Returns:
        Values: ``config.map``/``config.default`` with one named config per pool, node affinity to
        the pools, and tolerations for their taints (also on the NFD worker, which must reach GPU
        nodes for GFD to work).

    """
    configs = configs or build_configs(pools)
    tolerations = gpu_daemon_tolerations(pools)
    return {
        "config": {"map": dict(configs.files), "default": configs.default},
        "gfd": {"enabled": gfd},
        "nfd": {"worker": {"tolerations": union_tolerations(gpu_pools_only(pools))}},
        "affinity": gpu_node_affinity(pools),
        "tolerations": tolerations,
        "priorityClassName": "system-node-critical",
        # Containers keep the chart's own security context (no escalation and ALL dropped, or
        # SYS_ADMIN where MIG/volume-mount device lists need it; GFD privileged); the pod adds
        # the runtime seccomp profile. Requests and limits cover the plugin and GFD containers.
        "podSecurityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
        "resources": DAEMON_RESOURCES.to_k8s(),
    }


@dataclass(frozen=True)
class DevicePluginArgs:
    """Arguments of :class:`DevicePlugin`.

    Attributes:
        pools: The cluster's GPU pools with their effective sharing.
        namespace: Namespace to create and install into.
        release_name: Helm release name; defaults to the component name.
        gfd: Deploy GPU feature discovery.
        chart: Chart pin (from ``components.versions``).

    """

    pools: tuple[GpuPoolInfo, ...]
    namespace: str = "nvidia-device-plugin"
    release_name: str | None = None
    gfd: bool = True
    chart: ChartPin = field(default_factory=lambda: CHARTS["nvidia-device-plugin"])


class DevicePlugin(pulumi.ComponentResource):
    """NVIDIA device plugin + GPU feature discovery, sharing configured per GPU pool.

    Attributes:
        namespace: The namespace the plugin runs in.
        release_name: The Helm release name.
        config_by_pool: Pool name -> name of the plugin config its nodes select.

    """

    namespace: pulumi.Output[str]
    release_name: pulumi.Output[str]
    config_by_pool: pulumi.Output[dict[str, str]]

    def __init__(self, name: str, args: DevicePluginArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplatform:gpu:DevicePlugin", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        configs = build_configs(args.pools)
        ns = k8s.core.v1.Namespace(
            f"{name}-ns",
            metadata={"name": args.namespace, "labels": PRIVILEGED_NAMESPACE_LABELS},
            opts=child,
        )
        namespace_policies(name, args.namespace, parent=self, depends_on=ns)
        release = pinned_release(
            f"{name}-release",
            args.chart,
            release_name=args.release_name or name,
            namespace=ns.metadata.name,
            values=device_plugin_values(args.pools, gfd=args.gfd, configs=configs),
            opts=child,
        )
        self.namespace = ns.metadata.name
        self.release_name = release.name
        self.config_by_pool = pulumi.Output.from_input(configs.by_pool)
        self.register_outputs(
            {
                "namespace": self.namespace,
                "release_name": self.release_name,
                "config_by_pool": self.config_by_pool,
            }
        )
