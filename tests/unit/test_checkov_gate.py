"""The checkov gate: allowlist parsing and matching, the split of failures, stale entries."""

from __future__ import annotations

from pathlib import Path

import pytest

from policy.checkov_gate import ALLOWLIST, Allow, AllowlistError, collect, gate, load_allowlist


def report(*failed: tuple[str, str]) -> dict[str, object]:
    return {
        "summary": {"passed": 10, "failed": len(failed), "resource_count": 3, "checkov_version": "3.3.30"},
        "results": {"failed_checks": [{"check_id": c, "resource": r, "check_name": c} for c, r in failed]},
    }


def test_shipped_allowlist_entries_all_carry_a_reason() -> None:
    entries = load_allowlist(ALLOWLIST)
    assert entries and all(len(e.reason) > 40 for e in entries)


def test_failures_outside_the_allowlist_are_rejected_and_stale_entries_listed() -> None:
    allow = [
        Allow("CKV_K8S_11", ("*",), "no CPU limits by design"),
        Allow("CKV_K8S_35", ("CronJob.data.snap",), "env credentials"),
        Allow("CKV_K8S_99", ("*",), "nothing fails this any more"),
    ]
    result = gate(
        report(
            ("CKV_K8S_11", "Deployment.a.b"), ("CKV_K8S_35", "CronJob.data.snap"), ("CKV_K8S_35", "Job.x.y")
        ),
        allow,
    )
    assert [i["resource"] for i in result["allowlisted"]] == ["Deployment.a.b", "CronJob.data.snap"]
    assert [(i["check"], i["resource"]) for i in result["not_allowlisted"]] == [("CKV_K8S_35", "Job.x.y")]
    assert [e["check"] for e in result["stale_entries"]] == ["CKV_K8S_99"]
    assert result["failed"] == 3 and result["passed"] == 10


def test_allowlist_entry_without_reason_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "allow.yaml"
    path.write_text("allow:\n  - check: CKV_K8S_11\n    resources: ['*']\n")
    with pytest.raises(AllowlistError, match=r"allow\[0\] needs check, resources and a reason"):
        load_allowlist(path)


def test_collect_takes_objects_not_helm_releases(tmp_path: Path) -> None:
    for stack in ("dev", "eks"):
        manifests = tmp_path / "plan" / stack / "manifests"
        manifests.mkdir(parents=True)
        (manifests / "namespace-cluster-x.yaml").write_text("kind: Namespace\n")
        (manifests / "helmrelease-x-y.yaml").write_text("chart: y\n")
    assert collect(tmp_path / "plan", tmp_path / "out") == 2
    assert sorted(p.name for p in (tmp_path / "out").rglob("*.yaml")) == ["namespace-cluster-x.yaml"] * 2
