"""GitHub workflow files validate offline against the vendored GitHub-workflow schema; actions are SHA-pinned."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.y*ml"))
CHECK = Path(sys.executable).with_name("check-jsonschema")
USES = re.compile(r"^\s*(?:-\s*)?uses:\s*(\S+)", re.M)


def validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CHECK), "--builtin-schema", "vendor.github-workflows", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_workflows_exist() -> None:
    assert {"ci.yaml", "preview.yaml"} <= {p.name for p in WORKFLOWS}


@pytest.mark.slow
@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_validates_against_the_github_schema(path: Path) -> None:
    result = validate(path)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
@pytest.mark.parametrize(
    ("old", "new"),
    [("runs-on:", "runs_on:"), ("steps:", "stepz:"), ("timeout-minutes: ", "timeout-minutes: x")],
)
def test_a_typo_fails_validation(tmp_path: Path, old: str, new: str) -> None:
    broken = tmp_path / "ci.yaml"
    text = (REPO / ".github" / "workflows" / "ci.yaml").read_text()
    assert old in text
    broken.write_text(text.replace(old, new, 1))
    assert validate(broken).returncode != 0


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_actions_are_pinned_by_commit_sha(path: Path) -> None:
    refs = USES.findall(path.read_text())
    assert refs, f"{path.name} uses no action"
    for ref in refs:
        if ref.startswith("./"):
            continue
        assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", ref), f"{path.name}: {ref} is not pinned by SHA"


def test_preview_runs_the_policy_pack_offline_and_in_pulumi_preview() -> None:
    doc = yaml.safe_load((REPO / ".github" / "workflows" / "preview.yaml").read_text())
    plan_steps = " ".join(str(step.get("run", "")) for step in doc["jobs"]["plan"]["steps"])
    assert "mlp plan" in plan_steps and "--policy" in plan_steps
    pulumi = [
        s for s in doc["jobs"]["preview"]["steps"] if str(s.get("uses", "")).startswith("pulumi/actions@")
    ]
    assert (
        pulumi and pulumi[0]["with"]["command"] == "preview" and pulumi[0]["with"]["policyPacks"] == "policy"
    )
    assert pulumi[0]["if"] == "steps.creds.outputs.configured == 'true'"
