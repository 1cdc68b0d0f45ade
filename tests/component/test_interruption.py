"""Interruption handling under recording mocks: the EKS queue path and the AKS scheduled-events path."""

from __future__ import annotations

import json
from typing import Any

import pytest

from components.clusters.base import GpuPoolSpec
from components.clusters.eks import EksCluster, EksClusterArgs, EksGpuNodeGroup, EksSystemNodeGroup
from components.clusters.eks_interruption_spec import EVENT_RULES, MANAGED_TAG, NTH_SERVICE_ACCOUNT
from stacks.plan.harness import ProgramRun, Registration, clean, run_program

pytestmark = pytest.mark.timeout(120)


def by_type(run: ProgramRun, type_: str) -> list[Registration]:
    return [r for r in run.registrations if r.type == type_]


def eks_args() -> EksClusterArgs:
    def pool(name: str, model: str) -> GpuPoolSpec:
        return GpuPoolSpec(name, model, 1, 0, 2, spot=True)

    return EksClusterArgs(
        cluster_name="mlp-eks",
        region="us-west-2",
        kubernetes_version="1.33",
        system_node_group=EksSystemNodeGroup(("m6i.large",), 1, 3, 2),
        gpu_node_groups=(
            EksGpuNodeGroup(pool("t4", "T4"), ("g4dn.xlarge", "g4dn.2xlarge")),
            EksGpuNodeGroup(pool("l4", "L4"), ("g6.xlarge", "g6.2xlarge")),
        ),
    )


@pytest.fixture(scope="module")
def eks_run() -> ProgramRun:
    def program() -> None:
        EksCluster("a", eks_args())

    run = run_program(program, stack="eks")
    assert run.unanswered_invokes == []
    return run


def test_queue_receives_every_rule_through_its_policy(eks_run: ProgramRun) -> None:
    (queue,) = by_type(eks_run, "aws:sqs/queue:Queue")
    queue_arn = queue.outputs["arn"]
    (policy,) = by_type(eks_run, "aws:sqs/queuePolicy:QueuePolicy")
    assert clean(policy.inputs)["queueUrl"] == queue.outputs["url"]
    document = json.loads(clean(policy.inputs)["policy"])
    assert document["Statement"][0]["Resource"] == queue_arn
    rules = {r.name: r for r in by_type(eks_run, "aws:cloudwatch/eventRule:EventRule")}
    targets = by_type(eks_run, "aws:cloudwatch/eventTarget:EventTarget")
    assert len(rules) == len(targets) == len(EVENT_RULES)
    patterns = [json.loads(r.inputs["eventPattern"]) for r in rules.values()]
    assert sorted(p["detail-type"][0] for p in patterns) == sorted(r.detail_type for r in EVENT_RULES)
    rule_names = {r.outputs["name"] for r in rules.values()}
    for target in targets:
        assert target.inputs["arn"] == queue_arn
        assert target.inputs["rule"] in rule_names


def test_every_gpu_group_asg_gets_a_terminate_hook_and_the_managed_tag(eks_run: ProgramRun) -> None:
    asgs = {
        r.inputs["labels"]["mlplatform.io/gpu-pool"]: r.outputs["resources"][0]["autoscalingGroups"][0][
            "name"
        ]
        for r in by_type(eks_run, "aws:eks/nodeGroup:NodeGroup")
        if "mlplatform.io/gpu-pool" in r.inputs.get("labels", {})
    }
    assert set(asgs) == {"t4", "l4"}
    hooks = {
        r.inputs["autoscalingGroupName"]: r.inputs
        for r in by_type(eks_run, "aws:autoscaling/lifecycleHook:LifecycleHook")
    }
    assert set(hooks) == set(asgs.values())
    assert all(h["lifecycleTransition"] == "autoscaling:EC2_INSTANCE_TERMINATING" for h in hooks.values())
    managed = [
        r.inputs for r in by_type(eks_run, "aws:autoscaling/tag:Tag") if r.inputs["tag"]["key"] == MANAGED_TAG
    ]
    assert {m["autoscalingGroupName"] for m in managed} == set(asgs.values())
    assert all(m["tag"]["propagateAtLaunch"] is True for m in managed)


def test_handler_release_uses_the_queue_and_its_irsa_role(eks_run: ProgramRun) -> None:
    (queue,) = by_type(eks_run, "aws:sqs/queue:Queue")
    (release,) = [
        r
        for r in by_type(eks_run, "kubernetes:helm.sh/v3:Release")
        if r.inputs["chart"] == "aws-node-termination-handler"
    ]
    values: dict[str, Any] = clean(release.inputs)["values"]
    assert values["queueURL"] == queue.outputs["url"]
    roles = {r.outputs["arn"]: r for r in by_type(eks_run, "aws:iam/role:Role")}
    role = roles[values["serviceAccount"]["annotations"]["eks.amazonaws.com/role-arn"]]
    trust = json.loads(clean(role.inputs)["assumeRolePolicy"])
    subject = next(iter(trust["Statement"][0]["Condition"]["StringEquals"].values()))
    assert subject == f"system:serviceaccount:kube-system:{NTH_SERVICE_ACCOUNT}"
    (policy,) = [p for p in by_type(eks_run, "aws:iam/rolePolicy:RolePolicy") if p.name == "a-nth-irsa"]
    document = json.loads(clean(policy.inputs)["policy"])
    assert document["Statement"][0]["Resource"] == queue.outputs["arn"]


def test_handler_children_are_parented_to_it(eks_run: ProgramRun) -> None:
    (component,) = by_type(eks_run, "mlplatform:clusters:NodeTerminationHandler")
    children = [r for r in eks_run.registrations if r.parent_urn == component.urn]
    assert children and all(r.name.startswith("a-nth") for r in children)


def test_spot_drain_declares_rbac_and_daemonset_children() -> None:
    from components.clusters.aks_interruption import SpotDrain, SpotDrainArgs
    from components.clusters.base import AKS_SPOT_TAINT, GPU_TAINT, POOL_LABEL, GpuPoolInfo

    spot = GpuPoolInfo(
        GpuPoolSpec("t4", "T4", 1, 0, 2, spot=True), {POOL_LABEL: "t4"}, (GPU_TAINT, AKS_SPOT_TAINT)
    )

    def program() -> None:
        SpotDrain("d", SpotDrainArgs(pools=(spot,)))

    run = run_program(program, stack="aks")
    (component,) = by_type(run, "mlplatform:clusters:SpotDrain")
    kinds = {r.type: r for r in run.registrations if r.parent_urn == component.urn}
    assert set(kinds) == {
        "kubernetes:core/v1:ServiceAccount",
        "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole",
        "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding",
        "kubernetes:apps/v1:DaemonSet",
    }
    ds = clean(kinds["kubernetes:apps/v1:DaemonSet"].inputs)
    account = clean(kinds["kubernetes:core/v1:ServiceAccount"].inputs)
    assert ds["spec"]["template"]["spec"]["serviceAccountName"] == account["metadata"]["name"]
    assert ds["metadata"]["namespace"] == account["metadata"]["namespace"]
