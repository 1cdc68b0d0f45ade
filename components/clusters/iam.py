"""IAM policy documents for the EKS cluster: node trust, IRSA trust, Cluster Autoscaler.

Plain dictionaries so they can be reviewed and tested; the component serializes them to JSON.
"""

from __future__ import annotations

from typing import Any

from components.clusters.tags import CA_TAG_PREFIX, cluster_owned_tag

PolicyDocument = dict[str, Any]

NODE_MANAGED_POLICIES = (
    "AmazonEKSWorkerNodePolicy",
    "AmazonEKS_CNI_Policy",
    "AmazonEC2ContainerRegistryReadOnly",
)
"""AWS-managed policies every EKS worker node role needs."""

EBS_CSI_MANAGED_POLICY = "service-role/AmazonEBSCSIDriverPolicy"


def managed_policy_arn(partition: str, name: str) -> str:
    """ARN of an AWS-managed policy in a partition (``aws``, ``aws-cn``, ``aws-us-gov``)."""
    return f"arn:{partition}:iam::aws:policy/{name}"


def assume_role_policy(service: str) -> PolicyDocument:
    """Trust policy letting an AWS service (e.g. ``ec2.amazonaws.com``) assume a role."""
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
    }


def irsa_trust_policy(
    oidc_provider_arn: str, oidc_issuer: str, namespace: str, service_account: str
) -> PolicyDocument:
    """Trust policy letting exactly one Kubernetes service account assume a role (IRSA).

    Args:
        oidc_provider_arn: ARN of the cluster's IAM OIDC provider.
        oidc_issuer: Issuer host and path without ``https://``
            (``oidc.eks.<region>.amazonaws.com/id/<ID>``).
        namespace: The service account's namespace.
        service_account: The service account's name.

    """
    issuer = oidc_issuer.removeprefix("https://")
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": oidc_provider_arn},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {
                        f"{issuer}:sub": f"system:serviceaccount:{namespace}:{service_account}",
                        f"{issuer}:aud": "sts.amazonaws.com",
                    }
                },
            }
        ],
    }


def cluster_autoscaler_policy(cluster_name: str) -> PolicyDocument:
    """Least-privilege policy for Cluster Autoscaler on one cluster.

    Describe calls cannot be scoped by resource; scaling and terminating are limited to Auto
    Scaling groups tagged as owned by this cluster (EKS managed node groups carry that tag).
    ``eks:DescribeNodegroup`` lets it read a managed group's labels and taints when it is at zero.
    """
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Describe",
                "Effect": "Allow",
                "Action": [
                    "autoscaling:DescribeAutoScalingGroups",
                    "autoscaling:DescribeAutoScalingInstances",
                    "autoscaling:DescribeLaunchConfigurations",
                    "autoscaling:DescribeScalingActivities",
                    "autoscaling:DescribeTags",
                    "ec2:DescribeImages",
                    "ec2:DescribeInstanceTypes",
                    "ec2:DescribeLaunchTemplateVersions",
                    "ec2:GetInstanceTypesFromInstanceRequirements",
                    "eks:DescribeNodegroup",
                ],
                "Resource": "*",
            },
            {
                "Sid": "ScaleOwnGroups",
                "Effect": "Allow",
                "Action": [
                    "autoscaling:SetDesiredCapacity",
                    "autoscaling:TerminateInstanceInAutoScalingGroup",
                ],
                "Resource": "*",
                "Condition": {
                    "StringEquals": {
                        f"aws:ResourceTag/{cluster_owned_tag(cluster_name)}": "owned",
                        f"aws:ResourceTag/{CA_TAG_PREFIX}/enabled": "true",
                    }
                },
            },
        ],
    }
