"""Every policy rule with a violating and a passing fixture, plus waivers and the rule catalogue."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from policy import rules
from policy.offline import WaiverFileError, load_waivers
from policy.rules import RULES, PolicyConfig, Waiver, evaluate


def res(rtype: str, inputs: dict[str, Any], name: str = "r") -> dict[str, Any]:
    return {"type": rtype, "name": name, "inputs": inputs}


def k8s(kind: str, spec: dict[str, Any], namespace: str = "apps", **extra: Any) -> dict[str, Any]:
    group = {"Deployment": "apps/v1", "DaemonSet": "apps/v1", "Secret": "core/v1", "Service": "core/v1"}
    inputs = {"kind": kind, "metadata": {"name": "x", "namespace": namespace}, "spec": spec, **extra}
    return res(f"kubernetes:{group.get(kind, 'core/v1')}:{kind}", inputs)


def pod(*containers: dict[str, Any], tolerations: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"template": {"spec": {"containers": list(containers), "tolerations": tolerations or []}}}


GPU_CONTAINER = {"name": "train", "image": "repo/train:1.0", "resources": {"limits": {"nvidia.com/gpu": 1}}}
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
SPOT_TAINT = "kubernetes.azure.com/scalesetpriority=spot:NoSchedule"
AKS_GPU_POOL = res(
    "azure-native:containerservice:AgentPool",
    {"nodeTaints": ["nvidia.com/gpu=present:NoSchedule", SPOT_TAINT], "minCount": 0, "mode": "User"},
    "gpu",
)
EKS = "eks:index:Cluster"
AKS = "azure-native:containerservice:ManagedCluster"
RELEASE = "kubernetes:helm.sh/v3:Release"
GOOD_EKS = {
    "endpointPublicAccess": True,
    "publicAccessCidrs": ["203.0.113.0/24"],
    "encryptionConfigKeyArn": "arn:aws:kms:k",
    "enabledClusterLogTypes": ["api", "audit", "authenticator"],
}
GOOD_AKS = {
    "apiServerAccessProfile": {"authorizedIPRanges": ["203.0.113.0/24"]},
    "disableLocalAccounts": True,
    "aadProfile": {"managed": True, "enableAzureRBAC": True},
    "agentPoolProfiles": [{"name": "system", "mode": "System", "scaleSetPriority": "Regular"}],
}

# rule name -> (violating resources, passing resources)
CASES: dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]] = {
    "eks-endpoint-not-public": (
        [res(EKS, {**GOOD_EKS, "publicAccessCidrs": []})],
        [res(EKS, GOOD_EKS), res(EKS, {**GOOD_EKS, "endpointPublicAccess": False, "publicAccessCidrs": []})],
    ),
    "eks-secrets-encryption": (
        [res(EKS, {**GOOD_EKS, "encryptionConfigKeyArn": None})],
        [res(EKS, GOOD_EKS)],
    ),
    "eks-control-plane-logging": (
        [res(EKS, {**GOOD_EKS, "enabledClusterLogTypes": ["api"]})],
        [res(EKS, GOOD_EKS)],
    ),
    "aks-authorized-ip-ranges": (
        [res(AKS, {**GOOD_AKS, "apiServerAccessProfile": {"authorizedIPRanges": ["0.0.0.0/0"]}})],
        [
            res(AKS, GOOD_AKS),
            res(AKS, {**GOOD_AKS, "apiServerAccessProfile": {"enablePrivateCluster": True}}),
        ],
    ),
    "aks-entra-rbac-no-local-accounts": (
        [res(AKS, {**GOOD_AKS, "disableLocalAccounts": False})],
        [res(AKS, GOOD_AKS)],
    ),
    "aks-system-pool-not-spot": (
        [
            res(
                AKS,
                {
                    **GOOD_AKS,
                    "agentPoolProfiles": [{"name": "s", "mode": "System", "scaleSetPriority": "Spot"}],
                },
            ),
            res("azure-native:containerservice:AgentPool", {"mode": "System", "scaleSetPriority": "Spot"}),
        ],
        [res(AKS, GOOD_AKS), AKS_GPU_POOL],
    ),
    "gpu-pods-tolerate-pool-taints": (
        [
            AKS_GPU_POOL,
            k8s("Deployment", pod(GPU_CONTAINER, tolerations=[GPU_TOLERATION])),  # lacks the spot taint
        ],
        [
            AKS_GPU_POOL,
            k8s(
                "Deployment",
                pod(
                    GPU_CONTAINER,
                    tolerations=[
                        GPU_TOLERATION,
                        {
                            "key": "kubernetes.azure.com/scalesetpriority",
                            "value": "spot",
                            "effect": "NoSchedule",
                        },
                    ],
                ),
            ),
            k8s("Deployment", pod({"name": "cpu", "image": "a/b:1"})),  # no GPU: no toleration needed
        ],
    ),
    "no-privileged-outside-gpu-namespaces": (
        [
            k8s("DaemonSet", pod({"name": "p", "image": "a/b:1", "securityContext": {"privileged": True}})),
            res(
                RELEASE,
                {"chart": "x", "version": "1", "namespace": "apps", "values": {"sc": {"privileged": True}}},
            ),
        ],
        [
            k8s(
                "DaemonSet",
                pod({"name": "p", "image": "a/b:1", "securityContext": {"privileged": True}}),
                namespace="gpu-operator",
            ),
            k8s("DaemonSet", pod({"name": "p", "image": "a/b:1", "securityContext": {"privileged": False}})),
        ],
    ),
    "images-and-charts-pinned": (
        [
            k8s("Deployment", pod({"name": "a", "image": "repo/app:latest"})),
            k8s("Deployment", pod({"name": "a", "image": "repo/app"})),
            res(RELEASE, {"chart": "minio", "version": "^5.0", "values": {}}),
            res(RELEASE, {"chart": "minio", "version": "5.4.0", "values": {"job": {"image": "mc"}}}),
        ],
        [
            k8s("Deployment", pod({"name": "a", "image": "registry:5000/app:1.2"})),
            k8s("Deployment", pod({"name": "a", "image": "repo/app@sha256:abc"})),
            res(RELEASE, {"chart": "minio", "version": "5.4.0", "values": {"job": {"image": "mc:1"}}}),
        ],
    ),
    "data-services-not-public": (
        [
            res(
                RELEASE,
                {"chart": "minio", "version": "5.4.0", "values": {"service": {"type": "LoadBalancer"}}},
            ),
            k8s("Service", {"type": "LoadBalancer", "ports": [{"port": 6333}]}),
        ],
        [
            res(
                RELEASE, {"chart": "minio", "version": "5.4.0", "values": {"service": {"type": "ClusterIP"}}}
            ),
            res(
                RELEASE,
                {
                    "chart": "oci://r/qdrant",
                    "version": "1",
                    "values": {
                        "service": {
                            "type": "LoadBalancer",
                            "annotations": {
                                "service.beta.kubernetes.io/azure-load-balancer-internal": "true"
                            },
                        }
                    },
                },
            ),
            k8s("Service", {"type": "LoadBalancer", "ports": [{"port": 443}]}),  # not a data port
        ],
    ),
    "secrets-generated": (
        [k8s("Secret", {}, stringData={"password": "hunter2hunter2"})],
        [k8s("Secret", {}, stringData={"password": "[secret]"}), k8s("Secret", {}, data="[secret]")],
    ),
    "gpu-pool-scales-from-zero": (
        [res("azure-native:containerservice:AgentPool", {**AKS_GPU_POOL["inputs"], "minCount": 1})],
        [AKS_GPU_POOL, res("aws:eks/nodeGroup:NodeGroup", {"scalingConfig": {"minSize": 2}})],  # CPU group
    ),
}


def test_every_rule_has_fixtures() -> None:
    assert {rule.name for rule in RULES} == set(CASES)


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.name)
def test_rule_flags_the_violating_fixture(rule: rules.Rule) -> None:
    bad, _ = CASES[rule.name]
    report = evaluate(bad, rules=[rule])
    assert report.violations, f"{rule.name} missed its violating fixture"
    assert {v.rule for v in report.violations} == {rule.name}
    assert {v.enforcement for v in report.violations} == {rule.enforcement}


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.name)
def test_rule_passes_the_compliant_fixture(rule: rules.Rule) -> None:
    _, good = CASES[rule.name]
    assert evaluate(good, rules=[rule]).violations == []


def test_rule_counts_mandatory_and_advisory() -> None:
    kinds = [rule.enforcement for rule in RULES]
    assert kinds.count("advisory") == 1 and kinds.count("mandatory") == len(RULES) - 1
    assert all(rule.description for rule in RULES)


def test_public_api_server_allowed_only_when_config_opts_in() -> None:
    open_eks = [res(EKS, {**GOOD_EKS, "publicAccessCidrs": ["0.0.0.0/0"]})]
    assert evaluate(open_eks).mandatory
    assert not evaluate(open_eks, PolicyConfig(allow_public_api_server=True)).mandatory


def test_waiver_moves_a_violation_aside_for_its_stacks_only() -> None:
    bad = [res(AKS, {**GOOD_AKS, "disableLocalAccounts": False})]
    waiver = Waiver("aks-entra-rbac-no-local-accounts", ("aks",), "kubelogin not set up")
    waived = evaluate(bad, stack="aks", waivers=[waiver])
    assert waived.mandatory == [] and len(waived.waived) == 1
    assert evaluate(bad, stack="other", waivers=[waiver]).mandatory


def test_waivers_file_entries_need_a_reason(tmp_path: Path) -> None:
    assert all(w.reason.strip() for w in load_waivers())  # the shipped file
    bad = tmp_path / "waivers.yaml"
    bad.write_text("waivers:\n  - rule: x\n    stacks: [aks]\n")
    with pytest.raises(WaiverFileError, match=r"waivers\[0\] needs rule, stacks and a reason"):
        load_waivers(bad)
    bad.write_text("waivers: [\n")
    with pytest.raises(WaiverFileError, match="not valid YAML"):
        load_waivers(bad)
