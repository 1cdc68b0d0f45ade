"""Registry and lineage: champion/challenger rules, `mlp lineage`, and the `mlp demo` main job."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from mlp.cli import main
from workloads import registry
from workloads.pipelines import data, model

MODEL = "lineage-test-model"


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("m@champion", ("m", "champion", None)),
        ("models:/my-model@challenger", ("my-model", "challenger", None)),
        ("m/3", ("m", None, "3")),
    ],
)
def test_parse_model_ref(ref: str, expected: tuple[str, str | None, str | None]) -> None:
    assert registry.parse_model_ref(ref) == expected


@pytest.mark.parametrize("ref", ["m", "m@", "m/x", "@champion", "m@a/1"])
def test_bad_model_refs(ref: str) -> None:
    with pytest.raises(registry.RegistryError, match="is not of the form"):
        registry.parse_model_ref(ref)


def test_git_commit_outside_a_repository(tmp_path: Path) -> None:
    assert registry.git_commit(tmp_path) == "unknown"


def test_lineage_without_local_state_says_what_to_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLP_HOME", str(tmp_path / "empty"))
    result = CliRunner().invoke(main, ["lineage", "m@champion"])
    assert result.exit_code == 4
    assert "run `mlp demo`" in result.output
    assert not (tmp_path / "empty").exists()  # reading lineage creates no state


@pytest.fixture(scope="module")
def fitted() -> dict[str, Any]:
    prepared = data.prepare()
    features, labels = data.features_and_target(prepared.train)
    test_features, test_labels = data.features_and_target(prepared.test)
    trained = model.train(features, labels, model.TrainParams(epochs=10, checkpoint_every=0))
    return {
        "model": trained.model,
        "example": test_features.head(3),
        "metrics": model.evaluate(trained.model, test_features, test_labels),
        "data_hash": prepared.data_hash,
    }


def _candidate(fitted: dict[str, Any], auc: float, **changes: Any) -> registry.Candidate:
    fields: dict[str, Any] = {
        "model": fitted["model"],
        "example": fitted["example"],
        "params": {"alpha": 0.0001, "epochs": 10},
        "metrics": {**fitted["metrics"], "roc_auc": auc},
        "history": [0.5, 0.3, 0.2],
        "data_hash": fitted["data_hash"],
        "gate_metric": "roc_auc",
        "gate_threshold": 0.9,
        "pipeline_run_id": f"run-{auc}",
        "pipeline_run_name": f"mlp-training-{auc}",
        "git_commit": "0123abc",
        "tuning_run_id": "",
    }
    fields.update(changes)
    return registry.Candidate(**fields)


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_champion_challenger_rules(tmp_path: Path, fitted: dict[str, Any]) -> None:
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    location = (tmp_path / "artifacts").as_uri()

    def register(auc: float, **changes: Any) -> registry.Registration:
        return registry.register_candidate(
            _candidate(fitted, auc, **changes), tracking_uri=uri, model_name=MODEL, artifact_location=location
        )

    first = register(0.95)
    assert (first.version, first.promoted, first.aliases) == ("1", True, ["challenger", "champion"])
    worse = register(0.93)
    assert (worse.version, worse.promoted, worse.aliases) == ("2", False, ["challenger"])
    assert "kept champion v1" in worse.decision
    tie = register(0.95)
    assert (tie.version, tie.promoted) == ("3", False)
    better = register(0.97)
    assert (better.version, better.promoted, better.aliases) == ("4", True, ["challenger", "champion"])
    assert "beat champion v1" in better.decision
    rejected = register(0.85)
    assert rejected.version is None and "rejected by the quality gate" in rejected.decision
    vetoed = register(0.99, gate_passed=False)
    assert vetoed.version is None and "rejected" in vetoed.decision

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    assert str(client.get_model_version_by_alias(MODEL, "champion").version) == "4"
    assert str(client.get_model_version_by_alias(MODEL, "challenger").version) == "4"
    assert len(client.search_model_versions(f"name = '{MODEL}'")) == 4
    rejected_run = client.get_run(rejected.run_id)
    assert rejected_run.data.tags[registry.TAG_GATE_PASSED] == "false"
    assert rejected_run.data.metrics["roc_auc"] == 0.85

    found = registry.lineage(f"{MODEL}@champion", uri)
    assert found.version == "4" and found.aliases == ["challenger", "champion"]
    assert found.data_hash == fitted["data_hash"]
    assert found.git_commit == "0123abc"
    assert found.pipeline_run_id == "run-0.97" and found.pipeline_run_name == "mlp-training-0.97"
    assert found.run_id == better.run_id and found.experiment == registry.TRAINING_EXPERIMENT
    assert found.params == {"alpha": "0.0001", "epochs": "10"}
    assert found.metrics["roc_auc"] == 0.97
    assert found.gate["passed"] == "true" and "beat champion" in found.gate["promotion"]
    assert registry.lineage(f"{MODEL}/2", uri).aliases == []

    with pytest.raises(registry.RegistryError, match=f"registered models: \\['{MODEL}'\\]"):
        registry.lineage(f"{MODEL}@nope", uri)


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_demo_then_lineage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's main job on a cold home: tune -> pipeline -> register, summary, lineage."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLP_HOME", str(tmp_path / "state"))
    runner = CliRunner()
    result = runner.invoke(main, ["demo", "--trials", "3"])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "build" / "demo" / "summary.json").read_text())
    assert summary["registered"] and summary["promoted"]
    assert summary["model"] == {
        "name": registry.DEFAULT_MODEL_NAME,
        "version": "1",
        "aliases": ["challenger", "champion"],
    }
    assert summary["tuning"]["trials"] == 3
    assert set(summary["best_params"]) >= {"alpha", "l1_ratio", "loss", "epochs"}
    assert summary["data_hash"] == data.prepare().data_hash
    assert summary["metrics"]["roc_auc"] >= 0.95
    for step in ("setup", "tune", "compile", "pipeline", "summary", "pipeline.train", "pipeline.register"):
        assert summary["step_seconds"][step] >= 0
    assert (tmp_path / "build" / "pipeline" / "training-pipeline.yaml").exists()
    assert summary["pipeline_package"] == "build/pipeline/training-pipeline.yaml"
    # The serving act on the real KServe servers, nginx and Prometheus.
    serving = summary["serving"]
    assert serving["canary"]["decision"] in ("promote", "rollback") and serving["canary"]["steps"]
    assert serving["shadow"]["responses_only_from_primary"] is True
    assert serving["drift"]["flags_exactly_the_shifted"] is True, serving["drift"]
    assert serving["benchmark"]["ratios"] and Path(serving["benchmark"]["report"]).exists()

    lineage = runner.invoke(main, ["lineage", f"{registry.DEFAULT_MODEL_NAME}@champion", "--json"])
    assert lineage.exit_code == 0, lineage.output
    found = json.loads(lineage.output)
    assert found["data_hash"] == summary["data_hash"]
    assert found["tuning_run_id"] == summary["lineage"]["tuning_run_id"] != ""
    assert found["pipeline_run_id"] == summary["lineage"]["pipeline_run_id"]
    assert float(found["params"]["alpha"]) == pytest.approx(summary["best_params"]["alpha"])
    assert found["tuning"]["metrics"]["best_val_roc_auc"] == pytest.approx(summary["tuning"]["best_value"])

    table = runner.invoke(main, ["lineage", f"{registry.DEFAULT_MODEL_NAME}@champion"])
    assert table.exit_code == 0 and summary["data_hash"][:20] in table.output.replace("\n", "")
    missing = runner.invoke(main, ["lineage", f"{registry.DEFAULT_MODEL_NAME}@nope"])
    assert missing.exit_code == 4 and "no model version" in missing.output
