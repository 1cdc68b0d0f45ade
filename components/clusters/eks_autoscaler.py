"""``ClusterAutoscaler``: the pinned chart with an IRSA role (see adr/0003-eks-gpu-autoscaling.md)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pulumi

from components.clusters.eks_spec import (
    AUTOSCALER_NAMESPACE,
    AUTOSCALER_SERVICE_ACCOUNT,
    cluster_autoscaler_values,
)
from components.clusters.iam import cluster_autoscaler_policy
from components.clusters.irsa import IrsaCluster
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
        cluster: The EKS cluster and its OIDC provider.
        chart: The pinned chart.

    """

    cluster: IrsaCluster
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
        role = args.cluster.role(
            f"{name}-irsa",
            namespace=AUTOSCALER_NAMESPACE,
            service_account=AUTOSCALER_SERVICE_ACCOUNT,
            policy=json.dumps(cluster_autoscaler_policy(args.cluster.cluster_name)),
            opts=child,
        )
        release = pinned_release(
            name,
            args.chart,
            release_name="cluster-autoscaler",
            namespace=AUTOSCALER_NAMESPACE,
            values={
                **cluster_autoscaler_values(
                    cluster_name=args.cluster.cluster_name, region=args.cluster.region, role_arn=role.arn
                ),
                **autoscaler_security_values(),
            },
            opts=child,
        )
        self.role_arn = role.arn
        self.release_name = release.name
        self.register_outputs({"role_arn": self.role_arn, "release_name": self.release_name})
