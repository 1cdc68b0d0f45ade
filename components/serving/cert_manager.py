"""cert-manager from its official chart: the certificates of KServe's (and KEDA's) admission webhooks.

The chart installs its own CRDs (``crds.enabled``) and keeps them on uninstall (``crds.keep``), so
certificates issued to other add-ons survive a cert-manager reinstall. ``helm.v3.Release`` waits for
every Deployment of the chart to be ready, so cert-manager's own webhook answers before any add-on
that depends on this component creates an Issuer or Certificate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from components.helm import pinned_release
from components.security import webhook_namespace
from components.serving.common import resources, restricted_container, restricted_pod
from components.versions import CHARTS

WEBHOOK_PORT = 10250
"""Port cert-manager's webhook serves admission requests on (the chart's ``webhook.securePort``)."""


@dataclass(frozen=True)
class CertManagerArgs:
    """Settings of cert-manager.

    Attributes:
        namespace: Namespace of the controller, webhook and CA injector.
        replicas: Replicas of the controller (the webhook and injector follow the chart's default).

    """

    namespace: str = "cert-manager"
    replicas: int = 1

    def __post_init__(self) -> None:
        if self.replicas < 1:
            raise ValueError(f"cert-manager replicas must be at least 1, got {self.replicas}")


def cert_manager_values(args: CertManagerArgs) -> dict[str, Any]:
    """Helm values of the cert-manager chart: CRDs on, restricted pods, requests and limits.

    Every key is one the chart's ``values.schema.json`` declares.
    """

    def part(cpu: str, memory: str, limit: str) -> dict[str, Any]:
        return {
            "resources": resources(cpu, memory, limit),
            "securityContext": restricted_pod(),
            "containerSecurityContext": restricted_container(),
        }

    return {
        "crds": {"enabled": True, "keep": True},
        "replicaCount": args.replicas,
        **part("20m", "64Mi", "256Mi"),
        "prometheus": {"enabled": True},
        "webhook": {**part("10m", "32Mi", "128Mi"), "securePort": WEBHOOK_PORT},
        "cainjector": part("10m", "64Mi", "256Mi"),
        "startupapicheck": part("10m", "32Mi", "128Mi"),
    }


class CertManager(pulumi.ComponentResource):
    """cert-manager in its own restricted namespace.

    Attributes:
        namespace: The namespace it runs in.
        release: The Helm release (ready once every cert-manager Deployment is ready).

    """

    def __init__(
        self, name: str, args: CertManagerArgs | None = None, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlplatform:serving:CertManager", name, None, opts)
        args = args or CertManagerArgs()
        ns = webhook_namespace(name, args.namespace, (WEBHOOK_PORT,), parent=self)
        self.namespace: pulumi.Output[str] = ns.namespace
        self.release = pinned_release(
            f"{name}-release",
            CHARTS["cert-manager"],
            release_name=name,
            namespace=ns.namespace,
            values=cert_manager_values(args),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[ns]),
        )
        self.register_outputs({"namespace": self.namespace})
