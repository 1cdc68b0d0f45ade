"""AWS tag math: cluster-autoscaler discovery and scale-from-zero templates, subnet roles.

Cluster Autoscaler cannot look at a node of a group that has none, so when a GPU node group sits
at zero it learns what a new node would look like from tags on the group's Auto Scaling group:
``k8s.io/cluster-autoscaler/node-template/{label,taint,resources}/<key>``. Without them a pending
pod that selects ``mlplatform.io/gpu-pool`` or asks for ``nvidia.com/gpu`` never triggers a scale
up. These functions only compute tag maps; the EKS component applies them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from components.clusters.base import Taint

CA_TAG_PREFIX = "k8s.io/cluster-autoscaler"
CA_ENABLED_TAG = f"{CA_TAG_PREFIX}/enabled"
NODE_TEMPLATE_PREFIX = f"{CA_TAG_PREFIX}/node-template"

AWS_TAG_KEY_MAX = 128
AWS_TAG_VALUE_MAX = 256

ELB_ROLE_TAG = "kubernetes.io/role/elb"
INTERNAL_ELB_ROLE_TAG = "kubernetes.io/role/internal-elb"


def cluster_owned_tag(cluster_name: str) -> str:
    """The per-cluster discovery tag key (``k8s.io/cluster-autoscaler/<cluster>``)."""
    return f"{CA_TAG_PREFIX}/{cluster_name}"


def autoscaler_discovery_tags(cluster_name: str) -> dict[str, str]:
    """Tags by which Cluster Autoscaler's auto-discovery finds a cluster's node groups."""
    return {CA_ENABLED_TAG: "true", cluster_owned_tag(cluster_name): "owned"}


def autoscaler_node_template_tags(
    labels: Mapping[str, str],
    taints: Iterable[Taint],
    resources: Mapping[str, int],
) -> dict[str, str]:
    """Node-template tags describing a node of a group that currently has none.

    Args:
        labels: Labels every node of the group carries.
        taints: Taints every node of the group carries.
        resources: Extended resources a node advertises once ready, e.g. ``{"nvidia.com/gpu": 1}``.

    Returns:
        Tag key -> value, with taints written as ``value:Effect``.

    Raises:
        ValueError: When two taints share a key (one tag cannot hold both) or a tag breaks AWS limits.

    """
    tags: dict[str, str] = {}
    for key, value in labels.items():
        tags[f"{NODE_TEMPLATE_PREFIX}/label/{key}"] = value
    for taint in taints:
        tag = f"{NODE_TEMPLATE_PREFIX}/taint/{taint.key}"
        if tag in tags:
            raise ValueError(f"two taints with key '{taint.key}': a node-template tag holds only one")
        tags[tag] = f"{taint.value}:{taint.effect}"
    for name, count in resources.items():
        tags[f"{NODE_TEMPLATE_PREFIX}/resources/{name}"] = str(count)
    check_aws_tags(tags)
    return tags


def node_group_autoscaler_tags(
    cluster_name: str,
    labels: Mapping[str, str],
    taints: Iterable[Taint],
    resources: Mapping[str, int],
) -> dict[str, str]:
    """Discovery plus node-template tags for one scale-from-zero node group."""
    tags = autoscaler_discovery_tags(cluster_name)
    tags.update(autoscaler_node_template_tags(labels, taints, resources))
    return tags


def subnet_tags(cluster_name: str, *, public: bool) -> dict[str, str]:
    """Tags that let Kubernetes load balancers pick the right subnets of a cluster."""
    role = ELB_ROLE_TAG if public else INTERNAL_ELB_ROLE_TAG
    return {role: "1", f"kubernetes.io/cluster/{cluster_name}": "shared"}


def check_aws_tags(tags: Mapping[str, str]) -> None:
    """Raise ``ValueError`` naming every tag that breaks AWS key/value length limits."""
    problems = [
        f"key '{key}' is {len(key)} characters (max {AWS_TAG_KEY_MAX})"
        for key in tags
        if len(key) > AWS_TAG_KEY_MAX
    ]
    problems += [
        f"value of '{key}' is {len(value)} characters (max {AWS_TAG_VALUE_MAX})"
        for key, value in tags.items()
        if len(value) > AWS_TAG_VALUE_MAX
    ]
    if problems:
        raise ValueError("AWS tag limits: " + "; ".join(problems) + ". Shorten the label or taint")


def merge_tags(*maps: Mapping[str, str] | None) -> dict[str, str]:
    """Merge tag maps left to right (later maps win), skipping ``None``."""
    merged: dict[str, str] = {}
    for tags in maps:
        if tags:
            merged.update(tags)
    return merged
