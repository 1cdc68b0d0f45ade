"""Tuning: one search space -> a valid Katib Experiment, and a real Optuna study logged to MLflow."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from pydantic import ValidationError

from stacks.plan.validate import Validator, validate_custom_resource
from tests.workloads.test_target import GPU_TOLERATION, full_outputs
from workloads import registry
from workloads.tuning import katib
from workloads.tuning.space import SearchSpace, load_space


def _space(**changes: Any) -> dict[str, Any]:
    raw = load_space().model_dump(mode="json")
    raw.update(changes)
    return raw


# ---------------------------------------------------------------------------------------------
# Search space


def test_packaged_space_is_valid() -> None:
    space = load_space()
    assert space.objective.metric == "val_roc_auc" and space.objective.direction == "maximize"
    assert {p.name for p in space.parameters} == {"alpha", "l1_ratio", "loss", "epochs"}
    params = space.train_params({"alpha": 0.01, "l1_ratio": 0.5, "loss": "log_loss", "epochs": 20})
    assert params.alpha == 0.01 and params.seed == space.fixed["seed"] and params.checkpoint_every == 0
    assert space.with_budget(1).budget.parallel_trials == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"parameters": [{"name": "alpha", "type": "double", "min": 1.0, "max": 0.1}]},
            "min 1.0 must be below",
        ),
        (
            {"parameters": [{"name": "lr", "type": "double", "min": 0.0, "max": 1.0}]},
            "not a train hyperparameter",
        ),
        (
            {"parameters": [{"name": "alpha", "type": "double", "min": 0.0, "max": 1.0, "log": True}]},
            "min > 0",
        ),
        ({"parameters": [{"name": "loss", "type": "categorical"}]}, "needs non-empty 'values'"),
        ({"algorithm": "grid"}, "has no grid"),
        ({"algorithm": "hyperband"}, "algorithm"),
        ({"fixed": {"alpha": 0.1}}, "both fixed and searched"),
        ({"budget": {"max_trials": 2, "parallel_trials": 3, "max_failed_trials": 0}}, "cannot exceed"),
        ({"name": "Not_DNS"}, "name"),
    ],
)
def test_invalid_spaces_are_rejected(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        SearchSpace.model_validate(_space(**change))


def test_grid_points() -> None:
    space = load_space()
    epochs = next(p for p in space.parameters if p.name == "epochs")
    assert epochs.grid() == [10, 20, 30, 40, 50, 60]


# ---------------------------------------------------------------------------------------------
# Katib


def test_katib_experiment_validates_against_katib_schema(crds: Path) -> None:
    manifest = katib.render_experiment(
        load_space(), image="registry/workloads:1", namespace="katib", tolerations=[GPU_TOLERATION], gpu=True
    )
    assert katib.validate_experiment(manifest) == []
    assert validate_custom_resource(manifest, crds) == []
    # The trial template is unstructured to Katib: check the Job it holds as a Job, strictly.
    job = {**manifest["spec"]["trialTemplate"]["trialSpec"], "metadata": {"name": "trial"}}
    result = Validator("1.33").validate(job)
    assert result.status == "valid", result.errors
    # Survives a YAML round trip with every feasible-space bound still a string.
    reloaded = yaml.safe_load(yaml.safe_dump(manifest))
    assert reloaded == manifest
    for parameter in reloaded["spec"]["parameters"]:
        bounds = {k: v for k, v in parameter["feasibleSpace"].items() if k in ("min", "max", "step")}
        assert all(isinstance(v, str) for v in bounds.values())


def test_katib_experiment_content() -> None:
    space = load_space()
    manifest = katib.render_experiment(space, image="img:1", tolerations=[GPU_TOLERATION])
    spec = manifest["spec"]
    assert spec["objective"] == {
        "type": "maximize",
        "objectiveMetricName": "val_roc_auc",
        "additionalMetricNames": ["val_accuracy", "val_f1"],
    }
    assert spec["algorithm"]["algorithmName"] == "tpe"
    assert (spec["maxTrialCount"], spec["parallelTrialCount"], spec["maxFailedTrialCount"]) == (10, 2, 3)
    alpha = next(p for p in spec["parameters"] if p["name"] == "alpha")
    assert alpha["feasibleSpace"] == {"min": "0.000001", "max": "0.1", "distribution": "logUniform"}
    loss = next(p for p in spec["parameters"] if p["name"] == "loss")
    assert loss["feasibleSpace"] == {"list": ["log_loss", "modified_huber"]}
    pod = spec["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["command"][:3] == ["python", "-m", "workloads.pipelines.train_cli"]
    assert "--alpha=${trialParameters.alpha}" in container["command"]
    assert "--cv-folds=3" in container["command"]
    assert pod["tolerations"] == [GPU_TOLERATION]
    assert "nvidia.com/gpu" not in container["resources"]["limits"]


def test_the_trial_command_runs_and_prints_the_objective(capsys: pytest.CaptureFixture[str]) -> None:
    """Run the trial container's command in-process with the placeholders filled in."""
    from workloads.pipelines import train_cli

    manifest = katib.render_experiment(load_space(), image="img:1")
    command = manifest["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["containers"][0][
        "command"
    ]
    values = {"alpha": "0.001", "l1_ratio": "0.2", "loss": "log_loss", "epochs": "10"}
    argv = [arg for arg in command[3:]]
    for name, value in values.items():
        argv = [arg.replace(f"${{trialParameters.{name}}}", value) for arg in argv]
    assert train_cli.main(argv) == 0
    lines = dict(line.split("=", 1) for line in capsys.readouterr().out.splitlines() if "=" in line)
    assert 0.9 < float(lines["val_roc_auc"]) <= 1.0
    assert {"val_accuracy", "val_f1"} <= set(lines)


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (lambda m: m["spec"]["trialTemplate"]["trialParameters"].pop(), "is not declared"),
        (lambda m: m["spec"]["trialTemplate"].update(primaryContainerName="main"), "primaryContainerName"),
        (lambda m: m["spec"].update(parallelTrialCount=50), "must not exceed"),
        (lambda m: m["spec"]["parameters"][0]["feasibleSpace"].update(min=0.5), "must be strings"),
        (
            lambda m: m["spec"]["parameters"][0]["feasibleSpace"].update(min="1", max="0.5"),
            "min must be below",
        ),
        (lambda m: m["spec"]["algorithm"].update(algorithmName="magic"), "algorithmName"),
        (lambda m: m["metadata"].update(name="Bad_Name"), "DNS-1123"),
    ],
)
def test_broken_experiments_are_caught(breakage: Any, message: str) -> None:
    manifest = katib.render_experiment(load_space(), image="img:1")
    breakage(manifest)
    problems = katib.validate_experiment(manifest)
    assert any(message in p for p in problems), problems


def test_cli_renders_katib_for_a_stack(tmp_path: Path) -> None:
    from mlp.cli import main

    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps(full_outputs() | {"katibNamespace": "katib-system"}))
    out = tmp_path / "experiment.yaml"
    result = CliRunner().invoke(
        main, ["tune", "katib", "--outputs-file", str(outputs), "--out", str(out), "--trials", "4"]
    )
    assert result.exit_code == 0, result.output
    manifest = yaml.safe_load(out.read_text())
    assert manifest["metadata"]["namespace"] == "katib-system"
    assert manifest["spec"]["maxTrialCount"] == 4
    pod = manifest["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]
    assert pod["tolerations"] == [GPU_TOLERATION]
    assert katib.validate_experiment(manifest) == []


# ---------------------------------------------------------------------------------------------
# Optuna


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_optuna_study_logs_trials_as_child_runs(tmp_path: Path) -> None:
    from mlflow import MlflowClient

    from workloads.tuning.study import run_study

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    space = load_space().with_budget(4)
    seen: list[int] = []
    result = run_study(
        space,
        tracking_uri=uri,
        artifact_location=(tmp_path / "art").as_uri(),
        on_trial=lambda r: seen.append(r.number),
    )
    assert seen == [0, 1, 2, 3]
    values = [r.value for r in result.trials]
    assert result.best_value == max(v for v in values if v is not None)
    assert set(result.best_params) == {"alpha", "l1_ratio", "loss", "epochs", "seed"}
    assert 1e-6 <= result.best_params["alpha"] <= 0.1
    assert result.best_params["epochs"] in (10, 20, 30, 40, 50, 60)

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(registry.TUNING_EXPERIMENT)
    children = client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{result.tuning_run_id}'"
    )
    assert len(children) == 4
    assert all("val_roc_auc" in run.data.metrics and "alpha" in run.data.params for run in children)
    parent = client.get_run(result.tuning_run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.metrics["best_val_roc_auc"] == pytest.approx(result.best_value)
    assert parent.data.tags[registry.TAG_DATA_HASH] == result.data_hash

    # Same seed, same study: reproducible.
    again = run_study(space, tracking_uri=uri)
    assert again.best_params == result.best_params


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_cli_tune_run_writes_best_params_for_the_pipeline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlp.cli import main

    monkeypatch.setenv("MLP_HOME", str(tmp_path / "home"))
    out = tmp_path / "best.json"
    result = CliRunner().invoke(main, ["tune", "run", "--trials", "2", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    best = json.loads(out.read_text())
    assert {"alpha", "l1_ratio", "loss", "epochs", "tuning_run_id"} <= set(best)
    from mlp.commands.pipeline import _overrides

    overrides = _overrides((), out)
    assert overrides["tuning_run_id"] == best["tuning_run_id"] and overrides["alpha"] == best["alpha"]
