"""The dataset trigger's end of the chain: the object key reaches preprocess, credentials by Secret.

Argo Events' trigger Job runs ``mlp pipeline run`` with ``MLP_DATASET_KEY`` set to the object key
that landed; the run's preprocess step must read ``s3://<datasetsBucket>/<key>`` (not the bundled
dataset), the steps must get the MLflow user from the Secret the platform layer declares, and
neither the Job nor the compiled pipeline may carry a credential value.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from click.testing import CliRunner

from components import events, tracking
from mlp.cli import main as mlp_main
from stacks import outputs as keys
from tests.manifests import dataset_events_args
from tests.workloads.test_target import full_outputs
from workloads import target as t
from workloads.pipelines import data, steps
from workloads.pipelines import pipeline as training


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Any:
    import boto3
    import moto

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with moto.mock_aws():
        client = boto3.client("s3")
        client.create_bucket(Bucket="datasets")
        yield client


def test_preprocess_reads_the_dataset_object_instead_of_the_bundled_one(s3: Any, tmp_path: Path) -> None:
    bundled = data.load_dataset()
    landed = bundled.sample(frac=0.8, random_state=3).reset_index(drop=True)
    s3.put_object(Bucket="datasets", Key="new/batch.csv", Body=landed.to_csv(index=False).encode())

    result = steps.preprocess(
        0.2,
        42,
        str(tmp_path / "train.csv"),
        str(tmp_path / "test.csv"),
        dataset_uri="s3://datasets/new/batch.csv",
    )

    read_back = data.read_dataset("s3://datasets/new/batch.csv")
    assert result["data_hash"] == data.content_hash(read_back)
    assert result["data_hash"] != data.content_hash(bundled)
    assert result["n_train"] + result["n_test"] == len(landed)


def test_a_missing_or_broken_dataset_object_fails_validation_by_name(s3: Any, tmp_path: Path) -> None:
    with pytest.raises(data.DataValidationError, match="cannot read dataset s3://datasets/absent.csv"):
        steps.preprocess(
            0.2, 42, str(tmp_path / "a"), str(tmp_path / "b"), dataset_uri="s3://datasets/absent.csv"
        )
    broken = data.load_dataset().drop(columns=["mean radius"])
    s3.put_object(Bucket="datasets", Key="broken.csv", Body=broken.to_csv(index=False).encode())
    with pytest.raises(data.DataValidationError, match="mean radius"):
        steps.preprocess(
            0.2, 42, str(tmp_path / "a"), str(tmp_path / "b"), dataset_uri="s3://datasets/broken.csv"
        )


def _pipeline_run_command() -> click.Command:
    group = mlp_main.get_command(click.Context(mlp_main), "pipeline")
    assert isinstance(group, click.Group)
    command = group.get_command(click.Context(group), "run")
    assert command is not None
    return command


def test_the_trigger_jobs_variable_is_the_run_commands_dataset_key() -> None:
    [option] = [p for p in _pipeline_run_command().params if p.name == "dataset_key"]
    assert option.envvar == events.DATASET_KEY_ENV


@pytest.fixture
def stack_outputs(tmp_path: Path) -> Path:
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(full_outputs() | {keys.DATASETS_BUCKET: "datasets"}))
    return path


def test_the_dataset_key_points_preprocess_at_the_stacks_bucket(
    stack_outputs: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    submitted: dict[str, Any] = {}

    def fake_submit(target: t.Target, overrides: dict[str, Any], **_: Any) -> dict[str, Any]:
        submitted.update(overrides)
        return {"run_id": "r1", "run_url": "http://kfp/#/runs/details/r1", "package_path": "p"}

    monkeypatch.setattr(training, "submit", fake_submit)
    monkeypatch.setenv("MLP_HOME", str(tmp_path / "home"))
    runner = CliRunner()
    result = runner.invoke(
        mlp_main,
        ["pipeline", "run", "--outputs-file", str(stack_outputs), "--json"],
        env={events.DATASET_KEY_ENV: "incoming/2026-11/batch.csv"},
    )
    assert result.exit_code == 0, result.output
    assert submitted["dataset_uri"] == "s3://datasets/incoming/2026-11/batch.csv"
    assert (
        training.arguments_for(
            t.Target(name="aks", home=tmp_path, outputs=t.parse_outputs(full_outputs())), submitted
        )["dataset_uri"]
        == submitted["dataset_uri"]
    )


@pytest.mark.parametrize("key", ["/etc/passwd", "s3://other/x.csv", "   "])
def test_a_dataset_key_that_is_not_an_object_key_is_bad_input(
    stack_outputs: Path, key: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLP_HOME", str(tmp_path / "home"))
    result = CliRunner().invoke(
        mlp_main, ["pipeline", "run", "--outputs-file", str(stack_outputs), "--dataset-key", key]
    )
    assert result.exit_code == 2, result.output
    assert "object key inside the datasets bucket" in result.output
    assert "Traceback" not in result.output


def test_compiled_steps_get_object_store_and_mlflow_users_from_secrets(tmp_path: Path) -> None:
    target = t.Target(name="aks", home=tmp_path, outputs=t.parse_outputs(full_outputs()))
    placement = training.ClusterPlacement.for_target(target)
    path = training.compile_pipeline(tmp_path / "p.yaml", image="registry/workloads:1", placement=placement)
    spec, platform = list(yaml.safe_load_all(path.read_text()))
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    # The component declares the Secret under the name and keys the pipeline reads.
    assert training.MLFLOW_SECRET_DEFAULT == tracking.TRACKING_SECRET
    assert set(training.MLFLOW_SECRET_KEYS) == {
        tracking.TRACKING_USERNAME_KEY,
        tracking.TRACKING_PASSWORD_KEY,
    }
    register = {s["secretName"]: s for s in executors["exec-register"]["secretAsEnv"]}
    mlflow_env = {(k["secretKey"], k["envVar"]) for k in register[tracking.TRACKING_SECRET]["keyToEnv"]}
    assert mlflow_env == {
        (tracking.TRACKING_USERNAME_KEY, "MLFLOW_TRACKING_USERNAME"),
        (tracking.TRACKING_PASSWORD_KEY, "MLFLOW_TRACKING_PASSWORD"),
    }
    preprocess = {s["secretName"] for s in executors["exec-preprocess"]["secretAsEnv"]}
    assert preprocess == {training.S3_SECRET_DEFAULT}
    container = spec["deploymentSpec"]["executors"]["exec-preprocess"]["container"]
    assert {"name": "AWS_ENDPOINT_URL", "value": "http://minio.storage.svc:9000"} in container["env"]
    text = path.read_text()
    assert "s3cret-value" not in text


def test_the_trigger_job_reads_mlflow_credentials_by_secret_reference() -> None:
    args = dataset_events_args(
        tracking=tracking.TrackingCredentials(username="mlp-admin", password="pw-value")
    )
    job = events.trigger_job(args, service_account="sensor", outputs_config_map="outputs")
    [container] = job["spec"]["template"]["spec"]["containers"]
    env = container["env"]
    # The Sensor writes the object key into env[0] (its parameter's dest path).
    assert env[0]["name"] == events.DATASET_KEY_ENV
    sensor = events.sensor_spec(
        args, minio_source="m", webhook_source="w", service_account="sensor", outputs_config_map="outputs"
    )
    dests = {p["dest"] for trigger in sensor["triggers"] for p in trigger["template"]["k8s"]["parameters"]}
    assert "spec.template.spec.containers.0.env.0.value" in dests
    by_name = {e["name"]: e for e in env}
    for var in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        assert "value" not in by_name[var]
        assert by_name[var]["valueFrom"]["secretKeyRef"]["name"] == tracking.TRACKING_SECRET
    assert "pw-value" not in json.dumps(job)
