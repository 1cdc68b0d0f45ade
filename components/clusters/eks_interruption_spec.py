"""Pure builders of the EKS interruption path: AWS Node Termination Handler in queue mode.

EventBridge rules forward EC2 and Auto Scaling notices about the cluster's instances to one SQS
queue; the handler (one Deployment on the system node group) reads the queue, cordons and drains
the named node, and completes the Auto Scaling lifecycle action. Everything here returns plain
data (policy documents, event patterns, Helm values) so it can be reviewed and unit-tested; the
component (:mod:`components.clusters.eks_interruption`) declares the resources.
See adr/0010-spot-interruption-handling.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from components.clusters.base import NODE_POOL_LABEL
from components.clusters.eks_spec import SYSTEM_NODE_GROUP
from components.clusters.iam import PolicyDocument
from components.clusters.tags import cluster_owned_tag

NTH_NAMESPACE: Final = "kube-system"
NTH_SERVICE_ACCOUNT: Final = "aws-node-termination-handler"
NTH_RELEASE: Final = "aws-node-termination-handler"
MANAGED_TAG: Final = "aws-node-termination-handler/managed"
"""Instance tag the handler requires before it drains a node (propagated from each GPU group's ASG)."""

QUEUE_RETENTION_SECONDS: Final = 300
"""Notices older than five minutes describe instances that are already gone."""
LIFECYCLE_HEARTBEAT_SECONDS: Final = 300
"""How long a terminating instance waits in ``Terminating:Wait`` for the handler to drain it."""
NODE_TERMINATION_GRACE_SECONDS: Final = 120
"""The handler's own deadline for draining a node: a spot warning gives two minutes."""
TERMINATING_TRANSITION: Final = "autoscaling:EC2_INSTANCE_TERMINATING"


@dataclass(frozen=True)
class EventRule:
    """One EventBridge rule feeding the queue.

    Attributes:
        key: Short name (resource-name suffix).
        source: Event source (``aws.ec2``, ``aws.autoscaling``).
        detail_type: The event's ``detail-type``.
        meaning: What the notice means for a node, for humans (the drill prints it).

    """

    key: str
    source: str
    detail_type: str
    meaning: str

    def pattern(self) -> dict[str, list[str]]:
        """The rule's event pattern."""
        return {"source": [self.source], "detail-type": [self.detail_type]}


EVENT_RULES: Final[tuple[EventRule, ...]] = (
    EventRule(
        "spot",
        "aws.ec2",
        "EC2 Spot Instance Interruption Warning",
        "the spot instance is reclaimed in two minutes: cordon and drain now",
    ),
    EventRule(
        "rebalance",
        "aws.ec2",
        "EC2 Instance Rebalance Recommendation",
        "the spot instance is at elevated risk of interruption: cordon and drain early",
    ),
    EventRule(
        "state-change",
        "aws.ec2",
        "EC2 Instance State-change Notification",
        "the instance is stopping or terminating: drain what is left",
    ),
    EventRule(
        "asg-lifecycle",
        "aws.autoscaling",
        "EC2 Instance-terminate Lifecycle Action",
        "the Auto Scaling group terminates the instance (scale-in, rebalancing): drain, then complete the action",
    ),
)
"""The notices the handler acts on, one EventBridge rule each."""


def queue_policy(queue_arn: str) -> PolicyDocument:
    """Queue policy letting EventBridge (and SQS itself) send messages to the interruption queue."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "EventBridgeAndSqsSend",
                "Effect": "Allow",
                "Principal": {"Service": ["events.amazonaws.com", "sqs.amazonaws.com"]},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
            }
        ],
    }


def handler_policy(queue_arn: str, cluster_name: str) -> PolicyDocument:
    """Least-privilege policy of the handler's IRSA role.

    Describe calls cannot be scoped by resource; queue reads are limited to the interruption queue
    and completing lifecycle actions to Auto Scaling groups tagged as owned by this cluster.
    """
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReadQueue",
                "Effect": "Allow",
                "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage"],
                "Resource": queue_arn,
            },
            {
                "Sid": "Describe",
                "Effect": "Allow",
                "Action": [
                    "autoscaling:DescribeAutoScalingInstances",
                    "autoscaling:DescribeTags",
                    "ec2:DescribeInstances",
                    "ec2:DescribeTags",
                ],
                "Resource": "*",
            },
            {
                "Sid": "CompleteOwnLifecycleActions",
                "Effect": "Allow",
                "Action": "autoscaling:CompleteLifecycleAction",
                "Resource": "*",
                "Condition": {
                    "StringEquals": {f"aws:ResourceTag/{cluster_owned_tag(cluster_name)}": "owned"}
                },
            },
        ],
    }


def lifecycle_hook_args(asg_name: Any) -> dict[str, Any]:
    """``aws.autoscaling.LifecycleHook`` arguments holding a terminating instance until it is drained."""
    return {
        "autoscaling_group_name": asg_name,
        "lifecycle_transition": TERMINATING_TRANSITION,
        "heartbeat_timeout": LIFECYCLE_HEARTBEAT_SECONDS,
        # If the handler never answers, terminate anyway: a stuck instance costs money.
        "default_result": "CONTINUE",
    }


def nth_values(*, queue_url: Any, region: str, role_arn: Any) -> dict[str, Any]:
    """Helm values of the aws-node-termination-handler chart in queue-processor mode.

    Args:
        queue_url: URL of the interruption queue (a string or a Pulumi output).
        region: AWS region of the queue.
        role_arn: ARN of the IRSA role (a string or a Pulumi output).

    Returns:
        Values: queue mode (one Deployment), IRSA service account, managed-tag check, pods'
        own grace periods honoured, on the system node group, with requests and limits.

    """
    return {
        "enableSqsTerminationDraining": True,
        "queueURL": queue_url,
        "awsRegion": region,
        "serviceAccount": {
            "create": True,
            "name": NTH_SERVICE_ACCOUNT,
            "annotations": {"eks.amazonaws.com/role-arn": role_arn},
        },
        "checkTagBeforeDraining": True,
        "managedTag": MANAGED_TAG,
        # -1: each pod keeps its own terminationGracePeriodSeconds (training checkpoints in it).
        "podTerminationGracePeriod": -1,
        "nodeTerminationGracePeriod": NODE_TERMINATION_GRACE_SECONDS,
        "deleteLocalData": True,
        "ignoreDaemonSets": True,
        "emitKubernetesEvents": True,
        "nodeSelector": {NODE_POOL_LABEL: SYSTEM_NODE_GROUP},
        "resources": {
            "requests": {"cpu": "50m", "memory": "64Mi"},
            "limits": {"cpu": "200m", "memory": "128Mi"},
        },
        # Added to the chart's own non-root, read-only, no-escalation defaults (values merge).
        "podSecurityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
        "securityContext": {"capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}},
    }
