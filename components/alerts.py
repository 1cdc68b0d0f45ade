"""Alert rules of the platform, as data; the observability component turns them into PrometheusRules.

Rules use only metrics the platform collects: DCGM fields from ``components.gpu.dcgm.METRICS``
and kube-state-metrics series. Node labels reach kube-state-metrics through its label allow-list
(set by the observability component) as ``label_<sanitized key>``, e.g. ``POOL_LABEL`` becomes
``label_mlplatform_io_gpu_pool``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from components.clusters.base import POOL_LABEL

Severity = Literal["info", "warning", "critical"]

GPU_RESOURCE_REGEX = "nvidia_com_(gpu|gpu_shared|mig_.+)"
"""kube-state-metrics ``resource`` values of GPU extended resources (whole, shared, MIG)."""


def ksm_label(node_label: str) -> str:
    """The kube-state-metrics label for a Kubernetes label key (``label_`` + sanitized key)."""
    return "label_" + re.sub(r"[^a-zA-Z0-9_]", "_", node_label)


@dataclass(frozen=True)
class AlertRule:
    """One Prometheus alerting rule.

    Attributes:
        alert: Alert name.
        expr: PromQL expression; each result series is one alert.
        for_: How long the expression must hold before the alert fires.
        severity: ``info``, ``warning`` or ``critical``.
        summary: One-line summary (may use ``$labels``/``$value`` templates).
        description: What it means and what to do.

    """

    alert: str
    expr: str
    for_: str
    severity: Severity
    summary: str
    description: str

    def to_k8s(self) -> dict[str, Any]:
        """The rule as it appears in a PrometheusRule's ``spec.groups[].rules``."""
        rule: dict[str, Any] = {"alert": self.alert, "expr": self.expr}
        if self.for_ and self.for_ != "0m":
            rule["for"] = self.for_
        rule["labels"] = {"severity": self.severity}
        rule["annotations"] = {"summary": self.summary, "description": self.description}
        return rule


@dataclass(frozen=True)
class RuleGroup:
    """A named group of rules evaluated together."""

    name: str
    rules: tuple[AlertRule, ...]
    interval: str | None = None

    def to_k8s(self) -> dict[str, Any]:
        """The group as it appears in a PrometheusRule's ``spec.groups``."""
        group: dict[str, Any] = {"name": self.name, "rules": [r.to_k8s() for r in self.rules]}
        if self.interval:
            group["interval"] = self.interval
        return group


@dataclass(frozen=True)
class GpuAlertSettings:
    """What the GPU rules need to know about the cluster.

    Attributes:
        gpu_pools: Names of the pools whose nodes carry GPUs (CPU-only pools never alert).
        dcgm_namespace: Namespace of the DCGM exporter, or None when it is not installed.
        dcgm_release: DCGM exporter release name (its pods start with it).
        memory_full_ratio: Framebuffer use above which a GPU counts as nearly full.
        restarts_threshold: Exporter restarts within 15 minutes that raise an alert.
        extra_groups: Further rule groups appended as they are (e.g. from later add-ons).

    """

    gpu_pools: tuple[str, ...]
    dcgm_namespace: str | None = None
    dcgm_release: str | None = None
    memory_full_ratio: float = 0.95
    restarts_threshold: int = 2
    extra_groups: tuple[RuleGroup, ...] = field(default_factory=tuple)


def gpu_rule_groups(settings: GpuAlertSettings) -> tuple[RuleGroup, ...]:
    """The GPU alert rules: XID errors, memory near full, no allocatable GPUs, exporter restarts."""
    rules: list[AlertRule] = []
    if settings.gpu_pools:
        pool = ksm_label(POOL_LABEL)
        pools = "|".join(sorted(settings.gpu_pools))
        rules.append(
            AlertRule(
                alert="GpuNodeWithoutAllocatableGpu",
                expr=(
                    f'max by (node, {pool}) (kube_node_labels{{{pool}=~"{pools}"}}) unless on (node) '
                    f'(max by (node) (kube_node_status_allocatable{{resource=~"{GPU_RESOURCE_REGEX}"}}) > 0)'
                ),
                for_="15m",
                severity="critical",
                summary="GPU node {{ $labels.node }} advertises no allocatable GPU",
                description=(
                    "A node of GPU pool {{ $labels." + pool + " }} has had no allocatable nvidia.com/gpu "
                    "(or shared/MIG resource) for 15 minutes: the device plugin is not running there, "
                    "the driver failed, or every GPU was marked unhealthy. Pods requesting GPUs will not "
                    "schedule on it. Check the device plugin pod on the node and `kubectl describe node`."
                ),
            )
        )
    if settings.dcgm_namespace:
        ratio = settings.memory_full_ratio
        rules += [
            AlertRule(
                alert="GpuXidError",
                expr="max by (node, gpu_pool, gpu, UUID, modelName) (DCGM_FI_DEV_XID_ERRORS) > 0",
                for_="0m",
                severity="warning",
                summary="XID {{ $value }} on GPU {{ $labels.gpu }} of node {{ $labels.node }}",
                description=(
                    "The NVIDIA driver reported an XID error. 13/31/43 usually point at the application; "
                    "48, 63/64, 74, 79, 92, 94/95 at the hardware or driver (79: fell off the bus). "
                    "Look up the code in NVIDIA's XID catalog; drain the node if it repeats."
                ),
            ),
            AlertRule(
                alert="GpuMemoryNearlyFull",
                expr=(
                    "max by (node, gpu_pool, gpu, GPU_I_ID, exported_namespace, exported_pod) "
                    "(DCGM_FI_DEV_FB_USED / (DCGM_FI_DEV_FB_USED + DCGM_FI_DEV_FB_FREE))"
                    f" > {ratio}"
                ),
                for_="10m",
                severity="warning",
                summary="GPU {{ $labels.gpu }} on {{ $labels.node }} memory above " + f"{ratio:.0%}",
                description=(
                    "Framebuffer use has stayed above the threshold for 10 minutes. Under time-slicing "
                    "the pods sharing this GPU have no memory isolation; the next allocation may fail "
                    "with CUDA out-of-memory for any of them."
                ),
            ),
        ]
        release = settings.dcgm_release or "dcgm-exporter"
        rules.append(
            AlertRule(
                alert="DcgmExporterRestarting",
                expr=(
                    "increase(kube_pod_container_status_restarts_total"
                    f'{{namespace="{settings.dcgm_namespace}", pod=~"{release}-.*"}}[15m])'
                    f" >= {settings.restarts_threshold}"
                ),
                for_="0m",
                severity="warning",
                summary="DCGM exporter {{ $labels.pod }} is restarting",
                description=(
                    "The exporter restarted repeatedly in 15 minutes; GPU metrics and GPU alerts for "
                    "its node are unreliable. Common causes: driver/DCGM version mismatch, missing "
                    "SYS_ADMIN for profiling fields, memory limit too low."
                ),
            )
        )
    groups = [RuleGroup("mlplatform-gpu", tuple(rules))] if rules else []
    return (*groups, *settings.extra_groups)


def prometheus_rule_spec(groups: Sequence[RuleGroup]) -> dict[str, Any]:
    """The ``spec`` of a PrometheusRule holding the given groups."""
    return {"groups": [g.to_k8s() for g in groups]}
