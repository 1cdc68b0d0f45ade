"""The serving layer: cert-manager, KServe, and Knative with Kourier or KEDA, as the stack's config says.

Order (explicit ``depends_on``, because webhooks and CRDs must answer before anything uses them):
cert-manager -> [Knative + Kourier (Serverless)] [KEDA (RawDeployment, when enabled)] -> KServe CRDs
-> KServe controller -> ClusterServingRuntimes. See ``adr/0007-kserve-deployment-mode-per-stack.md`` for why
each stack runs the mode it does.

The S3 credentials KServe's storage initializer uses come from the data layer's outputs: its
``kserve`` MinIO user (``s3ServiceCredentials``), else the platform's object-storage pair.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import pulumi

from components.clusters.base import Cluster
from components.serving.cert_manager import CertManager
from components.serving.kserve import (
    KNATIVE_AUTOSCALER_CLASS,
    S3_SERVICE_ACCOUNT,
    Kserve,
    KserveArgs,
    KserveIngress,
    S3Storage,
)
from stacks import outputs
from stacks.config import PlatformConfig

SERVING_NAMESPACE: Final = "mlp-serving"
"""Where InferenceServices are deployed (exported as ``kserveNamespace``)."""
CLIENT_NAMESPACES: Final = ("kubeflow", "argo-events", "mlp-workloads")
"""Namespaces whose pods call InferenceServices: pipeline steps, event triggers, platform jobs."""
KSERVE_S3_USER: Final = "kserve"
"""The data layer's MinIO user for KServe (in ``s3ServiceCredentials``): read access to models."""
IRSA_ANNOTATION: Final = "eks.amazonaws.com/role-arn"


def add_serving_layer(cfg: PlatformConfig, cluster: Cluster, upstream: Mapping[str, Any]) -> dict[str, Any]:
    """Declare the serving add-ons on ``cluster``.

    Args:
        cfg: The validated stack configuration (``cfg.serving`` already checked for consistency).
        cluster: The cluster (its provider; on EKS its OIDC provider for IRSA).
        upstream: Output-contract values of the layers declared before (the S3 endpoint and keys).

    Returns:
        The ``kserve*`` output-contract values; empty when serving is disabled.

    """
    serving = cfg.serving
    if not serving.enabled:
        return {}
    provider = pulumi.ResourceOptions(provider=cluster.provider)
    cert_manager = CertManager("cert-manager", opts=provider)
    after: list[pulumi.Resource] = [cert_manager.release]
    local_gateway = ""
    if serving.deployment_mode == "Serverless":
        from components.serving.knative import Knative, KnativeArgs

        knative = Knative(
            "knative",
            KnativeArgs(
                domain=serving.ingress.domain,
                scale_to_zero=serving.autoscaling.scale_to_zero,
                scale_to_zero_grace_period=serving.autoscaling.scale_to_zero_grace_period,
            ),
            opts=provider,
        )
        after += [*knative.manifests, *knative.patches]
        local_gateway = knative.local_gateway_service
    if serving.keda.enabled:
        from components.serving.keda import Keda

        after.append(Keda("keda", opts=provider).release)

    kserve = Kserve(
        "kserve",
        KserveArgs(
            deployment_mode=serving.deployment_mode,
            ingress=KserveIngress(
                domain=serving.ingress.domain,
                url_scheme=serving.ingress.url_scheme,
                class_name=serving.ingress.class_name,
                local_gateway_service=local_gateway,
            ),
            storage=_s3_storage(upstream),
            serving_namespace=SERVING_NAMESPACE,
            serving_runtimes=serving.serving_runtimes,
            service_account_annotations=_cloud_identity(cfg, cluster),
            client_namespaces=CLIENT_NAMESPACES,
            after=after,
        ),
        opts=provider,
    )
    if serving.deployment_mode == "Serverless":
        autoscaler = KNATIVE_AUTOSCALER_CLASS
    else:
        autoscaler = "keda" if serving.keda.enabled else "hpa"
    return {
        outputs.KSERVE_NAMESPACE: kserve.serving_namespace,
        outputs.KSERVE_DEPLOYMENT_MODE: serving.deployment_mode,
        outputs.KSERVE_URL_TEMPLATE: kserve.url_template,
        outputs.KSERVE_INTERNAL_URL_TEMPLATE: kserve.internal_url_template,
        outputs.KSERVE_SERVICE_ACCOUNT: kserve.service_account,
        outputs.KSERVE_AUTOSCALER_CLASS: autoscaler,
        outputs.KSERVE_SCALE_TO_ZERO: serving.autoscaling.scale_to_zero,
    }


def _s3_storage(upstream: Mapping[str, Any]) -> S3Storage:
    """S3 settings for KServe: the data layer's ``kserve`` MinIO user, else the platform's key pair."""
    per_service = upstream.get(outputs.S3_SERVICE_CREDENTIALS)
    if per_service is not None:
        kserve = pulumi.Output.from_input(per_service).apply(lambda users: users[KSERVE_S3_USER])
        key_id: pulumi.Input[str] = kserve.apply(lambda user: user["accessKeyId"])
        secret: pulumi.Input[str] = kserve.apply(lambda user: user["secretAccessKey"])
    else:
        key_id, secret = upstream[outputs.S3_ACCESS_KEY_ID], upstream[outputs.S3_SECRET_ACCESS_KEY]
    return S3Storage(
        endpoint=upstream[outputs.S3_ENDPOINT],
        access_key_id=key_id,
        secret_access_key=pulumi.Output.secret(secret),
    )


def _cloud_identity(cfg: PlatformConfig, cluster: Cluster) -> dict[str, pulumi.Input[str]]:
    """Annotations binding the S3 ServiceAccount to a cloud identity, where the cluster offers one.

    EKS: an IRSA role trusted by exactly this ServiceAccount, with no permissions attached — attach
    read policies for model buckets on Amazon S3 to it; MinIO keeps using the Secret's keys. AKS
    (workload identity) is documented in the ADR, not declared: it needs a managed identity per
    consumer and the pod label ``azure.workload.identity/use``, which InferenceServices set.
    """
    oidc_arn = getattr(cluster, "oidc_provider_arn", None)
    oidc_issuer = getattr(cluster, "oidc_issuer", None)
    if cfg.target != "eks" or oidc_arn is None or oidc_issuer is None:
        return {}
    import pulumi_aws as aws

    from components.clusters.irsa import irsa_trust

    trust = irsa_trust(oidc_arn, oidc_issuer, SERVING_NAMESPACE, S3_SERVICE_ACCOUNT)
    role = aws.iam.Role("kserve-s3-irsa", assume_role_policy=trust, tags=dict(cfg.tags))
    return {IRSA_ANNOTATION: role.arn}
