"""Kubeflow Pipelines (standalone) from its release-pinned manifests, on the platform's MinIO.

The upstream bundles (``cluster-scoped-resources`` then ``env/platform-agnostic``) are declared
as ``kustomize.v2.Directory`` resources at the tag pinned in ``components.versions.MANIFESTS``.
The objects the platform owns are declared here, on top of them:

* ``mlpipeline-minio-artifact`` (the Secret KFP's launcher and the workloads' steps read) is
  patched with KFP's own generated MinIO user, so the upstream default keys are never used;
* ``kfp-launcher`` (the launcher's config) is patched so step artifacts go to the platform's
  MinIO, in the pipelines bucket, with those credentials;
* ``mlflow-tracking-credentials`` holds the MLflow basic-auth user; the compiled pipeline's
  register step reads it with ``secretKeyRef`` (``workloads/pipelines/pipeline.py``);
* ServiceMonitors scrape the API server's ``/metrics`` (``run_server_create_requests``,
  ``run_server_run_count``) and the bundled Argo workflow controller's (``argo_workflows_gauge``,
  ``argo_workflows_total_count`` by phase), which the platform dashboard's Pipelines row reads.

GPU placement is not configured here: the workloads compile the pipeline with the stack's GPU
tolerations and node selectors (``workloads/pipelines/pipeline.py``), the one source of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import pulumi
import pulumi_kubernetes as k8s
import yaml

from components.kubeflow.manifests import github_kustomization
from components.metrics import service_monitor
from components.security import label_existing_namespace, namespace_policies
from components.tracking import TrackingCredentials, tracking_credentials_secret
from components.versions import MANIFESTS

REPO: Final = "kubeflow/pipelines"
NAMESPACE: Final = "kubeflow"
"""Namespace the standalone bundle installs into (fixed by upstream)."""
ARTIFACT_SECRET: Final = "mlpipeline-minio-artifact"
LAUNCHER_CONFIG: Final = "kfp-launcher"
API_SERVICE: Final = "ml-pipeline"
API_PORT: Final = 8888
WORKFLOW_CONTROLLER: Final = "workflow-controller"
"""``app`` label of the Argo workflow controller the bundle installs (and of its metrics Service)."""
ACCESS_KEY_KEY: Final = "accesskey"
SECRET_KEY_KEY: Final = "secretkey"
BUNDLES: Final = ("manifests/kustomize/cluster-scoped-resources", "manifests/kustomize/env/platform-agnostic")
PATCH_FORCE: Final = {"pulumi.com/patchForce": "true"}
"""Take over fields the upstream bundle set (a server-side-apply patch)."""


@dataclass(frozen=True)
class PipelinesArgs:
    """Arguments of :class:`KubeflowPipelines`.

    Attributes:
        s3_host: Host of the platform's object store (``minio.mlp-data.svc.cluster.local``).
        s3_port: Its port.
        bucket: Bucket of pipeline artifacts.
        access_key_id: KFP's MinIO access key id.
        secret_access_key: KFP's MinIO secret key (a Pulumi secret).
        tracking: The MLflow user the pipeline steps log and register with (None: no MLflow).
        ref: Upstream release tag.
        service_monitor: Declare a ServiceMonitor (needs the Prometheus Operator CRDs).
        secure_namespace: Patch the namespace's Pod Security labels and declare its NetworkPolicies
            (``components.security``); off when another component installed into it does it.

    """

    s3_host: str
    s3_port: int
    bucket: str
    access_key_id: pulumi.Input[str]
    secret_access_key: pulumi.Input[str]
    tracking: TrackingCredentials | None = None
    ref: str = MANIFESTS["kubeflow-pipelines"]
    service_monitor: bool = True
    secure_namespace: bool = True


def launcher_config(args: PipelinesArgs) -> dict[str, str]:
    """``kfp-launcher`` ConfigMap data: pipeline root and S3 provider on the platform's MinIO."""
    providers = {
        "s3": {
            "default": {
                "endpoint": f"{args.s3_host}:{args.s3_port}",
                "disableSSL": True,
                "region": "us-east-1",
                "forcePathStyle": True,
                "credentials": {
                    "fromEnv": False,
                    "secretRef": {
                        "secretName": ARTIFACT_SECRET,
                        "accessKeyKey": ACCESS_KEY_KEY,
                        "secretKeyKey": SECRET_KEY_KEY,
                    },
                },
            }
        }
    }
    return {
        "defaultPipelineRoot": f"s3://{args.bucket}/kfp",
        "providers": yaml.safe_dump(providers, sort_keys=False),
    }


def api_endpoint(namespace: str = NAMESPACE) -> str:
    """In-cluster URL of the KFP API server (what ``kfp.Client(host=...)`` takes)."""
    return f"http://{API_SERVICE}.{namespace}.svc.cluster.local:{API_PORT}"


class KubeflowPipelines(pulumi.ComponentResource):
    """Kubeflow Pipelines standalone, artifacts on the platform's MinIO.

    Attributes:
        namespace: ``kubeflow``.
        endpoint: In-cluster API endpoint.
        ref: The pinned upstream release.
        bundles: The kustomize directories installed, at ``ref``.

    """

    def __init__(self, name: str, args: PipelinesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplatform:kubeflow:Pipelines", name, None, opts)
        self.ref = args.ref
        self.bundles = [github_kustomization(REPO, args.ref, path) for path in BUNDLES]
        cluster_scoped = k8s.kustomize.v2.Directory(
            f"{name}-cluster-scoped",
            directory=self.bundles[0],
            opts=pulumi.ResourceOptions(parent=self),
        )
        install = k8s.kustomize.v2.Directory(
            f"{name}-install",
            directory=self.bundles[1],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[cluster_scoped]),
        )
        after_install = pulumi.ResourceOptions(parent=self, depends_on=[install])
        if args.secure_namespace:
            label_existing_namespace(name, NAMESPACE, parent=self, depends_on=install)
            namespace_policies(name, NAMESPACE, parent=self, depends_on=install)
        secret_data: Any = pulumi.Output.secret(
            pulumi.Output.all(args.access_key_id, args.secret_access_key).apply(
                lambda pair: {ACCESS_KEY_KEY: pair[0], SECRET_KEY_KEY: pair[1]}
            )
        )
        k8s.core.v1.SecretPatch(
            f"{name}-artifact-secret",
            metadata={"name": ARTIFACT_SECRET, "namespace": NAMESPACE, "annotations": PATCH_FORCE},
            string_data=secret_data,
            opts=after_install,
        )
        k8s.core.v1.ConfigMapPatch(
            f"{name}-launcher-config",
            metadata={"name": LAUNCHER_CONFIG, "namespace": NAMESPACE, "annotations": PATCH_FORCE},
            data=launcher_config(args),
            opts=after_install,
        )
        if args.tracking is not None:
            tracking_credentials_secret(
                f"{name}-mlflow-credentials", NAMESPACE, args.tracking, opts=after_install
            )
        if args.service_monitor:
            service_monitor(
                f"{name}-api-metrics",
                namespace=NAMESPACE,
                selector={"app": API_SERVICE},
                port="http",
                opts=after_install,
            )
            # The controller serves metrics over TLS with a self-signed certificate by default.
            service_monitor(
                f"{name}-workflow-controller-metrics",
                namespace=NAMESPACE,
                selector={"app": WORKFLOW_CONTROLLER},
                port="metrics",
                scheme="https",
                insecure_tls=True,
                opts=after_install,
            )
        self.namespace: str = NAMESPACE
        self.endpoint: str = api_endpoint()
        self.register_outputs(
            {"namespace": self.namespace, "endpoint": self.endpoint, "ref": self.ref, "bundles": self.bundles}
        )
