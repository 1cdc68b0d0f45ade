"""Run a search space locally with Optuna; log the study and every trial to MLflow.

The study is a parent MLflow run in the ``mlp-tuning`` experiment; each trial is a child run with
its parameters and validation metrics. The best parameters go back to the caller (and on to the
pipeline), together with the study's run id so the registered model can point at it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, cast

from workloads import registry
from workloads.pipelines import data, model
from workloads.tuning.space import SearchSpace


@dataclass
class TrialRecord:
    """One finished trial."""

    number: int
    params: dict[str, Any]
    value: float | None
    metrics: dict[str, float]
    state: str
    run_id: str
    seconds: float


@dataclass
class StudyResult:
    """Outcome of :func:`run_study`.

    Attributes:
        best_params: Train hyperparameters of the best trial (fixed values included).
        best_value: Its objective value.
        best_trial: Its number.
        tuning_run_id: MLflow run id of the study (parent of the trial runs).
        data_hash: Content hash of the data the trials saw.
        trials: Every trial.
        seconds: Wall time of the study.
    """

    best_params: dict[str, Any]
    best_value: float
    best_trial: int
    tuning_run_id: str
    data_hash: str
    trials: list[TrialRecord] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON output."""
        return asdict(self)


def _sampler(space: SearchSpace) -> Any:
    import optuna

    if space.algorithm == "random":
        return optuna.samplers.RandomSampler(seed=space.seed)
    if space.algorithm == "grid":
        return optuna.samplers.GridSampler({p.name: p.grid() for p in space.parameters}, seed=space.seed)
    # Few trials: let TPE start modelling after a handful of random ones.
    return optuna.samplers.TPESampler(seed=space.seed, n_startup_trials=min(5, space.budget.max_trials))


def _suggest(trial: Any, space: SearchSpace) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for p in space.parameters:
        if p.type == "categorical":
            values[p.name] = trial.suggest_categorical(p.name, p.values)
        elif p.type == "int":
            assert p.min is not None and p.max is not None
            values[p.name] = trial.suggest_int(
                p.name, int(p.min), int(p.max), step=int(p.step or 1), log=p.log
            )
        else:
            assert p.min is not None and p.max is not None
            values[p.name] = trial.suggest_float(p.name, p.min, p.max, step=p.step, log=p.log)
    return values


def run_study(
    space: SearchSpace,
    *,
    tracking_uri: str,
    artifact_location: str | None = None,
    test_size: float = 0.2,
    split_seed: int = 42,
    on_trial: Callable[[TrialRecord], None] | None = None,
) -> StudyResult:
    """Run the search space with Optuna, logging the study and its trials to MLflow.

    Trials score parameters by cross-validation on the training split only; the test split stays
    untouched for the pipeline's evaluate step.

    Args:
        space: What to search and how long.
        tracking_uri: MLflow tracking URI.
        artifact_location: Artifact root if the tuning experiment must be created.
        test_size: Held-out share, as in the pipeline (trials never see it).
        split_seed: Split seed, as in the pipeline.
        on_trial: Called after each trial (progress reporting).

    Returns:
        The best parameters and every trial.

    Raises:
        RuntimeError: When more than ``max_failed_trials`` trials fail, or none succeeds.
    """
    import mlflow
    import optuna
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    started = time.perf_counter()
    mlflow.set_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri=tracking_uri)
    experiment_id = registry.ensure_experiment(registry.TUNING_EXPERIMENT, artifact_location)
    prepared = data.prepare(test_size=test_size, seed=split_seed)
    features, labels = data.features_and_target(prepared.train)
    direction = space.objective.direction
    parent = client.create_run(
        experiment_id,
        run_name=f"study-{space.name}",
        tags={
            registry.TAG_DATA_HASH: prepared.data_hash,
            registry.TAG_GIT_COMMIT: registry.git_commit(),
            "mlp.algorithm": space.algorithm,
            "mlp.objective": f"{direction} {space.objective.metric}",
        },
    )
    parent_id = parent.info.run_id
    client.log_dict(parent_id, space.model_dump(mode="json"), "search-space.json")
    records: list[TrialRecord] = []
    failures = 0

    def objective(trial: Any) -> float:
        nonlocal failures
        trial_started = time.perf_counter()
        sampled = _suggest(trial, space)
        state, metrics, value = "COMPLETE", {}, None
        try:
            params = space.train_params(sampled)
            metrics = model.cross_validate(features, labels, params, folds=space.cv_folds)
            value = metrics[space.objective.metric]
        except Exception:
            state = "FAIL"
            failures += 1
            raise
        finally:
            run = client.create_run(
                experiment_id,
                run_name=f"trial-{trial.number}",
                tags={MLFLOW_PARENT_RUN_ID: parent_id, registry.TAG_DATA_HASH: prepared.data_hash},
            )
            now = int(time.time() * 1000)
            client.log_batch(
                run.info.run_id,
                metrics=[Metric(k, v, now, 0) for k, v in metrics.items()],
                params=[Param(k, str(v)) for k, v in sampled.items()],
                tags=[RunTag(MLFLOW_RUN_NAME, f"trial-{trial.number}"), RunTag("mlp.trial_state", state)],
            )
            client.set_terminated(run.info.run_id, "FINISHED" if state == "COMPLETE" else "FAILED")
            record = TrialRecord(
                number=trial.number,
                params=sampled,
                value=value,
                metrics=metrics,
                state=state,
                run_id=run.info.run_id,
                seconds=round(time.perf_counter() - trial_started, 4),
            )
            records.append(record)
            if on_trial is not None:
                on_trial(record)
        return value

    def stop_on_failures(study: Any, _trial: Any) -> None:
        if failures > space.budget.max_failed_trials:
            study.stop()

    study = optuna.create_study(direction=direction, sampler=_sampler(space), study_name=space.name)
    try:
        study.optimize(
            objective,
            n_trials=space.budget.max_trials,
            catch=(ValueError, ArithmeticError),
            callbacks=[stop_on_failures],
        )
    except BaseException:
        client.set_terminated(parent_id, "FAILED")
        raise
    completed = [r for r in records if r.state == "COMPLETE"]
    if failures > space.budget.max_failed_trials or not completed:
        client.set_terminated(parent_id, "FAILED")
        raise RuntimeError(
            f"tuning failed: {failures} failed trials (limit {space.budget.max_failed_trials}), "
            f"{len(completed)} completed"
        )
    best = study.best_trial
    best_value = cast(float, best.value)  # the best trial is a completed one: it has a value
    best_params = space.train_params(best.params).model_params()
    now = int(time.time() * 1000)
    client.log_batch(
        parent_id,
        metrics=[
            Metric(f"best_{space.objective.metric}", float(best_value), now, 0),
            Metric("trials_completed", float(len(completed)), now, 0),
            Metric("trials_failed", float(failures), now, 0),
        ],
        params=[Param(f"best_{k}", str(v)) for k, v in best_params.items()],
    )
    client.set_terminated(parent_id, "FINISHED")
    return StudyResult(
        best_params=best_params,
        best_value=float(best_value),
        best_trial=best.number,
        tuning_run_id=parent_id,
        data_hash=prepared.data_hash,
        trials=records,
        seconds=round(time.perf_counter() - started, 3),
    )
