"""Every chart, manifest bundle and image version the platform deploys, in one place.

Images that a chart or an upstream bundle brings are pinned through that chart's version or the
bundle's release tag; images the platform names itself are in ``IMAGES``. Bump a version here
and nowhere else. Where an add-on installs CRDs, its version matches the CRD
release in ``shared/crds/SOURCES.md`` so the offline plan validates against the same schema the
cluster will serve. ``CRD_SOURCES`` lists the upstream CRD files that ``mlp crds fetch`` downloads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class ChartPin:
    """A Helm chart pinned to one version.

    Attributes:
        chart: Chart name in its repository (or the full ``oci://`` reference).
        version: Exact chart version.
        repository: Helm repository URL; empty for ``oci://`` charts.
        app_version: Version of the application the chart deploys, for humans and docs.

    """

    chart: str
    version: str
    repository: str
    app_version: str


@dataclass(frozen=True)
class ImagePin:
    """A container image pinned to one tag."""

    repository: str
    tag: str

    @property
    def ref(self) -> str:
        """The ``repository:tag`` reference."""
        return f"{self.repository}:{self.tag}"


CHARTS: Final[dict[str, ChartPin]] = {
    "nvidia-device-plugin": ChartPin(
        "nvidia-device-plugin", "0.19.3", "https://nvidia.github.io/k8s-device-plugin", "v0.19.3"
    ),
    "gpu-operator": ChartPin("gpu-operator", "v26.7.0", "https://helm.ngc.nvidia.com/nvidia", "v26.7.0"),
    # 4.8.2: newest chart in upstream's index (4.8.3 is in no upstream ref); its files are
    # not held, so the offline chart check lists it as unverifiable (stacks/plan/charts_check.py).
    "dcgm-exporter": ChartPin(
        "dcgm-exporter", "4.8.2", "https://nvidia.github.io/dcgm-exporter/helm-charts", "4.5.3-4.8.2"
    ),
    "kube-prometheus-stack": ChartPin(
        "kube-prometheus-stack",
        "88.0.0",
        "https://prometheus-community.github.io/helm-charts",
        "prometheus-operator v0.93.0",
    ),
    "cluster-autoscaler": ChartPin(
        "cluster-autoscaler", "9.52.1", "https://kubernetes.github.io/autoscaler", "1.34.1"
    ),
    # Queue-processor mode on EKS (adr/0010): drains nodes on spot/rebalance/ASG notices from SQS.
    "aws-node-termination-handler": ChartPin(
        "aws-node-termination-handler", "0.27.6", "https://aws.github.io/eks-charts", "1.25.6"
    ),
    "cert-manager": ChartPin("cert-manager", "v1.21.1", "https://charts.jetstack.io", "v1.21.1"),
    "kserve-crd": ChartPin("oci://ghcr.io/kserve/charts/kserve-crd", "v0.20.0", "", "v0.20.0"),
    # The controller chart has been called kserve-resources since KServe v0.17.
    "kserve": ChartPin("oci://ghcr.io/kserve/charts/kserve-resources", "v0.20.0", "", "v0.20.0"),
    "kserve-runtime-configs": ChartPin(
        "oci://ghcr.io/kserve/charts/kserve-runtime-configs", "v0.20.0", "", "v0.20.0"
    ),
    "keda": ChartPin("keda", "2.20.2", "https://kedacore.github.io/charts", "2.20.2"),
    # Chart 2.4.16 ships controller v1.9.7; the platform runs v1.9.11 (IMAGES["argo-events"]), the
    # release of the CRDs and API schema the offline plan validates EventBus/EventSource/Sensor against.
    "argo-events": ChartPin("argo-events", "2.4.16", "https://argoproj.github.io/argo-helm", "v1.9.7"),
    "minio": ChartPin("minio", "5.4.0", "https://charts.min.io/", "RELEASE.2024-12-18T13-15-44Z"),
    # Chart 1.8.1 ships MLflow 3.7.0; the platform overrides the image tag to IMAGES["mlflow"].
    "mlflow": ChartPin("mlflow", "1.8.1", "https://community-charts.github.io/helm-charts", "3.7.0"),
    "qdrant": ChartPin("qdrant", "1.15.5", "https://qdrant.github.io/qdrant-helm", "v1.15.5"),
    "milvus": ChartPin("milvus", "5.0.6", "https://zilliztech.github.io/milvus-helm/", "v2.6.4"),
}
"""Helm charts by the name the platform uses for them."""

MANIFESTS: Final[dict[str, str]] = {
    "kubeflow-pipelines": "2.17.0",
    "katib": "v0.19.0",
    "knative-serving": "knative-v1.23.0",
    "net-kourier": "knative-v1.23.0",
}
"""Add-ons installed from upstream manifests rather than charts: release tags."""

MANIFEST_REPOSITORIES: Final[dict[str, str]] = {
    "knative-serving": "knative/serving",
    "net-kourier": "knative-extensions/net-kourier",
}
"""GitHub repository whose releases publish each manifest bundle of ``MANIFESTS``."""


def release_asset_url(name: str, asset: str) -> str:
    """URL of one release asset (e.g. ``serving-core.yaml``) of the pinned release of ``name``."""
    return f"https://github.com/{MANIFEST_REPOSITORIES[name]}/releases/download/{MANIFESTS[name]}/{asset}"


IMAGES: Final[dict[str, ImagePin]] = {
    "cuda-sample": ImagePin("nvcr.io/nvidia/k8s/cuda-sample", "vectoradd-cuda12.5.0-ubuntu22.04"),
    "kind-node": ImagePin("kindest/node", "v1.33.1"),
    "python-slim": ImagePin("docker.io/library/python", "3.12.7-slim-bookworm"),
    # The MLflow server: the chart's image, at the MLflow version the workloads use (constraints.txt).
    "mlflow": ImagePin("docker.io/burakince/mlflow", "3.17.2"),
    "postgres": ImagePin("docker.io/library/postgres", "17.6-bookworm"),
    "argo-events": ImagePin("quay.io/argoproj/argo-events", "v1.9.11"),
    # This project's image (Dockerfile, published by .github/workflows/release.yaml): pipeline steps,
    # Katib trials, the Argo Events trigger job, the Qdrant snapshot job, serving transformer/log sink.
    "workloads": ImagePin("ghcr.io/mlplatform/workloads", "0.1.0"),
    # zilliztech/milvus-backup (official backup tool; v0.5.x reads backup.yaml's milvus/minio sections).
    "milvus-backup": ImagePin("docker.io/milvusdb/milvus-backup", "v0.5.9"),
}
"""Container images the platform references directly."""

CRD_RELEASES: Final[dict[str, tuple[str, str]]] = {
    "argo-events": ("argoproj/argo-events", "v1.9.11"),
    "cert-manager": ("cert-manager/cert-manager", "v1.21.1"),
    "gateway-api": ("kubernetes-sigs/gateway-api", "v1.6.1"),
    "gpu-operator": ("NVIDIA/gpu-operator", "v26.7.0"),
    "istio": ("istio/istio", "1.30.3"),
    "karpenter": ("aws/karpenter-provider-aws", "v1.14.1"),
    "katib": ("kubeflow/katib", "v0.19.0"),
    "keda": ("kedacore/keda", "v2.20.2"),
    "knative-serving": ("knative/serving", "knative-v1.23.0"),
    "kserve": ("kserve/kserve", "v0.20.0"),
    "kubeflow-pipelines": ("kubeflow/pipelines", "2.17.0"),
    "milvus-operator": ("zilliztech/milvus-operator", "v1.3.8"),
    "prometheus-operator": ("prometheus-operator/prometheus-operator", "v0.93.0"),
}
"""Upstream repository and release tag of each CRD set the plan validates against."""

CRD_SOURCES: Final[dict[str, list[str]]] = {
    "argo-events": [
        "manifests/base/crds/argoproj.io_eventsources.yaml",
        "manifests/base/crds/argoproj.io_sensors.yaml",
        "manifests/base/crds/argoproj.io_eventbus.yaml",
        "api/jsonschema/schema.json",
    ],
    "cert-manager": [
        "deploy/crds/cert-manager.io_certificates.yaml",
        "deploy/crds/cert-manager.io_issuers.yaml",
        "deploy/crds/cert-manager.io_clusterissuers.yaml",
    ],
    "gateway-api": [
        "config/crd/standard/gateway.networking.k8s.io_gatewayclasses.yaml",
        "config/crd/standard/gateway.networking.k8s.io_gateways.yaml",
        "config/crd/standard/gateway.networking.k8s.io_httproutes.yaml",
        "config/crd/standard/gateway.networking.k8s.io_grpcroutes.yaml",
        "config/crd/standard/gateway.networking.k8s.io_referencegrants.yaml",
    ],
    "gpu-operator": ["deployments/gpu-operator/crds/nvidia.com_clusterpolicies.yaml"],
    "istio": ["manifests/charts/base/files/crd-all.gen.yaml"],
    "karpenter": [
        "pkg/apis/crds/karpenter.sh_nodepools.yaml",
        "pkg/apis/crds/karpenter.k8s.aws_ec2nodeclasses.yaml",
        "pkg/apis/crds/karpenter.sh_nodeclaims.yaml",
    ],
    "katib": [
        "manifests/v1beta1/components/crd/experiment.yaml",
        "manifests/v1beta1/components/crd/suggestion.yaml",
        "manifests/v1beta1/components/crd/trial.yaml",
        "api/openapi-spec/swagger.json",
    ],
    "keda": [
        "config/crd/bases/keda.sh_scaledobjects.yaml",
        "config/crd/bases/keda.sh_scaledjobs.yaml",
        "config/crd/bases/keda.sh_triggerauthentications.yaml",
        "config/crd/bases/keda.sh_clustertriggerauthentications.yaml",
    ],
    "knative-serving": [
        "config/core/300-resources/service.yaml",
        "config/core/300-resources/configuration.yaml",
        "config/core/300-resources/revision.yaml",
        "config/core/300-resources/route.yaml",
    ],
    "kserve": [
        "config/crd/full/serving.kserve.io_inferenceservices.yaml",
        "config/crd/full/serving.kserve.io_servingruntimes.yaml",
        "config/crd/full/serving.kserve.io_clusterservingruntimes.yaml",
        "config/crd/full/serving.kserve.io_inferencegraphs.yaml",
        "config/crd/full/serving.kserve.io_trainedmodels.yaml",
        "config/crd/full/localmodel/serving.kserve.io_localmodelcaches.yaml",
    ],
    "kubeflow-pipelines": [
        "manifests/kustomize/base/pipeline/cluster-scoped/scheduled-workflow-crd.yaml",
        "manifests/kustomize/base/pipeline/cluster-scoped/viewer-crd.yaml",
    ],
    "milvus-operator": ["config/crd/bases/milvus.io_milvuses.yaml"],
    "prometheus-operator": [
        "example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml",
        "example/prometheus-operator-crd/monitoring.coreos.com_podmonitors.yaml",
        "example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml",
    ],
}
"""Paths (relative to the release tag) of the upstream CRD and API schema files."""

CRD_LOCAL_NAMES: Final[dict[str, str]] = {"api/openapi-spec/swagger.json": "openapi-spec.json"}
"""Upstream files saved under another name in the CRD directory (the plan looks them up by it)."""

CRD_BUNDLES: Final[dict[str, tuple[str, ...]]] = {
    "manifests/charts/base/files/crd-all.gen.yaml": (
        "networking.istio.io_virtualservices.yaml",
        "networking.istio.io_destinationrules.yaml",
        "networking.istio.io_gateways.yaml",
        "security.istio.io_peerauthentications.yaml",
        "security.istio.io_authorizationpolicies.yaml",
    ),
}
"""Multi-document upstream CRD files: the CRDs kept from each, saved one per file as
``<group>_<plural>.yaml`` (Istio ships every CRD in one file; the serving patterns use these)."""


def crd_local_name(upstream: str) -> str:
    """File name an upstream CRD/API schema path is stored under in a CRD directory."""
    return CRD_LOCAL_NAMES.get(upstream, upstream.rsplit("/", 1)[-1])


DEFAULT_KUBERNETES_VERSION: Final = "1.33"
"""Kubernetes minor a stack gets when its config names none (the cloud picks the patch level)."""

MLPLATFORM_VERSION: Final = "0.1.0"
