"""The target: typed stack outputs, local embedded engines, clear errors for bad outputs."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from stacks import outputs as keys
from workloads import target as t

GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


def full_outputs() -> dict[str, Any]:
    """Outputs as `pulumi stack output --json --show-secrets` prints them for a GPU stack."""
    return {
        keys.TARGET: "aks",
        keys.CLUSTER_NAME: "mlp-aks",
        keys.KUBERNETES_VERSION: "1.33",
        keys.KUBECONFIG: "apiVersion: v1\nkind: Config\n",
        keys.STORAGE_CLASS: "managed-csi",
        keys.GPU_POOLS: [
            {
                "name": "gpu",
                "gpuModel": "T4",
                "gpuCount": 1,
                "labels": {"mlplatform/gpu": "true"},
                "taints": [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}],
                "minCount": 0,
                "maxCount": 3,
                "spot": True,
            }
        ],
        keys.GPU_TOLERATIONS: [GPU_TOLERATION],
        keys.KFP_ENDPOINT: "http://ml-pipeline.kubeflow.svc:8888",
        keys.MLFLOW_TRACKING_URI: "http://mlflow.mlflow.svc:5000",
        keys.S3_ENDPOINT: "http://minio.storage.svc:9000",
        keys.S3_BUCKET: "mlplatform",
        keys.S3_ACCESS_KEY_ID: "mlp",
        keys.S3_SECRET_ACCESS_KEY: "s3cret-value",
        keys.KATIB_NAMESPACE: "kubeflow",
        keys.KSERVE_NAMESPACE: "kserve",
        keys.PROMETHEUS_URL: "http://prometheus.monitoring.svc:9090",
        keys.GRAFANA_URL: "http://grafana.monitoring.svc",
        keys.GRAFANA_ADMIN_PASSWORD: "admin-pass",
        keys.QDRANT_URL: "http://qdrant.vectordb.svc:6333",
        keys.QDRANT_API_KEY: "qdrant-key",
        keys.QDRANT_SNAPSHOTS_URI: "s3://mlplatform/qdrant-snapshots",
        keys.MILVUS_URI: "http://milvus.vectordb.svc:19530",
        keys.MILVUS_TOKEN: "root:pw",
        keys.KSERVE_DEPLOYMENT_MODE: "Serverless",
        keys.KSERVE_URL_TEMPLATE: "http://{name}.{namespace}.example.com",
        keys.WORKLOAD_IMAGE: "ghcr.io/mlplatform/workloads:0.1.0",
        keys.DATASETS_BUCKET: "datasets",
    }


def test_every_contract_key_has_a_typed_field() -> None:
    # Values are checked against each stack's real exports in tests/plan (the program's own outputs).
    for key in keys.ALL_KEYS:
        assert key in t._FIELD_BY_KEY, f"stacks.outputs key {key!r} missing from StackOutputs"
    parsed = t.parse_outputs(full_outputs())
    for key in full_outputs():
        assert parsed.require(key) not in (None, [], "")


def test_full_outputs_give_a_cluster_target(tmp_path: Path) -> None:
    target = t.Target(name="aks", home=tmp_path, outputs=t.parse_outputs(full_outputs()))
    assert not target.is_local
    assert target.mlflow_tracking_uri == "http://mlflow.mlflow.svc:5000"
    assert target.kfp_host == "http://ml-pipeline.kubeflow.svc:8888"
    assert target.checkpoint_root == "s3://mlplatform/checkpoints"
    assert target.artifact_location == ""  # the tracking server decides
    assert target.has_gpu
    assert target.gpu_tolerations == [GPU_TOLERATION]
    env = target.s3_environment()
    assert env["AWS_SECRET_ACCESS_KEY"] == "s3cret-value"
    assert env["MLFLOW_S3_ENDPOINT_URL"] == "http://minio.storage.svc:9000"
    # Secrets stay masked in reprs and descriptions.
    assert "s3cret-value" not in repr(target.outputs)
    assert "s3cret-value" not in json.dumps(target.describe())


def test_no_gpu_pools_means_no_tolerations(tmp_path: Path) -> None:
    raw = full_outputs() | {keys.GPU_POOLS: []}
    target = t.Target(name="dev", home=tmp_path, outputs=t.parse_outputs(raw))
    assert not target.has_gpu
    assert target.gpu_tolerations == []


def test_kubeconfig_object_is_accepted_as_secret_text() -> None:
    parsed = t.parse_outputs({keys.TARGET: "eks", keys.KUBECONFIG: {"apiVersion": "v1", "kind": "Config"}})
    assert json.loads(parsed.require(keys.KUBECONFIG))["kind"] == "Config"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({keys.CLUSTER_NAME: "x"}, "output 'target' is missing"),
        ({keys.TARGET: "gke"}, "output 'target'"),
        (
            {keys.TARGET: "aks", keys.GPU_POOLS: [{"name": "g", "gpuModel": "T4", "gpuCount": "two"}]},
            "output 'gpuPools[0].gpuCount'",
        ),
        ({keys.TARGET: "aks", keys.KFP_ENDPOINT: "ml-pipeline:8888"}, "output 'kfpEndpoint'"),
        (
            {keys.TARGET: "aks", keys.GPU_TOLERATIONS: [{"key": "k", "operator": "Maybe"}]},
            "output 'gpuTolerations[0].operator'",
        ),
        ({keys.TARGET: "aks", keys.KUBECONFIG: "[secret]"}, "['kubeconfig'] are masked"),
        ([1, 2], "must be a JSON object"),
    ],
)
def test_malformed_outputs_name_the_key(raw: Any, expected: str) -> None:
    with pytest.raises(t.TargetError) as error:
        t.parse_outputs(raw)
    assert expected in str(error.value)


def test_missing_output_is_named_when_required() -> None:
    parsed = t.parse_outputs({keys.TARGET: "dev"})
    with pytest.raises(t.TargetError, match="stack output 'kfpEndpoint' is missing"):
        parsed.require(keys.KFP_ENDPOINT)
    target = t.Target(name="dev", home=Path("."), outputs=parsed)
    with pytest.raises(t.TargetError, match="'mlflowTrackingUri' is missing"):
        _ = target.mlflow_tracking_uri
    with pytest.raises(t.TargetError, match="not an output key"):
        parsed.require("notAKey")


def test_outputs_file(tmp_path: Path) -> None:
    good = tmp_path / "outputs.json"
    good.write_text(json.dumps(full_outputs()))
    target = t.load_target("ignored", outputs_file=good, home=tmp_path)
    assert target.outputs is not None and target.outputs.cluster_name == "mlp-aks"

    with pytest.raises(t.TargetError, match="does not exist"):
        t.load_target(outputs_file=tmp_path / "nope.json", home=tmp_path)
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(t.TargetError, match="broken.json is not valid JSON"):
        t.load_target(outputs_file=broken, home=tmp_path)


def _fake_pulumi(returncode: int, stdout: str = "", stderr: str = "") -> Any:
    calls: list[list[str]] = []

    def run(command: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        calls.append(command)
        return subprocess.CompletedProcess(command, returncode, stdout, stderr)

    run.calls = calls  # type: ignore[attr-defined]
    return run


def test_stack_outputs_via_pulumi_cli(tmp_path: Path) -> None:
    runner = _fake_pulumi(0, json.dumps(full_outputs()))
    target = t.load_target("aks", home=tmp_path, runner=runner)
    assert target.name == "aks" and target.kfp_host.startswith("http://ml-pipeline")
    assert runner.calls == [["pulumi", "stack", "output", "--json", "--show-secrets", "--stack", "aks"]]


def test_pulumi_cli_failure_is_reported(tmp_path: Path) -> None:
    runner = _fake_pulumi(255, stderr="error: no stack named 'nope' found")
    with pytest.raises(t.TargetError, match="exited 255: error: no stack named 'nope' found"):
        t.load_target("nope", home=tmp_path, runner=runner)
    with pytest.raises(t.TargetError, match="invalid JSON"):
        t.load_target("aks", home=tmp_path, runner=_fake_pulumi(0, "not json"))


def test_missing_pulumi_cli_suggests_outputs_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(t.shutil, "which", lambda _name: None)
    with pytest.raises(t.TargetError) as error:
        t.load_target("aks", home=tmp_path)
    assert "pulumi CLI is not on PATH" in str(error.value)
    assert "--outputs-file" in str(error.value)


def test_local_target_uses_project_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(t.HOME_ENV, raising=False)
    monkeypatch.delenv(t.S3_ENDPOINT_ENV, raising=False)
    monkeypatch.delenv(t.S3_BUCKET_ENV, raising=False)
    target = t.load_target().prepare()
    assert target.is_local and target.home == (tmp_path / ".mlp").resolve()
    assert target.mlflow_tracking_uri == f"sqlite:///{tmp_path.resolve() / '.mlp' / 'mlflow.db'}"
    assert target.artifact_location.startswith("file://") and target.artifact_location.endswith(
        "/mlartifacts"
    )
    assert (tmp_path / ".mlp" / "mlartifacts").is_dir()
    assert target.gpu_tolerations == [] and not target.has_gpu
    with pytest.raises(t.TargetError, match="no Kubeflow Pipelines endpoint"):
        _ = target.kfp_host

    monkeypatch.setenv(t.HOME_ENV, str(tmp_path / "elsewhere"))
    assert t.load_target().home == (tmp_path / "elsewhere").resolve()


def test_local_target_with_s3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(t.S3_ENDPOINT_ENV, "http://127.0.0.1:9000")
    monkeypatch.setenv(t.S3_BUCKET_ENV, "lab")
    target = t.load_target(home=tmp_path)
    assert target.artifact_location == "s3://lab/mlflow"
    assert target.checkpoint_root == "s3://lab/checkpoints"
    assert target.s3_environment() == {
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9000",
        "MLFLOW_S3_ENDPOINT_URL": "http://127.0.0.1:9000",
    }
    monkeypatch.delenv(t.S3_BUCKET_ENV)
    with pytest.raises(t.TargetError, match="set both"):
        t.load_target(home=tmp_path)


def test_cli_reports_bad_outputs_with_the_key(tmp_path: Path) -> None:
    from mlp.cli import main

    bad = tmp_path / "outputs.json"
    bad.write_text(json.dumps({keys.TARGET: "aks", keys.GPU_TOLERATIONS: "nvidia.com/gpu"}))
    result = CliRunner().invoke(main, ["pipeline", "compile", "--outputs-file", str(bad)])
    assert result.exit_code == 2  # an unusable outputs file is bad input
    assert "gpuTolerations" in result.output
    result = CliRunner().invoke(
        main, ["lineage", "m@champion", "--outputs-file", str(tmp_path / "missing.json")]
    )
    assert result.exit_code == 2
    assert "does not exist" in result.output
