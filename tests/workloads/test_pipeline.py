"""The training pipeline: data checks, checkpointed training, compiled IR, real runs on kfp.local."""

from __future__ import annotations

import pickle
import signal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from tests.workloads.test_target import full_outputs
from tests.workloads.training import (
    checkpoint_epoch,
    coef,
    resume_and_reference,
    signal_training_mid_run,
)
from workloads import registry
from workloads import target as t
from workloads.pipelines import data, model, steps
from workloads.pipelines import pipeline as training

# ---------------------------------------------------------------------------------------------
# Data


def test_dataset_passes_its_schema() -> None:
    prepared = data.prepare(test_size=0.2, seed=42)
    assert len(prepared.train) + len(prepared.test) == 569
    assert prepared.data_hash.startswith("sha256:") and len(prepared.data_hash) == 7 + 64


def test_validation_reports_every_problem() -> None:
    frame = data.load_dataset()
    first, second = frame.columns[0], frame.columns[1]
    frame.loc[0, first] = -1.0
    frame.loc[1, second] = np.nan
    frame.loc[2, data.TARGET_COLUMN] = 7
    frame = frame.drop(columns=[frame.columns[2]]).assign(extra=1.0)
    with pytest.raises(data.DataValidationError) as error:
        data.validate(frame, data.breast_cancer_schema())
    text = "\n".join(error.value.errors)
    assert len(error.value.errors) >= 5
    assert f"column {first!r} has 1 values outside" in text
    assert f"column {second!r} has 1 missing" in text
    assert "unknown labels [7]" in text
    assert "missing columns" in text and "unexpected columns: ['extra']" in text


def test_class_imbalance_is_rejected() -> None:
    frame = data.load_dataset()
    frame = frame[frame[data.TARGET_COLUMN] == 1].head(200)
    with pytest.raises(data.DataValidationError, match="class 0 is 0.0% of rows"):
        data.validate(frame, data.breast_cancer_schema())


def test_content_hash_is_stable_and_sensitive(tmp_path: Path) -> None:
    frame = data.load_dataset()
    path = tmp_path / "table.csv"
    data.write_table(frame, path)
    assert data.content_hash(data.read_table(path)) == data.content_hash(frame)
    changed = frame.copy()
    changed.iloc[10, 3] = changed.iloc[10, 3] + 1e-9
    assert data.content_hash(changed) != data.content_hash(frame)
    renamed = frame.rename(columns={frame.columns[0]: "other"})
    assert data.content_hash(renamed) != data.content_hash(frame)


def test_split_is_stratified_and_reproducible() -> None:
    frame = data.load_dataset()
    train, test = data.split(frame, test_size=0.2, seed=3)
    overall = frame[data.TARGET_COLUMN].mean()
    assert abs(train[data.TARGET_COLUMN].mean() - overall) < 0.01
    assert abs(test[data.TARGET_COLUMN].mean() - overall) < 0.01
    again, _ = data.split(frame, test_size=0.2, seed=3)
    assert again.equals(train)


# ---------------------------------------------------------------------------------------------
# Training and checkpoints


def test_resume_after_crash_matches_uninterrupted_run(tmp_path: Path, train_split: Any) -> None:
    features, labels, data_hash = train_split
    params = model.TrainParams(epochs=20, checkpoint_every=5)
    key = model.run_key(data_hash, params)
    store = model.checkpoint_store(str(tmp_path), key)

    class Crash(Exception):
        pass

    def crash_at_13(epoch: int, _loss: float) -> None:
        if epoch == 13:
            raise Crash

    with pytest.raises(Crash):
        model.train(features, labels, params, store=store, key=key, on_epoch=crash_at_13)
    resumed = model.train(features, labels, params, store=store, key=key)
    uninterrupted = model.train(features, labels, params)
    assert resumed.resumed_from == 10 and resumed.epochs_run == 10
    np.testing.assert_array_equal(coef(resumed), coef(uninterrupted))
    assert resumed.history == uninterrupted.history and len(resumed.history) == 20

    # A finished run's checkpoint makes a retry a no-op with the same model.
    again = model.train(features, labels, params, store=store, key=key)
    assert again.resumed_from == 20 and again.epochs_run == 0
    np.testing.assert_array_equal(coef(again), coef(uninterrupted))


def test_checkpoint_of_other_inputs_is_ignored(tmp_path: Path, train_split: Any) -> None:
    features, labels, data_hash = train_split
    params = model.TrainParams(epochs=5, checkpoint_every=5)
    other = model.TrainParams(epochs=5, checkpoint_every=5, alpha=0.01)
    assert model.run_key(data_hash, params) != model.run_key(data_hash, other)
    assert model.run_key(data_hash, params) != model.run_key("sha256:other", params)
    store = model.DirectoryCheckpointStore(tmp_path)
    model.train(features, labels, params, store=store, key="a")
    result = model.train(features, labels, params, store=store, key="b")
    assert result.resumed_from == 0


def test_s3_checkpoint_store(monkeypatch: pytest.MonkeyPatch, train_split: Any) -> None:
    import boto3
    import moto

    features, labels, data_hash = train_split
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with moto.mock_aws():
        boto3.client("s3").create_bucket(Bucket="lab")
        params = model.TrainParams(epochs=10, checkpoint_every=5)
        key = model.run_key(data_hash, params)
        store = model.checkpoint_store("s3://lab/checkpoints", key)
        assert isinstance(store, model.S3CheckpointStore)
        assert store.key == f"checkpoints/{key}/latest.ckpt"
        assert store.read() is None
        model.train(features, labels, params, store=store, key=key)
        assert pickle.loads(store.read() or b"")["epoch"] == 10
        assert model.train(features, labels, params, store=store, key=key).resumed_from == 10


def test_hyperparameters_are_checked() -> None:
    with pytest.raises(ValueError, match="alpha must be > 0"):
        model.TrainParams(alpha=0)
    with pytest.raises(ValueError, match="loss must be"):
        model.TrainParams(loss="hinge")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="gate metric must be one of"):
        model.quality_gate({"log_loss": 0.1}, "log_loss", 0.5)


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_killed_training_process_resumes_from_checkpoint(tmp_path: Path) -> None:
    """SIGKILL the train step mid-run (a spot node going away), start it again, compare."""
    ckpt = tmp_path / "ckpt"
    proc, seen = signal_training_mid_run(ckpt, signal.SIGKILL, at_epoch=17)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert 17 <= seen < 40, "the process must die mid-run"
    saved_epoch = checkpoint_epoch(ckpt)
    assert saved_epoch >= 15 and saved_epoch % 5 == 0

    resumed, reference = resume_and_reference(ckpt, tmp_path)
    assert resumed["resumed_from"] == saved_epoch
    assert resumed["epochs_run"] == 40 - saved_epoch
    assert reference["resumed_from"] == 0
    assert resumed["coef"] == reference["coef"] and resumed["intercept"] == reference["intercept"]
    assert resumed["metrics"] == reference["metrics"]


# ---------------------------------------------------------------------------------------------
# Compiled IR


def _ir(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    docs = list(yaml.safe_load_all(path.read_text()))
    return docs[0], (docs[1] if len(docs) > 1 else {})


def test_local_ir_never_caches_register_and_skips_pip(tmp_path: Path) -> None:
    path = training.compile_pipeline(tmp_path / "pipeline.yaml", image="python:3.11")
    spec, platform = _ir(path)
    tasks = spec["root"]["dag"]["tasks"]
    assert set(tasks) == set(training.STEP_NAMES)
    assert tasks["register"].get("cachingOptions", {}).get("enableCache", False) is False
    assert tasks["train"]["cachingOptions"]["enableCache"] is True
    for executor in spec["deploymentSpec"]["executors"].values():
        assert "pip install" not in " ".join(executor["container"]["command"])
    assert platform == {}
    params = spec["root"]["inputDefinitions"]["parameters"]
    assert params["alpha"]["defaultValue"] == model.TrainParams().alpha
    assert {"mlflow_tracking_uri", "checkpoint_root", "gate_threshold", "tuning_run_id"} <= set(params)


def test_cluster_ir_puts_gpu_tolerations_on_train(tmp_path: Path) -> None:
    target = t.Target(name="aks", home=tmp_path, outputs=t.parse_outputs(full_outputs()))
    placement = training.ClusterPlacement.for_target(target, gpu=True)
    path = training.compile_pipeline(
        tmp_path / "cluster.yaml", image="registry/workloads:1", placement=placement
    )
    spec, platform = _ir(path)
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert executors["exec-train"]["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]
    assert executors["exec-train"]["nodeSelector"]["labels"] == {"mlplatform/gpu": "true"}
    assert "tolerations" not in executors.get("exec-preprocess", {})
    for name in ("exec-preprocess", "exec-train", "exec-register"):
        secrets = {s["secretName"]: s for s in executors[name]["secretAsEnv"]}
        secret = secrets[training.S3_SECRET_DEFAULT]
        assert {k["envVar"] for k in secret["keyToEnv"]} == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    train = spec["deploymentSpec"]["executors"]["exec-train"]["container"]
    assert train["image"] == "registry/workloads:1"
    assert train["resources"]["accelerator"]["resourceType"] == "nvidia.com/gpu"
    assert {"name": "AWS_ENDPOINT_URL", "value": "http://minio.storage.svc:9000"} in train["env"]
    assert spec["root"]["dag"]["tasks"]["train"]["retryPolicy"]["maxRetryCount"] == 3


def test_pipeline_arguments(tmp_path: Path) -> None:
    local = t.Target(name="local", home=tmp_path)
    args = training.arguments_for(local, {"alpha": 0.01, "tuning_run_id": "abc"})
    assert args["mlflow_tracking_uri"] == f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert args["checkpoint_root"] == str(tmp_path / "checkpoints")
    assert args["alpha"] == 0.01 and args["git_commit"]
    with pytest.raises(ValueError, match="unknown pipeline parameters"):
        training.arguments_for(local, {"learning_rate": 1})
    with pytest.raises(ValueError, match="alpha must be > 0"):
        training.arguments_for(local, {"alpha": -1.0})
    assert training.parse_param("epochs", "12") == 12
    with pytest.raises(ValueError, match="needs a int"):
        training.parse_param("epochs", "many")


# ---------------------------------------------------------------------------------------------
# Real runs on kfp.local


@pytest.fixture(scope="module")
def local_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A good run, a deliberately worse run, then the good run again with the cache warm."""
    home = tmp_path_factory.mktemp("mlp-home")
    target = t.Target(name="local", home=home)
    good = {"alpha": 1e-4, "epochs": 30}
    worse = {"alpha": 1.0, "epochs": 1, "gate_threshold": 0.5}
    commit = registry.git_commit()  # the checkout's commit before the runs (a commit may land meanwhile)
    runs = {
        "first": training.run_local(target, good),
        "worse": training.run_local(target, worse),
        "again": training.run_local(target, good),
    }
    return {"target": target, "runs": runs, "commit": commit}


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_pipeline_run_registers_version_with_full_lineage(local_runs: dict[str, Any]) -> None:
    from mlflow import MlflowClient

    target, run = local_runs["target"], local_runs["runs"]["first"]
    outputs = run.outputs
    assert outputs.model_version == "1" and outputs.promoted
    assert outputs.aliases.split(",") == ["challenger", "champion"]
    assert set(run.step_seconds) == set(training.STEP_NAMES)

    client = MlflowClient(tracking_uri=target.mlflow_tracking_uri, registry_uri=target.mlflow_tracking_uri)
    version = client.get_model_version(registry.DEFAULT_MODEL_NAME, "1")
    assert version.run_id == outputs.mlflow_run_id
    assert version.tags[registry.TAG_DATA_HASH] == data.prepare().data_hash
    assert version.tags[registry.TAG_PIPELINE_RUN_ID] == outputs.pipeline_run_id != ""
    assert version.tags[registry.TAG_PIPELINE_RUN_NAME].startswith(training.PIPELINE_NAME)
    assert version.tags[registry.TAG_GIT_COMMIT] in {local_runs["commit"], registry.git_commit()} - {""}
    assert version.tags[registry.TAG_GATE_PASSED] == "true"
    mlflow_run = client.get_run(version.run_id)
    assert mlflow_run.data.params["alpha"] == "0.0001" and mlflow_run.data.params["epochs"] == "30"
    assert {"accuracy", "f1", "roc_auc", "log_loss", "train_log_loss"} <= set(mlflow_run.data.metrics)
    assert len(client.get_metric_history(version.run_id, "train_log_loss")) == 30
    assert mlflow_run.data.metrics["roc_auc"] > 0.95

    import mlflow.pyfunc

    mlflow.set_tracking_uri(target.mlflow_tracking_uri)
    mlflow.set_registry_uri(target.mlflow_tracking_uri)
    loaded = mlflow.pyfunc.load_model(f"models:/{registry.DEFAULT_MODEL_NAME}@champion")
    signature = loaded.metadata.signature
    assert signature is not None and len(signature.inputs.input_names()) == 30
    features, labels = data.features_and_target(data.prepare().test)
    accuracy = float((np.asarray(loaded.predict(features)) == labels).mean())
    assert accuracy == pytest.approx(mlflow_run.data.metrics["accuracy"])


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_worse_model_does_not_take_champion(local_runs: dict[str, Any]) -> None:
    from mlflow import MlflowClient

    target, runs = local_runs["target"], local_runs["runs"]
    worse = runs["worse"].outputs
    assert worse.model_version == "2" and not worse.promoted
    assert worse.aliases == "challenger"
    assert worse.decision.startswith("kept champion v1")
    client = MlflowClient(tracking_uri=target.mlflow_tracking_uri, registry_uri=target.mlflow_tracking_uri)
    champion = client.get_model_version_by_alias(registry.DEFAULT_MODEL_NAME, "champion")
    assert str(champion.version) == "1"
    first_auc = client.get_run(runs["first"].outputs.mlflow_run_id).data.metrics["roc_auc"]
    worse_auc = client.get_run(worse.mlflow_run_id).data.metrics["roc_auc"]
    assert worse_auc < first_auc


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_caching_does_not_skip_registration(local_runs: dict[str, Any]) -> None:
    again = local_runs["runs"]["again"]
    assert "preprocess" in again.cached_steps
    assert "register" not in again.cached_steps
    assert again.outputs.model_version == "3"
    assert again.outputs.pipeline_run_id != local_runs["runs"]["first"].outputs.pipeline_run_id
    # Same data and parameters: the same model, so the champion stays (a tie never promotes).
    assert again.outputs.decision.startswith("kept champion v1")


def test_step_functions_round_trip(tmp_path: Path) -> None:
    """The step functions the components call, without KFP, on files."""
    train_csv, test_csv, model_path = tmp_path / "train.csv", tmp_path / "test.csv", tmp_path / "m.pkl"
    pre = steps.preprocess(0.2, 42, str(train_csv), str(test_csv))
    assert pre["n_train"] == 455 and pre["n_test"] == 114
    trained = steps.train(
        str(train_csv),
        pre["data_hash"],
        model.TrainParams(epochs=10),
        str(tmp_path / "ckpt"),
        str(model_path),
    )
    assert trained["resumed_from"] == 0 and len(trained["history"]) == 10
    evaluated = steps.evaluate(str(model_path), str(test_csv), "roc_auc", 0.9)
    assert evaluated["passed"] and evaluated["metrics"]["roc_auc"] > 0.9
    assert not steps.evaluate(str(model_path), str(test_csv), "roc_auc", 1.01)["passed"]


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_gate_rejection_and_step_failure(local_runs: dict[str, Any]) -> None:
    target = local_runs["target"]
    rejected = training.run_local(target, {"alpha": 1e-4, "epochs": 30, "gate_threshold": 0.9999})
    assert rejected.outputs.model_version == "" and not rejected.outputs.promoted
    assert rejected.outputs.decision.startswith("rejected by the quality gate")
    assert rejected.outputs.mlflow_run_id  # tracked, not registered

    with pytest.raises(training.PipelineRunError) as error:
        training.run_local(target, {"gate_metric": "log_loss"})
    assert "evaluate" in str(error.value)
    assert "gate metric must be one of" in error.value.log_path.read_text()


def test_submit_to_a_stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The cluster path up to the KFP API: compile with placement, submit with the stack's wiring."""
    import kfp

    calls: dict[str, Any] = {}

    class FakeClient:
        def __init__(self, host: str) -> None:
            calls["host"] = host

        def create_run_from_pipeline_package(self, path: str, **kwargs: Any) -> Any:
            calls["package"], calls["kwargs"] = path, kwargs
            return type("Run", (), {"run_id": "run-123"})()

    monkeypatch.setattr(kfp, "Client", FakeClient)
    monkeypatch.chdir(tmp_path)
    target = t.Target(name="aks", home=tmp_path, outputs=t.parse_outputs(full_outputs()))
    result = training.submit(target, {"alpha": 0.01})
    assert calls["host"] == "http://ml-pipeline.kubeflow.svc:8888"
    assert result["run_id"] == "run-123" and result["run_url"].endswith("/#/runs/details/run-123")
    arguments = calls["kwargs"]["arguments"]
    assert arguments["mlflow_tracking_uri"] == "http://mlflow.mlflow.svc:5000"
    assert arguments["checkpoint_root"] == "s3://mlplatform/checkpoints"
    assert arguments["mlflow_artifact_location"] == "" and arguments["alpha"] == 0.01
    _, platform = _ir(Path(calls["package"]))
    assert "tolerations" in platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]["exec-train"]


@pytest.mark.filterwarnings("ignore:This client only works:FutureWarning")
def test_submit_to_an_unreachable_endpoint_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    raw = full_outputs() | {"kfpEndpoint": "http://127.0.0.1:9"}
    target = t.Target(name="aks", home=tmp_path, outputs=t.parse_outputs(raw))
    with pytest.raises(
        training.SubmitError, match="could not submit to Kubeflow Pipelines at http://127.0.0.1:9"
    ):
        training.submit(target)
