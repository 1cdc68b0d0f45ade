"""A small real MLflow registry with two versions of the classifier, for the serving tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from workloads import registry
from workloads.pipelines import data
from workloads.serving.local.stack import LocalServing, from_registry

MODEL = registry.DEFAULT_MODEL_NAME


def build_registry(home: Path) -> str:
    """Register v1 and v2 (two SGD classifiers on the pipeline's split); return the tracking URI.

    v1 is the champion and v2 the challenger, whatever their scores.
    """
    from sklearn.linear_model import SGDClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    home.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{home / 'mlflow.db'}"
    prepared = data.prepare(test_size=0.2, seed=42)
    x_train, y_train = data.features_and_target(prepared.train)
    x_test, y_test = data.features_and_target(prepared.test)
    for alpha in (1e-3, 3e-3):
        model = make_pipeline(StandardScaler(), SGDClassifier(loss="log_loss", alpha=alpha, random_state=0))
        model.fit(x_train, y_train)
        auc = float(roc_auc_score(y_test, model.predict_proba(x_test)[:, 1]))
        registry.register_candidate(
            registry.Candidate(
                model=model,
                example=x_train.head(3),
                params={"alpha": alpha, "test_size": 0.2, "split_seed": 42},
                metrics={"roc_auc": auc, "accuracy": float(model.score(x_test, y_test))},
                data_hash=prepared.data_hash,
            ),
            tracking_uri=uri,
            artifact_location=(home / "mlartifacts").as_uri(),
        )
    # Whichever scored higher, the tests start from v1 as champion and v2 as challenger.
    from mlflow import MlflowClient

    MlflowClient(tracking_uri=uri, registry_uri=uri).set_registered_model_alias(MODEL, registry.CHAMPION, "1")
    return uri


@contextmanager
def running_topology(home: Path, **options: Any) -> Iterator[tuple[LocalServing, str]]:
    """Build the registry under ``home``, start a local topology from it, stop it on exit.

    Args:
        home: Directory of the registry (:func:`build_registry`) and of the topology (``home/serve``).
        **options: Passed to :func:`~workloads.serving.local.stack.from_registry` (``aliases``,
            ``injections``, topology options).

    Yields:
        The started topology and the registry's tracking URI.
    """
    uri = build_registry(home)
    serving = from_registry(home / "serve", tracking_uri=uri, model=MODEL, **options)
    serving.start(timeout=240)
    try:
        yield serving, uri
    finally:
        serving.stop()
