"""The output contract between the Pulumi program and the workloads.

Every stack output key is a constant here. ``__main__`` exports with them, workloads read with
them, tests assert on them. Nothing else spells an output key. This module imports nothing from
Pulumi so workloads can use it without the infrastructure SDKs loaded.
"""

from __future__ import annotations

from typing import Final

# Cluster
TARGET: Final = "target"
"""Which target the stack was built for: ``dev``, ``aks`` or ``eks``."""
CLUSTER_NAME: Final = "clusterName"
KUBERNETES_VERSION: Final = "kubernetesVersion"
KUBECONFIG: Final = "kubeconfig"
"""Kubeconfig of the cluster (secret)."""
STORAGE_CLASS: Final = "storageClass"
GPU_POOLS: Final = "gpuPools"
"""List of ``{name, gpuModel, gpuCount, labels, taints, minCount, maxCount, spot, sharing,
resourceName, sharesPerGpu, nodeSelector}`` per GPU pool.

``taints`` is a list of ``{key, value, effect}`` objects, the shape Kubernetes uses for tolerations.
``sharing`` is ``none``, ``time-slicing``, ``mps`` or ``mig``; ``resourceName`` is the extended
resource a pod requests on the pool (``nvidia.com/gpu``, ``nvidia.com/gpu.shared`` or a MIG
profile); ``sharesPerGpu`` is how many pods one advertised device holds; ``nodeSelector`` pins a pod
to the pool.
"""
GPU_TOLERATIONS: Final = "gpuTolerations"
"""Kubernetes tolerations a pod needs to land on any GPU pool."""

# Platform services
KFP_ENDPOINT: Final = "kfpEndpoint"
MLFLOW_TRACKING_URI: Final = "mlflowTrackingUri"
S3_ENDPOINT: Final = "s3Endpoint"
S3_BUCKET: Final = "s3Bucket"
S3_ACCESS_KEY_ID: Final = "s3AccessKeyId"
S3_SECRET_ACCESS_KEY: Final = "s3SecretAccessKey"
"""Object-storage secret key (secret)."""
KATIB_NAMESPACE: Final = "katibNamespace"
KSERVE_NAMESPACE: Final = "kserveNamespace"
# Serving (KServe): exported by the serving add-on, read by workloads/serving/cluster.
KSERVE_DEPLOYMENT_MODE: Final = "kserveDeploymentMode"
"""KServe's default deployment mode on the stack: ``Serverless`` or ``RawDeployment``."""
KSERVE_URL_TEMPLATE: Final = "kserveUrlTemplate"
"""URL of an InferenceService with ``{name}`` and ``{namespace}`` placeholders."""
# Serving (PLATFORM-A, stacks/addons_serving.py): what InferenceService builders need besides the above.
KSERVE_INTERNAL_URL_TEMPLATE: Final = "kserveInternalUrlTemplate"
"""In-cluster URL of an InferenceService's predictor, ``{name}``/``{namespace}`` placeholders."""
KSERVE_SERVICE_ACCOUNT: Final = "kserveServiceAccount"
"""ServiceAccount in ``kserveNamespace`` with the S3 credentials for ``s3://`` storage URIs."""
KSERVE_AUTOSCALER_CLASS: Final = "kserveAutoscalerClass"
"""Autoscaler of predictors: ``kpa.autoscaling.knative.dev`` (Serverless), ``hpa`` or ``keda``."""
KSERVE_SCALE_TO_ZERO: Final = "kserveScaleToZero"
"""Whether predictors may scale to zero replicas (``minReplicas: 0``) on this stack."""
PROMETHEUS_URL: Final = "prometheusUrl"
GRAFANA_URL: Final = "grafanaUrl"
GRAFANA_ADMIN_PASSWORD: Final = "grafanaAdminPassword"
"""Grafana admin password (secret)."""

# Vector databases
QDRANT_URL: Final = "qdrantUrl"
QDRANT_API_KEY: Final = "qdrantApiKey"
"""Qdrant API key (secret)."""
QDRANT_SNAPSHOTS_URI: Final = "qdrantSnapshotsUri"
"""``s3://bucket/prefix`` where the scheduled Qdrant snapshots are uploaded."""
MILVUS_URI: Final = "milvusUri"
MILVUS_TOKEN: Final = "milvusToken"
"""Milvus root token ``root:<password>`` (secret)."""

# ML platform services (PLATFORM-B): KFP, Katib, MLflow server, Argo Events, per-service storage
MLFLOW_ARTIFACTS_URI: Final = "mlflowArtifactsUri"
"""``s3://bucket/prefix`` the MLflow server proxies artifacts to: what ``mlflow-artifacts:/`` maps to
for a client that reads object storage directly (KServe's storage initializer)."""
MLFLOW_TRACKING_USERNAME: Final = "mlflowTrackingUsername"
"""User of the MLflow server's basic auth (``MLFLOW_TRACKING_USERNAME``)."""
MLFLOW_TRACKING_PASSWORD: Final = "mlflowTrackingPassword"
"""Password of that user (secret; ``MLFLOW_TRACKING_PASSWORD``)."""
DATASET_WEBHOOK_URL: Final = "datasetWebhookUrl"
"""In-cluster Argo Events webhook: ``POST {"key": "<object key>"}`` starts a training run."""
DATASETS_BUCKET: Final = "datasetsBucket"
"""Bucket whose new objects start a training run (Argo Events MinIO source)."""
WORKLOAD_IMAGE: Final = "workloadImage"
"""Image (``repository:tag``) that pipeline steps, Katib trials and trigger jobs run."""
S3_SERVICE_CREDENTIALS: Final = "s3ServiceCredentials"
"""Per-service object-storage users (secret): ``{service: {accessKeyId, secretAccessKey, buckets}}``."""

SECRET_KEYS: Final = frozenset(
    {
        KUBECONFIG,
        S3_SECRET_ACCESS_KEY,
        GRAFANA_ADMIN_PASSWORD,
        QDRANT_API_KEY,
        MILVUS_TOKEN,
        MLFLOW_TRACKING_PASSWORD,
        S3_SERVICE_CREDENTIALS,
    }
)
"""Outputs that must be exported as Pulumi secrets."""

ALL_KEYS: Final = frozenset(
    value for name, value in dict(globals()).items() if name.isupper() and isinstance(value, str)
)
"""Every output key of the contract."""
