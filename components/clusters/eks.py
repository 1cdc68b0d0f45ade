"""``EksCluster``: an EKS cluster with an on-demand system node group and spot GPU node groups.

Children, all parented to the component and named after it:

* an AWS provider for the cluster's region (default tags on every AWS resource);
* ``EksVpc``: a VPC with one public and one private subnet per availability zone, NAT and routes;
* a KMS key for secrets encryption and the control-plane log group (with retention);
* the control plane as a ``pulumi_eks.Cluster`` (no default node group, OIDC provider, access
  entries), kept behind this class: add-ons and tests only see our attributes;
* an IAM role for nodes, the on-demand system node group and one ``aws.eks.NodeGroup`` per GPU
  pool (SPOT, several instance types, NVIDIA AMI, GPU taint and labels, minimum 0), with the
  node-template tags copied onto each Auto Scaling group so Cluster Autoscaler can scale from 0;
* the EBS CSI driver add-on (IRSA) and a default ``gp3`` StorageClass;
* ``ClusterAutoscaler``: the chart with an IRSA role (see adr/0003-eks-gpu-autoscaling.md);
* ``NodeTerminationHandler``: SQS queue, EventBridge rules, lifecycle hooks on the GPU groups and
  the handler in queue mode (see adr/0010-spot-interruption-handling.md).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_eks as eks
import pulumi_kubernetes as k8s

from components.clusters.base import GpuPoolInfo
from components.clusters.eks_autoscaler import ClusterAutoscaler, ClusterAutoscalerArgs
from components.clusters.eks_interruption import NodeTerminationHandler, NodeTerminationHandlerArgs
from components.clusters.eks_spec import (
    EBS_CSI_SERVICE_ACCOUNT,
    EksClusterArgs,
    EksGpuNodeGroup,
    EksSystemNodeGroup,
    asg_node_template_tags,
    gpu_node_group_spec,
    gpu_pool_info,
    system_node_group_spec,
    tag_resource_suffixes,
)
from components.clusters.eks_vpc import EksVpc, EksVpcArgs
from components.clusters.iam import (
    EBS_CSI_MANAGED_POLICY,
    NODE_MANAGED_POLICIES,
    assume_role_policy,
    managed_policy_arn,
)
from components.clusters.irsa import IrsaCluster, irsa_trust
from components.clusters.pools import pool_summary

__all__ = [
    "ClusterAutoscaler",
    "ClusterAutoscalerArgs",
    "EksCluster",
    "EksClusterArgs",
    "EksGpuNodeGroup",
    "EksSystemNodeGroup",
    "EksVpc",
    "EksVpcArgs",
]

STORAGE_CLASS = "gp3"
DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
DESIRED_SIZE_PATH = "scalingConfig.desiredSize"


def _managed_policy(name: str) -> Callable[[str], str]:
    """A function from a partition to the ARN of one AWS-managed policy."""

    def arn(partition: str) -> str:
        return managed_policy_arn(partition, name)

    return arn


def _first_asg_name(resources: Sequence[Any] | None) -> str:
    """Name of the Auto Scaling group behind a managed node group."""
    if not resources or not resources[0].autoscaling_groups:
        raise ValueError("the managed node group reported no Auto Scaling group")
    return str(resources[0].autoscaling_groups[0].name)


class EksCluster(pulumi.ComponentResource):
    """An EKS cluster behind the ``Cluster`` protocol.

    Attributes:
        cluster_name: The EKS cluster name; resolves once the control plane exists.
        region: AWS region.
        vpc_id: The cluster's VPC.
        oidc_provider_arn: IAM OIDC provider ARN (for IRSA roles of add-ons).
        oidc_issuer: OIDC issuer without ``https://``.
        node_role_arn: IAM role of the managed node groups.
        kubeconfig: Kubeconfig (``aws eks get-token``), a secret.
        provider: Kubernetes provider bound to ``kubeconfig``; it waits for the system node group.
        gpu_pools: GPU node groups with their node labels and taints.
        storage_class: ``gp3``, created here as the default class.

    """

    cluster_name: pulumi.Output[str]
    region: str
    vpc_id: pulumi.Output[str]
    oidc_provider_arn: pulumi.Output[str]
    oidc_issuer: pulumi.Output[str]
    node_role_arn: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]
    provider: k8s.Provider
    gpu_pools: list[GpuPoolInfo]
    storage_class: str

    def __init__(self, name: str, args: EksClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplatform:clusters:EksCluster", name, None, opts)
        tags = dict(args.tags)
        aws_provider = aws.Provider(
            f"{name}-aws",
            region=args.region,
            default_tags={"tags": tags} if tags else None,
            opts=pulumi.ResourceOptions(parent=self),
        )
        on_aws = pulumi.ResourceOptions(parent=self, provider=aws_provider)
        partition = aws.get_partition_output(
            opts=pulumi.InvokeOutputOptions(parent=self, provider=aws_provider)
        ).partition

        vpc, control_plane = self._control_plane(name, args, aws_provider)
        # The name is ours (autoscaler tags and IAM conditions must spell it before the cluster
        # exists); deriving the output from the control plane's makes every user wait for it.
        cluster_name = control_plane.oidc_provider_arn.apply(lambda _: args.cluster_name)
        system = self._node_groups(name, args, cluster_name, vpc, on_aws, partition)
        self._storage_and_autoscaler(name, args, aws_provider, control_plane, cluster_name, system, partition)

        self.cluster_name = cluster_name
        self.region = args.region
        self.vpc_id = vpc.vpc_id
        self.oidc_provider_arn = control_plane.oidc_provider_arn
        self.oidc_issuer = control_plane.oidc_issuer
        self.storage_class = STORAGE_CLASS
        self.register_outputs(
            {
                "cluster_name": self.cluster_name,
                "region": self.region,
                "vpc_id": self.vpc_id,
                "oidc_provider_arn": self.oidc_provider_arn,
                "oidc_issuer": self.oidc_issuer,
                "node_role_arn": self.node_role_arn,
                "kubeconfig": self.kubeconfig,
                "provider": self.provider,
                "gpu_pools": [pool_summary(p) for p in self.gpu_pools],
                "storage_class": self.storage_class,
            }
        )

    def _control_plane(
        self, name: str, args: EksClusterArgs, aws_provider: aws.Provider
    ) -> tuple[EksVpc, eks.Cluster]:
        """The VPC, the secrets key, the control-plane log group and the control plane itself."""
        on_aws = pulumi.ResourceOptions(parent=self, provider=aws_provider)
        vpc = EksVpc(
            f"{name}-vpc",
            EksVpcArgs(args.cluster_name, args.vpc_cidr, args.availability_zone_count, args.nat_gateways),
            opts=pulumi.ResourceOptions(parent=self, providers={"aws": aws_provider}),
        )
        key = aws.kms.Key(
            f"{name}-secrets",
            description=f"Envelope encryption of Kubernetes secrets in EKS cluster {args.cluster_name}",
            enable_key_rotation=True,
            deletion_window_in_days=7,
            opts=on_aws,
        )
        # EKS would create this group itself with no retention; owning it caps the log bill.
        logs = aws.cloudwatch.LogGroup(
            f"{name}-control-plane",
            name=f"/aws/eks/{args.cluster_name}/cluster",
            retention_in_days=args.log_retention_days,
            opts=on_aws,
        )
        public_endpoint = args.endpoint_public_access
        control_plane = eks.Cluster(
            f"{name}-eks",
            name=args.cluster_name,
            version=args.kubernetes_version,
            vpc_id=vpc.vpc_id,
            public_subnet_ids=vpc.public_subnet_ids,
            private_subnet_ids=vpc.private_subnet_ids,
            node_associate_public_ip_address=False,
            skip_default_node_group=True,
            skip_default_security_groups=True,
            authentication_mode=eks.AuthenticationMode.API,
            create_oidc_provider=True,
            enabled_cluster_log_types=list(args.enabled_log_types),
            encryption_config_key_arn=key.arn,
            endpoint_public_access=public_endpoint,
            endpoint_private_access=args.endpoint_private_access,
            public_access_cidrs=list(args.public_access_cidrs)
            if public_endpoint and args.public_access_cidrs
            else None,
            opts=pulumi.ResourceOptions(parent=self, providers={"aws": aws_provider}, depends_on=[logs]),
        )
        return vpc, control_plane

    def _node_groups(
        self,
        name: str,
        args: EksClusterArgs,
        cluster_name: pulumi.Output[str],
        vpc: EksVpc,
        on_aws: pulumi.ResourceOptions,
        partition: pulumi.Output[str],
    ) -> aws.eks.NodeGroup:
        """The node role, the on-demand system group and the spot GPU groups; returns the system group."""
        node_role = aws.iam.Role(
            f"{name}-node",
            assume_role_policy=json.dumps(assume_role_policy("ec2.amazonaws.com")),
            opts=on_aws,
        )
        attachments = [
            aws.iam.RolePolicyAttachment(
                f"{name}-node-{policy.lower().replace('_', '-')}",
                role=node_role.name,
                policy_arn=partition.apply(_managed_policy(policy)),
                opts=on_aws,
            )
            for policy in NODE_MANAGED_POLICIES
        ]
        node_group_opts = pulumi.ResourceOptions(
            parent=self,
            provider=on_aws.provider,
            depends_on=attachments,
            # The autoscaler owns the current size; `pulumi up` must not reset it.
            ignore_changes=[DESIRED_SIZE_PATH],
        )
        system = aws.eks.NodeGroup(
            f"{name}-system",
            cluster_name=cluster_name,
            node_role_arn=node_role.arn,
            subnet_ids=vpc.private_subnet_ids,
            **system_node_group_spec(args.system_node_group, kubernetes_version=args.kubernetes_version),
            opts=node_group_opts,
        )
        self.node_role_arn = node_role.arn

        self.gpu_pools = []
        self.gpu_asg_names: dict[str, pulumi.Output[str]] = {}
        for group in args.gpu_node_groups:
            pool_name = f"{name}-gpu-{group.spec.name}"
            node_group = aws.eks.NodeGroup(
                pool_name,
                cluster_name=cluster_name,
                node_role_arn=node_role.arn,
                subnet_ids=vpc.private_subnet_ids,
                **gpu_node_group_spec(
                    group, cluster_name=args.cluster_name, kubernetes_version=args.kubernetes_version
                ),
                opts=node_group_opts,
            )
            asg_name = node_group.resources.apply(_first_asg_name)
            self.gpu_asg_names[group.spec.name] = asg_name
            template = asg_node_template_tags(group)
            for tag_key, suffix in tag_resource_suffixes(list(template)).items():
                aws.autoscaling.Tag(
                    f"{pool_name}-{suffix}",
                    autoscaling_group_name=asg_name,
                    tag={"key": tag_key, "value": template[tag_key], "propagate_at_launch": False},
                    opts=on_aws,
                )
            self.gpu_pools.append(gpu_pool_info(group))
        return system

    def _storage_and_autoscaler(
        self,
        name: str,
        args: EksClusterArgs,
        aws_provider: aws.Provider,
        control_plane: eks.Cluster,
        cluster_name: pulumi.Output[str],
        system: aws.eks.NodeGroup,
        partition: pulumi.Output[str],
    ) -> None:
        """The EBS CSI driver (IRSA), the Kubernetes provider, the gp3 class and the autoscaler."""
        on_aws = pulumi.ResourceOptions(parent=self, provider=aws_provider)
        ebs_role = aws.iam.Role(
            f"{name}-ebs-csi",
            assume_role_policy=irsa_trust(
                control_plane.oidc_provider_arn,
                control_plane.oidc_issuer,
                "kube-system",
                EBS_CSI_SERVICE_ACCOUNT,
            ),
            opts=on_aws,
        )
        ebs_policy = aws.iam.RolePolicyAttachment(
            f"{name}-ebs-csi",
            role=ebs_role.name,
            policy_arn=partition.apply(_managed_policy(EBS_CSI_MANAGED_POLICY)),
            opts=on_aws,
        )
        ebs_csi = aws.eks.Addon(
            f"{name}-ebs-csi",
            cluster_name=cluster_name,
            addon_name="aws-ebs-csi-driver",
            service_account_role_arn=ebs_role.arn,
            resolve_conflicts_on_create="OVERWRITE",
            resolve_conflicts_on_update="PRESERVE",
            opts=pulumi.ResourceOptions(parent=self, provider=aws_provider, depends_on=[system, ebs_policy]),
        )

        # pulumi_eks does not mark its kubeconfig secret; it holds the cluster endpoint and CA.
        self.kubeconfig = pulumi.Output.secret(control_plane.kubeconfig_json)
        self.provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=self.kubeconfig,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[system]),
        )
        k8s.storage.v1.StorageClass(
            f"{name}-gp3",
            metadata={"name": STORAGE_CLASS, "annotations": {DEFAULT_CLASS_ANNOTATION: "true"}},
            provisioner="ebs.csi.aws.com",
            parameters={"type": "gp3", "encrypted": "true", "fsType": "ext4"},
            volume_binding_mode="WaitForFirstConsumer",
            allow_volume_expansion=True,
            reclaim_policy="Delete",
            opts=pulumi.ResourceOptions(parent=self, provider=self.provider, depends_on=[ebs_csi]),
        )
        cluster = IrsaCluster(
            cluster_name=args.cluster_name,
            region=args.region,
            oidc_provider_arn=control_plane.oidc_provider_arn,
            oidc_issuer=control_plane.oidc_issuer,
        )
        on_cluster = pulumi.ResourceOptions(
            parent=self, providers={"aws": aws_provider, "kubernetes": self.provider}
        )
        ClusterAutoscaler(f"{name}-autoscaler", ClusterAutoscalerArgs(cluster=cluster), opts=on_cluster)
        # Spot notices -> SQS -> the termination handler drains the node (adr/0008).
        NodeTerminationHandler(
            f"{name}-nth",
            NodeTerminationHandlerArgs(cluster=cluster, asg_names=self.gpu_asg_names),
            opts=on_cluster,
        )
