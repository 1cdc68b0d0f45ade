"""Observability: kube-prometheus-stack, the platform's Grafana dashboards and its alert rules.

The chart brings the Prometheus Operator, Prometheus, Alertmanager, Grafana, kube-state-metrics and
node-exporter.

* Dashboards are JSON files in ``components/dashboards``; each becomes a ConfigMap with the
  Grafana sidecar's label, so Grafana loads them without a restart.
* Alert rules are ``components.alerts`` data rendered into one PrometheusRule, declared as a custom
  resource so the offline plan validates it against the Prometheus Operator CRD.
* Grafana's admin password is a ``RandomPassword`` kept in a Secret that the chart reads through
  ``grafana.admin.existingSecret``; it never appears in Helm values.
* Prometheus selects every ServiceMonitor, PodMonitor and PrometheusRule in the cluster, not only
  those labelled for this release, so add-ons need no chart-specific label.
* kube-state-metrics exports the GPU pool labels of nodes, so rules can tell GPU nodes apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components.alerts import RuleGroup, prometheus_rule_spec
from components.clusters.base import CAPACITY_LABEL, GPU_MODEL_LABEL, POOL_LABEL
from components.dashboards import DASHBOARDS, dashboard_text
from components.helm import pinned_release
from components.security import namespace_policies, platform_namespace_labels
from components.storage import ContainerResources
from components.versions import CHARTS, ChartPin

DASHBOARD_LABEL: Final = "grafana_dashboard"
DASHBOARD_FOLDER_ANNOTATION: Final = "grafana_folder"
ADMIN_USER_KEY: Final = "admin-user"
ADMIN_PASSWORD_KEY: Final = "admin-password"
MONITORING_RESOURCES: Final[dict[str, ContainerResources]] = {
    "prometheus": ContainerResources(cpu_request="200m", memory_request="1Gi", memory_limit="4Gi"),
    "alertmanager": ContainerResources(cpu_request="10m", memory_request="64Mi", memory_limit="256Mi"),
    "operator": ContainerResources(cpu_request="50m", memory_request="128Mi", memory_limit="512Mi"),
    "config-reloader": ContainerResources(cpu_request="10m", memory_request="32Mi", memory_limit="64Mi"),
    "webhook-patch": ContainerResources(cpu_request="10m", memory_request="32Mi", memory_limit="128Mi"),
    "grafana": ContainerResources(cpu_request="50m", memory_request="256Mi", memory_limit="1Gi"),
    "grafana-sidecar": ContainerResources(cpu_request="10m", memory_request="64Mi", memory_limit="256Mi"),
    "kube-state-metrics": ContainerResources(cpu_request="20m", memory_request="64Mi", memory_limit="256Mi"),
    "node-exporter": ContainerResources(cpu_request="20m", memory_request="32Mi", memory_limit="128Mi"),
}
"""Requests and limits of each kube-prometheus-stack container (the chart sets none)."""
MAX_RELEASE_NAME: Final = 26
"""kube-prometheus-stack truncates its full name to 26 characters; longer names would change
the Service names the output URLs point at."""


def kube_prometheus_stack_values(
    *,
    release_name: str,
    retention: str,
    storage_size_gi: int,
    storage_class: str | None,
    admin_secret_name: str,
    node_labels: tuple[str, ...],
) -> dict[str, Any]:
    """Helm values of ``kube-prometheus-stack``."""
    volume_spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": f"{storage_size_gi}Gi"}},
    }
    if storage_class:
        volume_spec["storageClassName"] = storage_class
    res = {part: r.to_k8s() for part, r in MONITORING_RESOURCES.items()}
    return {
        "fullnameOverride": release_name,
        "crds": {"enabled": True},
        # The chart's own security contexts are already non-root, read-only and drop ALL; what
        # it leaves empty is every container's requests and limits.
        "prometheusOperator": {
            "resources": res["operator"],
            "prometheusConfigReloader": {"resources": res["config-reloader"]},
            "admissionWebhooks": {"patch": {"resources": res["webhook-patch"]}},
        },
        "alertmanager": {"alertmanagerSpec": {"resources": res["alertmanager"]}},
        "prometheus": {
            "prometheusSpec": {
                "resources": res["prometheus"],
                "retention": retention,
                "serviceMonitorSelectorNilUsesHelmValues": False,
                "podMonitorSelectorNilUsesHelmValues": False,
                "ruleSelectorNilUsesHelmValues": False,
                "probeSelectorNilUsesHelmValues": False,
                "storageSpec": {"volumeClaimTemplate": {"spec": volume_spec}},
            }
        },
        "grafana": {
            "fullnameOverride": f"{release_name}-grafana",
            "resources": res["grafana"],
            "admin": {
                "existingSecret": admin_secret_name,
                "userKey": ADMIN_USER_KEY,
                "passwordKey": ADMIN_PASSWORD_KEY,
            },
            "sidecar": {
                "dashboards": {
                    "enabled": True,
                    "label": DASHBOARD_LABEL,
                    "labelValue": "1",
                    "searchNamespace": "ALL",
                    "folderAnnotation": DASHBOARD_FOLDER_ANNOTATION,
                    "provider": {"foldersFromFilesStructure": True},
                },
                "resources": res["grafana-sidecar"],
            },
        },
        "kube-state-metrics": {
            "metricLabelsAllowlist": [f"nodes=[{','.join(node_labels)}]"],
            "resources": res["kube-state-metrics"],
        },
        # Host network, PID and paths: the one monitoring pod that needs the `privileged` level.
        "prometheus-node-exporter": {"resources": res["node-exporter"]},
    }


@dataclass(frozen=True)
class ObservabilityArgs:
    """Arguments of :class:`Observability`.

    Attributes:
        namespace: Namespace to create and install into.
        release_name: Helm release name; also the prefix of every Service name (at most 26 chars).
        retention: Prometheus retention, e.g. ``7d``.
        storage_size_gi: Prometheus volume size.
        storage_class: Storage class of the Prometheus volume (the cluster's default when None).
        rule_groups: Alert rule groups to install as one PrometheusRule.
        dashboards: Dashboard file stems from ``components/dashboards``.
        node_labels: Node label keys kube-state-metrics exports (as ``label_*``).
        dashboard_folder: Grafana folder the dashboards go to.
        chart: Chart pin (from ``components.versions``).

    """

    namespace: str = "monitoring"
    release_name: str = "monitoring"
    retention: str = "7d"
    storage_size_gi: int = 20
    storage_class: str | None = None
    rule_groups: tuple[RuleGroup, ...] = ()
    dashboards: tuple[str, ...] = DASHBOARDS
    node_labels: tuple[str, ...] = (POOL_LABEL, GPU_MODEL_LABEL, CAPACITY_LABEL)
    dashboard_folder: str = "mlplatform"
    chart: ChartPin = field(default_factory=lambda: CHARTS["kube-prometheus-stack"])

    def __post_init__(self) -> None:
        if len(self.release_name) > MAX_RELEASE_NAME:
            raise ValueError(
                f"release_name '{self.release_name}' is longer than {MAX_RELEASE_NAME} characters"
            )


class Observability(pulumi.ComponentResource):
    """Prometheus and Grafana with the platform's dashboards and alerts.

    Attributes:
        namespace: The monitoring namespace.
        prometheus_url: In-cluster URL of Prometheus.
        grafana_url: In-cluster URL of Grafana.
        grafana_admin_password: Grafana's admin password (secret).
        release_name: The Helm release name.

    """

    namespace: pulumi.Output[str]
    prometheus_url: pulumi.Output[str]
    grafana_url: pulumi.Output[str]
    grafana_admin_password: pulumi.Output[str]
    release_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: ObservabilityArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlplatform:observability:Observability", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        release_name = args.release_name
        ns = k8s.core.v1.Namespace(
            f"{name}-ns",
            # node-exporter needs host networking and host PID: privileged (components.security).
            metadata={"name": args.namespace, "labels": platform_namespace_labels(args.namespace)},
            opts=child,
        )
        namespace_policies(name, args.namespace, parent=self, depends_on=ns)
        password = random.RandomPassword(f"{name}-grafana-password", length=24, special=False, opts=child)
        admin_secret_name = f"{release_name}-grafana-admin"
        admin = k8s.core.v1.Secret(
            f"{name}-grafana-admin",
            metadata={"name": admin_secret_name, "namespace": ns.metadata.name},
            type="Opaque",
            string_data={ADMIN_USER_KEY: "admin", ADMIN_PASSWORD_KEY: password.result},
            opts=child,
        )
        release = pinned_release(
            f"{name}-release",
            args.chart,
            release_name=release_name,
            namespace=ns.metadata.name,
            values=kube_prometheus_stack_values(
                release_name=release_name,
                retention=args.retention,
                storage_size_gi=args.storage_size_gi,
                storage_class=args.storage_class,
                admin_secret_name=admin_secret_name,
                node_labels=args.node_labels,
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[admin]),
        )
        for dashboard in args.dashboards:
            k8s.core.v1.ConfigMap(
                f"{name}-dashboard-{dashboard}",
                metadata={
                    "name": f"{release_name}-dashboard-{dashboard}",
                    "namespace": ns.metadata.name,
                    "labels": {DASHBOARD_LABEL: "1", "app.kubernetes.io/part-of": "mlplatform"},
                    "annotations": {DASHBOARD_FOLDER_ANNOTATION: args.dashboard_folder},
                },
                data={f"{dashboard}.json": dashboard_text(dashboard)},
                opts=child,
            )
        if args.rule_groups:
            # The PrometheusRule CRD arrives with the chart, hence the dependency.
            k8s.apiextensions.CustomResource(
                f"{name}-rules",
                api_version="monitoring.coreos.com/v1",
                kind="PrometheusRule",
                metadata={
                    "name": f"{release_name}-mlplatform",
                    "namespace": ns.metadata.name,
                    "labels": {"app.kubernetes.io/part-of": "mlplatform", "release": release_name},
                },
                spec=prometheus_rule_spec(args.rule_groups),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[release]),
            )
        self.namespace = ns.metadata.name
        self.release_name = release.name
        self.prometheus_url = pulumi.Output.concat(
            "http://", release_name, "-prometheus.", ns.metadata.name, ".svc.cluster.local:9090"
        )
        self.grafana_url = pulumi.Output.concat(
            "http://", release_name, "-grafana.", ns.metadata.name, ".svc.cluster.local"
        )
        self.grafana_admin_password = pulumi.Output.secret(password.result)
        self.register_outputs(
            {
                "namespace": self.namespace,
                "release_name": self.release_name,
                "prometheus_url": self.prometheus_url,
                "grafana_url": self.grafana_url,
                "grafana_admin_password": self.grafana_admin_password,
            }
        )
