"""Namespace security documents: Pod Security labels and NetworkPolicies, and restricted contexts."""

from __future__ import annotations

from pathlib import Path

import pytest

from components.security import (
    NAMESPACE_NAME_LABEL,
    IngressAllow,
    container_security,
    namespace_labels,
    network_policy_documents,
    pod_security,
)
from stacks.plan.validate import Validator


def test_namespace_labels_enforce_audit_and_warn_one_level() -> None:
    labels = namespace_labels("baseline", {"team": "ml"})
    assert {labels[f"pod-security.kubernetes.io/{m}"] for m in ("enforce", "audit", "warn")} == {"baseline"}
    assert labels["team"] == "ml"
    with pytest.raises(ValueError, match="restricted, baseline or privileged"):
        namespace_labels("strict")  # type: ignore[arg-type]


def test_default_deny_then_same_namespace_monitoring_and_allows() -> None:
    allows = (
        IngressAllow("s3", ports=(9000,), from_namespaces=("mlflow", "kubeflow")),
        IngressAllow("webhook", ports=(9443,), pod_selector={"app": "ctl"}, from_anywhere=True),
    )
    docs = network_policy_documents("mlp-data", allows)
    by_name = {d["metadata"]["name"]: d for d in docs}
    assert list(by_name) == [
        "default-deny-ingress",
        "allow-same-namespace",
        "allow-monitoring",
        "allow-s3",
        "allow-webhook",
    ]
    deny = by_name["default-deny-ingress"]["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress"]}  # no ingress rule: deny all
    s3 = by_name["allow-s3"]["spec"]["ingress"][0]
    assert s3["ports"] == [{"protocol": "TCP", "port": 9000}]
    assert [p["namespaceSelector"]["matchLabels"][NAMESPACE_NAME_LABEL] for p in s3["from"]] == [
        "kubeflow",
        "mlflow",
    ]
    hook = by_name["allow-webhook"]["spec"]
    assert hook["podSelector"] == {"matchLabels": {"app": "ctl"}}
    assert {"ipBlock": {"cidr": "0.0.0.0/0"}} in hook["ingress"][0]["from"]
    assert all(d["metadata"]["namespace"] == "mlp-data" for d in docs)


def test_monitoring_namespace_gets_no_self_allow_and_can_be_off() -> None:
    names = [d["metadata"]["name"] for d in network_policy_documents("monitoring")]
    assert names == ["default-deny-ingress", "allow-same-namespace"]
    names = [d["metadata"]["name"] for d in network_policy_documents("x", monitoring_namespace=None)]
    assert "allow-monitoring" not in names


def test_allows_must_name_a_peer_and_be_unique() -> None:
    with pytest.raises(ValueError, match="names no peer"):
        IngressAllow("nobody", ports=(80,))
    twice = (IngressAllow("a", from_namespaces=("x",)), IngressAllow("a", from_namespaces=("y",)))
    with pytest.raises(ValueError, match="duplicate"):
        network_policy_documents("ns", twice)


def test_policies_validate_against_the_kubernetes_schema(tmp_path: Path) -> None:
    allows = (IngressAllow("pods", ports=(80,), from_namespaces=("a",), from_pod_labels={"role": "client"}),)
    validator = Validator("1.33", None)
    for doc in network_policy_documents("ns", allows):
        result = validator.validate(doc)
        assert result.status == "valid", result.errors


def test_restricted_contexts() -> None:
    ctx = container_security(run_as_user=1000)
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["capabilities"] == {"drop": ["ALL"]}
    assert ctx["readOnlyRootFilesystem"] is True and ctx["runAsUser"] == 1000
    assert container_security(read_only_root=False)["readOnlyRootFilesystem"] is False
    ctx["capabilities"]["drop"].append("X")  # fresh dicts: callers cannot change the defaults
    assert container_security()["capabilities"] == {"drop": ["ALL"]}
    assert pod_security(fs_group=2000) == {
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
        "fsGroup": 2000,
    }
