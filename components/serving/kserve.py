"""KServe from its official charts: CRDs, controller, cluster-wide serving runtimes, S3 model access.

Three Helm releases in a fixed order, each waiting for the one before:

1. ``kserve-crd``: the CRDs (InferenceService, ServingRuntime, ClusterServingRuntime, ...);
2. ``kserve-resources``: the controller and its admission webhooks, with webhook certificates from
   cert-manager, in the deployment mode the stack chose (KServe 0.20 calls ``Serverless``
   ``Knative`` and ``RawDeployment`` ``Standard``; both old names are still accepted on
   InferenceServices);
3. ``kserve-runtime-configs``: the ClusterServingRuntimes (sklearn, xgboost, huggingface, triton...),
   validated by the controller's webhooks, so only after the controller is ready.

The component also prepares the namespace InferenceServices run in: a ServiceAccount that
references a Secret with S3 credentials and KServe's S3 annotations, so ``s3://`` storage URIs on
the platform's MinIO work with ``serviceAccountName`` alone. The credentials come in as Pulumi
outputs (generated upstream) and stay secret; nothing here writes them in plaintext.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal
from urllib.parse import urlsplit

import pulumi
import pulumi_kubernetes as k8s

from components.helm import pinned_release
from components.outputs import secret as secret_output
from components.security import IngressAllow, NamespaceSecurity, NamespaceSecurityArgs, webhook_namespace
from components.serving.common import instance_labels, resources, restricted_container, restricted_pod
from components.versions import CHARTS

DeploymentMode = Literal["Serverless", "RawDeployment"]

CHART_DEPLOYMENT_MODES: Final[dict[str, str]] = {"Serverless": "Knative", "RawDeployment": "Standard"}
"""The platform's mode names (the ones InferenceServices and the docs use) -> KServe 0.20's names."""
WEBHOOK_PORT: Final = 9443
"""Port of the KServe controller's admission webhooks."""
S3_SECRET_NAME: Final = "kserve-s3-credentials"
S3_SERVICE_ACCOUNT: Final = "kserve-s3"
ACCESS_KEY_VAR: Final = "AWS_ACCESS_KEY_ID"
SECRET_KEY_VAR: Final = "AWS_SECRET_ACCESS_KEY"
"""Keys of the S3 Secret: the names KServe's storage initializer reads (chart ``storage.s3.*Name``)."""
INTERNAL_URL_TEMPLATE: Final = "http://{name}-predictor.{namespace}.svc.cluster.local"
"""In-cluster URL of an InferenceService's predictor, the same in both modes."""
KNATIVE_AUTOSCALER_CLASS: Final = "kpa.autoscaling.knative.dev"


@dataclass(frozen=True)
class KserveIngress:
    """How InferenceServices are reached.

    Attributes:
        domain: Domain of InferenceService hosts.
        url_scheme: ``http`` or ``https``.
        class_name: RawDeployment: IngressClass of the Ingress objects KServe creates (empty: none).
        local_gateway_service: Serverless: host of the Knative networking layer's local gateway.

    """

    domain: str
    url_scheme: Literal["http", "https"] = "http"
    class_name: str = ""
    local_gateway_service: str = ""


@dataclass(frozen=True)
class S3Storage:
    """Where ``s3://`` storage URIs point and with which credentials.

    Attributes:
        endpoint: Endpoint URL with scheme, e.g. ``http://minio.mlp-data.svc:9000``.
        access_key_id: Access key id.
        secret_access_key: Secret access key (a Pulumi secret).
        region: Region the S3 client signs for (MinIO accepts any).

    """

    endpoint: pulumi.Input[str]
    access_key_id: pulumi.Input[str]
    secret_access_key: pulumi.Input[str]
    region: str = "us-east-1"


@dataclass(frozen=True)
class KserveArgs:
    """Settings of KServe.

    Attributes:
        deployment_mode: Default mode of InferenceServices.
        ingress: How InferenceServices are reached.
        storage: S3 endpoint and credentials for ``s3://`` storage URIs.
        namespace: Namespace of the controller.
        serving_namespace: Namespace InferenceServices are deployed to (S3 Secret and ServiceAccount).
        serving_runtimes: Install the ClusterServingRuntimes.
        service_account_annotations: Extra annotations of the S3 ServiceAccount (cloud identity).
        client_namespaces: Namespaces whose pods may call InferenceServices.
        after: Resources that must be ready before the CRDs are installed (cert-manager, Knative,
            KEDA): explicit, because a component's ``depends_on`` does not reach its children.

    """

    deployment_mode: DeploymentMode
    ingress: KserveIngress
    storage: S3Storage
    namespace: str = "kserve"
    serving_namespace: str = "mlp-serving"
    serving_runtimes: bool = True
    service_account_annotations: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    client_namespaces: tuple[str, ...] = ()
    after: Sequence[pulumi.Resource] = ()

    def __post_init__(self) -> None:
        if self.deployment_mode not in CHART_DEPLOYMENT_MODES:
            raise ValueError(
                f"deployment_mode must be Serverless or RawDeployment, got {self.deployment_mode!r}"
            )
        if self.deployment_mode == "Serverless" and not self.ingress.local_gateway_service:
            raise ValueError("Serverless needs the Knative networking layer's local gateway service")
        if self.deployment_mode == "Serverless" and self.ingress.class_name:
            raise ValueError("ingress class_name is for RawDeployment; Serverless routes through Knative")


def kserve_values(args: KserveArgs) -> dict[str, Any]:
    """Helm values of the ``kserve-resources`` chart (keys of its ``values.yaml``).

    No Istio in this platform: KServe's top-level Istio VirtualService is off in both modes.
    RawDeployment without an IngressClass creates no Ingress (cluster-local services only).
    """
    ingress = args.ingress
    raw = args.deployment_mode == "RawDeployment"
    gateway: dict[str, Any] = {
        "domain": ingress.domain,
        "urlScheme": ingress.url_scheme,
        "disableIstioVirtualHost": True,
        "disableIngressCreation": raw and not ingress.class_name,
        "ingressGateway": {"className": ingress.class_name, "enableGatewayApi": False},
    }
    if not raw:
        gateway["localGateway"] = {"gatewayService": ingress.local_gateway_service}
    return {
        "kserve": {
            "certManager": {"enabled": True},
            "controller": {
                "deploymentMode": CHART_DEPLOYMENT_MODES[args.deployment_mode],
                "resources": resources("100m", "300Mi", "512Mi"),
                "securityContext": restricted_pod(),
                "containerSecurityContext": restricted_container(),
                "rbacProxy": {
                    "resources": resources("20m", "64Mi", "128Mi"),
                    "securityContext": restricted_container(),
                },
                "gateway": gateway,
            },
            "metricsaggregator": {"enablePrometheusScraping": "true"},
        }
    }


def runtime_config_values() -> dict[str, Any]:
    """Helm values of the ``kserve-runtime-configs`` chart: the ClusterServingRuntimes on."""
    return {"kserve": {"servingruntime": {"enabled": True}}}


def s3_annotations(endpoint: str, region: str) -> dict[str, str]:
    """KServe's S3 annotations of the credentials Secret for an endpoint URL.

    Raises:
        ValueError: When the endpoint has no ``http``/``https`` scheme or no host.

    """
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"S3 endpoint must be an http(s) URL with a host, got {endpoint!r}")
    https = "1" if parts.scheme == "https" else "0"
    return {
        "serving.kserve.io/s3-endpoint": parts.netloc,
        "serving.kserve.io/s3-usehttps": https,
        "serving.kserve.io/s3-verifyssl": https,
        "serving.kserve.io/s3-region": region,
        "serving.kserve.io/s3-useanoncredential": "false",
    }


def url_template(args: KserveArgs) -> str:
    """The URL KServe reports for an InferenceService, with ``{name}`` and ``{namespace}`` placeholders.

    Serverless (Kourier, no top-level virtual host): the predictor's Knative route. RawDeployment
    with an IngressClass: KServe's default domain template. RawDeployment without: the in-cluster URL.
    """
    ingress = args.ingress
    if args.deployment_mode == "Serverless":
        return f"{ingress.url_scheme}://{{name}}-predictor.{{namespace}}.{ingress.domain}"
    if ingress.class_name:
        return f"{ingress.url_scheme}://{{name}}-{{namespace}}.{ingress.domain}"
    return INTERNAL_URL_TEMPLATE


def serving_allows(args: KserveArgs) -> tuple[IngressAllow, ...]:
    """Who may reach pods in the serving namespace, beyond the namespace itself and Prometheus."""
    allows: list[IngressAllow] = []
    if args.deployment_mode == "Serverless":
        from components.serving.knative import KOURIER_NAMESPACE, NAMESPACE

        # Kourier's gateway and Knative's activator/autoscaler (queue-proxy metrics) call the pods.
        allows.append(IngressAllow("knative", from_namespaces=(NAMESPACE, KOURIER_NAMESPACE)))
    elif args.ingress.class_name:
        # The ingress controller's namespace is not the platform's to know; only the model port.
        allows.append(IngressAllow("ingress", ports=(8080,), from_anywhere=True))
    if args.client_namespaces:
        allows.append(IngressAllow("clients", from_namespaces=tuple(args.client_namespaces)))
    return tuple(allows)


class Kserve(pulumi.ComponentResource):
    """KServe: CRDs, controller, serving runtimes, and the serving namespace's S3 access.

    Attributes:
        namespace: The controller's namespace.
        serving_namespace: Where InferenceServices go.
        service_account: Name of the ServiceAccount with S3 access (for ``serviceAccountName``).
        crds: The CRD release.
        controller: The controller release (ready once its webhooks are).
        runtimes: The ClusterServingRuntimes release, or None.
        url_template: URL of an InferenceService with ``{name}``/``{namespace}`` placeholders.
        internal_url_template: Its in-cluster URL.

    """

    def __init__(self, name: str, args: KserveArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplatform:serving:Kserve", name, None, opts)
        ns = webhook_namespace(name, args.namespace, (WEBHOOK_PORT,), parent=self)
        self.namespace: pulumi.Output[str] = ns.namespace
        self.crds = pinned_release(
            f"{name}-crd",
            CHARTS["kserve-crd"],
            release_name=f"{name}-crd",
            namespace=ns.namespace,
            values={},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[ns, *args.after]),
        )
        self.controller = pinned_release(
            f"{name}-controller",
            CHARTS["kserve"],
            release_name=name,
            namespace=ns.namespace,
            values=kserve_values(args),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.crds, *args.after]),
        )
        self.runtimes: k8s.helm.v3.Release | None = None
        if args.serving_runtimes:
            self.runtimes = pinned_release(
                f"{name}-runtimes",
                CHARTS["kserve-runtime-configs"],
                release_name=f"{name}-runtimes",
                namespace=ns.namespace,
                values=runtime_config_values(),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.controller]),
            )

        serving = NamespaceSecurity(
            f"{name}-serving-ns",
            # baseline: runtime images set no seccomp profile, which the restricted profile requires.
            NamespaceSecurityArgs(
                namespace=args.serving_namespace, pod_security="baseline", allows=serving_allows(args)
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.serving_namespace: pulumi.Output[str] = serving.namespace
        labels = instance_labels("serving", name)
        storage = args.storage
        secret = k8s.core.v1.Secret(
            f"{name}-s3-credentials",
            metadata={
                "name": S3_SECRET_NAME,
                "namespace": serving.namespace,
                "labels": labels,
                "annotations": pulumi.Output.from_input(storage.endpoint).apply(
                    lambda endpoint: s3_annotations(endpoint, storage.region)
                ),
            },
            type="Opaque",
            string_data=secret_output(
                pulumi.Output.all(storage.access_key_id, storage.secret_access_key).apply(
                    lambda pair: {ACCESS_KEY_VAR: pair[0], SECRET_KEY_VAR: pair[1]}
                )
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[serving]),
        )
        account = k8s.core.v1.ServiceAccount(
            f"{name}-s3-sa",
            metadata={
                "name": S3_SERVICE_ACCOUNT,
                "namespace": serving.namespace,
                "labels": labels,
                "annotations": dict(args.service_account_annotations),
            },
            secrets=[{"name": S3_SECRET_NAME}],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[secret]),
        )
        self.service_account: pulumi.Output[str] = account.metadata.apply(lambda m: m.name)
        self.url_template = url_template(args)
        self.internal_url_template = INTERNAL_URL_TEMPLATE
        self.register_outputs(
            {
                "namespace": self.namespace,
                "serving_namespace": self.serving_namespace,
                "service_account": self.service_account,
                "url_template": self.url_template,
                "internal_url_template": self.internal_url_template,
            }
        )
