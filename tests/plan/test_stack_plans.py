"""The offline plan of each shipped stack: real program, mocks, rendered objects, validation."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from components.gpu.catalog import MACHINE_TYPES
from stacks import outputs
from stacks.plan.plan import StackPlan, plan_stack

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


PLAN_OUT: dict[str, Path] = {}


@pytest.fixture(scope="module")
def plans(tmp_path_factory: pytest.TempPathFactory, crds: Path) -> dict[str, StackPlan]:
    out = tmp_path_factory.mktemp("plan")
    PLAN_OUT["dir"] = out
    return {
        stack: plan_stack(stack, out_dir=out, crd_dir=crds, strict=True) for stack in ("dev", "aks", "eks")
    }


def resources(plan: StackPlan) -> list[dict[str, Any]]:
    assert plan.run is not None, plan.error or plan.config_errors
    from stacks.plan.render import resource_entries

    return resource_entries(plan.run)


def of_type(entries: list[dict[str, Any]], type_token: str) -> list[dict[str, Any]]:
    return [entry for entry in entries if entry["type"] == type_token]


@pytest.mark.parametrize("stack", ["dev", "aks", "eks"])
def test_stack_plan_passes_strictly(plans: dict[str, StackPlan], stack: str) -> None:
    plan = plans[stack]
    assert plan.error is None
    assert plan.config_errors == []
    assert [f"{f.file}: {f.message}" for f in plan.findings] == []
    assert plan.unvalidated == []
    assert plan.ok
    assert plan.kubernetes_objects > 0 and plan.valid == plan.kubernetes_objects
    assert plan.helm_releases > 0


@pytest.mark.parametrize("stack", ["dev", "aks", "eks"])
def test_reports_are_written(plans: dict[str, StackPlan], stack: str) -> None:
    plan = plans[stack]
    target = PLAN_OUT["dir"] / stack
    entries = json.loads((target / "resources.json").read_text())
    assert len(entries) == plan.resources
    assert {"type", "name", "parent", "custom", "inputs"} <= set(entries[0])
    summary = json.loads((target / "summary.json").read_text())
    assert summary["ok"] is True
    manifests = sorted((target / "manifests").glob("*.yaml"))
    assert len(manifests) == plan.kubernetes_objects + plan.helm_releases
    for path in manifests:
        assert yaml.safe_load(path.read_text())


@pytest.mark.parametrize("stack", ["dev", "aks", "eks"])
def test_exports_follow_the_contract_and_hide_secrets(plans: dict[str, StackPlan], stack: str) -> None:
    plan = plans[stack]
    assert plan.run is not None
    exported = set(plan.run.exports)
    assert exported <= outputs.ALL_KEYS
    assert {outputs.TARGET, outputs.KUBECONFIG, outputs.GPU_POOLS, outputs.GPU_TOLERATIONS} <= exported
    assert outputs.SECRET_KEYS & exported <= plan.run.secret_exports
    assert plan.exports[outputs.KUBECONFIG] == "[secret]"


def test_aks_plan_shows_spot_gpu_pools_scaling_from_zero(plans: dict[str, StackPlan]) -> None:
    pools = {
        p["inputs"].get("agentPoolName"): p["inputs"]
        for p in of_type(resources(plans["aks"]), "azure-native:containerservice:AgentPool")
    }
    assert {"t4", "a10"} <= set(pools)
    for name in ("t4", "a10"):
        pool = pools[name]
        assert pool["scaleSetPriority"] == "Spot"
        assert pool["scaleSetEvictionPolicy"] == "Delete"
        assert pool["enableAutoScaling"] is True
        assert pool["minCount"] == 0
        assert "nvidia.com/gpu=present:NoSchedule" in pool["nodeTaints"]
        assert "kubernetes.azure.com/scalesetpriority=spot:NoSchedule" in pool["nodeTaints"]
        assert pool["nodeLabels"]["mlplatform.io/gpu-pool"] == name
    assert pools["t4"]["nodeLabels"]["mlplatform.io/gpu-model"] == "T4"
    assert pools["t4"]["spotMaxPrice"] == -1
    assert pools["a10"]["spotMaxPrice"] == 1.2


def test_eks_plan_shows_spot_gpu_node_groups_scaling_from_zero(plans: dict[str, StackPlan]) -> None:
    groups = [g["inputs"] for g in of_type(resources(plans["eks"]), "aws:eks/nodeGroup:NodeGroup")]
    gpu = {
        g["labels"]["mlplatform.io/gpu-pool"]: g
        for g in groups
        if "mlplatform.io/gpu-pool" in g.get("labels", {})
    }
    assert {"t4", "l4"} <= set(gpu)
    for name, group in gpu.items():
        assert group["capacityType"] == "SPOT"
        # Spot diversity: >= 2 instance types, unless the catalog knows fewer for the pool's GPU
        # (p4d.24xlarge is the only A100-40GB type on eks; a MIG profile is sized for that GPU).
        model = group["labels"]["mlplatform.io/gpu-model"]
        known = [m.name for m in MACHINE_TYPES.values() if m.cloud == "eks" and m.gpu_model == model]
        assert len(group["instanceTypes"]) >= min(2, len(known)), (name, known)
        assert set(group["instanceTypes"]) <= set(known)
        assert group["amiType"] == "AL2023_x86_64_NVIDIA"
        assert group["scalingConfig"]["minSize"] == 0
        assert {"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"} in group["taints"]
        tags = group["tags"]
        assert tags["k8s.io/cluster-autoscaler/enabled"] == "true"
        assert tags["k8s.io/cluster-autoscaler/node-template/label/mlplatform.io/gpu-pool"] == name
    system = [g for g in groups if "mlplatform.io/gpu-pool" not in g.get("labels", {})]
    assert system and all(g.get("capacityType", "ON_DEMAND") == "ON_DEMAND" for g in system)


def test_cloud_plans_show_their_interruption_handlers(plans: dict[str, StackPlan]) -> None:
    eks = resources(plans["eks"])
    gpu_groups = [
        g
        for g in of_type(eks, "aws:eks/nodeGroup:NodeGroup")
        if "mlplatform.io/gpu-pool" in g["inputs"]["labels"]
    ]
    assert len(of_type(eks, "aws:sqs/queue:Queue")) == 1
    assert len(of_type(eks, "aws:cloudwatch/eventRule:EventRule")) == 4
    assert len(of_type(eks, "aws:cloudwatch/eventTarget:EventTarget")) == 4
    assert len(of_type(eks, "aws:autoscaling/lifecycleHook:LifecycleHook")) == len(gpu_groups)
    assert [r["inputs"]["chart"] for r in of_type(eks, "kubernetes:helm.sh/v3:Release")].count(
        "aws-node-termination-handler"
    ) == 1
    aks = resources(plans["aks"])
    (drain,) = [
        d
        for d in of_type(aks, "kubernetes:apps/v1:DaemonSet")
        if d["inputs"]["metadata"]["name"] == "mlp-spot-drain"
    ]
    pool_term = drain["inputs"]["spec"]["template"]["spec"]["affinity"]["nodeAffinity"]
    values = pool_term["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0][
        "matchExpressions"
    ][0]["values"]
    spot = [p["name"] for p in plans["aks"].run.exports["gpuPools"] if p["spot"]]  # type: ignore[union-attr]
    assert sorted(values) == sorted(spot)
    assert not of_type(resources(plans["dev"]), "kubernetes:apps/v1:DaemonSet") or all(
        d["inputs"]["metadata"]["name"] != "mlp-spot-drain"
        for d in of_type(resources(plans["dev"]), "kubernetes:apps/v1:DaemonSet")
    )


def test_dev_plan_uses_the_local_cluster(plans: dict[str, StackPlan]) -> None:
    entries = resources(plans["dev"])
    assert any(entry["type"] == "mlplatform:clusters:LocalCluster" for entry in entries)
    assert not any(entry["type"].startswith(("azure-native:", "aws:")) for entry in entries)


def test_invalid_stack_file_fails_before_any_resource(tmp_path: Path, crds: Path, repo_root: Path) -> None:
    shutil.copy(repo_root / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    stack = yaml.safe_load((repo_root / "Pulumi.aks.yaml").read_text())
    stack["config"]["mlplatform:gpuPools"][0]["maxCount"] = 0
    stack["config"]["mlplatform:aks"]["systemPool"]["spot"] = True
    (tmp_path / "Pulumi.broken.yaml").write_text(yaml.safe_dump(stack))
    plan = plan_stack("broken", out_dir=tmp_path / "out", crd_dir=crds, root=tmp_path)
    assert not plan.ok
    assert plan.run is None and plan.resources == 0
    assert any("gpuPools[0].maxCount" in line for line in plan.config_errors)
    assert any("aks.systemPool.spot" in line for line in plan.config_errors)
    assert json.loads((tmp_path / "out" / "broken" / "summary.json").read_text())["ok"] is False


def test_cli_plan_exit_codes(tmp_path: Path, crds: Path) -> None:
    from mlp.cli import main

    runner = CliRunner()
    good = runner.invoke(
        main, ["plan", "--stack", "dev", "--crd-dir", str(crds), "--out", str(tmp_path), "--no-tree"]
    )
    assert good.exit_code == 0, good.output
    assert "PASS dev" in good.output
    missing = runner.invoke(main, ["plan", "--stack", "nope", "--out", str(tmp_path), "--no-tree"])
    assert missing.exit_code == 2
    assert "no stack file Pulumi.nope.yaml" in missing.output


@pytest.mark.parametrize("stack", ["dev", "aks", "eks"])
def test_program_outputs_parse_with_the_workloads_typed_view(plans: dict[str, StackPlan], stack: str) -> None:
    """What the program exports is exactly what workloads can read (the contract both ways)."""
    from stacks.plan.harness import clean
    from workloads.target import parse_outputs

    run = plans[stack].run
    assert run is not None
    revealed = {key: clean(value, reveal=True) for key, value in run.exports.items()}
    parsed = parse_outputs(revealed, source=f"plan of {stack}")
    assert parsed.target == stack
    assert [pool.name for pool in parsed.gpu_pools] == [p["name"] for p in revealed[outputs.GPU_POOLS]]
    assert parsed.qdrant_url and parsed.s3_endpoint
