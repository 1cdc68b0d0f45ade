"""NVIDIA DCGM exporter (official ``dcgm-exporter`` chart): GPU metrics from GPU nodes only.

What it exports and how it is attributed:

* **Per GPU**: every series carries ``gpu``, ``UUID``, ``modelName`` and ``Hostname``; the
  ServiceMonitor below adds ``node``, ``gpu_pool`` and ``gpu_model`` from the node's labels
  (``attachMetadata.node``), which the dashboards group by.
* **Per pod**: the exporter asks the kubelet's pod-resources API which container holds which
  device and adds ``pod``, ``namespace`` and ``container``. Because the ServiceMonitor keeps
  ``honorLabels: false``, Prometheus stores them as ``exported_pod``, ``exported_namespace`` and
  ``exported_container`` (the un-prefixed names describe the exporter pod itself), so an idle GPU
  is never attributed to the exporter. Allow-listed pod labels are added too
  (``kubernetes.enablePodLabels``).
* **Time-slicing / MPS**: several pods hold replicas of one physical GPU; device metrics are
  per physical GPU, so each pod's series shows the whole GPU's utilization and memory, not its
  share. Sum per pod only what is per process (nothing in this list is).
* **MIG**: the exporter reports each GPU instance with ``GPU_I_ID`` and ``GPU_I_PROFILE``; pods
  are attributed per instance. ``DCGM_FI_DEV_GPU_UTIL`` is not available for MIG instances; use
  the profiling field ``DCGM_FI_PROF_GR_ENGINE_ACTIVE`` (ratio 0-1), which is, and which the GPU
  dashboard plots beside utilization. Memory (``FB_USED``/``FB_FREE``) is per instance.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import pulumi
import pulumi_kubernetes as k8s

from components.clusters.base import CAPACITY_LABEL, GPU_MODEL_LABEL, POOL_LABEL, GpuPoolInfo
from components.gpu.device_plugin import (
    PRIVILEGED_NAMESPACE_LABELS,
    gpu_daemon_tolerations,
    gpu_node_affinity,
)
from components.helm import pinned_release
from components.security import namespace_policies
from components.storage import ContainerResources
from components.versions import CHARTS, ChartPin

MetricType = Literal["gauge", "counter"]


@dataclass(frozen=True)
class DcgmMetric:
    """One DCGM field the exporter watches.

    Attributes:
        field: DCGM field name, which is also the Prometheus metric name.
        type: Prometheus metric type.
        help: Help text (includes the unit).

    """

    field: str
    type: MetricType
    help: str


METRICS: Final[tuple[DcgmMetric, ...]] = (
    # Utilization. GPU_UTIL is per physical GPU; unavailable for MIG instances.
    DcgmMetric("DCGM_FI_DEV_GPU_UTIL", "gauge", "GPU utilization (in %)."),
    DcgmMetric("DCGM_FI_DEV_MEM_COPY_UTIL", "gauge", "Memory utilization (in %)."),
    # Memory, per GPU or per MIG instance.
    DcgmMetric("DCGM_FI_DEV_FB_USED", "gauge", "Framebuffer memory used (in MiB)."),
    DcgmMetric("DCGM_FI_DEV_FB_FREE", "gauge", "Framebuffer memory free (in MiB)."),
    # Power and temperature.
    DcgmMetric("DCGM_FI_DEV_POWER_USAGE", "gauge", "Power draw (in W)."),
    DcgmMetric("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "counter", "Energy since boot (in mJ)."),
    DcgmMetric("DCGM_FI_DEV_GPU_TEMP", "gauge", "GPU temperature (in C)."),
    DcgmMetric("DCGM_FI_DEV_MEMORY_TEMP", "gauge", "Memory temperature (in C)."),
    DcgmMetric("DCGM_FI_DEV_SM_CLOCK", "gauge", "SM clock frequency (in MHz)."),
    # Health.
    DcgmMetric("DCGM_FI_DEV_XID_ERRORS", "gauge", "Value of the last XID error encountered."),
    DcgmMetric("DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", "counter", "Double-bit volatile ECC errors."),
    DcgmMetric(
        "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS", "counter", "Rows remapped for uncorrectable errors."
    ),
    DcgmMetric("DCGM_FI_DEV_ROW_REMAP_FAILURE", "gauge", "Whether remapping of rows has failed."),
    DcgmMetric("DCGM_FI_DEV_PCIE_REPLAY_COUNTER", "counter", "Total number of PCIe retries."),
    DcgmMetric("DCGM_FI_DEV_POWER_VIOLATION", "counter", "Throttling due to power constraints (in ns)."),
    DcgmMetric("DCGM_FI_DEV_THERMAL_VIOLATION", "counter", "Throttling due to thermal constraints (in ns)."),
    # Profiling (DCP) fields: available per MIG instance, so they stand in for GPU_UTIL under MIG.
    DcgmMetric("DCGM_FI_PROF_GR_ENGINE_ACTIVE", "gauge", "Ratio of time the graphics engine is active."),
    DcgmMetric("DCGM_FI_PROF_SM_ACTIVE", "gauge", "Ratio of cycles an SM has at least one warp."),
    DcgmMetric("DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", "gauge", "Ratio of cycles the tensor pipe is active."),
    DcgmMetric("DCGM_FI_PROF_DRAM_ACTIVE", "gauge", "Ratio of cycles device memory is active."),
)
"""The fields the platform collects; the dashboards and alerts use only these."""

METRICS_FILE: Final = "/etc/dcgm-exporter/mlplatform-counters.csv"
METRICS_KEY: Final = "counters.csv"
METRICS_PORT: Final = "metrics"
EXPORTER_RESOURCES: Final = ContainerResources(
    cpu_request="50m", memory_request="128Mi", memory_limit="512Mi"
)
"""Requests and limits of the exporter container on every GPU node."""
"""Name of the exporter Service's port in the chart."""
CHART_NAME_LABEL: Final = "dcgm-exporter"
"""``app.kubernetes.io/name`` the chart gives its Service (the chart name)."""

DEFAULT_POD_LABEL_ALLOWLIST: Final = (r"^app\.kubernetes\.io/name$", r"^app$", r"^mlplatform\.io/.+$")
"""Pod labels copied onto GPU series (a regex allow-list keeps cardinality bounded)."""


def metrics_csv(metrics: Sequence[DcgmMetric] = METRICS) -> str:
    """The exporter's counters file: ``FIELD, type, help`` per line."""
    lines = ["# DCGM field, Prometheus type, help (generated by components/gpu/dcgm.py)"]
    lines += [f"{m.field}, {m.type}, {m.help}" for m in metrics]
    return "\n".join(lines) + "\n"


def prometheus_label(node_label: str) -> str:
    """The Prometheus label name Kubernetes service discovery gives a node label."""
    return "".join(c if c.isalnum() else "_" for c in node_label)


def dcgm_values(
    pools: Sequence[GpuPoolInfo],
    *,
    release_name: str,
    metrics_config_map: str,
    pod_label_allowlist: Sequence[str] = DEFAULT_POD_LABEL_ALLOWLIST,
    runtime_class_name: str | None = None,
) -> dict[str, Any]:
    """Helm values of the ``dcgm-exporter`` chart.

    The chart's own ServiceMonitor is off: the component declares one itself so the offline plan
    validates it against the Prometheus Operator CRD.
    """
    values: dict[str, Any] = {
        "fullnameOverride": release_name,
        "arguments": ["-f", METRICS_FILE],
        "extraConfigMapVolumes": [
            {
                "name": "mlplatform-counters",
                "configMap": {
                    "name": metrics_config_map,
                    "items": [{"key": METRICS_KEY, "path": METRICS_KEY}],
                },
            }
        ],
        "extraVolumeMounts": [
            {
                "name": "mlplatform-counters",
                "mountPath": METRICS_FILE,
                "subPath": METRICS_KEY,
                "readOnly": True,
            }
        ],
        "serviceMonitor": {"enabled": False},
        "kubernetes": {
            "enablePodLabels": True,
            "podLabelAllowlistRegex": list(pod_label_allowlist),
            "rbac": {"create": True},
        },
        "affinity": gpu_node_affinity(pools),
        "tolerations": gpu_daemon_tolerations(pools),
        # The container keeps the chart's security context (uid 0 with SYS_ADMIN: DCGM reads
        # the GPUs' profiling counters), which is why its namespace is privileged.
        "resources": EXPORTER_RESOURCES.to_k8s(),
    }
    if runtime_class_name:
        values["runtimeClassName"] = runtime_class_name
    return values


def service_monitor_spec(namespace: str, release_name: str, interval: str = "30s") -> dict[str, Any]:
    """ServiceMonitor spec scraping the exporter and labelling series with the node's GPU pool."""
    relabel = [{"sourceLabels": ["__meta_kubernetes_pod_node_name"], "targetLabel": "node"}]
    for node_label, target in (
        (POOL_LABEL, "gpu_pool"),
        (GPU_MODEL_LABEL, "gpu_model"),
        (CAPACITY_LABEL, "capacity"),
    ):
        relabel.append(
            {
                "sourceLabels": [f"__meta_kubernetes_node_label_{prometheus_label(node_label)}"],
                "targetLabel": target,
            }
        )
    return {
        "selector": {
            "matchLabels": {
                "app.kubernetes.io/name": CHART_NAME_LABEL,
                "app.kubernetes.io/instance": release_name,
            }
        },
        "namespaceSelector": {"matchNames": [namespace]},
        "attachMetadata": {"node": True},
        "endpoints": [
            {
                "port": METRICS_PORT,
                "path": "/metrics",
                "interval": interval,
                "honorLabels": False,
                "relabelings": relabel,
            }
        ],
    }


@dataclass(frozen=True)
class DcgmExporterArgs:
    """Arguments of :class:`DcgmExporter`.

    Attributes:
        pools: The cluster's GPU pools (the exporter runs on their nodes only).
        namespace: Namespace to create and install into.
        release_name: Helm release name (also the Service name); defaults to the component name.
        service_monitor: Declare a ServiceMonitor (needs the Prometheus Operator CRDs).
        service_monitor_labels: Extra labels on the ServiceMonitor (e.g. a Prometheus selector).
        scrape_interval: How often Prometheus scrapes the exporter.
        pod_label_allowlist: Regexes of pod labels copied onto GPU series.
        runtime_class_name: RuntimeClass that injects the driver (``nvidia`` with the GPU Operator).
        chart: Chart pin (from ``components.versions``).

    """

    pools: tuple[GpuPoolInfo, ...]
    namespace: str = "dcgm-exporter"
    release_name: str | None = None
    service_monitor: bool = True
    service_monitor_labels: Mapping[str, str] = field(default_factory=dict)
    scrape_interval: str = "30s"
    pod_label_allowlist: tuple[str, ...] = DEFAULT_POD_LABEL_ALLOWLIST
    runtime_class_name: str | None = None
    chart: ChartPin = field(default_factory=lambda: CHARTS["dcgm-exporter"])


class DcgmExporter(pulumi.ComponentResource):
    """DCGM exporter DaemonSet on GPU nodes, its metrics list, and a ServiceMonitor.

    Attributes:
        namespace: The exporter's namespace.
        release_name: The Helm release (and Service) name.
        metrics_url: In-cluster URL of the exporter Service's ``/metrics``.

    """

    namespace: pulumi.Output[str]
    release_name: pulumi.Output[str]
    metrics_url: pulumi.Output[str]

    def __init__(self, name: str, args: DcgmExporterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplatform:gpu:DcgmExporter", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        release_name = args.release_name or name
        ns = k8s.core.v1.Namespace(
            f"{name}-ns", metadata={"name": args.namespace, "labels": PRIVILEGED_NAMESPACE_LABELS}, opts=child
        )
        namespace_policies(name, args.namespace, parent=self, depends_on=ns)
        counters = k8s.core.v1.ConfigMap(
            f"{name}-counters",
            metadata={"name": f"{release_name}-counters", "namespace": ns.metadata.name},
            data={METRICS_KEY: metrics_csv()},
            opts=child,
        )
        release = pinned_release(
            f"{name}-release",
            args.chart,
            release_name=release_name,
            namespace=ns.metadata.name,
            values=dcgm_values(
                args.pools,
                release_name=release_name,
                metrics_config_map=f"{release_name}-counters",
                pod_label_allowlist=args.pod_label_allowlist,
                runtime_class_name=args.runtime_class_name,
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[counters]),
        )
        if args.service_monitor:
            k8s.apiextensions.CustomResource(
                f"{name}-servicemonitor",
                api_version="monitoring.coreos.com/v1",
                kind="ServiceMonitor",
                metadata={
                    "name": release_name,
                    "namespace": ns.metadata.name,
                    "labels": {"app.kubernetes.io/part-of": "mlplatform", **args.service_monitor_labels},
                },
                spec=service_monitor_spec(args.namespace, release_name, args.scrape_interval),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[release]),
            )
        self.namespace = ns.metadata.name
        self.release_name = release.name
        self.metrics_url = pulumi.Output.concat(
            "http://", release_name, ".", ns.metadata.name, ".svc.cluster.local:9400/metrics"
        )
        self.register_outputs(
            {"namespace": self.namespace, "release_name": self.release_name, "metrics_url": self.metrics_url}
        )
