"""GPU scheduling workloads: rendering, validation, CLI, and apply against a stand-in client."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from kubernetes.client.exceptions import ApiException

from components.clusters.base import AKS_SPOT_TAINT, GPU_TAINT, POOL_LABEL
from components.versions import IMAGES
from mlp.commands.gpu import gpu
from stacks import outputs as keys
from stacks.plan.validate import Validator
from workloads.gpu.apply import ApplyError, apply_objects, wait_for_job
from workloads.gpu.manifests import (
    BATCH_PRIORITY_CLASS,
    SERVING_PRIORITY_CLASS,
    GpuPlacement,
    PlacementError,
    placement_from_outputs,
    priority_classes,
    render,
    sharing_demo,
    smoke_job,
)
from workloads.target import parse_outputs

IMAGE = IMAGES["cuda-sample"].ref


def aks_pool_outputs() -> list[dict[str, Any]]:
    """The aks stack's ``gpuPools`` output, derived from Pulumi.aks.yaml by the program's own code."""
    from components.clusters.pools import aks_pool_taints, pool_info, pool_summary
    from stacks.cluster_builders import gpu_pool_spec
    from stacks.config import load_stack_file

    specs = [gpu_pool_spec(pool, "aks") for pool in load_stack_file("aks").gpu_pools]
    return [pool_summary(pool_info(spec, aks_pool_taints(spec))) for spec in specs]


AKS_OUTPUTS = {
    keys.TARGET: "aks",
    keys.KUBECONFIG: "apiVersion: v1\nkind: Config\n",
    keys.GPU_POOLS: aks_pool_outputs(),
    keys.GPU_TOLERATIONS: [GPU_TAINT.toleration(), AKS_SPOT_TAINT.toleration()],
}


@pytest.fixture
def outputs_file(tmp_path: Path) -> Path:
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(AKS_OUTPUTS))
    return path


@pytest.fixture(scope="module")
def validator() -> Validator:
    return Validator("1.33")


def placement(**overrides: Any) -> GpuPlacement:
    base = placement_from_outputs(parse_outputs(AKS_OUTPUTS), POOL_LABEL, "t4")
    return GpuPlacement(**{**base.__dict__, **overrides})


def test_placement_comes_from_the_pool_outputs() -> None:
    p = placement_from_outputs(parse_outputs(AKS_OUTPUTS), POOL_LABEL)
    assert p.pool == "t4"
    assert p.node_selector == {POOL_LABEL: "t4"}
    assert {**GPU_TAINT.toleration()} in [dict(t) for t in p.tolerations]
    assert {**AKS_SPOT_TAINT.toleration()} in [dict(t) for t in p.tolerations]
    # Pulumi.aks.yaml: t4 time-slices 4 ways without renaming; the output says so, no config read.
    assert (p.sharing, p.shares_per_gpu, p.resource) == ("time-slicing", 4, "nvidia.com/gpu")
    with pytest.raises(PlacementError, match="no GPU pool 'x'"):
        placement_from_outputs(parse_outputs(AKS_OUTPUTS), POOL_LABEL, "x")
    with pytest.raises(PlacementError, match="no GPU pools"):
        placement_from_outputs(parse_outputs({keys.TARGET: "dev"}), POOL_LABEL)


def test_smoke_job_requests_a_gpu_on_the_pool(validator: Validator) -> None:
    job = smoke_job(placement(), IMAGE)
    pod = job["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {POOL_LABEL: "t4"}
    assert GPU_TAINT.toleration() in pod["tolerations"]
    assert pod["containers"][0]["resources"]["limits"] == {"nvidia.com/gpu": 1}
    assert pod["containers"][0]["image"] == IMAGE
    assert job["spec"]["backoffLimit"] == 0
    result = validator.validate(job)
    assert result.status == "valid", result.errors


def test_sharing_demo_puts_n_pods_on_one_gpu(validator: Validator) -> None:
    shared = placement(shares_per_gpu=4, sharing="time-slicing", resource="nvidia.com/gpu.shared")
    job = sharing_demo(shared, IMAGE)
    spec = job["spec"]
    assert spec["completions"] == spec["parallelism"] == 4
    pod = spec["template"]["spec"]
    assert pod["containers"][0]["resources"]["limits"] == {"nvidia.com/gpu.shared": 1}
    term = pod["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
    assert validator.validate(job).status == "valid"
    assert sharing_demo(shared, IMAGE, pods=2)["spec"]["completions"] == 2
    with pytest.raises(PlacementError, match="holds 4 pods"):
        sharing_demo(shared, IMAGE, pods=5)
    with pytest.raises(PlacementError, match="does not share GPUs"):
        sharing_demo(placement(sharing="none", shares_per_gpu=1), IMAGE)


def test_priority_classes_put_serving_over_batch(validator: Validator) -> None:
    classes = {c["metadata"]["name"]: c for c in priority_classes()}
    assert classes[SERVING_PRIORITY_CLASS]["value"] > classes[BATCH_PRIORITY_CLASS]["value"]
    assert classes[BATCH_PRIORITY_CLASS]["preemptionPolicy"] == "Never"
    assert not any(c["globalDefault"] for c in classes.values())
    for obj in classes.values():
        assert validator.validate(obj).status == "valid"


def test_render_orders_namespace_first_and_rejects_unknown() -> None:
    objects = render("smoke", placement(), IMAGE)
    assert [o["kind"] for o in objects] == ["Namespace", "Job"]
    with pytest.raises(ValueError, match="unknown workload"):
        render("nope", placement(), IMAGE)
    with pytest.raises(PlacementError):
        render("smoke", None, IMAGE)


def test_cli_render_uses_the_stack_sharing(outputs_file: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(
        gpu, ["render", "sharing-demo", "--stack", "aks", "--outputs-file", str(outputs_file)]
    )
    assert result.exit_code == 0, result.output
    docs = [d for d in yaml.safe_load_all(result.output) if d]
    job = docs[-1]
    # Pulumi.aks.yaml: t4 time-slices 4 ways without renaming.
    assert job["metadata"]["name"] == "gpu-sharing-demo-t4"
    assert job["spec"]["completions"] == 4
    assert job["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"] == {"nvidia.com/gpu": 1}
    mps = runner.invoke(
        gpu,
        [
            "render",
            "sharing-demo",
            "--stack",
            "aks",
            "--outputs-file",
            str(outputs_file),
            "--pool",
            "a10",
            "--json",
        ],
    )
    assert mps.exit_code == 0, mps.output
    assert json.loads(mps.output)[-1]["spec"]["completions"] == 2
    too_many = runner.invoke(
        gpu,
        [
            "render",
            "sharing-demo",
            "--stack",
            "aks",
            "--outputs-file",
            str(outputs_file),
            "--pool",
            "a10",
            "--pods",
            "3",
        ],
    )
    assert too_many.exit_code == 2 and "holds 2 pods" in too_many.output


def test_cli_render_smoke_and_priority_classes(outputs_file: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "smoke.yaml"
    result = runner.invoke(
        gpu,
        [
            "render",
            "smoke",
            "--stack",
            "aks",
            "--outputs-file",
            str(outputs_file),
            "--pool",
            "a10",
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    job = list(yaml.safe_load_all(out.read_text()))[-1]
    assert job["spec"]["template"]["spec"]["nodeSelector"] == {POOL_LABEL: "a10"}
    classes = runner.invoke(gpu, ["render", "priority-classes", "--stack", "aks"])
    assert classes.exit_code == 0 and SERVING_PRIORITY_CLASS in classes.output


class FakeResource:
    def __init__(self, kind: str) -> None:
        self.kind = kind


class FakeResources:
    def get(self, api_version: str, kind: str) -> FakeResource:
        return FakeResource(kind)


class FakeStatus:
    def __init__(self, status: dict[str, Any]) -> None:
        self.status = status

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status}


class FakeDynamicClient:
    def __init__(
        self, existing_jobs: set[str] | None = None, statuses: list[dict[str, Any]] | None = None
    ) -> None:
        self.resources = FakeResources()
        self.calls: list[tuple[str, str, str]] = []
        self.existing_jobs = existing_jobs or set()
        self.statuses = statuses or []

    def delete(self, resource: FakeResource, name: str, namespace: str | None, body: dict[str, Any]) -> None:
        self.calls.append(("delete", resource.kind, name))
        if name not in self.existing_jobs:
            raise ApiException(status=404, reason="Not Found")

    def server_side_apply(
        self, resource: FakeResource, body: dict[str, Any], name: str, namespace: str | None, **kwargs: Any
    ) -> None:
        assert kwargs["field_manager"] == "mlp" and kwargs["force_conflicts"] is True
        if body.get("metadata", {}).get("name") == "rejected":
            raise ApiException(status=422, reason="Unprocessable")
        self.calls.append(("apply", resource.kind, name))

    def get(self, resource: FakeResource, name: str, namespace: str | None) -> FakeStatus:
        return FakeStatus(self.statuses.pop(0) if self.statuses else {})


def test_apply_replaces_existing_jobs_and_applies_the_rest() -> None:
    client = FakeDynamicClient(existing_jobs={"gpu-smoke-t4"})
    waited: list[str] = []
    done = apply_objects(
        render("smoke", placement(), IMAGE), client, wait_deleted=lambda c, r, n, ns: waited.append(n)
    )
    assert [(a.kind, a.replaced) for a in done] == [("Namespace", False), ("Job", True)]
    assert client.calls == [
        ("apply", "Namespace", "mlp-gpu-workloads"),
        ("delete", "Job", "gpu-smoke-t4"),
        ("apply", "Job", "gpu-smoke-t4"),
    ]
    assert waited == ["gpu-smoke-t4"]
    fresh = FakeDynamicClient()
    assert [a.replaced for a in apply_objects(render("smoke", placement(), IMAGE), fresh)] == [False, False]


def test_apply_reports_rejections() -> None:
    bad = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "rejected", "namespace": "x"}}
    with pytest.raises(ApplyError, match="422"):
        apply_objects([bad], FakeDynamicClient())


def test_wait_for_job_reports_progress_and_failure() -> None:
    seen: list[str] = []
    client = FakeDynamicClient(
        statuses=[{"active": 1}, {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}]
    )
    status = wait_for_job(client, "j", "ns", poll_s=0, progress=seen.append)
    assert status["succeeded"] == 1 and len(seen) == 2
    failing = FakeDynamicClient(
        statuses=[
            {"failed": 1, "conditions": [{"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}]}
        ]
    )
    with pytest.raises(ApplyError, match="DeadlineExceeded"):
        wait_for_job(failing, "j", "ns", poll_s=0)


def test_cli_render_from_the_offline_plan() -> None:
    # No outputs file and no Pulumi CLI: the stack's program runs under mocks for pool placement.
    result = CliRunner().invoke(gpu, ["render", "smoke", "--stack", "eks", "--pool", "l4"])
    assert result.exit_code == 0, result.output
    job = [d for d in yaml.safe_load_all(result.output) if d][-1]
    pod = job["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {POOL_LABEL: "l4"}
    assert GPU_TAINT.toleration() in pod["tolerations"]
    assert "&id" not in result.output


def test_taints_in_kubectl_form_are_rejected_naming_the_key(tmp_path: Path) -> None:
    # The contract is {key, value, effect} objects; the old string shim is gone.
    raw = json.loads(json.dumps(AKS_OUTPUTS))
    for pool in raw[keys.GPU_POOLS]:
        pool["taints"] = [GPU_TAINT.as_string(), AKS_SPOT_TAINT.as_string()]
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(raw))
    result = CliRunner().invoke(
        gpu, ["render", "smoke", "--stack", "aks", "--outputs-file", str(path), "--json"]
    )
    assert result.exit_code != 0
    assert "gpuPools" in result.output and "taints" in result.output
    assert "Traceback" not in result.output


def test_unreachable_cluster_is_a_clean_error(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "x", "cluster": {"server": "https://127.0.0.1:1"}}],
                "contexts": [{"name": "x", "context": {"cluster": "x", "user": "x"}}],
                "current-context": "x",
                "users": [{"name": "x", "user": {"token": "t"}}],
            }
        )
    )
    args = ["apply", "priority-classes", "--stack", "aks", "--kubeconfig", str(kubeconfig)]
    result = CliRunner().invoke(gpu, args)
    assert result.exit_code == 1
    assert "cannot reach the cluster" in result.output


def test_whole_gpu_resource_is_spelled_the_same_in_both_layers() -> None:
    from components.clusters.base import GPU_RESOURCE
    from workloads.target import WHOLE_GPU_RESOURCE

    assert GPU_RESOURCE == WHOLE_GPU_RESOURCE
