"""Typed arguments of ``EksCluster`` and the pure functions that turn them into resource specs.

Free of the AWS SDK so node-group settings (capacity type, instance types, AMI, taints, labels,
scaling from zero, autoscaler tags) and the Cluster Autoscaler values are unit-tested as plain
data. Keys are the pulumi-aws Python argument names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from components.clusters.base import EKS_SPOT_LABEL, NODE_POOL_LABEL, GpuPoolInfo, GpuPoolSpec, Taint
from components.clusters.pools import advertised_gpu_resources, eks_pool_taints, pool_info
from components.clusters.tags import (
    NODE_TEMPLATE_PREFIX,
    autoscaler_node_template_tags,
    node_group_autoscaler_tags,
)
from components.gpu.mig import mig_manager_labels

CapacityType = Literal["SPOT", "ON_DEMAND"]
LogType = Literal["api", "audit", "authenticator", "controllerManager", "scheduler"]
NatGateways = Literal["single", "per-zone"]

ACCELERATOR_LABEL = "k8s.amazonaws.com/accelerator"
"""The label Cluster Autoscaler's AWS provider uses to recognise GPU nodes that are not ready yet."""
SYSTEM_NODE_GROUP = "system"
"""Name (and pool label value) of the on-demand system node group."""
RESERVED_LABEL_PREFIXES = ("eks.amazonaws.com/", "kubernetes.io/", "k8s.io/")
"""Labels EKS sets itself or refuses in a node group's ``labels``."""
SYSTEM_AMI_TYPE = "AL2023_x86_64_STANDARD"
AUTOSCALER_NAMESPACE = "kube-system"
AUTOSCALER_SERVICE_ACCOUNT = "cluster-autoscaler"
EBS_CSI_SERVICE_ACCOUNT = "ebs-csi-controller-sa"

_TAINT_EFFECTS = {
    "NoSchedule": "NO_SCHEDULE",
    "PreferNoSchedule": "PREFER_NO_SCHEDULE",
    "NoExecute": "NO_EXECUTE",
}


@dataclass(frozen=True)
class EksSystemNodeGroup:
    """The on-demand node group for system and platform pods (untainted).

    Attributes:
        instance_types: EC2 instance types.
        min_size: Minimum nodes.
        max_size: Maximum nodes.
        desired_size: Initial nodes (the autoscaler owns it afterwards).
        disk_size_gb: Root volume size.

    """

    instance_types: tuple[str, ...]
    min_size: int
    max_size: int
    desired_size: int
    disk_size_gb: int = 50


@dataclass(frozen=True)
class EksGpuNodeGroup:
    """One EKS GPU managed node group.

    Attributes:
        spec: The cloud-independent pool description (name, GPU model, counts, spot, sharing).
        instance_types: Instance types with the same GPU model; several give spot diversity.
        ami_type: EKS AMI type with the NVIDIA driver.
        disk_size_gb: Root volume size (CUDA images are large).

    """

    spec: GpuPoolSpec
    instance_types: tuple[str, ...]
    ami_type: str = "AL2023_x86_64_NVIDIA"
    disk_size_gb: int = 100

    @property
    def capacity_type(self) -> CapacityType:
        """``SPOT`` or ``ON_DEMAND``."""
        return "SPOT" if self.spec.spot else "ON_DEMAND"


@dataclass(frozen=True)
class EksClusterArgs:
    """Everything ``EksCluster`` needs.

    Attributes:
        cluster_name: EKS cluster name (autoscaler tags and IAM conditions spell it).
        region: AWS region; the component uses its own AWS provider for it.
        kubernetes_version: Kubernetes minor version, e.g. ``1.33``.
        system_node_group: On-demand node group for system and platform pods.
        gpu_node_groups: GPU managed node groups.
        vpc_cidr: VPC CIDR, split by ``network.subnet_layout``.
        availability_zone_count: Zones to spread subnets and nodes over.
        nat_gateways: One NAT gateway for the VPC (cheaper) or one per zone (zone-resilient).
        endpoint_public_access: Public API endpoint.
        endpoint_private_access: Private API endpoint inside the VPC.
        public_access_cidrs: CIDRs allowed to reach the public endpoint.
        enabled_log_types: Control-plane log types sent to CloudWatch.
        log_retention_days: Retention of the control-plane log group.
        tags: Tags on every AWS resource (provider default tags).

    """

    cluster_name: str
    region: str
    kubernetes_version: str
    system_node_group: EksSystemNodeGroup
    gpu_node_groups: tuple[EksGpuNodeGroup, ...] = ()
    vpc_cidr: str = "10.0.0.0/16"
    availability_zone_count: int = 3
    nat_gateways: NatGateways = "single"
    endpoint_public_access: bool = True
    endpoint_private_access: bool = True
    public_access_cidrs: tuple[str, ...] = ()
    enabled_log_types: tuple[LogType, ...] = ("api", "audit", "authenticator")
    log_retention_days: int = 30
    tags: Mapping[str, str] = field(default_factory=dict)


def accelerator_label_value(gpu_model: str) -> str:
    """Value of ``k8s.amazonaws.com/accelerator`` for a GPU model (``T4`` -> ``nvidia-t4``)."""
    return f"nvidia-{gpu_model.lower()}"


def eks_taint(taint: Taint) -> dict[str, str]:
    """A taint in the EKS node-group API form (``NoSchedule`` -> ``NO_SCHEDULE``)."""
    return {"key": taint.key, "value": taint.value, "effect": _TAINT_EFFECTS[taint.effect]}


def gpu_pool_info(group: EksGpuNodeGroup) -> GpuPoolInfo:
    """Labels and taints the nodes of an EKS GPU node group carry (EKS's own labels included)."""
    cloud_labels: dict[str, str] = {EKS_SPOT_LABEL: group.capacity_type}
    if group.spec.gpu_count:
        cloud_labels[ACCELERATOR_LABEL] = accelerator_label_value(group.spec.gpu_model)
    cloud_labels.update(mig_manager_labels(group.spec))
    return pool_info(group.spec, eks_pool_taints(group.spec), cloud_labels)


def settable_labels(labels: Mapping[str, str]) -> dict[str, str]:
    """The labels a node group may set itself (EKS adds ``eks.amazonaws.com/*`` on its own)."""
    return {k: v for k, v in labels.items() if not k.startswith(RESERVED_LABEL_PREFIXES)}


def gpu_node_group_autoscaler_tags(group: EksGpuNodeGroup, cluster_name: str) -> dict[str, str]:
    """Discovery and node-template tags of a GPU node group (scale from zero)."""
    info = gpu_pool_info(group)
    return node_group_autoscaler_tags(
        cluster_name, info.labels, info.taints, advertised_gpu_resources(group.spec)
    )


def asg_node_template_tags(group: EksGpuNodeGroup) -> dict[str, str]:
    """Node-template tags that must be copied to the group's Auto Scaling group.

    EKS tags a managed group's ASG with the discovery tags itself but does not copy node-group
    tags to it, and Cluster Autoscaler reads templates from the ASG.
    """
    info = gpu_pool_info(group)
    return autoscaler_node_template_tags(info.labels, info.taints, advertised_gpu_resources(group.spec))


def gpu_node_group_spec(
    group: EksGpuNodeGroup, *, cluster_name: str, kubernetes_version: str
) -> dict[str, Any]:
    """A GPU managed node group as ``aws.eks.NodeGroup`` arguments (without cluster, role, subnets).

    ``desired_size`` starts at ``min_size`` (0 scales from zero); the component ignores later
    changes to it so that ``pulumi up`` does not undo the autoscaler.
    """
    spec = group.spec
    info = gpu_pool_info(group)
    return {
        "capacity_type": group.capacity_type,
        "instance_types": list(group.instance_types),
        "ami_type": group.ami_type,
        "disk_size": group.disk_size_gb,
        "version": kubernetes_version,
        "scaling_config": {
            "min_size": spec.min_count,
            "max_size": spec.max_count,
            "desired_size": spec.min_count,
        },
        "labels": settable_labels(info.labels),
        "taints": [eks_taint(t) for t in info.taints],
        "update_config": {"max_unavailable": 1},
        "node_repair_config": {"enabled": True},
        "tags": gpu_node_group_autoscaler_tags(group, cluster_name),
    }


def system_node_group_spec(group: EksSystemNodeGroup, *, kubernetes_version: str) -> dict[str, Any]:
    """The on-demand system node group as ``aws.eks.NodeGroup`` arguments (without cluster, role, subnets)."""
    return {
        "capacity_type": "ON_DEMAND",
        "instance_types": list(group.instance_types),
        "ami_type": SYSTEM_AMI_TYPE,
        "disk_size": group.disk_size_gb,
        "version": kubernetes_version,
        "scaling_config": {
            "min_size": group.min_size,
            "max_size": group.max_size,
            "desired_size": group.desired_size,
        },
        "labels": {NODE_POOL_LABEL: SYSTEM_NODE_GROUP},
        "update_config": {"max_unavailable": 1},
    }


def tag_resource_suffix(tag_key: str) -> str:
    """A short, name-safe suffix for the resource that applies one node-template tag."""
    short = tag_key.removeprefix(f"{NODE_TEMPLATE_PREFIX}/")
    return re.sub(r"[^a-z0-9]+", "-", short.lower()).strip("-")


def tag_resource_suffixes(tag_keys: Sequence[str]) -> dict[str, str]:
    """Suffix per tag key, raising ``ValueError`` if two keys would give the same resource name."""
    suffixes: dict[str, str] = {}
    seen: dict[str, str] = {}
    for key in tag_keys:
        suffix = tag_resource_suffix(key)
        if suffix in seen:
            raise ValueError(f"tags '{seen[suffix]}' and '{key}' map to the same resource name")
        seen[suffix] = key
        suffixes[key] = suffix
    return suffixes


def cluster_autoscaler_values(*, cluster_name: str, region: str, role_arn: Any) -> dict[str, Any]:
    """Helm values of the Cluster Autoscaler chart for an EKS cluster.

    Args:
        cluster_name: The EKS cluster (auto-discovery finds its tagged node groups).
        region: AWS region.
        role_arn: ARN of the IRSA role (a string or a Pulumi output).

    Returns:
        Values: auto-discovery by tags, IRSA service account, ``least-waste`` expander,
        ``--balance-similar-node-groups`` and scale-down settings suited to GPU nodes.

    """
    return {
        "cloudProvider": "aws",
        "awsRegion": region,
        "autoDiscovery": {"clusterName": cluster_name},
        "rbac": {
            "serviceAccount": {
                "create": True,
                "name": AUTOSCALER_SERVICE_ACCOUNT,
                "annotations": {"eks.amazonaws.com/role-arn": role_arn},
            }
        },
        "extraArgs": {
            "expander": "least-waste",
            "balance-similar-node-groups": True,
            "skip-nodes-with-system-pods": False,
            "skip-nodes-with-local-storage": False,
            "scale-down-unneeded-time": "10m",
            "scale-down-delay-after-add": "5m",
            "max-node-provision-time": "15m",
        },
        "priorityClassName": "system-cluster-critical",
        "nodeSelector": {NODE_POOL_LABEL: SYSTEM_NODE_GROUP},
    }
