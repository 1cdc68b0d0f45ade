"""Lightweight KFP component functions of the training pipeline.

KFP copies each function's source into the step's container, so every import happens inside the
function and the work is delegated to ``workloads.pipelines.steps``: the step image (or, locally,
the current environment) must have this project installed. The functions become components in
``pipeline.build_pipeline``, which picks the image for the target.

This module deliberately has no ``from __future__ import annotations``: KFP reads the parameter
annotations as real types to build the component interface. The return types use the functional
``NamedTuple("X", [...])`` form inside the signature because KFP copies only the function's source
into the step (a module-level class would not exist there); mypy accepts no call in an annotation,
hence the targeted ``type: ignore[valid-type]`` on those lines.
"""

from typing import NamedTuple

from kfp.dsl import Dataset, Input, Metrics, Model, Output


def preprocess(
    test_size: float,
    seed: int,
    train_data: Output[Dataset],
    test_data: Output[Dataset],
    dataset_uri: str = "",
) -> NamedTuple("PreprocessOutputs", [("data_hash", str), ("n_train", int), ("n_test", int)]):  # type: ignore[valid-type]
    """Load the dataset, validate schema and ranges, hash its content, split it stratified.

    ``dataset_uri`` (``s3://bucket/key`` or a path to a CSV) replaces the bundled dataset.
    """
    from collections import namedtuple

    from workloads.pipelines import steps

    result = steps.preprocess(test_size, seed, train_data.path, test_data.path, dataset_uri=dataset_uri)
    for artifact, rows in ((train_data, result["n_train"]), (test_data, result["n_test"])):
        artifact.metadata.update({"rows": rows, "data_hash": result["data_hash"], "format": "csv"})
    PreprocessOutputs = namedtuple("PreprocessOutputs", ["data_hash", "n_train", "n_test"])
    return PreprocessOutputs(result["data_hash"], result["n_train"], result["n_test"])


def train(
    train_data: Input[Dataset],
    data_hash: str,
    alpha: float,
    l1_ratio: float,
    loss: str,
    epochs: int,
    seed: int,
    checkpoint_every: int,
    checkpoint_root: str,
    model: Output[Model],
    metrics: Output[Metrics],
) -> NamedTuple("TrainOutputs", [("resumed_from", int), ("history_json", str)]):  # type: ignore[valid-type]
    """Train with periodic checkpoints; a restarted step resumes from the last one.

    On SIGTERM the step checkpoints after the current epoch and exits with status 143; the
    step's retry policy starts it again and it resumes from that checkpoint.
    """
    import json
    import sys
    from collections import namedtuple
    from typing import cast

    from workloads.pipelines import interrupt, steps
    from workloads.pipelines.model import Loss, TrainParams

    params = TrainParams(  # TrainParams checks ``loss`` at run time; KFP needs the ``str`` annotation
        alpha=alpha,
        l1_ratio=l1_ratio,
        loss=cast(Loss, loss),
        epochs=epochs,
        seed=seed,
        checkpoint_every=checkpoint_every,
    )
    try:
        result = steps.train(train_data.path, data_hash, params, checkpoint_root, model.path)
    except interrupt.TrainingInterrupted as stopped:
        print(f"train: {stopped}", flush=True)
        sys.exit(interrupt.EXIT_ON_SIGTERM)
    model.metadata.update({"framework": "scikit-learn", "format": "pickle", "run_key": result["run_key"]})
    metrics.log_metric("final_train_log_loss", result["history"][-1])
    metrics.log_metric("resumed_from_epoch", result["resumed_from"])
    metrics.log_metric("epochs_run", result["epochs_run"])
    TrainOutputs = namedtuple("TrainOutputs", ["resumed_from", "history_json"])
    return TrainOutputs(result["resumed_from"], json.dumps(result["history"]))


def evaluate(
    model: Input[Model],
    test_data: Input[Dataset],
    gate_metric: str,
    gate_threshold: float,
    metrics: Output[Metrics],
) -> NamedTuple("EvaluateOutputs", [("passed", bool), ("metrics_json", str)]):  # type: ignore[valid-type]
    """Compute held-out metrics and apply the quality gate."""
    import json
    from collections import namedtuple

    from workloads.pipelines import steps

    result = steps.evaluate(model.path, test_data.path, gate_metric, gate_threshold)
    for name, value in result["metrics"].items():
        metrics.log_metric(name, value)
    EvaluateOutputs = namedtuple("EvaluateOutputs", ["passed", "metrics_json"])
    return EvaluateOutputs(result["passed"], json.dumps(result["metrics"]))


def register(
    model: Input[Model],
    test_data: Input[Dataset],
    data_hash: str,
    metrics_json: str,
    history_json: str,
    resumed_from: int,
    gate_passed: bool,
    gate_metric: str,
    gate_threshold: float,
    test_size: float,
    split_seed: int,
    alpha: float,
    l1_ratio: float,
    loss: str,
    epochs: int,
    seed: int,
    tracking_uri: str,
    experiment: str,
    artifact_location: str,
    model_name: str,
    pipeline_run_id: str,
    pipeline_run_name: str,
    git_commit: str,
    tuning_run_id: str,
) -> NamedTuple(  # type: ignore[valid-type]
    "RegisterOutputs",
    [
        ("model_version", str),
        ("aliases", str),
        ("mlflow_run_id", str),
        ("promoted", bool),
        ("decision", str),
        ("pipeline_run_id", str),
        ("pipeline_run_name", str),
    ],
):
    """Log the candidate to MLflow; register and promote it if it passed the gate.

    A registered version becomes ``challenger``, and ``champion`` when it beats the current one.
    """
    import json
    from collections import namedtuple

    from workloads.pipelines import steps

    params = {
        "alpha": alpha,
        "l1_ratio": l1_ratio,
        "loss": loss,
        "epochs": epochs,
        "seed": seed,
        "test_size": test_size,
        "split_seed": split_seed,
    }
    result = steps.register(
        model_path=model.path,
        test_path=test_data.path,
        params=params,
        metrics=json.loads(metrics_json),
        history=json.loads(history_json),
        data_hash=data_hash,
        gate_metric=gate_metric,
        gate_threshold=gate_threshold,
        gate_passed=gate_passed,
        resumed_from=resumed_from,
        tracking_uri=tracking_uri,
        experiment=experiment,
        artifact_location=artifact_location,
        model_name=model_name,
        pipeline_run_id=pipeline_run_id,
        pipeline_run_name=pipeline_run_name,
        git_commit=git_commit,
        tuning_run_id=tuning_run_id,
    )
    print(f"register: {result['decision']}")
    RegisterOutputs = namedtuple(
        "RegisterOutputs",
        [
            "model_version",
            "aliases",
            "mlflow_run_id",
            "promoted",
            "decision",
            "pipeline_run_id",
            "pipeline_run_name",
        ],
    )
    return RegisterOutputs(
        result["version"],
        ",".join(result["aliases"]),
        result["run_id"],
        result["promoted"],
        result["decision"],
        pipeline_run_id,
        pipeline_run_name,
    )
