"""The ML platform layer: Kubeflow Pipelines, Katib, the MLflow server and the dataset events.

It runs after the data layer and takes the object-store facts from that layer's outputs (the
per-service MinIO users in ``s3ServiceCredentials``), so every service gets its own user and no
credential is copied by hand. Each service's secret keys reach its namespace as a Secret declared
from the same Pulumi secret; none is written in plaintext.
"""

from __future__ import annotations

import json
from typing import Any

import pulumi

from components.clusters.base import Cluster
from components.events import DatasetEvents, DatasetEventsArgs
from components.kubeflow.katib import Katib, KatibArgs
from components.kubeflow.pipelines import KubeflowPipelines, PipelinesArgs
from components.storage import MINIO_API_PORT
from components.tracking import ArtifactStore, TrackingCredentials, TrackingServer, TrackingServerArgs
from components.versions import IMAGES
from stacks import outputs
from stacks.addons_data import DATA_NAMESPACE, DATASETS_BUCKET, MLFLOW_BUCKET, PLATFORM_BUCKET, STORAGE_NAME
from stacks.config import PlatformConfig

KFP_NAME = "kfp"
KATIB_NAME = "katib"
MLFLOW_NAME = "mlflow"
MLFLOW_NAMESPACE = "mlflow"
EVENTS_NAME = "dataset-events"
EVENTS_NAMESPACE = "argo-events"
MINIO_HOST = f"{STORAGE_NAME}.{DATA_NAMESPACE}.svc.cluster.local"
TRIGGER_OUTPUT_KEYS = (
    outputs.TARGET,
    outputs.KFP_ENDPOINT,
    outputs.MLFLOW_TRACKING_URI,
    outputs.S3_ENDPOINT,
    outputs.S3_BUCKET,
    outputs.DATASETS_BUCKET,
    outputs.GPU_POOLS,
    outputs.GPU_TOLERATIONS,
    outputs.WORKLOAD_IMAGE,
)
"""Outputs the trigger Job's ``mlp pipeline run`` reads (none of them secret)."""


def _user(values: dict[str, Any], service: str, field: str) -> pulumi.Output[Any]:
    creds = pulumi.Output.from_input(values[outputs.S3_SERVICE_CREDENTIALS])
    return creds.apply(lambda all_users: all_users[service][field])


def add_platform_layer(cfg: PlatformConfig, cluster: Cluster, values: dict[str, Any]) -> dict[str, Any]:
    """Declare KFP, Katib, MLflow and Argo Events on ``cluster``, those ``mlplatform:platform`` enables.

    The MLflow admin credentials reach the pipeline steps (KFP namespace) and the dataset trigger
    Job (Argo Events namespace) as Secrets those pods read with ``secretKeyRef``.

    Args:
        cfg: The validated stack configuration.
        cluster: The cluster (its provider and storage class).
        values: Outputs of the layers declared before (the data layer's object-store users).

    Returns:
        Output-contract values: KFP endpoint, Katib namespace, MLflow URI and credentials, the
        dataset webhook URL and the workload image.

    """
    provider = pulumi.ResourceOptions(provider=cluster.provider)
    monitor = cfg.observability.enabled
    services = cfg.platform
    result: dict[str, Any] = {outputs.WORKLOAD_IMAGE: IMAGES["workloads"].ref}
    mlflow: TrackingServer | None = None
    if services.mlflow.enabled:
        mlflow = TrackingServer(
            MLFLOW_NAME,
            TrackingServerArgs(
                namespace=MLFLOW_NAMESPACE,
                storage_class=cluster.storage_class,
                artifacts=ArtifactStore(
                    endpoint=f"http://{MINIO_HOST}:{MINIO_API_PORT}",
                    bucket=MLFLOW_BUCKET,
                    access_key_id=_user(values, "mlflow", "accessKeyId"),
                    secret_access_key=pulumi.Output.secret(_user(values, "mlflow", "secretAccessKey")),
                ),
                postgres_storage_gi=services.mlflow.postgres_storage_gi,
                replicas=services.mlflow.replicas,
                service_monitor=monitor,
            ),
            opts=provider,
        )
        result[outputs.MLFLOW_TRACKING_URI] = mlflow.tracking_uri
        result[outputs.MLFLOW_ARTIFACTS_URI] = mlflow.artifacts_uri
        result[outputs.MLFLOW_TRACKING_USERNAME] = mlflow.admin_username
        result[outputs.MLFLOW_TRACKING_PASSWORD] = mlflow.admin_password
    tracking = (
        TrackingCredentials(username=mlflow.admin_username, password=mlflow.admin_password)
        if mlflow is not None
        else None
    )
    kfp: KubeflowPipelines | None = None
    if services.kfp.enabled:
        kfp = KubeflowPipelines(
            KFP_NAME,
            PipelinesArgs(
                s3_host=MINIO_HOST,
                s3_port=MINIO_API_PORT,
                bucket=PLATFORM_BUCKET,
                access_key_id=_user(values, "kfp", "accessKeyId"),
                secret_access_key=pulumi.Output.secret(_user(values, "kfp", "secretAccessKey")),
                tracking=tracking,
                service_monitor=monitor,
            ),
            opts=provider,
        )
        result[outputs.KFP_ENDPOINT] = kfp.endpoint
    if services.katib.enabled:
        # Both bundles install into `kubeflow`; its labels and policies are declared once.
        katib = Katib(
            KATIB_NAME, KatibArgs(service_monitor=monitor, secure_namespace=kfp is None), opts=provider
        )
        result[outputs.KATIB_NAMESPACE] = katib.namespace
    if services.events.enabled and kfp is not None:
        trigger_outputs = {**values, **result}
        outputs_json = pulumi.Output.all(
            **{key: trigger_outputs[key] for key in TRIGGER_OUTPUT_KEYS if key in trigger_outputs}
        ).apply(lambda resolved: json.dumps(resolved, indent=2, sort_keys=True))
        events = DatasetEvents(
            EVENTS_NAME,
            DatasetEventsArgs(
                namespace=EVENTS_NAMESPACE,
                s3_host_port=f"{MINIO_HOST}:{MINIO_API_PORT}",
                bucket=DATASETS_BUCKET,
                access_key_id=_user(values, "events", "accessKeyId"),
                secret_access_key=pulumi.Output.secret(_user(values, "events", "secretAccessKey")),
                outputs_json=outputs_json,
                tracking=tracking,
            ),
            opts=pulumi.ResourceOptions(
                provider=cluster.provider, depends_on=[r for r in (kfp, mlflow) if r is not None]
            ),
        )
        result[outputs.DATASET_WEBHOOK_URL] = events.webhook_url
    return result
