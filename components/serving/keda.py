"""KEDA from its official chart: request-based autoscaling and scale to zero for RawDeployment.

KServe in RawDeployment scales predictors with a HorizontalPodAutoscaler on CPU; with KEDA it can
create ScaledObjects instead (annotation ``serving.kserve.io/autoscalerClass: keda``) that scale
on request metrics from Prometheus, and down to zero. The chart installs KEDA's CRDs; its admission
webhooks and metrics API server are reached by the API server, so their ports are open to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import pulumi

from components.helm import pinned_release
from components.security import IngressAllow, NamespaceSecurity, NamespaceSecurityArgs
from components.serving.common import resources, restricted_container, restricted_pod
from components.versions import CHARTS

WEBHOOK_PORT: Final = 9443
"""Port of KEDA's admission webhooks (the chart's default ``webhooks.port``)."""
METRICS_API_PORT: Final = 6443
"""Port of KEDA's external metrics API server (the chart's ``service.portHttpsTarget``)."""
PARTS: Final = ("operator", "metricServer", "webhooks")
"""The chart's names of KEDA's three Deployments in its per-part values."""


@dataclass(frozen=True)
class KedaArgs:
    """Settings of KEDA.

    Attributes:
        namespace: Namespace of the operator, metrics API server and webhooks.

    """

    namespace: str = "keda"


def keda_values() -> dict[str, Any]:
    """Helm values of the KEDA chart: CRDs on, restricted pods, requests and limits, metrics on."""
    return {
        "crds": {"install": True},
        "resources": {part: resources("50m", "128Mi", "512Mi") for part in PARTS},
        "podSecurityContext": {part: restricted_pod() for part in PARTS},
        "securityContext": {part: restricted_container() for part in PARTS},
        "prometheus": {"metricServer": {"enabled": True}, "operator": {"enabled": True}},
    }


class Keda(pulumi.ComponentResource):
    """KEDA in its own restricted namespace.

    Attributes:
        namespace: The namespace it runs in.
        release: The Helm release (ready once the operator, metrics server and webhooks are).

    """

    def __init__(
        self, name: str, args: KedaArgs | None = None, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlplatform:serving:Keda", name, None, opts)
        args = args or KedaArgs()
        ns = NamespaceSecurity(
            f"{name}-ns",
            NamespaceSecurityArgs(
                namespace=args.namespace,
                pod_security="restricted",
                allows=(
                    IngressAllow("webhooks", ports=(WEBHOOK_PORT,), from_anywhere=True),
                    IngressAllow("metrics-api", ports=(METRICS_API_PORT,), from_anywhere=True),
                ),
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.namespace: pulumi.Output[str] = ns.namespace
        self.release = pinned_release(
            f"{name}-release",
            CHARTS["keda"],
            release_name=name,
            namespace=ns.namespace,
            values=keda_values(),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[ns]),
        )
        self.register_outputs({"namespace": self.namespace})
