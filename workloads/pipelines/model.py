"""Training and evaluation logic shared by the pipeline, Katib trials and Optuna.

The model is a standard scaler followed by a linear classifier trained with stochastic gradient
descent, one ``partial_fit`` pass per epoch. Training is iterative on purpose: every few epochs
the whole training state is checkpointed, so a step killed with its node (spot capacity goes away
without notice) resumes from the last checkpoint instead of epoch 0. Given notice (SIGTERM, see
``workloads.pipelines.interrupt``), training finishes the current epoch, checkpoints at once and
stops, so nothing but the epoch in progress is lost. Epoch ``e`` always shuffles
with a seed derived from ``(seed, e)``, so a resumed run ends bit-identical to an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from workloads.pipelines.interrupt import StopSignal, TrainingInterrupted

CHECKPOINT_FORMAT = 1
"""Bump when the checkpoint content changes; old checkpoints are then ignored, never misread."""
EPOCH_DELAY_ENV = "MLP_TRAIN_EPOCH_DELAY_S"
"""Seconds to sleep after each epoch: slows training down for demos and kill/resume tests."""
GATE_METRICS = ("accuracy", "f1", "roc_auc")
"""Metrics a quality gate can use; all are higher-is-better."""

Loss = Literal["log_loss", "modified_huber"]


@dataclass(frozen=True)
class TrainParams:
    """Hyperparameters of the training step (all of them pipeline parameters).

    Attributes:
        alpha: Regularization strength.
        l1_ratio: Elastic-net mixing (0 = L2, 1 = L1).
        loss: Loss function; both choices give calibrated-enough ``predict_proba``.
        epochs: Passes over the training data.
        seed: Seed for initialization and per-epoch shuffling.
        checkpoint_every: Epochs between checkpoints (0 disables checkpoints).
    """

    alpha: float = 1e-4
    l1_ratio: float = 0.15
    loss: Loss = "log_loss"
    epochs: int = 30
    seed: int = 0
    checkpoint_every: int = 5

    def __post_init__(self) -> None:
        if self.alpha <= 0:
            raise ValueError(f"alpha must be > 0, got {self.alpha}")
        if not 0.0 <= self.l1_ratio <= 1.0:
            raise ValueError(f"l1_ratio must be in [0, 1], got {self.l1_ratio}")
        if self.loss not in ("log_loss", "modified_huber"):
            raise ValueError(f"loss must be 'log_loss' or 'modified_huber', got {self.loss!r}")
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if self.checkpoint_every < 0:
            raise ValueError(f"checkpoint_every must be >= 0, got {self.checkpoint_every}")

    def model_params(self) -> dict[str, Any]:
        """The parameters that change the trained model (not how often it is checkpointed)."""
        params = asdict(self)
        params.pop("checkpoint_every")
        return params


# ---------------------------------------------------------------------------------------------
# Checkpoint stores


class CheckpointStore(Protocol):
    """Where checkpoints live: a local/mounted directory or an S3 prefix."""

    def read(self) -> bytes | None:
        """Return the latest checkpoint, or None when there is none."""
        ...

    def write(self, payload: bytes) -> None:
        """Atomically replace the latest checkpoint."""
        ...


@dataclass(frozen=True)
class DirectoryCheckpointStore:
    """Checkpoints in a directory (local disk, or a volume mounted into the pod)."""

    directory: Path

    @property
    def path(self) -> Path:
        """File holding the latest checkpoint."""
        return self.directory / "latest.ckpt"

    def read(self) -> bytes | None:  # noqa: D102
        return self.path.read_bytes() if self.path.exists() else None

    def write(self, payload: bytes) -> None:  # noqa: D102
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(f".tmp-{os.getpid()}")
        tmp.write_bytes(payload)
        # A kill between write and replace leaves the previous checkpoint intact.
        os.replace(tmp, self.path)


@dataclass(frozen=True)
class S3CheckpointStore:
    """Checkpoints in S3 or any S3-compatible store (MinIO).

    Credentials and endpoint come from the standard ``AWS_*`` environment variables
    (``AWS_ENDPOINT_URL`` for MinIO).
    """

    bucket: str
    key: str

    def _client(self) -> Any:
        import boto3

        return boto3.client("s3")

    def read(self) -> bytes | None:  # noqa: D102
        client = self._client()
        try:
            response = client.get_object(Bucket=self.bucket, Key=self.key)
        except client.exceptions.NoSuchKey:
            return None
        body: bytes = response["Body"].read()
        return body

    def write(self, payload: bytes) -> None:  # noqa: D102
        # A single PUT is atomic in S3: readers see the old or the new object, never a mix.
        self._client().put_object(Bucket=self.bucket, Key=self.key, Body=payload)


def checkpoint_store(root: str, run_key: str) -> CheckpointStore:
    """Checkpoint store for one training run under ``root`` (a directory or ``s3://bucket/prefix``)."""
    if root.startswith("s3://"):
        bucket, _, prefix = root[len("s3://") :].partition("/")
        key = "/".join(p for p in (prefix.strip("/"), run_key, "latest.ckpt") if p)
        return S3CheckpointStore(bucket=bucket, key=key)
    return DirectoryCheckpointStore(Path(root) / run_key)


def run_key(data_hash: str, params: TrainParams) -> str:
    """Key of a training run: the same data and model parameters give the same key.

    A retried or re-submitted step with identical inputs therefore finds the checkpoints of the
    attempt that died, whatever the orchestrator calls the new attempt.
    """
    import sklearn

    material = json.dumps(
        {
            "format": CHECKPOINT_FORMAT,
            "data": data_hash,
            "params": params.model_params(),
            "sklearn": sklearn.__version__,
        },
        sort_keys=True,
    )
    return hashlib.sha256(material.encode()).hexdigest()[:24]


# ---------------------------------------------------------------------------------------------
# Training


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes:
        model: Fitted scikit-learn pipeline (scaler + classifier).
        history: Training log-loss after each epoch, from epoch 1.
        resumed_from: Epoch of the checkpoint training resumed from (0 = fresh start).
        epochs_run: Epochs actually trained by this call.
        seconds: Wall time of this call.
    """

    model: Any
    history: list[float] = field(default_factory=list)
    resumed_from: int = 0
    epochs_run: int = 0
    seconds: float = 0.0


def _new_state(features: Any, params: TrainParams) -> dict[str, Any]:
    from sklearn.linear_model import SGDClassifier
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(features)
    classifier = SGDClassifier(
        loss=params.loss,
        penalty="elasticnet",
        alpha=params.alpha,
        l1_ratio=params.l1_ratio,
        random_state=params.seed,
        shuffle=False,  # shuffled per epoch here, reproducibly across restarts
    )
    return {
        "format": CHECKPOINT_FORMAT,
        "epoch": 0,
        "scaler": scaler,
        "classifier": classifier,
        "history": [],
    }


def _load_state(store: CheckpointStore | None, expected_key: str) -> dict[str, Any] | None:
    if store is None:
        return None
    payload = store.read()
    if payload is None:
        return None
    state: dict[str, Any] = pickle.loads(payload)  # noqa: S301 - our own checkpoint, written by _save_state
    if state.get("format") != CHECKPOINT_FORMAT or state.get("key") != expected_key:
        return None
    return state


def _save_state(store: CheckpointStore, state: dict[str, Any]) -> None:
    buffer = io.BytesIO()
    pickle.dump(state, buffer, protocol=pickle.HIGHEST_PROTOCOL)
    store.write(buffer.getvalue())


def train(
    features: Any,
    labels: np.ndarray,
    params: TrainParams,
    store: CheckpointStore | None = None,
    key: str = "",
    on_epoch: Callable[[int, float], None] | None = None,
    stop: StopSignal | None = None,
) -> TrainResult:
    """Train, checkpointing every ``params.checkpoint_every`` epochs and resuming from ``store``.

    Args:
        features: Training features.
        labels: Training labels (0/1).
        params: Hyperparameters.
        store: Where checkpoints are read and written; None trains without them.
        key: Identity of this run (see :func:`run_key`); a checkpoint with another key is ignored.
        on_epoch: Called with ``(epoch, train_loss)`` after each epoch.
        stop: Checked after every epoch: once requested (SIGTERM), the state after that epoch is
            checkpointed at once, whatever ``checkpoint_every`` says, and training stops.

    Returns:
        The fitted model and how the run went.

    Raises:
        TrainingInterrupted: When ``stop`` was requested before the last epoch finished.
    """
    from sklearn.metrics import log_loss
    from sklearn.pipeline import Pipeline

    started = time.perf_counter()
    state = _load_state(store, key)
    resumed_from = 0 if state is None else int(state["epoch"])
    if state is None:
        state = _new_state(features, params)
    state["key"] = key
    delay = float(os.environ.get(EPOCH_DELAY_ENV, "0") or 0)
    scaled = np.asarray(state["scaler"].transform(features))
    classes = np.unique(labels)
    classifier = state["classifier"]
    for epoch in range(resumed_from + 1, params.epochs + 1):
        order = np.random.default_rng([params.seed, epoch]).permutation(len(labels))
        classifier.partial_fit(scaled[order], labels[order], classes=classes)
        loss = float(log_loss(labels, classifier.predict_proba(scaled), labels=classes))
        state["history"].append(loss)
        state["epoch"] = epoch
        if on_epoch is not None:
            on_epoch(epoch, loss)
        saved = False
        if (
            store is not None
            and params.checkpoint_every
            and (epoch % params.checkpoint_every == 0 or epoch == params.epochs)
        ):
            _save_state(store, state)
            saved = True
        if delay and stop is not None:
            stop.sleep(delay)
        elif delay:
            time.sleep(delay)
        if stop is not None and stop.requested and epoch < params.epochs:
            # The epoch is complete, so its state is consistent: save it now, not N epochs ago.
            if store is not None and not saved:
                _save_state(store, state)
            raise TrainingInterrupted(epoch, checkpointed=store is not None)
    model = Pipeline([("scaler", state["scaler"]), ("classifier", classifier)])
    return TrainResult(
        model=model,
        history=list(state["history"]),
        resumed_from=resumed_from,
        epochs_run=params.epochs - resumed_from,
        seconds=time.perf_counter() - started,
    )


# ---------------------------------------------------------------------------------------------
# Evaluation


def evaluate(model: Any, features: Any, labels: np.ndarray) -> dict[str, float]:
    """Held-out metrics of a fitted binary classifier."""
    from sklearn.metrics import accuracy_score, f1_score, log_loss, roc_auc_score

    probabilities = model.predict_proba(features)[:, 1]
    predictions = (probabilities >= 0.5).astype(int)
    return {
        "accuracy": float(accuracy_score(labels, predictions)),
        "f1": float(f1_score(labels, predictions)),
        "roc_auc": float(roc_auc_score(labels, probabilities)),
        "log_loss": float(log_loss(labels, np.column_stack([1 - probabilities, probabilities]))),
    }


def quality_gate(metrics: dict[str, float], metric: str, threshold: float) -> bool:
    """True when ``metrics[metric]`` reaches ``threshold`` (gate metrics are higher-is-better)."""
    if metric not in GATE_METRICS:
        raise ValueError(f"gate metric must be one of {GATE_METRICS}, got {metric!r}")
    return metrics[metric] >= threshold


def _rows(features: Any, index: np.ndarray) -> Any:
    return features.iloc[index] if hasattr(features, "iloc") else features[index]


def cross_validate(
    features: Any, labels: np.ndarray, params: TrainParams, folds: int = 3
) -> dict[str, float]:
    """Mean validation metrics over stratified folds of the training data (used for tuning).

    Metric names get a ``val_`` prefix so they never mix with held-out test metrics.
    """
    from sklearn.model_selection import StratifiedKFold

    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=params.seed)
    no_checkpoints = TrainParams(**{**asdict(params), "checkpoint_every": 0})
    scores: list[dict[str, float]] = []
    for fit_index, val_index in splitter.split(features, labels):
        result = train(_rows(features, fit_index), labels[fit_index], no_checkpoints)
        scores.append(evaluate(result.model, _rows(features, val_index), labels[val_index]))
    return {f"val_{name}": float(np.mean([s[name] for s in scores])) for name in scores[0]}
