"""Where commands that render or apply a stack's objects take its outputs from (``mlp.common.stack_outputs``)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from mlp.common import stack_outputs
from stacks import outputs as keys
from stacks.plan.plan import REDACTED_KEY, planned_exports
from workloads import target as t


@pytest.fixture(scope="module")
def planned() -> dict[str, Any]:
    return planned_exports("dev")


def test_the_offline_plan_leaves_secrets_out(planned: dict[str, Any]) -> None:
    assert keys.GPU_POOLS in planned and keys.TARGET in planned
    assert planned[REDACTED_KEY] and not set(planned[REDACTED_KEY]) & set(planned) - {REDACTED_KEY}
    outputs = stack_outputs("dev", None, deployed=False)
    assert [p.name for p in outputs.gpu_pools] == [p["name"] for p in planned[keys.GPU_POOLS]]


def test_a_file_comes_first_and_masked_secrets_are_dropped_only_for_rendering(
    tmp_path: Path, planned: dict[str, Any]
) -> None:
    saved = {k: v for k, v in planned.items() if k != REDACTED_KEY} | {keys.KUBECONFIG: "[secret]"}
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(saved))
    rendered = stack_outputs("no-such-stack", path, deployed=False)
    assert rendered.kubeconfig is None and rendered.target == planned[keys.TARGET]
    with pytest.raises(t.OutputsFileError, match=r"masked as '\[secret\]'.*--show-secrets"):
        stack_outputs("dev", path, deployed=True)


def test_no_stack_and_no_file_is_refused() -> None:
    with pytest.raises(t.TargetError, match="--target <stack> or --outputs-file"):
        stack_outputs(None, None, deployed=False)


def test_an_unreadable_deployed_stack_falls_back_to_the_plan_only_when_asked(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def no_cli(stack: str, runner: Any = subprocess.run) -> t.StackOutputs:
        raise t.TargetError("the pulumi CLI is not on PATH")

    monkeypatch.setattr(t, "read_stack_outputs", no_cli)
    with pytest.raises(t.TargetError, match="not on PATH"):
        stack_outputs("dev", None, deployed=True)
    outputs = stack_outputs("dev", None, deployed=True, plan_fallback=True)
    assert outputs.target == "dev"
    assert "not on PATH; using the offline plan" in capsys.readouterr().err
