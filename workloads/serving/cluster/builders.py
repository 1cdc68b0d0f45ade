"""Kubernetes objects for each serving pattern, for KServe's Serverless or RawDeployment mode.

Everything here is pure: the caller passes the resolved models (:class:`ModelSource`), where the
stack keeps things (:class:`ServingEnv`) and what to build (:class:`ServeRequest`); the functions
return plain dicts with the camelCase keys Kubernetes expects, in apply order. Combinations that
cannot work are rejected with :class:`ServingError` naming the option and the way out.

Pattern by mode:

============  ==============================================  ==============================================
pattern       Serverless (Knative)                            RawDeployment (Deployment + HPA/KEDA)
============  ==============================================  ==============================================
single        one InferenceService, scale to zero             one InferenceService, KEDA/HPA, min 1 replica
multi-model   one InferenceService + TrainedModels            same
transformer   transformer + predictor in one InferenceService same
canary        ``canaryTrafficPercent`` on one service          two InferenceServices + weighted HTTPRoute
a/b           InferenceGraph Splitter over two services       same
shadow        Istio VirtualService ``mirror`` (Istio ingress) HTTPRoute ``RequestMirror`` (or Istio)
============  ==============================================  ==============================================
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from workloads.gpu.manifests import GpuPlacement

Mode = Literal["Serverless", "RawDeployment"]
MODES: Final[tuple[str, ...]] = ("Serverless", "RawDeployment")
Pattern = Literal["single", "multi-model", "transformer", "canary", "ab", "shadow"]
PATTERNS: Final[tuple[str, ...]] = ("single", "multi-model", "transformer", "canary", "ab", "shadow")
ModelFormat = Literal["mlflow", "sklearn"]
ScaleMetric = Literal["concurrency", "rps", "cpu", "gpu-utilization"]
Mirror = Literal["gateway-api", "istio"]

KSERVE_API: Final = "serving.kserve.io/v1beta1"
KSERVE_ALPHA_API: Final = "serving.kserve.io/v1alpha1"
ISVC_LABEL: Final = "serving.kserve.io/inferenceservice"
"""Label KServe puts on every pod of an InferenceService."""
PATTERN_LABEL: Final = "mlplatform.io/serving-pattern"
VARIANT_LABEL: Final = "mlplatform.io/variant"
ROLE_LABEL: Final = "mlplatform.io/serving-role"
STABLE_URI_ANNOTATION: Final = "mlplatform.io/stable-storage-uri"
CANDIDATE_URI_ANNOTATION: Final = "mlplatform.io/candidate-storage-uri"
DEPLOYMENT_MODE_ANNOTATION: Final = "serving.kserve.io/deploymentMode"
AUTOSCALER_CLASS_ANNOTATION: Final = "serving.kserve.io/autoscalerClass"
PROGRESS_DEADLINE_ANNOTATION: Final = "serving.knative.dev/progress-deadline"
"""Knative's deadline for a new revision to become ready; a cold start pulling a large model or
waiting for a GPU node needs more than the 600 s default (kserve#1247)."""
LOG_SINK_NAME: Final = "mlp-inference-log-sink"
LOG_SINK_PORT: Final = 8080
MODEL_SERVER_PORT: Final = 8080
QUEUE_PROXY_METRICS_PORT: Final = "http-usermetric"
DEFAULT_NAMESPACE: Final = "mlp-serving"
DEFAULT_GATEWAY: Final = ("kserve", "kserve-ingress-gateway")
"""Gateway API Gateway (namespace, name) that KServe's Gateway API integration creates by default."""
TRANSFORMER_MODULE: Final = "workloads.serving.transformer"
"""Module of the workload image that runs the transformer with KServe's standard arguments
(``--model_name``, ``--predictor_host``, ``--http_port``) plus ``--protocol``."""

_BASE_LABELS: Final = {"app.kubernetes.io/part-of": "mlplatform", "app.kubernetes.io/managed-by": "mlp"}
_NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_MAX_NAME = 45
"""KServe derives ``<name>-predictor-<revision>`` names (63-character limit) from the service name."""
_STORAGE_SCHEMES: Final = ("s3://", "gs://", "https://", "pvc://", "oci://", "hf://")
_RUNTIMES: Final[dict[str, tuple[str, str]]] = {
    # format -> (KServe's ClusterServingRuntime, protocol). MLflow models go to MLServer (V2 only);
    # sklearn pickles to KServe's own sklearn server (V1 and V2).
    "mlflow": ("kserve-mlserver", "v2"),
    "sklearn": ("kserve-sklearnserver", "v1"),
}


class ServingError(ValueError):
    """A serving request that cannot be rendered as asked (the message says what to change)."""


@dataclass(frozen=True)
class ModelSource:
    """One model to serve, resolved from the registry (or given directly).

    Attributes:
        name: Registered model name (also used as the KServe model name).
        storage_uri: Object-storage URI of the model directory (``s3://bucket/path``).
        model_format: ``mlflow`` (MLServer runtime) or ``sklearn`` (KServe sklearn server).
        version: Registry version, empty when given directly.
        alias: Registry alias it was resolved from, if any.
        memory_mi: Memory the loaded model needs, in MiB (sizes multi-model servers).

    """

    name: str
    storage_uri: str
    model_format: ModelFormat = "mlflow"
    version: str = ""
    alias: str | None = None
    memory_mi: int = 256

    @property
    def ref(self) -> str:
        """``name@alias``, ``name/version`` or the bare name."""
        if self.alias:
            return f"{self.name}@{self.alias}"
        return f"{self.name}/{self.version}" if self.version else self.name


@dataclass(frozen=True)
class Scaling:
    """Autoscaling wishes; defaults depend on the mode.

    Attributes:
        metric: ``concurrency`` or ``rps`` (Knative KPA) in Serverless; ``rps`` (KEDA on the model
            server's request rate), ``cpu`` (HPA) or ``gpu-utilization`` (KEDA on DCGM) in
            RawDeployment. None: ``concurrency`` in Serverless, ``rps`` in RawDeployment.
        target: Per-replica target: in-flight requests (concurrency), requests per second (rps),
            percent (cpu, gpu-utilization). None picks a default for the metric.
        min_replicas: None: 0 in Serverless (scale to zero), 1 in RawDeployment.
        max_replicas: Upper bound.
        cold_start_timeout_s: How long a new revision may take to become ready (Serverless).
        request_timeout_s: Per-request timeout of the predictor.

    """

    metric: ScaleMetric | None = None
    target: int | None = None
    min_replicas: int | None = None
    max_replicas: int = 3
    cold_start_timeout_s: int = 600
    request_timeout_s: int = 60


_DEFAULT_TARGETS: Final[dict[str, int]] = {"concurrency": 8, "rps": 50, "cpu": 70, "gpu-utilization": 70}


@dataclass(frozen=True)
class ServingEnv:
    """What the stack provides.

    Attributes:
        mode: KServe deployment mode (stack output ``kserveDeploymentMode``).
        namespace: Namespace the InferenceServices go to.
        service_account: ServiceAccount holding the object-storage credentials KServe's storage
            initializer uses to download models.
        workload_image: The project's image (transformer, log sink).
        prometheus_url: In-cluster Prometheus (KEDA triggers); None when the stack has none.
        s3_bucket: Bucket the request logs land in; None disables the sink.
        s3_endpoint: S3 endpoint for the sink (MinIO); None for the cloud's default.
        s3_secret: Secret with ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` for the sink.
        gateway: Gateway API Gateway (namespace, name) for the HTTPRoutes.
        url_template: Stack output ``kserveUrlTemplate`` (``{name}``, ``{namespace}``).
        gpu: Placement on a GPU pool, or None for CPU predictors.

    """

    mode: Mode
    namespace: str = DEFAULT_NAMESPACE
    service_account: str = "kserve-s3"
    workload_image: str = ""
    prometheus_url: str | None = None
    s3_bucket: str | None = None
    s3_endpoint: str | None = None
    s3_secret: str = "mlp-serving-s3"
    gateway: tuple[str, str] = DEFAULT_GATEWAY
    url_template: str | None = None
    gpu: GpuPlacement | None = None


@dataclass(frozen=True)
class ServeRequest:
    """What to serve and how.

    Attributes:
        pattern: One of :data:`PATTERNS`.
        name: Base name; every object's name derives from it.
        models: single/transformer: one; canary/shadow: stable (or primary) then candidate (or
            shadow); a/b: one per variant; multi-model: two or more.
        canary_percent: Share of traffic the canary gets (canary).
        weights: Per-variant weights summing to 100 (a/b; default an even split).
        mirror_percent: Share of live traffic copied to the shadow.
        mirror: Mechanism for shadow traffic: Gateway API ``RequestMirror`` or Istio ``mirror``.
        scaling: Autoscaling.
        request_logging: Send every request/response to the log sink.
        memory_overhead_mi: Memory of the model server itself (multi-model sizing).

    """

    pattern: Pattern
    name: str
    models: tuple[ModelSource, ...]
    canary_percent: int = 10
    weights: tuple[int, ...] = ()
    mirror_percent: int = 100
    mirror: Mirror = "gateway-api"
    scaling: Scaling = field(default_factory=Scaling)
    request_logging: bool = True
    memory_overhead_mi: int = 512


# ---------------------------------------------------------------------------------------------
# Checks


def check(request: ServeRequest, env: ServingEnv) -> None:
    """Reject impossible combinations before anything is built.

    Raises:
        ServingError: Naming the option at fault and what to do instead.
    """
    if request.pattern not in PATTERNS:
        raise ServingError(f"unknown pattern {request.pattern!r}; choose one of {', '.join(PATTERNS)}")
    if env.mode not in MODES:
        raise ServingError(
            f"unknown KServe deployment mode {env.mode!r}; expected Serverless or RawDeployment"
        )
    if not _NAME.match(request.name) or len(request.name) > _MAX_NAME:
        raise ServingError(
            f"--name {request.name!r}: use lowercase letters, digits and '-', starting with a letter, "
            f"at most {_MAX_NAME} characters (KServe appends '-predictor-00001' and similar)"
        )
    wanted = {"single": (1, 1), "transformer": (1, 1), "canary": (2, 2), "shadow": (2, 2), "ab": (2, 8)}
    low, high = wanted.get(request.pattern, (2, 32))
    if not low <= len(request.models) <= high:
        what = {
            "canary": "two models: the stable one, then the candidate",
            "shadow": "two models: the primary, then the shadow",
            "ab": "two to eight models, one per variant",
            "multi-model": "at least two models",
        }.get(request.pattern, "exactly one model")
        raise ServingError(f"pattern {request.pattern!r} needs {what}; got {len(request.models)}")
    for model in request.models:
        if not model.storage_uri.startswith(_STORAGE_SCHEMES):
            raise ServingError(
                f"model {model.ref}: storage URI {model.storage_uri!r} is not reachable from a cluster "
                f"(expected one of {', '.join(_STORAGE_SCHEMES)}); register the model against the "
                "stack's MLflow so its artifacts land in the stack's object storage"
            )
        if model.model_format not in _RUNTIMES:
            raise ServingError(
                f"model {model.ref}: unknown format {model.model_format!r} (mlflow or sklearn)"
            )
    if not 0 < request.canary_percent < 100:
        raise ServingError(f"--canary-percent {request.canary_percent}: must be between 1 and 99")
    if not 0 < request.mirror_percent <= 100:
        raise ServingError(f"--mirror-percent {request.mirror_percent}: must be between 1 and 100")
    if request.pattern == "ab":
        weights = _ab_weights(request)
        if len(weights) != len(request.models) or sum(weights) != 100 or min(weights) < 0:
            raise ServingError(
                f"--weights {','.join(map(str, request.weights))}: give one weight per model "
                f"({len(request.models)}), each >= 0, summing to 100"
            )
    if request.pattern == "multi-model":
        formats = {m.model_format for m in request.models}
        if len(formats) > 1:
            raise ServingError(
                "multi-model: every model behind one server must have the same format "
                f"(got {', '.join(sorted(formats))}); one runtime loads them all"
            )
        names = [m.name for m in request.models]
        if len(set(names)) != len(names):
            raise ServingError(f"multi-model: model names must differ (got {', '.join(names)})")
    if request.pattern == "shadow" and env.mode == "Serverless" and request.mirror == "gateway-api":
        raise ServingError(
            "shadow in Serverless: Knative routes through its own ingress (Kourier), which cannot "
            "mirror and which a Gateway API HTTPRoute cannot target; use --mirror istio on a cluster "
            "whose Knative ingress is Istio, or a RawDeployment stack"
        )
    if request.pattern == "shadow" and request.mirror not in ("gateway-api", "istio"):
        raise ServingError(f"--mirror {request.mirror!r}: choose gateway-api or istio")
    _check_scaling(request.scaling, env)
    if request.request_logging and not env.s3_bucket:
        raise ServingError(
            "request logging needs the stack's object storage (output 's3Bucket'); "
            "pass --no-request-logging or use a stack that exports it"
        )
    if request.request_logging and not env.workload_image:
        raise ServingError(
            "request logging needs the workload image (components/versions.py IMAGES['workloads'])"
        )
    if request.pattern == "transformer" and not env.workload_image:
        raise ServingError("the transformer runs the workload image, and none is configured")


def _check_scaling(scaling: Scaling, env: ServingEnv) -> None:
    metric = effective_metric(scaling, env.mode)
    if scaling.max_replicas < 1:
        raise ServingError(f"--max-replicas {scaling.max_replicas}: must be at least 1")
    minimum = effective_min_replicas(scaling, env.mode)
    if minimum < 0 or minimum > scaling.max_replicas:
        raise ServingError(
            f"--min-replicas {minimum}: must be between 0 and --max-replicas {scaling.max_replicas}"
        )
    if scaling.target is not None and scaling.target < 1:
        raise ServingError(f"--scale-target {scaling.target}: must be at least 1")
    if metric == "gpu-utilization" and env.gpu is None:
        raise ServingError(
            "--scale-metric gpu-utilization needs a GPU predictor (--gpu on a stack with GPU pools)"
        )
    if env.mode == "Serverless":
        if metric == "gpu-utilization":
            raise ServingError(
                "--scale-metric gpu-utilization is not available in Serverless: Knative's autoscaler "
                "scales on concurrency or rps only; use a RawDeployment stack (KEDA on DCGM metrics)"
            )
        if metric == "cpu":
            raise ServingError(
                "--scale-metric cpu in Serverless would switch Knative to its HPA class and lose "
                "scale-to-zero; use concurrency or rps"
            )
    else:
        if metric == "concurrency":
            raise ServingError(
                "--scale-metric concurrency needs Knative's queue-proxy (Serverless); in RawDeployment "
                "use rps (KEDA on the model server's request rate), cpu or gpu-utilization"
            )
        if minimum == 0:
            raise ServingError(
                "--min-replicas 0 in RawDeployment: nothing holds requests while a pod starts (no "
                "Knative activator), so they would fail; use a Serverless stack for scale to zero"
            )
        if metric in ("rps", "gpu-utilization") and not env.prometheus_url:
            raise ServingError(
                f"--scale-metric {metric} scales with KEDA on Prometheus, and the stack exports no "
                "'prometheusUrl'; use --scale-metric cpu or enable observability"
            )


def effective_metric(scaling: Scaling, mode: Mode) -> ScaleMetric:
    """The scaling metric after mode defaults."""
    if scaling.metric is not None:
        return scaling.metric
    return "concurrency" if mode == "Serverless" else "rps"


def effective_min_replicas(scaling: Scaling, mode: Mode) -> int:
    """The minimum replica count after mode defaults (0 = scale to zero in Serverless)."""
    if scaling.min_replicas is not None:
        return scaling.min_replicas
    return 0 if mode == "Serverless" else 1


def _ab_weights(request: ServeRequest) -> tuple[int, ...]:
    if request.weights:
        return request.weights
    count = len(request.models)
    base = [100 // count] * count
    base[0] += 100 - sum(base)
    return tuple(base)


# ---------------------------------------------------------------------------------------------
# Building blocks


def _labels(request: ServeRequest, **extra: str) -> dict[str, str]:
    return {**_BASE_LABELS, PATTERN_LABEL: request.pattern, **extra}


def _meta(
    name: str, env: ServingEnv, labels: Mapping[str, str], annotations: Mapping[str, str] | None = None
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": env.namespace, "labels": dict(labels)}
    if annotations:
        meta["annotations"] = dict(annotations)
    return meta


def runtime_for(model_format: str) -> tuple[str, str]:
    """KServe ClusterServingRuntime and protocol version for a model format."""
    return _RUNTIMES[model_format]


def _model_spec(model: ModelSource, *, with_uri: bool = True) -> dict[str, Any]:
    runtime, protocol = runtime_for(model.model_format)
    spec: dict[str, Any] = {
        "modelFormat": {"name": model.model_format},
        "runtime": runtime,
        "protocolVersion": protocol,
    }
    if with_uri:
        spec["storageUri"] = model.storage_uri
    return spec


def _resources(env: ServingEnv, memory_mi: int) -> dict[str, Any]:
    resources: dict[str, Any] = {
        "requests": {"cpu": "500m", "memory": f"{memory_mi}Mi"},
        "limits": {"cpu": "2", "memory": f"{memory_mi}Mi"},
    }
    if env.gpu is not None:
        resources["limits"][env.gpu.resource] = "1"
        resources["requests"][env.gpu.resource] = "1"
    return resources


def _restricted_security(*, read_only_root: bool = False) -> dict[str, Any]:
    """A container security context of the ``restricted`` Pod Security profile.

    Args:
        read_only_root: Also mount the container's root filesystem read-only.
    """
    context: dict[str, Any] = {"allowPrivilegeEscalation": False, "runAsNonRoot": True}
    if read_only_root:
        context["readOnlyRootFilesystem"] = True
    context["capabilities"] = {"drop": ["ALL"]}
    context["seccompProfile"] = {"type": "RuntimeDefault"}
    return context


def _scaling_fields(scaling: Scaling, env: ServingEnv) -> dict[str, Any]:
    """Component-level autoscaling fields (``minReplicas`` ... ``timeout``)."""
    metric = effective_metric(scaling, env.mode)
    target = scaling.target or _DEFAULT_TARGETS[metric]
    fields: dict[str, Any] = {
        "minReplicas": effective_min_replicas(scaling, env.mode),
        "maxReplicas": scaling.max_replicas,
        "timeout": scaling.request_timeout_s,
    }
    if env.mode == "Serverless":
        fields["scaleMetric"] = metric
        fields["scaleTarget"] = target
        # Knative passes revision annotations through; the deadline covers the model download and,
        # for GPU predictors, the GPU node scaling up from zero.
        fields["annotations"] = {PROGRESS_DEADLINE_ANNOTATION: f"{scaling.cold_start_timeout_s}s"}
    elif metric == "cpu":
        fields["scaleMetric"] = "cpu"
        fields["scaleMetricType"] = "Utilization"
        fields["scaleTarget"] = target
    return fields


def _placement(env: ServingEnv) -> dict[str, Any]:
    if env.gpu is None:
        return {}
    return {
        "nodeSelector": dict(env.gpu.node_selector),
        "tolerations": [dict(t) for t in env.gpu.tolerations],
    }


def _logger(request: ServeRequest, env: ServingEnv) -> dict[str, Any]:
    if not request.request_logging:
        return {}
    return {"logger": {"mode": "all", "url": f"http://{LOG_SINK_NAME}.{env.namespace}.svc.cluster.local"}}


def _isvc_annotations(request: ServeRequest, env: ServingEnv) -> dict[str, str]:
    annotations: dict[str, str] = {DEPLOYMENT_MODE_ANNOTATION: env.mode}
    if env.mode == "RawDeployment":
        metric = effective_metric(request.scaling, env.mode)
        # KEDA objects are rendered here (validated against the KEDA CRD), so KServe must not
        # create its own HPA: the "external" class leaves scaling to them.
        annotations[AUTOSCALER_CLASS_ANNOTATION] = "hpa" if metric == "cpu" else "external"
    return annotations


def inference_service(
    name: str,
    model: ModelSource,
    request: ServeRequest,
    env: ServingEnv,
    *,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    canary_percent: int | None = None,
    transformer: bool = False,
    with_uri: bool = True,
    memory_mi: int | None = None,
) -> dict[str, Any]:
    """One InferenceService serving ``model`` with the request's scaling, logging and placement."""
    predictor: dict[str, Any] = {
        "model": {
            **_model_spec(model, with_uri=with_uri),
            "resources": _resources(env, memory_mi or model.memory_mi + request.memory_overhead_mi),
        },
        "serviceAccountName": env.service_account,
        **_scaling_fields(request.scaling, env),
        **_placement(env),
        **_logger(request, env),
    }
    if canary_percent is not None:
        predictor["canaryTrafficPercent"] = canary_percent
    spec: dict[str, Any] = {"predictor": predictor}
    if transformer:
        spec["transformer"] = _transformer(model, request, env)
    all_labels = _labels(request, **(labels or {}))
    return {
        "apiVersion": KSERVE_API,
        "kind": "InferenceService",
        "metadata": _meta(name, env, all_labels, {**_isvc_annotations(request, env), **(annotations or {})}),
        "spec": spec,
    }


def _transformer(model: ModelSource, request: ServeRequest, env: ServingEnv) -> dict[str, Any]:
    # KServe appends --model_name, --predictor_host and --http_port to a transformer's arguments.
    _, protocol = runtime_for(model.model_format)
    fields = _scaling_fields(request.scaling, env)
    if env.mode == "RawDeployment":
        # Scaled by its own KEDA cpu trigger (see transformer_scaled_object).
        fields = {k: v for k, v in fields.items() if k in ("minReplicas", "maxReplicas", "timeout")}
    return {
        "containers": [
            {
                "name": "kserve-container",
                "image": env.workload_image,
                "command": ["python", "-m", TRANSFORMER_MODULE],
                "args": ["--protocol", protocol],
                "resources": {
                    "requests": {"cpu": "250m", "memory": "256Mi"},
                    "limits": {"cpu": "1", "memory": "512Mi"},
                },
                "securityContext": _restricted_security(),
            }
        ],
        **fields,
        **_logger(request, env),
    }


def trained_model(
    name: str, isvc: str, model: ModelSource, request: ServeRequest, env: ServingEnv
) -> dict[str, Any]:
    """A TrainedModel: one more model loaded into the server of InferenceService ``isvc``."""
    return {
        "apiVersion": KSERVE_ALPHA_API,
        "kind": "TrainedModel",
        "metadata": _meta(name, env, _labels(request, **{ISVC_LABEL: isvc})),
        "spec": {
            "inferenceService": isvc,
            "model": {
                "framework": model.model_format,
                "storageUri": model.storage_uri,
                "memory": f"{model.memory_mi}Mi",
            },
        },
    }


def inference_graph(
    name: str, services: Sequence[tuple[str, str, int]], request: ServeRequest, env: ServingEnv
) -> dict[str, Any]:
    """An InferenceGraph whose root Splitter sends ``weight`` percent to each (variant, service)."""
    spec: dict[str, Any] = {
        "nodes": {
            "root": {
                "routerType": "Splitter",
                "steps": [
                    {"name": variant, "serviceName": service, "weight": weight}
                    for variant, service, weight in services
                ],
            }
        },
        "minReplicas": effective_min_replicas(request.scaling, env.mode) if env.mode == "Serverless" else 1,
        "maxReplicas": request.scaling.max_replicas,
        "resources": {
            "requests": {"cpu": "100m", "memory": "64Mi"},
            "limits": {"cpu": "1", "memory": "256Mi"},
        },
    }
    return {
        "apiVersion": KSERVE_ALPHA_API,
        "kind": "InferenceGraph",
        "metadata": _meta(name, env, _labels(request), {DEPLOYMENT_MODE_ANNOTATION: env.mode}),
        "spec": spec,
    }


def predictor_service(isvc: str) -> str:
    """The Kubernetes Service KServe creates for an InferenceService's predictor (RawDeployment)."""
    return f"{isvc}-predictor"


def _service_host(isvc: str, env: ServingEnv) -> str:
    return f"{predictor_service(isvc)}.{env.namespace}.svc.cluster.local"


def weighted_route(
    name: str, backends: Sequence[tuple[str, int]], request: ServeRequest, env: ServingEnv
) -> dict[str, Any]:
    """A Gateway API HTTPRoute splitting traffic by weight over predictor Services."""
    rule = {
        "backendRefs": [
            {"name": predictor_service(isvc), "port": 80, "weight": weight} for isvc, weight in backends
        ]
    }
    return _http_route(name, rule, request, env)


def mirror_route(
    name: str, primary: str, shadow: str, request: ServeRequest, env: ServingEnv
) -> dict[str, Any]:
    """A Gateway API HTTPRoute answering from ``primary`` and copying requests to ``shadow``.

    The gateway discards the mirrored responses, so clients only ever see the primary's answer.
    """
    mirror: dict[str, Any] = {"backendRef": {"name": predictor_service(shadow), "port": 80}}
    if request.mirror_percent < 100:
        mirror["percent"] = request.mirror_percent
    rule = {
        "filters": [{"type": "RequestMirror", "requestMirror": mirror}],
        "backendRefs": [{"name": predictor_service(primary), "port": 80}],
    }
    return _http_route(name, rule, request, env)


def _http_route(name: str, rule: dict[str, Any], request: ServeRequest, env: ServingEnv) -> dict[str, Any]:
    """A one-rule Gateway API HTTPRoute on the serving gateway, for the service's hostname."""
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": _meta(name, env, _labels(request)),
        "spec": {
            "parentRefs": [{"name": env.gateway[1], "namespace": env.gateway[0]}],
            "hostnames": [_hostname(request.name, env)],
            "rules": [rule],
        },
    }


def mirror_virtual_service(
    name: str, primary: str, shadow: str, request: ServeRequest, env: ServingEnv
) -> dict[str, Any]:
    """An Istio VirtualService with ``mirror``: the same shadow copy for Istio-based ingress."""
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": _meta(name, env, _labels(request)),
        "spec": {
            "hosts": [_hostname(request.name, env)],
            "gateways": [f"{env.gateway[0]}/{env.gateway[1]}"]
            if env.mode == "RawDeployment"
            else ["knative-serving/knative-ingress-gateway"],
            "http": [
                {
                    "route": [{"destination": {"host": _service_host(primary, env), "port": {"number": 80}}}],
                    "mirror": {"host": _service_host(shadow, env), "port": {"number": 80}},
                    "mirrorPercentage": {"value": float(request.mirror_percent)},
                }
            ],
        },
    }


def _hostname(name: str, env: ServingEnv) -> str:
    template = env.url_template or "http://{name}.{namespace}.example.com"
    url = template.format(name=name, namespace=env.namespace)
    return url.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0]


def scaled_object(isvc: str, request: ServeRequest, env: ServingEnv) -> dict[str, Any] | None:
    """KEDA ScaledObject for a RawDeployment predictor scaled on requests or GPU utilisation.

    Returns None when KServe's own HPA does the job (cpu) or in Serverless (Knative scales).
    """
    metric = effective_metric(request.scaling, env.mode)
    if env.mode == "Serverless" or metric == "cpu":
        return None
    target = request.scaling.target or _DEFAULT_TARGETS[metric]
    ns = env.namespace
    if metric == "rps":
        query = f'sum(rate(request_predict_seconds_count{{namespace="{ns}", isvc="{isvc}"}}[1m]))'
        trigger_name = "requests-per-second"
    else:
        query = f'avg(DCGM_FI_DEV_GPU_UTIL{{exported_namespace="{ns}", exported_pod=~"{predictor_service(isvc)}-.*"}})'
        trigger_name = "gpu-utilization"
    trigger = {
        "type": "prometheus",
        "name": trigger_name,
        "metricType": "AverageValue" if metric == "rps" else "Value",
        "metadata": {
            "serverAddress": str(env.prometheus_url),
            "query": query,
            "threshold": str(target),
        },
    }
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": _meta(predictor_service(isvc), env, _labels(request, **{ISVC_LABEL: isvc})),
        "spec": {
            "scaleTargetRef": {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": predictor_service(isvc),
            },
            "minReplicaCount": effective_min_replicas(request.scaling, env.mode),
            "maxReplicaCount": request.scaling.max_replicas,
            "pollingInterval": 15,
            "cooldownPeriod": 300,
            "triggers": [trigger],
        },
    }


def transformer_scaled_object(isvc: str, request: ServeRequest, env: ServingEnv) -> dict[str, Any] | None:
    """KEDA ScaledObject for a RawDeployment transformer (CPU-bound pre/post-processing)."""
    if env.mode == "Serverless" or effective_metric(request.scaling, env.mode) == "cpu":
        return None
    name = f"{isvc}-transformer"
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": _meta(name, env, _labels(request, **{ISVC_LABEL: isvc})),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicaCount": effective_min_replicas(request.scaling, env.mode),
            "maxReplicaCount": request.scaling.max_replicas,
            "triggers": [{"type": "cpu", "metricType": "Utilization", "metadata": {"value": "70"}}],
        },
    }


# ---------------------------------------------------------------------------------------------
# Request logging and metrics


def log_sink(request: ServeRequest, env: ServingEnv) -> list[dict[str, Any]]:
    """The request-log sink: a Deployment (workload image) and its Service.

    KServe's logger posts every request and response as a CloudEvent; the sink batches them into
    JSON-lines objects under ``s3://<bucket>/inference-logs/<namespace>/<service>/``.
    """
    labels = {**_BASE_LABELS, "app.kubernetes.io/name": LOG_SINK_NAME}
    env_vars: list[dict[str, Any]] = [
        {
            "name": "AWS_ACCESS_KEY_ID",
            "valueFrom": {"secretKeyRef": {"name": env.s3_secret, "key": "AWS_ACCESS_KEY_ID"}},
        },
        {
            "name": "AWS_SECRET_ACCESS_KEY",
            "valueFrom": {"secretKeyRef": {"name": env.s3_secret, "key": "AWS_SECRET_ACCESS_KEY"}},
        },
    ]
    if env.s3_endpoint:
        env_vars.append({"name": "AWS_ENDPOINT_URL", "value": env.s3_endpoint})
    container = {
        "name": "sink",
        "image": env.workload_image,
        "command": ["python", "-m", "workloads.serving.cluster.log_sink"],
        "args": [
            "--port",
            str(LOG_SINK_PORT),
            "--bucket",
            str(env.s3_bucket),
            "--prefix",
            f"inference-logs/{env.namespace}",
        ],
        "env": env_vars,
        "ports": [{"name": "http", "containerPort": LOG_SINK_PORT}],
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}},
        "resources": {
            "requests": {"cpu": "50m", "memory": "96Mi"},
            "limits": {"cpu": "500m", "memory": "256Mi"},
        },
        "securityContext": _restricted_security(read_only_root=True),
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(LOG_SINK_NAME, env, labels),
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app.kubernetes.io/name": LOG_SINK_NAME}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [container], "automountServiceAccountToken": False},
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(LOG_SINK_NAME, env, labels),
        "spec": {
            "selector": {"app.kubernetes.io/name": LOG_SINK_NAME},
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
        },
    }
    return [deployment, service]


def pod_monitor(env: ServingEnv) -> dict[str, Any]:
    """PodMonitor scraping every InferenceService pod of the namespace.

    Model servers expose ``request_{preprocess,predict,postprocess}_seconds`` histograms on their
    HTTP port; in Serverless the queue-proxy adds ``revision_app_request_*`` with response codes.
    Pod labels become ``isvc``, ``component`` and ``variant`` on every series.
    """
    relabel = [
        {
            "sourceLabels": ["__meta_kubernetes_pod_label_serving_kserve_io_inferenceservice"],
            "targetLabel": "isvc",
        },
        {"sourceLabels": ["__meta_kubernetes_pod_label_component"], "targetLabel": "component"},
        {"sourceLabels": ["__meta_kubernetes_pod_label_mlplatform_io_variant"], "targetLabel": "variant"},
    ]
    endpoints: list[dict[str, Any]] = [
        {"portNumber": MODEL_SERVER_PORT, "path": "/metrics", "interval": "15s", "relabelings": relabel}
    ]
    if env.mode == "Serverless":
        endpoints.append(
            {"port": QUEUE_PROXY_METRICS_PORT, "path": "/metrics", "interval": "15s", "relabelings": relabel}
        )
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PodMonitor",
        "metadata": _meta("mlp-kserve-models", env, {**_BASE_LABELS}),
        "spec": {
            "selector": {"matchExpressions": [{"key": ISVC_LABEL, "operator": "Exists"}]},
            "namespaceSelector": {"matchNames": [env.namespace]},
            "podMetricsEndpoints": endpoints,
        },
    }


def serving_alert_rules(
    env: ServingEnv, *, error_ratio: float = 0.05, p95_seconds: float = 0.5
) -> dict[str, Any]:
    """PrometheusRule: p95 predict latency per service (both modes), 5xx ratio (Serverless).

    RawDeployment has no HTTP status metric on the model server (only latency histograms), so the
    error-rate rule exists only where Knative's queue-proxy counts response codes.
    """
    ns = env.namespace
    rules: list[dict[str, Any]] = [
        {
            "alert": "InferenceLatencyP95High",
            "expr": (
                "histogram_quantile(0.95, sum by (isvc, variant, le) "
                f'(rate(request_predict_seconds_bucket{{namespace="{ns}"}}[5m]))) > {p95_seconds}'
            ),
            "for": "10m",
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "p95 predict latency of {{ $labels.isvc }} above "
                + f"{p95_seconds * 1000:.0f} ms",
                "description": (
                    "The model server's predict step has been slow for 10 minutes. Check replicas "
                    "(autoscaling at its maximum?), CPU throttling, and whether a new revision changed the model."
                ),
            },
        }
    ]
    if env.mode == "Serverless":
        rules.append(
            {
                "alert": "InferenceErrorRateHigh",
                "expr": (
                    f'sum by (service_name) (rate(revision_app_request_count{{namespace_name="{ns}", response_code_class="5xx"}}[5m]))'
                    f' / sum by (service_name) (rate(revision_app_request_count{{namespace_name="{ns}"}}[5m])) > {error_ratio}'
                ),
                "for": "5m",
                "labels": {"severity": "critical"},
                "annotations": {
                    "summary": "{{ $labels.service_name }} answers more than "
                    + f"{error_ratio:.0%} of requests with 5xx",
                    "description": (
                        "Server errors from the model container (counted by Knative's queue-proxy). "
                        "During a canary, roll back with `mlp serve rollback`; otherwise check the "
                        "predictor's logs and the model's input validation."
                    ),
                },
            }
        )
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": _meta("mlp-serving-alerts", env, {**_BASE_LABELS}),
        "spec": {"groups": [{"name": "mlplatform-serving", "rules": rules}]},
    }


def namespace(env: ServingEnv) -> dict[str, Any]:
    """The serving namespace."""
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": env.namespace, "labels": dict(_BASE_LABELS)},
    }


# ---------------------------------------------------------------------------------------------
# Patterns


def render(request: ServeRequest, env: ServingEnv) -> list[dict[str, Any]]:
    """Every object of one pattern, in apply order (namespace, sink, monitoring, then serving).

    Raises:
        ServingError: When the request cannot work in the stack's mode (see :func:`check`).
    """
    check(request, env)
    objects: list[dict[str, Any]] = [namespace(env)]
    if request.request_logging:
        objects += log_sink(request, env)
    objects += [pod_monitor(env), serving_alert_rules(env)]
    objects += _PATTERNS[request.pattern](request, env)
    objects += predictor_disruption_budgets(objects)
    return objects


PREDICTOR_COMPONENT_LABEL: Final = "component"
"""Label KServe puts on an InferenceService's pods: ``predictor``, ``transformer``..."""


def predictor_disruption_budgets(objects: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """A ``policy/v1`` PodDisruptionBudget per InferenceService whose predictor keeps >= 1 replica.

    Drains (spot interruptions, upgrades) then take predictor pods down one at a time
    (``maxUnavailable: 1``); with a single replica that still allows the eviction, so a node that
    is going away is never held up, while larger predictors keep serving. Pods that are not
    ready may always be evicted (``unhealthyPodEvictionPolicy: AlwaysAllow``). Predictors that
    scale to zero get none.
    """
    budgets = []
    for obj in objects:
        if obj.get("kind") != "InferenceService":
            continue
        predictor = obj["spec"]["predictor"]
        if int(predictor.get("minReplicas", 1)) < 1:
            continue
        meta = obj["metadata"]
        name = meta["name"]
        budgets.append(
            {
                "apiVersion": "policy/v1",
                "kind": "PodDisruptionBudget",
                "metadata": {
                    "name": f"{name}-predictor",
                    "namespace": meta["namespace"],
                    "labels": dict(meta.get("labels") or {}),
                },
                "spec": {
                    "maxUnavailable": 1,
                    "unhealthyPodEvictionPolicy": "AlwaysAllow",
                    "selector": {"matchLabels": {ISVC_LABEL: name, PREDICTOR_COMPONENT_LABEL: "predictor"}},
                },
            }
        )
    return budgets


def _with_scaling(
    isvcs: Sequence[dict[str, Any]], request: ServeRequest, env: ServingEnv
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for isvc in isvcs:
        out.append(isvc)
        if isvc["kind"] == "InferenceService":
            scaler = scaled_object(isvc["metadata"]["name"], request, env)
            if scaler is not None:
                out.append(scaler)
    return out


def _single(request: ServeRequest, env: ServingEnv) -> list[dict[str, Any]]:
    return _with_scaling([inference_service(request.name, request.models[0], request, env)], request, env)


def _transformer_pattern(request: ServeRequest, env: ServingEnv) -> list[dict[str, Any]]:
    isvc = inference_service(request.name, request.models[0], request, env, transformer=True)
    scaler = transformer_scaled_object(request.name, request, env)
    return _with_scaling([isvc], request, env) + ([scaler] if scaler else [])


def _multi_model(request: ServeRequest, env: ServingEnv) -> list[dict[str, Any]]:
    # The server starts empty; each TrainedModel is pulled into it by KServe's model agent. Its
    # memory limit must hold every model: KServe refuses a TrainedModel that would not fit.
    first = request.models[0]
    memory = request.memory_overhead_mi + sum(m.memory_mi for m in request.models)
    server = inference_service(request.name, first, request, env, with_uri=False, memory_mi=memory)
    models = [
        trained_model(f"{request.name}-{m.name}", request.name, m, request, env) for m in request.models
    ]
    return _with_scaling([server], request, env) + models


def _canary(request: ServeRequest, env: ServingEnv) -> list[dict[str, Any]]:
    stable, candidate = request.models
    uris = {STABLE_URI_ANNOTATION: stable.storage_uri, CANDIDATE_URI_ANNOTATION: candidate.storage_uri}
    if env.mode == "Serverless":
        # Applied over the running service, the new spec becomes a new revision that gets
        # canaryTrafficPercent of the traffic; the previous revision keeps the rest.
        isvc = inference_service(
            request.name, candidate, request, env, canary_percent=request.canary_percent, annotations=uris
        )
        return [isvc]
    # RawDeployment has no revisions: run both versions side by side and split at the gateway.
    stable_isvc = inference_service(
        request.name, stable, request, env, labels={ROLE_LABEL: "stable"}, annotations=uris
    )
    canary_isvc = inference_service(
        f"{request.name}-canary", candidate, request, env, labels={ROLE_LABEL: "canary"}, annotations=uris
    )
    route = weighted_route(
        f"{request.name}-split",
        [(request.name, 100 - request.canary_percent), (f"{request.name}-canary", request.canary_percent)],
        request,
        env,
    )
    return [*_with_scaling([stable_isvc, canary_isvc], request, env), route]


def _ab(request: ServeRequest, env: ServingEnv) -> list[dict[str, Any]]:
    weights = _ab_weights(request)
    variants = [chr(ord("a") + i) for i in range(len(request.models))]
    isvcs = [
        inference_service(f"{request.name}-{variant}", model, request, env, labels={VARIANT_LABEL: variant})
        for variant, model in zip(variants, request.models, strict=True)
    ]
    graph = inference_graph(
        request.name,
        [(v, f"{request.name}-{v}", w) for v, w in zip(variants, weights, strict=True)],
        request,
        env,
    )
    return [*_with_scaling(isvcs, request, env), graph]


def _shadow(request: ServeRequest, env: ServingEnv) -> list[dict[str, Any]]:
    primary, shadow = request.models
    shadow_name = f"{request.name}-shadow"
    isvcs = [
        inference_service(request.name, primary, request, env, labels={ROLE_LABEL: "primary"}),
        inference_service(shadow_name, shadow, request, env, labels={ROLE_LABEL: "shadow"}),
    ]
    if request.mirror == "istio":
        route = mirror_virtual_service(f"{request.name}-mirror", request.name, shadow_name, request, env)
    else:
        route = mirror_route(f"{request.name}-mirror", request.name, shadow_name, request, env)
    return [*_with_scaling(isvcs, request, env), route]


_PATTERNS: Final = {
    "single": _single,
    "multi-model": _multi_model,
    "transformer": _transformer_pattern,
    "canary": _canary,
    "ab": _ab,
    "shadow": _shadow,
}


def summary(objects: Sequence[dict[str, Any]]) -> list[str]:
    """One line per object: ``Kind namespace/name``."""
    return [f"{o['kind']} {o['metadata'].get('namespace', '-')}/{o['metadata']['name']}" for o in objects]
