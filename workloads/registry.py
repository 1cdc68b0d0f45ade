"""MLflow tracking and registry helpers: register a candidate, promote it, read its lineage.

Model versions carry their lineage as tags (``mlp.*``) on both the version and the MLflow run that
produced it, so ``mlp lineage <model>@<alias>`` answers from the registry alone: which data
(content hash), which code (git commit), which pipeline run, which tuning study, which parameters,
which metrics.

Aliases: ``challenger`` always points at the newest version that passed the quality gate;
``champion`` moves to a version only when it beats the current champion on the gate metric.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

CHAMPION = "champion"
CHALLENGER = "challenger"
DEFAULT_MODEL_NAME = "breast-cancer-classifier"
TRAINING_EXPERIMENT = "mlp-training"
TUNING_EXPERIMENT = "mlp-tuning"

TAG_DATA_HASH = "mlp.data_hash"
TAG_PIPELINE_RUN_ID = "mlp.pipeline_run_id"
TAG_PIPELINE_RUN_NAME = "mlp.pipeline_run_name"
TAG_GIT_COMMIT = "mlp.git_commit"
TAG_TUNING_RUN_ID = "mlp.tuning_run_id"
TAG_GATE_METRIC = "mlp.gate_metric"
TAG_GATE_THRESHOLD = "mlp.gate_threshold"
TAG_GATE_PASSED = "mlp.gate_passed"
TAG_GATE_VALUE = "mlp.gate_value"
TAG_PROMOTION = "mlp.promotion"
TAG_RESUMED_FROM = "mlp.resumed_from_epoch"
LINEAGE_TAGS = (
    TAG_DATA_HASH,
    TAG_PIPELINE_RUN_ID,
    TAG_PIPELINE_RUN_NAME,
    TAG_GIT_COMMIT,
    TAG_TUNING_RUN_ID,
    TAG_GATE_METRIC,
    TAG_GATE_THRESHOLD,
    TAG_GATE_PASSED,
    TAG_GATE_VALUE,
    TAG_PROMOTION,
    TAG_RESUMED_FROM,
)


class RegistryError(RuntimeError):
    """A model reference could not be resolved, or the registry refused an operation."""


def git_commit(cwd: str | Path | None = None) -> str:
    """Commit of the working tree (with ``-dirty`` when it has changes), or ``unknown`` outside git."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}-dirty" if dirty else head


def ensure_experiment(name: str, artifact_location: str | None = None) -> str:
    """Id of the named experiment, created (with its artifact location) when missing."""
    import mlflow

    experiment = mlflow.get_experiment_by_name(name)
    if experiment is not None:
        return str(experiment.experiment_id)
    return str(mlflow.create_experiment(name, artifact_location=artifact_location or None))


def pip_requirements() -> list[str]:
    """Pinned requirements of a logged scikit-learn model.

    Passing them explicitly skips MLflow's requirement inference, which costs 5-7 s per model.
    """
    import mlflow.sklearn

    requirements: list[str] = mlflow.sklearn.get_default_pip_requirements(include_skops=True)
    return requirements


@dataclass(frozen=True)
class Candidate:
    """A trained model and everything needed to register it with its lineage.

    Attributes:
        model: Fitted scikit-learn estimator.
        example: A few input rows (a DataFrame with feature names) for the model signature.
        params: Hyperparameters and data parameters.
        metrics: Held-out metrics.
        history: Per-epoch training loss.
        data_hash: Content hash of the dataset.
        gate_metric: Metric the gate and the champion comparison use (higher is better).
        gate_threshold: Minimum value of ``gate_metric``.
        gate_passed: Whether the quality gate passed; a failed candidate is tracked, not registered.
        pipeline_run_id: KFP run id.
        pipeline_run_name: KFP run (job) name.
        git_commit: Commit of the code that submitted the run.
        tuning_run_id: MLflow run id of the tuning study whose best parameters were used.
        resumed_from_epoch: Checkpoint epoch training resumed from (0 = fresh).
    """

    model: Any
    example: Any
    params: Mapping[str, Any]
    metrics: Mapping[str, float]
    history: Sequence[float] = ()
    data_hash: str = ""
    gate_metric: str = "roc_auc"
    gate_threshold: float = 0.0
    gate_passed: bool = True
    pipeline_run_id: str = ""
    pipeline_run_name: str = ""
    git_commit: str = "unknown"
    tuning_run_id: str = ""
    resumed_from_epoch: int = 0


@dataclass
class Registration:
    """Outcome of :func:`register_candidate`.

    Attributes:
        run_id: MLflow run that holds params, metrics, tags and the model.
        version: Registered model version, or None when the gate failed.
        aliases: Aliases the version holds after promotion.
        promoted: Whether it became the champion.
        decision: Why it was or was not promoted.
    """

    run_id: str
    version: str | None
    aliases: list[str] = field(default_factory=list)
    promoted: bool = False
    decision: str = ""


def _metric_of_version(client: Any, version: Any, metric: str) -> float | None:
    raw = version.tags.get(TAG_GATE_VALUE) if version.tags.get(TAG_GATE_METRIC) == metric else None
    if raw is not None:
        return float(raw)
    if version.run_id:
        value = client.get_run(version.run_id).data.metrics.get(metric)
        return None if value is None else float(value)
    return None


def champion_version(client: Any, model_name: str) -> Any | None:
    """The version that holds the ``champion`` alias, or None."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(model_name, CHAMPION)
    except MlflowException:
        return None


def register_candidate(
    candidate: Candidate,
    *,
    tracking_uri: str,
    model_name: str = DEFAULT_MODEL_NAME,
    experiment: str = TRAINING_EXPERIMENT,
    artifact_location: str | None = None,
) -> Registration:
    """Log a candidate to MLflow, register it as ``challenger`` and promote it if it wins.

    The run gets params, metrics (with the per-epoch loss curve) and lineage tags whatever the
    gate said; only a candidate that passed the gate becomes a model version. The version then
    takes ``champion`` when there is none yet or when it beats the champion on the gate metric
    (a tie keeps the champion in place).

    Args:
        candidate: The model and its lineage.
        tracking_uri: MLflow tracking URI (also the registry URI).
        model_name: Registered model name.
        experiment: Experiment of the run.
        artifact_location: Artifact root for a new experiment (local dir or ``s3://``); None lets
            the tracking server decide.

    Returns:
        The run id, the version and its aliases, and the promotion decision.
    """
    import mlflow
    import mlflow.sklearn
    from mlflow import MlflowClient
    from mlflow.entities import Metric
    from mlflow.models import infer_signature

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    experiment_id = ensure_experiment(experiment, artifact_location)
    gate_value = float(candidate.metrics[candidate.gate_metric])
    # The evaluate step decides; the threshold is checked again so no caller can register a
    # candidate whose own metrics fail its gate.
    gate_passed = candidate.gate_passed and gate_value >= candidate.gate_threshold
    tags = {
        TAG_DATA_HASH: candidate.data_hash,
        TAG_PIPELINE_RUN_ID: candidate.pipeline_run_id,
        TAG_PIPELINE_RUN_NAME: candidate.pipeline_run_name,
        TAG_GIT_COMMIT: candidate.git_commit,
        TAG_TUNING_RUN_ID: candidate.tuning_run_id,
        TAG_GATE_METRIC: candidate.gate_metric,
        TAG_GATE_THRESHOLD: str(candidate.gate_threshold),
        TAG_GATE_PASSED: str(gate_passed).lower(),
        TAG_GATE_VALUE: repr(gate_value),
        TAG_RESUMED_FROM: str(candidate.resumed_from_epoch),
        "mlflow.source.git.commit": candidate.git_commit,
    }
    run_name = f"train-{candidate.pipeline_run_name}" if candidate.pipeline_run_name else None
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as run:
        run_id = run.info.run_id
        mlflow.log_params(dict(candidate.params))
        now = int(time.time() * 1000)
        metrics = [Metric(k, float(v), now, 0) for k, v in candidate.metrics.items()]
        metrics += [Metric("train_log_loss", float(v), now, i) for i, v in enumerate(candidate.history, 1)]
        client.log_batch(run_id, metrics=metrics)
        mlflow.set_tags(tags)
        if not gate_passed:
            decision = (
                f"rejected by the quality gate: {candidate.gate_metric}={gate_value:.4f}"
                f" (needs >= {candidate.gate_threshold})"
            )
            mlflow.set_tag(TAG_PROMOTION, decision)
            return Registration(run_id=run_id, version=None, decision=decision)
        signature = infer_signature(candidate.example, candidate.model.predict(candidate.example))
        info = mlflow.sklearn.log_model(
            candidate.model,
            name="model",
            signature=signature,
            pip_requirements=pip_requirements(),
            registered_model_name=model_name,
        )
    version = str(info.registered_model_version)
    for key, value in tags.items():
        if key.startswith("mlp."):
            client.set_model_version_tag(model_name, version, key, value)
    client.set_registered_model_alias(model_name, CHALLENGER, version)
    current = champion_version(client, model_name)
    current_value = None if current is None else _metric_of_version(client, current, candidate.gate_metric)
    if current is None or current_value is None:
        promoted, decision = True, f"first champion ({candidate.gate_metric}={gate_value:.4f})"
    elif gate_value > current_value:
        promoted = True
        decision = f"beat champion v{current.version}: {candidate.gate_metric} {gate_value:.4f} > {current_value:.4f}"
    else:
        promoted = False
        decision = (
            f"kept champion v{current.version}: {candidate.gate_metric} {gate_value:.4f}"
            f" <= {current_value:.4f}"
        )
    if promoted:
        client.set_registered_model_alias(model_name, CHAMPION, version)
    client.set_model_version_tag(model_name, version, TAG_PROMOTION, decision)
    client.set_tag(run_id, TAG_PROMOTION, decision)
    aliases = sorted(client.get_model_version(model_name, version).aliases)
    return Registration(run_id=run_id, version=version, aliases=aliases, promoted=promoted, decision=decision)


# ---------------------------------------------------------------------------------------------
# Lineage

_REF = re.compile(r"^(?:models:/)?(?P<name>[^@/]+)(?:@(?P<alias>[\w-]+)|/(?P<version>\d+))$")


def parse_model_ref(ref: str) -> tuple[str, str | None, str | None]:
    """Split ``name@alias``, ``name/version`` or ``models:/name@alias`` into its parts.

    Returns:
        ``(name, alias, version)`` with exactly one of alias and version set.

    Raises:
        RegistryError: When the reference has neither form.
    """
    match = _REF.match(ref.strip())
    if not match:
        raise RegistryError(
            f"model reference {ref!r} is not of the form <model>@<alias> or <model>/<version>"
        )
    return match["name"], match["alias"], match["version"]


@dataclass
class Lineage:
    """Everything known about how one registered model version came to be."""

    model_name: str
    version: str
    aliases: list[str]
    created: str
    source: str
    run_id: str
    experiment: str
    data_hash: str
    pipeline_run_id: str
    pipeline_run_name: str
    git_commit: str
    tuning_run_id: str
    params: dict[str, str]
    metrics: dict[str, float]
    gate: dict[str, str]
    tuning: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form for ``--json`` output."""
        return asdict(self)


def find_version(client: Any, name: str, alias: str | None, number: str | None) -> Any:
    """The registry's ModelVersion for ``name@alias`` or ``name/number`` (MlflowException if absent)."""
    return (
        client.get_model_version_by_alias(name, alias)
        if alias
        else client.get_model_version(name, str(number))
    )


def lineage(ref: str, tracking_uri: str) -> Lineage:
    """Resolve a model reference and collect its lineage from the registry and tracking store.

    Args:
        ref: ``<model>@<alias>`` or ``<model>/<version>``.
        tracking_uri: MLflow tracking (and registry) URI.

    Raises:
        RegistryError: When the model, alias or version does not exist.
    """
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    name, alias, number = parse_model_ref(ref)
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    try:
        version = find_version(client, name, alias, number)
    except MlflowException as error:
        known = [m.name for m in client.search_registered_models(max_results=50)]
        raise RegistryError(
            f"no model version {ref!r} in {tracking_uri} (registered models: {known or 'none'}): "
            f"{error.message}"
        ) from error
    run = client.get_run(version.run_id) if version.run_id else None
    tags = {**(run.data.tags if run else {}), **version.tags}
    experiment = client.get_experiment(run.info.experiment_id).name if run else ""
    tuning: dict[str, Any] = {}
    tuning_run_id = tags.get(TAG_TUNING_RUN_ID, "")
    if tuning_run_id:
        try:
            study = client.get_run(tuning_run_id)
            tuning = {
                "run_id": tuning_run_id,
                "name": study.info.run_name,
                "metrics": dict(study.data.metrics),
                "params": dict(study.data.params),
            }
        except MlflowException:
            tuning = {"run_id": tuning_run_id, "error": "tuning run not found"}
    return Lineage(
        model_name=name,
        version=str(version.version),
        aliases=sorted(version.aliases),
        created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(version.creation_timestamp / 1000)),
        source=str(version.source),
        run_id=str(version.run_id or ""),
        experiment=experiment,
        data_hash=tags.get(TAG_DATA_HASH, ""),
        pipeline_run_id=tags.get(TAG_PIPELINE_RUN_ID, ""),
        pipeline_run_name=tags.get(TAG_PIPELINE_RUN_NAME, ""),
        git_commit=tags.get(TAG_GIT_COMMIT, ""),
        tuning_run_id=tuning_run_id,
        params=dict(run.data.params) if run else {},
        metrics={k: float(v) for k, v in (run.data.metrics if run else {}).items()},
        gate={
            "metric": tags.get(TAG_GATE_METRIC, ""),
            "threshold": tags.get(TAG_GATE_THRESHOLD, ""),
            "passed": tags.get(TAG_GATE_PASSED, ""),
            "value": tags.get(TAG_GATE_VALUE, ""),
            "promotion": tags.get(TAG_PROMOTION, ""),
        },
        tuning=tuning,
    )


def version_summary(tracking_uri: str, model_name: str, version: str) -> dict[str, Any]:
    """Name, version, aliases and run metrics of one registered version (for summaries)."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    found = client.get_model_version(model_name, version)
    metrics = dict(client.get_run(found.run_id).data.metrics) if found.run_id else {}
    return {
        "name": model_name,
        "version": str(found.version),
        "aliases": sorted(found.aliases),
        "run_id": found.run_id,
        "metrics": metrics,
        "tags": {k: v for k, v in found.tags.items() if k in LINEAGE_TAGS},
    }


def dumps(obj: Any) -> str:
    """JSON with stable key order, for CLI ``--json`` output."""
    return json.dumps(obj, indent=2, sort_keys=True, default=str)
