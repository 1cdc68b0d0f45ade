"""Resolve what to serve: registered MLflow model versions to object-storage URIs and formats.

A model argument is ``NAME@alias`` or ``NAME/version`` (looked up in the target's MLflow registry),
or ``NAME=URI`` for a model directory given directly (no registry, e.g. offline rendering).
"""

from __future__ import annotations

from typing import Any

import yaml

from workloads.registry import RegistryError, find_version, parse_model_ref
from workloads.serving.cluster.builders import ModelFormat, ModelSource

_PICKLE_FORMATS = ("pickle", "cloudpickle")


def format_from_mlmodel(mlmodel: dict[str, Any]) -> ModelFormat:
    """The serving format for an MLflow ``MLmodel`` document.

    KServe's sklearn server loads ``model.pkl``/``model.joblib`` only, which MLflow writes for
    sklearn models saved with pickle or cloudpickle. Anything else (skops, other flavors) goes to
    the MLflow runtime (MLServer), which loads the model through MLflow itself.
    """
    sklearn = (mlmodel.get("flavors") or {}).get("sklearn")
    if isinstance(sklearn, dict) and sklearn.get("serialization_format") in _PICKLE_FORMATS:
        return "sklearn"
    return "mlflow"


def parse_direct(arg: str, model_format: ModelFormat = "mlflow", memory_mi: int = 256) -> ModelSource | None:
    """``NAME=URI`` as a :class:`ModelSource`; None when ``arg`` is a registry reference."""
    if "=" not in arg:
        return None
    name, uri = arg.split("=", 1)
    if not name or not uri:
        raise RegistryError(f"model {arg!r}: expected NAME=URI (e.g. clf=s3://bucket/models/clf)")
    return ModelSource(name=name, storage_uri=uri, model_format=model_format, memory_mi=memory_mi)


PROXIED_SCHEME = "mlflow-artifacts:"


def storage_uri(download_uri: str, artifacts_uri: str | None) -> str:
    """The object-storage URI KServe's storage initializer can read for a registry download URI.

    A server that proxies artifacts (``mlflow server --serve-artifacts``) hands out
    ``mlflow-artifacts:/<path>`` (or ``mlflow-artifacts://host/<path>``) URIs, which only MLflow
    clients understand; the same object lives at ``<artifacts_uri>/<path>`` in the bucket the server
    proxies to (the stack's ``mlflowArtifactsUri`` output). Other URIs are returned unchanged.

    Raises:
        RegistryError: For a proxied URI when the stack does not say where its artifacts live.

    """
    if not download_uri.startswith(PROXIED_SCHEME):
        return download_uri
    path = download_uri[len(PROXIED_SCHEME) :]
    if path.startswith("//"):
        path = path[2:].split("/", 1)[1] if "/" in path[2:] else ""
    if not artifacts_uri:
        raise RegistryError(
            f"{download_uri} is served through MLflow's artifact proxy; the stack exports no "
            "mlflowArtifactsUri to map it to object storage (give NAME=s3://... instead)"
        )
    return f"{artifacts_uri.rstrip('/')}/{path.lstrip('/')}"


def resolve(
    arg: str,
    tracking_uri: str | None,
    *,
    model_format: ModelFormat | None = None,
    memory_mi: int = 256,
    artifacts_uri: str | None = None,
) -> ModelSource:
    """A model argument resolved to what KServe needs.

    Args:
        arg: ``NAME@alias``, ``NAME/version`` or ``NAME=URI``.
        tracking_uri: MLflow tracking/registry URI of the target (None: only ``NAME=URI`` works).
        model_format: Force a format; by default read from the version's ``MLmodel``.
        memory_mi: Memory the loaded model needs (multi-model sizing).
        artifacts_uri: Where the registry's proxied artifacts live in object storage (the stack's
            ``mlflowArtifactsUri``); see :func:`storage_uri`.

    Raises:
        RegistryError: When the reference is malformed or the version does not exist.
    """
    direct = parse_direct(arg, model_format or "mlflow", memory_mi)
    if direct is not None:
        return direct
    name, alias, number = parse_model_ref(arg)
    if tracking_uri is None:
        raise RegistryError(
            f"model {arg!r} needs the target's MLflow registry; give NAME=s3://... to render offline"
        )
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    try:
        version = find_version(client, name, alias, number)
        uri = client.get_model_version_download_uri(name, str(version.version))
    except MlflowException as error:
        raise RegistryError(f"no model version {arg!r} in {tracking_uri}: {error.message}") from None
    fmt = model_format or format_from_mlmodel(_read_mlmodel(uri))
    return ModelSource(
        name=name,
        storage_uri=storage_uri(str(uri), artifacts_uri),
        model_format=fmt,
        version=str(version.version),
        alias=alias,
        memory_mi=memory_mi,
    )


def _read_mlmodel(artifact_uri: str) -> dict[str, Any]:
    import mlflow.artifacts

    try:
        text = mlflow.artifacts.load_text(f"{artifact_uri.rstrip('/')}/MLmodel")
    except Exception as error:  # noqa: BLE001 - any store error means "format unknown"
        raise RegistryError(f"cannot read {artifact_uri}/MLmodel to pick a runtime: {error}") from None
    data = yaml.safe_load(text)
    return data if isinstance(data, dict) else {}
