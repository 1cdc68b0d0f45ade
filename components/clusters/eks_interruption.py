"""``NodeTerminationHandler``: spot interruptions on EKS drained before the instance goes.

Children, all parented to the component and named after it:

* an SQS queue (SSE, five-minute retention) and its queue policy for EventBridge;
* one EventBridge rule and target per notice in :data:`EVENT_RULES` (spot interruption warning,
  rebalance recommendation, instance state change, ASG terminate lifecycle action);
* per GPU node group: a terminate lifecycle hook on its Auto Scaling group and the handler's
  managed tag on it (propagated to the instances the handler may drain);
* an IRSA role with :func:`handler_policy`;
* the pinned aws-node-termination-handler chart in queue-processor mode on the system node group.

See adr/0010-spot-interruption-handling.md for why this and not Karpenter's interruption queue.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components.clusters.eks_interruption_spec import (
    EVENT_RULES,
    MANAGED_TAG,
    NTH_NAMESPACE,
    NTH_RELEASE,
    NTH_SERVICE_ACCOUNT,
    QUEUE_RETENTION_SECONDS,
    handler_policy,
    lifecycle_hook_args,
    nth_values,
    queue_policy,
)
from components.clusters.irsa import IrsaCluster
from components.helm import pinned_release
from components.versions import CHARTS, ChartPin


@dataclass(frozen=True)
class NodeTerminationHandlerArgs:
    """Arguments of ``NodeTerminationHandler``.

    Attributes:
        cluster: The EKS cluster (lifecycle actions are limited to its groups) and its OIDC provider.
        asg_names: Auto Scaling group name of each GPU node group, by pool name.
        chart: The pinned chart.

    """

    cluster: IrsaCluster
    asg_names: Mapping[str, pulumi.Input[str]]
    chart: ChartPin = field(default_factory=lambda: CHARTS["aws-node-termination-handler"])


class NodeTerminationHandler(pulumi.ComponentResource):
    """The AWS Node Termination Handler in queue mode, with its queue, rules, hooks and IRSA role.

    Give it the cluster's ``aws`` and ``kubernetes`` providers through ``opts.providers``.

    Attributes:
        queue_url: The interruption queue.
        queue_arn: Its ARN.
        role_arn: The handler's IRSA role.
        release_name: The Helm release.

    """

    queue_url: pulumi.Output[str]
    queue_arn: pulumi.Output[str]
    role_arn: pulumi.Output[str]
    release_name: pulumi.Output[str | None]

    def __init__(
        self, name: str, args: NodeTerminationHandlerArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlplatform:clusters:NodeTerminationHandler", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        cluster_name = args.cluster.cluster_name
        queue = aws.sqs.Queue(
            f"{name}-queue",
            message_retention_seconds=QUEUE_RETENTION_SECONDS,
            sqs_managed_sse_enabled=True,
            opts=child,
        )
        aws.sqs.QueuePolicy(
            f"{name}-queue",
            queue_url=queue.url,
            policy=queue.arn.apply(lambda arn: json.dumps(queue_policy(arn))),
            opts=child,
        )
        for rule in EVENT_RULES:
            event_rule = aws.cloudwatch.EventRule(
                f"{name}-{rule.key}",
                description=f"{rule.detail_type} -> {cluster_name} interruption queue",
                event_pattern=json.dumps(rule.pattern()),
                opts=child,
            )
            aws.cloudwatch.EventTarget(
                f"{name}-{rule.key}",
                rule=event_rule.name,
                arn=queue.arn,
                opts=child,
            )
        for pool, asg_name in sorted(args.asg_names.items()):
            aws.autoscaling.LifecycleHook(
                f"{name}-{pool}-terminate",
                name=f"{cluster_name}-{pool}-nth-terminate",
                **lifecycle_hook_args(asg_name),
                opts=child,
            )
            aws.autoscaling.Tag(
                f"{name}-{pool}-managed",
                autoscaling_group_name=asg_name,
                tag={"key": MANAGED_TAG, "value": "true", "propagate_at_launch": True},
                opts=child,
            )
        role = args.cluster.role(
            f"{name}-irsa",
            namespace=NTH_NAMESPACE,
            service_account=NTH_SERVICE_ACCOUNT,
            policy=queue.arn.apply(lambda arn: json.dumps(handler_policy(arn, cluster_name))),
            opts=child,
        )
        release = pinned_release(
            name,
            args.chart,
            release_name=NTH_RELEASE,
            namespace=NTH_NAMESPACE,
            values=nth_values(queue_url=queue.url, region=args.cluster.region, role_arn=role.arn),
            opts=child,
        )
        self.queue_url = queue.url
        self.queue_arn = queue.arn
        self.role_arn = role.arn
        self.release_name = release.name
        self.register_outputs(
            {
                "queue_url": self.queue_url,
                "queue_arn": self.queue_arn,
                "role_arn": self.role_arn,
                "release_name": self.release_name,
            }
        )
