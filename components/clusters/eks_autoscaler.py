"""``ClusterAutoscaler``: the pinned chart with an IRSA role (see adr/0003-eks-gpu-autoscaling.md)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from components.clusters.eks_spec import (
    AUTOSCALER_NAMESPACE,
    AUTOSCALER_SERVICE_ACCOUNT,
    cluster_autoscaler_values,
)
from components.clusters.iam import cluster_autoscaler_policy, irsa_trust_policy
from components.helm import pinned_release
from components.security import container_security, pod_security
from components.storage import ContainerResources
from components.versions import CHARTS, ChartPin

AUTOSCALER_UID = 65534
"""Non-root uid the autoscaler runs as (``nobody``; the image needs no home or writable root)."""


def autoscaler_security_values() -> dict[str, Any]:
    """Chart values for the autoscaler pod: restricted security contexts, requests and limits."""
    return {
        "securityContext": pod_security(run_as_user=AUTOSCALER_UID, fs_group=AUTOSCALER_UID),
        "containerSecurityContext": container_security(run_as_user=AUTOSCALER_UID),
        "resources": ContainerResources(
            cpu_request="100m", memory_request="300Mi", memory_limit="600Mi"
        ).to_k8s(),
    }


@dataclass(frozen=True)
class ClusterAutoscalerArgs:
    """Arguments of ``ClusterAutoscaler``.

    Attributes:
        cluster_name: The EKS cluster.
        region: AWS region.
        oidc_provider_arn: ARN of the cluster's IAM OIDC provider.
        oidc_issuer: OIDC issuer without ``https://``.
        chart: The pinned chart.

    """

    cluster_name: str
    region: str
    oidc_provider_arn: pulumi.Input[str]
    oidc_issuer: pulumi.Input[str]
    chart: ChartPin = field(default_factory=lambda: CHARTS["cluster-autoscaler"])


class ClusterAutoscaler(pulumi.ComponentResource):
    """Cluster Autoscaler for EKS managed node groups, with an IRSA role.

    Give it the cluster's ``aws`` and ``kubernetes`` providers through ``opts.providers``.

    Attributes:
        role_arn: The IRSA role the autoscaler's service account assumes.
        release_name: The Helm release.

    """

    role_arn: pulumi.Output[str]
    release_name: pulumi.Output[str | None]

    def __init__(
        self, name: str, args: ClusterAutoscalerArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlplatform:clusters:ClusterAutoscaler", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        trust = pulumi.Output.all(args.oidc_provider_arn, args.oidc_issuer).apply(
            lambda a: json.dumps(
                irsa_trust_policy(a[0], a[1], AUTOSCALER_NAMESPACE, AUTOSCALER_SERVICE_ACCOUNT)
            )
        )
        role = aws.iam.Role(f"{name}-irsa", assume_role_policy=trust, opts=child)
        aws.iam.RolePolicy(
            f"{name}-irsa",
            role=role.name,
            policy=json.dumps(cluster_autoscaler_policy(args.cluster_name)),
            opts=child,
        )
        release = pinned_release(
            name,
            args.chart,
            release_name="cluster-autoscaler",
            namespace=AUTOSCALER_NAMESPACE,
            values={
                **cluster_autoscaler_values(
                    cluster_name=args.cluster_name, region=args.region, role_arn=role.arn
                ),
                **autoscaler_security_values(),
            },
            opts=child,
        )
        self.role_arn = role.arn
        self.release_name = release.name
        self.register_outputs({"role_arn": self.role_arn, "release_name": self.release_name})
