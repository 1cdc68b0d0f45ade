"""NVIDIA GPU Operator: driver, container toolkit, device plugin, GFD and MIG manager as one chart.

For clusters whose GPU nodes come without the NVIDIA software: a local cluster on a workstation,
or nodes built from a plain OS image. Managed GPU node images (AKS GPU pools, EKS NVIDIA AMIs)
already ship the driver and toolkit, so those stacks use :mod:`components.gpu.device_plugin`
instead (see ``adr/0005-gpu-strategy.md``). The device plugin inside the operator gets the same
per-pool named sharing configs, selected by the same node label. Pools whose nodes carry
``nvidia.com/mig.config`` (MIG pools on EKS and local clusters) are partitioned by the operator's
MIG manager from a mig-parted config rendered here (``components.gpu.mig``).

The operator's own DCGM exporter is switched off: the platform installs
:class:`components.gpu.dcgm.DcgmExporter` in both cases (with ``runtimeClassName: nvidia`` here), so
metrics, labels, dashboards and alerts do not depend on which provider is in use.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import pulumi
import pulumi_kubernetes as k8s

from components.clusters.base import GPU_TAINT_KEY, GpuPoolInfo, union_tolerations
from components.gpu.device_plugin import PRIVILEGED_NAMESPACE_LABELS, gpu_pools_only
from components.gpu.mig import MIG_CONFIG_LABEL, MIG_DISABLED, mig_parted_config, pool_layout
from components.gpu.sharing import PluginConfigs, build_configs, render
from components.helm import pinned_release
from components.security import namespace_policies
from components.storage import ContainerResources
from components.versions import CHARTS, ChartPin

OPERAND_RESOURCES: Final[dict[str, ContainerResources]] = {
    "driver": ContainerResources(cpu_request="100m", memory_request="512Mi", memory_limit="4Gi"),
    "toolkit": ContainerResources(cpu_request="50m", memory_request="64Mi", memory_limit="256Mi"),
    "validator": ContainerResources(cpu_request="10m", memory_request="32Mi", memory_limit="128Mi"),
    "devicePlugin": ContainerResources(cpu_request="50m", memory_request="64Mi", memory_limit="256Mi"),
    "gfd": ContainerResources(cpu_request="10m", memory_request="32Mi", memory_limit="128Mi"),
    "migManager": ContainerResources(cpu_request="10m", memory_request="64Mi", memory_limit="256Mi"),
}
"""Requests and limits of the operator's operands (the chart leaves them empty)."""
RUNTIME_CLASS: Final = "nvidia"
"""RuntimeClass the operator's toolkit installs; pods outside the operator use it to get the driver."""


def operator_values(
    pools: Sequence[GpuPoolInfo],
    *,
    release_name: str,
    install_driver: bool = True,
    configs: PluginConfigs | None = None,
) -> dict[str, Any]:
    """Helm values of the ``gpu-operator`` chart for the given pools.

    Args:
        pools: The cluster's GPU pools.
        release_name: Helm release name (prefixes the device-plugin ConfigMap the chart creates).
        install_driver: Let the operator install the NVIDIA driver and container toolkit (off when
            the host has both, as EKS NVIDIA AMIs do).
        configs: Named sharing configs; built from the pools when omitted.

    """
    gpu_pools = gpu_pools_only(pools)
    configs = configs or build_configs(gpu_pools)
    strategies = {p.spec.sharing.mig.strategy for p in gpu_pools if p.spec.sharing.mig}
    # Only the operator-level default; each node's plugin config sets its own flags.migStrategy.
    mig_strategy = "mixed" if "mixed" in strategies else "single"
    # Pools labelled for the MIG manager (EKS, local) get their layouts in one mig-parted config;
    # AKS pools carry no such label: AKS creates their instances from gpuInstanceProfile.
    layouts = {
        p.labels[MIG_CONFIG_LABEL]: mig
        for p in gpu_pools
        if MIG_CONFIG_LABEL in p.labels and (mig := pool_layout(p.spec)) is not None
    }
    mig_manager: dict[str, Any] = {"enabled": bool(layouts)}
    if layouts:
        mig_manager["resources"] = OPERAND_RESOURCES["migManager"].to_k8s()
        mig_manager["config"] = {
            "create": True,
            "name": f"{release_name}-mig-parted-config",
            "default": MIG_DISABLED,
            "data": {"config.yaml": render(mig_parted_config(layouts))},
        }
    tolerations = [
        *union_tolerations(gpu_pools),
        {"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"},
    ]
    res = {part: r.to_k8s() for part, r in OPERAND_RESOURCES.items()}
    return {
        # The driver container compiles and loads kernel modules: a request, no memory limit.
        "driver": {"enabled": install_driver, "resources": {"requests": res["driver"]["requests"]}},
        # Node images that bring the driver (EKS NVIDIA AMIs, AKS) bring the container toolkit too.
        "toolkit": {"enabled": install_driver, "resources": res["toolkit"]},
        # The operator renders its operands' (privileged) security contexts itself; requests and
        # limits it takes from these values.
        "validator": {"resources": res["validator"]},
        "devicePlugin": {
            "resources": res["devicePlugin"],
            "enabled": True,
            "config": {
                "create": True,
                "name": f"{release_name}-device-plugin-config",
                "default": configs.default,
                "data": dict(configs.files),
            },
        },
        "gfd": {"enabled": True, "resources": res["gfd"]},
        "mig": {"strategy": mig_strategy},
        "migManager": mig_manager,
        "dcgmExporter": {"enabled": False},
        "nfd": {"enabled": True},
        "daemonsets": {"tolerations": tolerations},
        "node-feature-discovery": {"worker": {"tolerations": tolerations}},
    }


@dataclass(frozen=True)
class GpuOperatorArgs:
    """Arguments of :class:`GpuOperator`.

    Attributes:
        pools: The cluster's GPU pools with their effective sharing.
        namespace: Namespace to create and install into.
        release_name: Helm release name; defaults to the component name.
        install_driver: Let the operator install the NVIDIA driver.
        chart: Chart pin (from ``components.versions``).

    """

    pools: tuple[GpuPoolInfo, ...]
    namespace: str = "gpu-operator"
    release_name: str | None = None
    install_driver: bool = True
    chart: ChartPin = field(default_factory=lambda: CHARTS["gpu-operator"])


class GpuOperator(pulumi.ComponentResource):
    """The NVIDIA GPU Operator with per-pool device-plugin sharing configs.

    Attributes:
        namespace: The operator's namespace.
        release_name: The Helm release name.
        runtime_class_name: RuntimeClass other GPU daemons use to get the driver injected.

    """

    namespace: pulumi.Output[str]
    release_name: pulumi.Output[str]
    runtime_class_name: pulumi.Output[str]

    def __init__(self, name: str, args: GpuOperatorArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplatform:gpu:GpuOperator", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        release_name = args.release_name or name
        ns = k8s.core.v1.Namespace(
            f"{name}-ns", metadata={"name": args.namespace, "labels": PRIVILEGED_NAMESPACE_LABELS}, opts=child
        )
        namespace_policies(name, args.namespace, parent=self, depends_on=ns)
        release = pinned_release(
            f"{name}-release",
            args.chart,
            release_name=release_name,
            namespace=ns.metadata.name,
            values=operator_values(args.pools, release_name=release_name, install_driver=args.install_driver),
            opts=child,
        )
        self.namespace = ns.metadata.name
        self.release_name = release.name
        self.runtime_class_name = release.name.apply(lambda _: RUNTIME_CLASS)
        self.register_outputs(
            {
                "namespace": self.namespace,
                "release_name": self.release_name,
                "runtime_class_name": self.runtime_class_name,
            }
        )
