"""Plan-tier checks of the policy work: chart check, policy pack, namespace security, determinism."""

from __future__ import annotations

import filecmp
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.security import GPU_SYSTEM_NAMESPACES, PSA_PREFIX, privileged_allowed
from stacks.plan.plan import StackPlan, plan_stack

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

STACKS = ("dev", "aks", "eks")


@pytest.fixture(scope="module")
def twice(tmp_path_factory: pytest.TempPathFactory, crds: Path) -> dict[str, tuple[StackPlan, Path, Path]]:
    """Each stack planned twice (with the policy pack) into two separate output trees."""
    first, second = tmp_path_factory.mktemp("first"), tmp_path_factory.mktemp("second")
    plans = {}
    for stack in STACKS:
        plan = plan_stack(stack, out_dir=first, crd_dir=crds, strict=True, policy=True)
        plan_stack(stack, out_dir=second, crd_dir=crds, strict=True, policy=True)
        plans[stack] = (plan, first / stack, second / stack)
    return plans


def differences(left: Path, right: Path) -> list[str]:
    cmp = filecmp.dircmp(left, right, ignore=["summary.json"])
    found = [f"{left.name}: only in one tree: {n}" for n in cmp.left_only + cmp.right_only]
    _, mismatch, errors = filecmp.cmpfiles(left, right, cmp.common_files, shallow=False)
    found += [f"{left.name}/{n} differs" for n in mismatch + errors]
    for sub in cmp.common_dirs:
        found += differences(left / sub, right / sub)
    return found


@pytest.mark.parametrize("stack", STACKS)
def test_two_plans_write_identical_trees(twice: dict[str, tuple[StackPlan, Path, Path]], stack: str) -> None:
    _, first, second = twice[stack]
    assert (first / "resources.json").is_file() and any((first / "manifests").iterdir())
    assert differences(first, second) == []


@pytest.mark.parametrize("stack", STACKS)
def test_chart_check_ran_with_no_unknown_keys_and_consistent_pins(
    twice: dict[str, tuple[StackPlan, Path, Path]], stack: str
) -> None:
    plan, _, _ = twice[stack]
    assert not [n for n in plan.unvalidated if n.startswith("chart check")], plan.unvalidated
    assert [f for f in plan.findings if f.rule.startswith("chart-")] == []


@pytest.mark.parametrize("stack", STACKS)
def test_policy_pack_finds_no_mandatory_violation(
    twice: dict[str, tuple[StackPlan, Path, Path]], stack: str
) -> None:
    plan, _, _ = twice[stack]
    assert plan.error is None and plan.config_errors == []
    assert [f"{f.file} [{f.rule}] {f.message}" for f in plan.findings if f.rule.startswith("policy:")] == []


@pytest.mark.parametrize("stack", STACKS)
def test_every_namespace_has_pod_security_and_default_deny(
    twice: dict[str, tuple[StackPlan, Path, Path]], stack: str
) -> None:
    _, first, _ = twice[stack]
    docs = [yaml.safe_load(p.read_text()) for p in sorted((first / "manifests").glob("*.yaml"))]
    namespaces = {d["metadata"]["name"]: d for d in docs if d.get("kind") == "Namespace"}
    policies = {
        (d["metadata"]["namespace"], d["metadata"]["name"]): d
        for d in docs
        if d.get("kind") == "NetworkPolicy"
    }
    assert namespaces
    for name, ns in namespaces.items():
        level = (ns["metadata"].get("labels") or {}).get(f"{PSA_PREFIX}/enforce")
        assert level in ("restricted", "baseline", "privileged"), (
            f"{stack}: namespace {name} has no PSA level"
        )
        if level == "privileged":
            assert name in GPU_SYSTEM_NAMESPACES | {"monitoring"}, f"{stack}: {name} is privileged"
        deny = policies.get((name, "default-deny-ingress"))
        assert deny is not None, f"{stack}: namespace {name} has no default-deny-ingress NetworkPolicy"
        assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress"]}


WORKLOAD_KINDS = ("Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob")


def pod_templates(doc: Any, label: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(namespace, name, pod spec) of every pod a rendered object creates.

    Workload kinds give their pod template; Argo Events EventSources and Sensors give the pod their
    controller builds from ``spec.template`` (one ``container``), and a Sensor's Kubernetes triggers
    give the objects they create (the training Job).
    """
    if not isinstance(doc, dict) or "kind" not in doc:
        return
    meta, spec, kind = doc.get("metadata") or {}, doc.get("spec") or {}, doc["kind"]
    namespace, name = meta.get("namespace") or "", meta.get("name") or meta.get("generateName") or label
    if kind in WORKLOAD_KINDS:
        if kind == "CronJob":
            spec = (spec.get("jobTemplate") or {}).get("spec") or {}
        yield namespace, name, spec if kind == "Pod" else (spec.get("template") or {}).get("spec") or {}
    elif kind in ("EventSource", "Sensor"):
        template = spec.get("template") or {}
        yield namespace, name, {**template, "containers": [template.get("container") or {}]}
        for trigger in spec.get("triggers") or []:
            source = (((trigger.get("template") or {}).get("k8s") or {}).get("source") or {}).get("resource")
            yield from pod_templates(source, f"{name} trigger")


@pytest.mark.parametrize("stack", STACKS)
def test_every_rendered_pod_cannot_escalate_and_requests_resources(
    twice: dict[str, tuple[StackPlan, Path, Path]], stack: str
) -> None:
    _, first, _ = twice[stack]
    pods = [
        pod
        for path in sorted((first / "manifests").glob("*.yaml"))
        for pod in pod_templates(yaml.safe_load(path.read_text()), path.name)
    ]
    assert {name for _, name, _ in pods} >= {"mlflow-postgres", "qdrant-snapshots"}, pods
    problems = []
    for namespace, name, spec in pods:
        for key in ("initContainers", "containers"):
            for container in spec.get(key) or []:
                where = f"{stack}: {namespace}/{name} container {container.get('name', '(template)')}"
                security = container.get("securityContext") or {}
                if not privileged_allowed(namespace, name):
                    if security.get("allowPrivilegeEscalation") is not False:
                        problems.append(f"{where}: allowPrivilegeEscalation is not false")
                    if security.get("privileged") is True:
                        problems.append(
                            f"{where}: privileged outside components.security.PRIVILEGED_COMPONENTS"
                        )
                requests = (container.get("resources") or {}).get("requests") or {}
                if not {"cpu", "memory"} <= set(requests):
                    problems.append(f"{where}: no cpu and memory requests")
    assert problems == []
