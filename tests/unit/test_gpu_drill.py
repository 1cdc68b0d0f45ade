"""`mlp gpu drill`: the interruption path of the aks and eks stacks, read from their programs."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner

from mlp.commands.gpu import drill_cmd
from stacks.config import stack_file_config
from stacks.plan.harness import clean, run_program
from stacks.program import program
from workloads.gpu.drill import build_drill, to_markdown
from workloads.pipelines.interrupt import CHECKPOINT_GRACE_SECONDS


def registrations(stack: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    run = run_program(program, stack=stack, config=stack_file_config(stack))
    regs = [
        {"type": r.type, "name": r.name, "inputs": clean(r.inputs), "outputs": clean(r.outputs)}
        for r in run.registrations
    ]
    return regs, clean(run.exports)


def of_type(regs: list[dict[str, Any]], type_: str) -> list[dict[str, Any]]:
    return [r for r in regs if r["type"] == type_]


def spot_pools(exports: dict[str, Any]) -> list[str]:
    return [p["name"] for p in exports["gpuPools"] if p["spot"]]


@pytest.fixture(scope="module")
def eks() -> tuple[list[dict[str, Any]], dict[str, Any]]:
    return registrations("eks")


@pytest.fixture(scope="module")
def aks() -> tuple[list[dict[str, Any]], dict[str, Any]]:
    return registrations("aks")


@pytest.mark.slow
def test_eks_drill_reads_queue_rules_and_hooks_from_the_program(
    eks: tuple[list[dict[str, Any]], dict[str, Any]],
) -> None:
    regs, exports = eks
    drill = build_drill("eks", regs, exports)
    assert drill.handler == "aws-node-termination-handler"
    (queue,) = of_type(regs, "aws:sqs/queue:Queue")
    assert drill.queue["url"] == queue["outputs"]["url"]
    targets = of_type(regs, "aws:cloudwatch/eventTarget:EventTarget")
    assert len(drill.notices) == len(targets) >= 4
    patterns = [
        json.loads(r["inputs"]["eventPattern"]) for r in of_type(regs, "aws:cloudwatch/eventRule:EventRule")
    ]
    assert sorted(n["detailType"] for n in drill.notices) == sorted(p["detail-type"][0] for p in patterns)
    assert sorted(h["pool"] for h in drill.hooks) == sorted(spot_pools(exports))
    assert drill.pools and all(p["covered"] for p in drill.pools)
    text = to_markdown(drill)
    assert queue["outputs"]["name"] in text and f"{CHECKPOINT_GRACE_SECONDS} s" in text


@pytest.mark.slow
def test_aks_drill_reads_the_drain_daemonset_from_the_program(
    aks: tuple[list[dict[str, Any]], dict[str, Any]],
) -> None:
    regs, exports = aks
    drill = build_drill("aks", regs, exports)
    assert drill.handler == "scheduled-events drain"
    (ds,) = [
        d
        for d in of_type(regs, "kubernetes:apps/v1:DaemonSet")
        if d["inputs"]["metadata"]["name"] == "mlp-spot-drain"
    ]
    assert (
        drill.handler_details["image"] == ds["inputs"]["spec"]["template"]["spec"]["containers"][0]["image"]
    )
    assert {p["pool"] for p in drill.pools} == set(spot_pools(exports))
    assert all(p["covered"] for p in drill.pools)
    assert [n["eventType"] for n in drill.notices] == ["Preempt", "Terminate"]
    assert "create pods/eviction" in drill.handler_details["permissions"]
    assert not of_type(regs, "aws:sqs/queue:Queue")


def test_a_stack_without_a_handler_says_so_and_lists_its_uncovered_pools() -> None:
    drill = build_drill("x", [], {"gpuPools": [{"name": "t4", "spot": True}, {"name": "od", "spot": False}]})
    assert drill.handler == "none"
    assert drill.pools == [{"pool": "t4", "covered": False}]
    assert "no interruption handler" in to_markdown(drill)
    assert "no spot GPU pools" in build_drill("y", [], {"gpuPools": [{"name": "od", "spot": False}]}).summary


@pytest.mark.slow
def test_cli_json_and_unknown_stack() -> None:
    done = CliRunner().invoke(drill_cmd, ["--stack", "eks", "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["handler"] == "aws-node-termination-handler"
    bad = CliRunner().invoke(drill_cmd, ["--stack", "nope"])
    assert bad.exit_code == 2 and "Traceback" not in bad.output
