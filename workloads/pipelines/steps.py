"""The four pipeline steps as plain functions over file paths and plain values.

KFP components (``components.py``) are thin shells that call these; so do tests and the Katib
trial entry point. Keeping the work here means a step can be tested, profiled and debugged
without an orchestrator.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from workloads.pipelines import data, interrupt, model


def preprocess(
    test_size: float, seed: int, train_path: str, test_path: str, dataset_uri: str = ""
) -> dict[str, Any]:
    """Load, validate, hash and split the dataset; write both splits as CSV.

    Args:
        test_size: Share of rows in the test split.
        seed: Split seed.
        train_path: Where the train split goes.
        test_path: Where the test split goes.
        dataset_uri: A CSV dataset (``s3://bucket/key`` or a path) instead of the bundled one;
            it must pass the same schema checks.

    Returns:
        ``data_hash``, ``n_train`` and ``n_test``.
    """
    frame = data.read_dataset(dataset_uri) if dataset_uri else None
    prepared = data.prepare(test_size=test_size, seed=seed, frame=frame)
    data.write_table(prepared.train, train_path)
    data.write_table(prepared.test, test_path)
    return {"data_hash": prepared.data_hash, "n_train": len(prepared.train), "n_test": len(prepared.test)}


def train(
    train_path: str,
    data_hash: str,
    params: model.TrainParams,
    checkpoint_root: str,
    model_path: str,
) -> dict[str, Any]:
    """Train with checkpoints under ``checkpoint_root`` and pickle the fitted model to ``model_path``.

    The checkpoint key is derived from the data hash and the model parameters, so a retried or
    re-submitted step with the same inputs resumes where the previous attempt stopped. SIGTERM
    (a node drained on a spot interruption notice) stops training after the current epoch with a
    checkpoint written at once.

    Returns:
        ``resumed_from``, ``epochs_run``, ``history`` (per-epoch loss), ``run_key`` and ``seconds``.

    Raises:
        workloads.pipelines.interrupt.TrainingInterrupted: On SIGTERM before the last epoch; the
            caller exits with ``interrupt.EXIT_ON_SIGTERM`` (143) so the step is retried.
    """
    features, labels = data.features_and_target(data.read_table(train_path))
    key = model.run_key(data_hash, params)
    store = model.checkpoint_store(checkpoint_root, key) if checkpoint_root else None
    with interrupt.stop_on_sigterm() as stop:
        result = model.train(features, labels, params, store=store, key=key, stop=stop)
    Path(model_path).parent.mkdir(parents=True, exist_ok=True)
    with open(model_path, "wb") as handle:
        pickle.dump(result.model, handle, protocol=pickle.HIGHEST_PROTOCOL)
    return {
        "resumed_from": result.resumed_from,
        "epochs_run": result.epochs_run,
        "history": result.history,
        "run_key": key,
        "seconds": result.seconds,
    }


def load_model(model_path: str) -> Any:
    """Load a model pickled by :func:`train` (a pipeline-internal artifact, never user input)."""
    with open(model_path, "rb") as handle:
        return pickle.load(handle)  # noqa: S301 - written by this pipeline's train step


def evaluate(model_path: str, test_path: str, gate_metric: str, gate_threshold: float) -> dict[str, Any]:
    """Held-out metrics and the quality-gate verdict.

    Returns:
        ``metrics`` (dict) and ``passed`` (bool).
    """
    features, labels = data.features_and_target(data.read_table(test_path))
    metrics = model.evaluate(load_model(model_path), features, labels)
    return {"metrics": metrics, "passed": model.quality_gate(metrics, gate_metric, gate_threshold)}


def register(
    *,
    model_path: str,
    test_path: str,
    params: dict[str, Any],
    metrics: dict[str, float],
    history: list[float],
    data_hash: str,
    gate_metric: str,
    gate_threshold: float,
    gate_passed: bool,
    resumed_from: int,
    tracking_uri: str,
    experiment: str,
    artifact_location: str,
    model_name: str,
    pipeline_run_id: str,
    pipeline_run_name: str,
    git_commit: str,
    tuning_run_id: str,
) -> dict[str, Any]:
    """Log the candidate to MLflow and register/promote it (see ``workloads.registry``).

    Returns:
        ``run_id``, ``version`` ("" when the gate failed), ``aliases``, ``promoted``, ``decision``.
    """
    from workloads import registry

    features, _ = data.features_and_target(data.read_table(test_path))
    candidate = registry.Candidate(
        model=load_model(model_path),
        example=features.head(5),
        params=params,
        metrics=metrics,
        history=history,
        data_hash=data_hash,
        gate_metric=gate_metric,
        gate_threshold=gate_threshold,
        gate_passed=gate_passed,
        pipeline_run_id=pipeline_run_id,
        pipeline_run_name=pipeline_run_name,
        git_commit=git_commit,
        tuning_run_id=tuning_run_id,
        resumed_from_epoch=resumed_from,
    )
    outcome = registry.register_candidate(
        candidate,
        tracking_uri=tracking_uri,
        model_name=model_name,
        experiment=experiment,
        artifact_location=artifact_location or None,
    )
    return {
        "run_id": outcome.run_id,
        "version": outcome.version or "",
        "aliases": outcome.aliases,
        "promoted": outcome.promoted,
        "decision": outcome.decision,
    }
