"""The GPU and observability layer of every stack.

Turns the validated config into the typed args of the GPU components and declares them on the
cluster's Kubernetes provider:

* the NVIDIA device plugin (or the GPU Operator, per ``gpu.provider``) with each pool's sharing;
* the DCGM exporter on GPU nodes, when ``gpu.dcgmExporter`` is on and the cluster has GPU pools;
* Prometheus, Grafana, dashboards and GPU alerts, when ``observability.enabled``.

Placement facts (labels, taints) come from the cluster's pools; sharing comes from the config,
which is where it is validated.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pulumi

from components.alerts import GpuAlertSettings, gpu_rule_groups
from components.clusters.base import Cluster, GpuPoolInfo
from components.gpu.dcgm import DcgmExporter, DcgmExporterArgs
from components.gpu.device_plugin import DevicePlugin, DevicePluginArgs, gpu_pools_only
from components.gpu.operator import RUNTIME_CLASS, GpuOperator, GpuOperatorArgs
from components.observability import Observability, ObservabilityArgs
from stacks import outputs
from stacks.cluster_builders import sharing_from_config
from stacks.config import PlatformConfig


def effective_pools(cfg: PlatformConfig, cluster: Cluster) -> list[GpuPoolInfo]:
    """The cluster's pools with the sharing the config asks for (the config is its source)."""
    wanted = {pool.name: sharing_from_config(pool.sharing) for pool in cfg.gpu_pools}
    result = []
    for pool in cluster.gpu_pools:
        sharing = wanted.get(pool.name)
        if sharing is not None and sharing != pool.spec.sharing:
            pool = dataclasses.replace(pool, spec=dataclasses.replace(pool.spec, sharing=sharing))
        result.append(pool)
    return result


def add_gpu_layer(cfg: PlatformConfig, cluster: Cluster) -> dict[str, Any]:
    """Declare the GPU software, the DCGM exporter and observability on ``cluster``.

    Args:
        cfg: The stack's validated config.
        cluster: The cluster component (its provider is passed to every add-on).

    Returns:
        Outputs by contract key: ``PROMETHEUS_URL``, ``GRAFANA_URL`` and ``GRAFANA_ADMIN_PASSWORD``
        when observability is enabled; nothing otherwise.

    """
    opts = pulumi.ResourceOptions(provider=cluster.provider)
    gpu_pools = tuple(gpu_pools_only(effective_pools(cfg, cluster)))
    result: dict[str, Any] = {}

    dcgm_args = DcgmExporterArgs(pools=gpu_pools) if gpu_pools and cfg.gpu.dcgm_exporter else None

    observability: Observability | None = None
    if cfg.observability.enabled:
        rules = gpu_rule_groups(
            GpuAlertSettings(
                gpu_pools=tuple(p.name for p in gpu_pools),
                dcgm_namespace=dcgm_args.namespace if dcgm_args else None,
                dcgm_release=(dcgm_args.release_name or "dcgm-exporter") if dcgm_args else None,
            )
        )
        observability = Observability(
            "observability",
            ObservabilityArgs(
                retention=cfg.observability.retention,
                storage_size_gi=cfg.observability.storage_size_gi,
                storage_class=cluster.storage_class or None,
                rule_groups=rules,
            ),
            opts,
        )
        result[outputs.PROMETHEUS_URL] = observability.prometheus_url
        result[outputs.GRAFANA_URL] = observability.grafana_url
        result[outputs.GRAFANA_ADMIN_PASSWORD] = observability.grafana_admin_password

    gpu_software: pulumi.ComponentResource | None = None
    runtime_class: str | None = None
    if gpu_pools:
        if cfg.gpu.provider == "gpu-operator":
            gpu_software = GpuOperator(
                "gpu-operator", GpuOperatorArgs(pools=gpu_pools, install_driver=cfg.gpu.install_driver), opts
            )
            runtime_class = RUNTIME_CLASS
        else:
            gpu_software = DevicePlugin("gpu-device-plugin", DevicePluginArgs(pools=gpu_pools), opts)

    if dcgm_args is not None:
        dcgm_args = dataclasses.replace(
            dcgm_args, service_monitor=observability is not None, runtime_class_name=runtime_class
        )
        # The ServiceMonitor needs the operator's CRDs; the operator's RuntimeClass must exist.
        after = [r for r in (observability, gpu_software) if r is not None]
        DcgmExporter(
            "dcgm-exporter",
            dcgm_args,
            pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=after)),
        )
    return result
