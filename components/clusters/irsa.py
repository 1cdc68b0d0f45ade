"""IRSA on EKS: the cluster identity add-ons need and the roles their service accounts assume.

The trust policy itself is the plain document :func:`components.clusters.iam.irsa_trust_policy`;
this module resolves the cluster's OIDC provider (Pulumi outputs) into it and declares the roles.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.clusters.iam import irsa_trust_policy


def irsa_trust(
    oidc_provider_arn: pulumi.Input[str],
    oidc_issuer: pulumi.Input[str],
    namespace: str,
    service_account: str,
) -> pulumi.Output[str]:
    """The JSON trust policy letting exactly one service account assume a role (IRSA).

    Args:
        oidc_provider_arn: ARN of the cluster's IAM OIDC provider.
        oidc_issuer: OIDC issuer (with or without ``https://``).
        namespace: The service account's namespace.
        service_account: The service account's name.

    Returns:
        :func:`components.clusters.iam.irsa_trust_policy` serialized, once both inputs resolve.

    """
    return pulumi.Output.all(oidc_provider_arn, oidc_issuer).apply(
        lambda a: json.dumps(irsa_trust_policy(a[0], a[1], namespace, service_account))
    )


@dataclass(frozen=True)
class IrsaCluster:
    """The EKS cluster an add-on with an IRSA role runs in.

    Attributes:
        cluster_name: The EKS cluster.
        region: AWS region.
        oidc_provider_arn: ARN of the cluster's IAM OIDC provider.
        oidc_issuer: OIDC issuer without ``https://``.

    """

    cluster_name: str
    region: str
    oidc_provider_arn: pulumi.Input[str]
    oidc_issuer: pulumi.Input[str]

    def role(
        self,
        name: str,
        *,
        namespace: str,
        service_account: str,
        policy: pulumi.Input[str],
        opts: pulumi.ResourceOptions,
    ) -> aws.iam.Role:
        """An IAM role only ``namespace/service_account`` may assume, with an inline policy.

        Args:
            name: Name of the role and of its inline policy resource.
            namespace: The service account's namespace.
            service_account: The service account's name.
            policy: The inline policy document (JSON).
            opts: Options of both resources.

        Returns:
            The role; its inline policy is declared alongside.

        """
        role = aws.iam.Role(
            name,
            assume_role_policy=irsa_trust(
                self.oidc_provider_arn, self.oidc_issuer, namespace, service_account
            ),
            opts=opts,
        )
        aws.iam.RolePolicy(name, role=role.name, policy=policy, opts=opts)
        return role
