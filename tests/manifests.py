"""Inputs and accessors for the Kubernetes manifests the components render, shared by the test tiers."""

from __future__ import annotations

from typing import Any

from components.events import DatasetEventsArgs

KUBERNETES_VERSIONS = ("1.30", "1.33", "1.35")
"""Kubernetes versions the rendered manifests are validated against."""


def cronjob_pod_spec(cron: dict[str, Any]) -> dict[str, Any]:
    """The pod spec inside a CronJob manifest."""
    spec: dict[str, Any] = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return spec


def dataset_events_args(**changes: Any) -> DatasetEventsArgs:
    """Arguments of the dataset trigger (MinIO ``minio:9000``, bucket ``datasets``), with ``changes``."""
    values: dict[str, Any] = {
        "namespace": "argo-events",
        "s3_host_port": "minio:9000",
        "bucket": "datasets",
        "access_key_id": "id",
        "secret_access_key": "key",
        "outputs_json": "{}",
    }
    return DatasetEventsArgs(**{**values, **changes})
