"""EKS interruption path: queue policy, handler policy, event patterns and chart values."""

from __future__ import annotations

from components.clusters.base import NODE_POOL_LABEL
from components.clusters.eks_interruption_spec import (
    EVENT_RULES,
    MANAGED_TAG,
    handler_policy,
    lifecycle_hook_args,
    nth_values,
    queue_policy,
)
from components.clusters.iam import irsa_trust_policy

QUEUE_ARN = "arn:aws:sqs:us-west-2:123456789012:q"


def test_rules_cover_the_four_notices_the_handler_reads() -> None:
    detail_types = {rule.detail_type for rule in EVENT_RULES}
    assert detail_types == {
        "EC2 Spot Instance Interruption Warning",
        "EC2 Instance Rebalance Recommendation",
        "EC2 Instance State-change Notification",
        "EC2 Instance-terminate Lifecycle Action",
    }
    for rule in EVENT_RULES:
        assert rule.pattern() == {"source": [rule.source], "detail-type": [rule.detail_type]}
    assert {r.source for r in EVENT_RULES if "Lifecycle" in r.detail_type} == {"aws.autoscaling"}
    assert len({rule.key for rule in EVENT_RULES}) == len(EVENT_RULES)


def test_queue_policy_lets_only_eventbridge_and_sqs_send() -> None:
    (statement,) = queue_policy(QUEUE_ARN)["Statement"]
    assert statement["Principal"] == {"Service": ["events.amazonaws.com", "sqs.amazonaws.com"]}
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Resource"] == QUEUE_ARN


def test_handler_policy_reads_only_its_queue_and_completes_only_own_groups() -> None:
    statements = {s["Sid"]: s for s in handler_policy(QUEUE_ARN, "mlp-eks")["Statement"]}
    assert statements["ReadQueue"]["Resource"] == QUEUE_ARN
    assert set(statements["ReadQueue"]["Action"]) == {"sqs:ReceiveMessage", "sqs:DeleteMessage"}
    assert "ec2:DescribeInstances" in statements["Describe"]["Action"]
    assert "autoscaling:DescribeAutoScalingInstances" in statements["Describe"]["Action"]
    complete = statements["CompleteOwnLifecycleActions"]
    assert complete["Action"] == "autoscaling:CompleteLifecycleAction"
    assert complete["Condition"]["StringEquals"] == {
        "aws:ResourceTag/k8s.io/cluster-autoscaler/mlp-eks": "owned"
    }
    actions = [
        a
        for s in statements.values()
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    ]
    assert not any(a.endswith("*") for a in actions)


def test_lifecycle_hook_holds_terminating_instances_and_continues_on_timeout() -> None:
    args = lifecycle_hook_args("asg-1")
    assert args["lifecycle_transition"] == "autoscaling:EC2_INSTANCE_TERMINATING"
    assert args["default_result"] == "CONTINUE"
    assert args["autoscaling_group_name"] == "asg-1"
    assert 0 < args["heartbeat_timeout"] <= 7200


def test_values_select_queue_mode_on_the_system_group() -> None:
    values = nth_values(queue_url="https://q", region="us-west-2", role_arn="arn:role")
    assert values["enableSqsTerminationDraining"] is True
    assert values["queueURL"] == "https://q"
    assert values["serviceAccount"]["annotations"] == {"eks.amazonaws.com/role-arn": "arn:role"}
    assert values["nodeSelector"] == {NODE_POOL_LABEL: "system"}
    assert values["managedTag"] == MANAGED_TAG
    assert values["podTerminationGracePeriod"] == -1
    assert "tolerations" not in values


def test_service_account_matches_the_irsa_trust() -> None:
    values = nth_values(queue_url="q", region="r", role_arn="a")
    trust = irsa_trust_policy(
        "arn:oidc", "oidc.example/id/X", "kube-system", values["serviceAccount"]["name"]
    )
    cond = trust["Statement"][0]["Condition"]["StringEquals"]
    assert cond["oidc.example/id/X:sub"] == "system:serviceaccount:kube-system:aws-node-termination-handler"
