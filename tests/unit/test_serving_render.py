"""Serving patterns rendered for both KServe modes: CRD-valid objects, per-pattern wiring, rejections."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from components.serving.kserve import S3_SERVICE_ACCOUNT
from stacks.plan.validate import Validator
from workloads.gpu.manifests import GpuPlacement
from workloads.serving.cluster import builders as b
from workloads.serving.cluster.log_sink import Batcher, event_record
from workloads.serving.cluster.models import format_from_mlmodel, parse_direct

STABLE = b.ModelSource("clf", "s3://mlplatform/mlflow/1/models/m-1/artifacts", version="1", alias="champion")
CANDIDATE = b.ModelSource(
    "clf", "s3://mlplatform/mlflow/1/models/m-2/artifacts", version="2", alias="challenger"
)
OTHER = b.ModelSource("reg", "s3://mlplatform/mlflow/2/models/m-3/artifacts", memory_mi=512)
GPU = GpuPlacement(
    pool="t4",
    node_selector={"mlplatform.io/gpu-pool": "t4"},
    tolerations=({"key": "nvidia.com/gpu", "operator": "Equal", "value": "present", "effect": "NoSchedule"},),
)
MODELS = {
    "single": (STABLE,),
    "multi-model": (STABLE, OTHER),
    "transformer": (STABLE,),
    "canary": (STABLE, CANDIDATE),
    "ab": (STABLE, CANDIDATE),
    "shadow": (STABLE, CANDIDATE),
}


def env(mode: str, **changes: Any) -> b.ServingEnv:
    base = b.ServingEnv(
        mode=mode,  # type: ignore[arg-type]
        workload_image="ghcr.io/mlplatform/workloads:0.1.0",
        prometheus_url="http://prometheus.monitoring.svc:9090",
        s3_bucket="mlplatform",
        s3_endpoint="http://minio.storage.svc:9000",
        url_template="http://{name}.{namespace}.example.com",
    )
    return dataclasses.replace(base, **changes)


def request(pattern: str, mode: str, **changes: Any) -> b.ServeRequest:
    mirror = "istio" if pattern == "shadow" and mode == "Serverless" else "gateway-api"
    base = b.ServeRequest(pattern=pattern, name="clf", models=MODELS[pattern], mirror=mirror)  # type: ignore[arg-type]
    return dataclasses.replace(base, **changes)


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


CASES = [(p, m) for p in b.PATTERNS for m in b.MODES]


@pytest.mark.slow
@pytest.mark.parametrize("gpu", [False, True], ids=["cpu", "gpu"])
def test_every_pattern_in_both_modes_is_crd_valid(validator: Validator, gpu: bool) -> None:
    seen: set[str] = set()
    checked = 0
    for pattern, mode in CASES:
        stack = env(mode, gpu=GPU if gpu else None)
        scaling = b.Scaling(metric="gpu-utilization") if gpu and mode == "RawDeployment" else b.Scaling()
        for obj in b.render(request(pattern, mode, scaling=scaling), stack):
            key = json.dumps(obj, sort_keys=True)
            if key in seen:
                continue
            seen.add(key)
            result = validator.validate(obj)
            assert result.status == "valid", (pattern, mode, obj["kind"], result.errors, result.schema)
            checked += 1
    assert checked > 2 * len(CASES)


@pytest.mark.slow
def test_istio_mirror_for_raw_deployment_is_crd_valid(validator: Validator) -> None:
    objects = b.render(request("shadow", "RawDeployment", mirror="istio"), env("RawDeployment"))
    service = by_kind(objects, "VirtualService")[0]
    assert validator.validate(service).status == "valid"


@pytest.mark.parametrize("mode", b.MODES)
def test_single_model_serves_the_registered_uri_with_its_runtime(mode: str) -> None:
    stack = env(mode)
    objects = b.render(request("single", mode), stack)
    (isvc,) = by_kind(objects, "InferenceService")
    predictor = isvc["spec"]["predictor"]
    assert predictor["model"]["storageUri"] == STABLE.storage_uri
    assert (predictor["model"]["runtime"], predictor["model"]["protocolVersion"]) == b.runtime_for("mlflow")
    assert predictor["serviceAccountName"] == stack.service_account
    assert isvc["metadata"]["annotations"][b.DEPLOYMENT_MODE_ANNOTATION] == mode
    assert predictor["logger"]["url"].startswith(f"http://{b.LOG_SINK_NAME}.{stack.namespace}.svc")
    assert by_kind(objects, "Deployment")[0]["metadata"]["name"] == b.LOG_SINK_NAME
    if mode == "Serverless":
        # scale to zero on concurrency, with a cold-start deadline (kserve#1247)
        assert predictor["minReplicas"] == 0
        assert predictor["scaleMetric"] == "concurrency"
        assert predictor["annotations"][b.PROGRESS_DEADLINE_ANNOTATION] == "600s"
        assert not by_kind(objects, "ScaledObject")
    else:
        assert predictor["minReplicas"] == 1
        assert isvc["metadata"]["annotations"][b.AUTOSCALER_CLASS_ANNOTATION] == "external"
        (scaler,) = by_kind(objects, "ScaledObject")
        assert scaler["spec"]["scaleTargetRef"]["name"] == b.predictor_service("clf")
        trigger = scaler["spec"]["triggers"][0]
        assert trigger["metadata"]["serverAddress"] == stack.prometheus_url
        assert 'isvc="clf"' in trigger["metadata"]["query"]


def test_sklearn_pickles_use_the_sklearn_server() -> None:
    model = dataclasses.replace(STABLE, model_format="sklearn")
    isvc = b.inference_service("clf", model, request("single", "Serverless"), env("Serverless"))
    assert isvc["spec"]["predictor"]["model"]["runtime"] == "kserve-sklearnserver"
    assert format_from_mlmodel({"flavors": {"sklearn": {"serialization_format": "cloudpickle"}}}) == "sklearn"
    assert format_from_mlmodel({"flavors": {"sklearn": {"serialization_format": "skops"}}}) == "mlflow"
    assert format_from_mlmodel({"flavors": {"python_function": {}}}) == "mlflow"
    assert parse_direct("clf@champion") is None
    assert parse_direct("clf=s3://b/p").storage_uri == "s3://b/p"  # type: ignore[union-attr]


@pytest.mark.parametrize("mode", b.MODES)
def test_gpu_predictors_get_the_pool_placement(mode: str) -> None:
    metric = "gpu-utilization" if mode == "RawDeployment" else None
    objects = b.render(request("single", mode, scaling=b.Scaling(metric=metric)), env(mode, gpu=GPU))
    predictor = by_kind(objects, "InferenceService")[0]["spec"]["predictor"]
    assert predictor["nodeSelector"] == dict(GPU.node_selector)
    assert predictor["tolerations"] == [dict(t) for t in GPU.tolerations]
    assert predictor["model"]["resources"]["limits"][GPU.resource] == "1"
    if mode == "RawDeployment":
        query = by_kind(objects, "ScaledObject")[0]["spec"]["triggers"][0]["metadata"]["query"]
        assert "DCGM_FI_DEV_GPU_UTIL" in query and "clf-predictor-" in query


@pytest.mark.parametrize("mode", b.MODES)
def test_multi_model_loads_trained_models_into_one_server(mode: str) -> None:
    req = request("multi-model", mode)
    objects = b.render(req, env(mode))
    (server,) = by_kind(objects, "InferenceService")
    models = by_kind(objects, "TrainedModel")
    assert "storageUri" not in server["spec"]["predictor"]["model"]
    assert [m["spec"]["model"]["storageUri"] for m in models] == [m.storage_uri for m in req.models]
    assert {m["spec"]["inferenceService"] for m in models} == {"clf"}
    limit = int(server["spec"]["predictor"]["model"]["resources"]["limits"]["memory"].removesuffix("Mi"))
    assert limit == req.memory_overhead_mi + sum(m.memory_mi for m in req.models)


@pytest.mark.parametrize("mode", b.MODES)
def test_transformer_runs_the_workload_image_in_front(mode: str) -> None:
    stack = env(mode)
    objects = b.render(request("transformer", mode), stack)
    transformer = by_kind(objects, "InferenceService")[0]["spec"]["transformer"]
    container = transformer["containers"][0]
    assert container["image"] == stack.workload_image
    assert b.TRANSFORMER_MODULE in container["command"]
    scalers = [o["metadata"]["name"] for o in by_kind(objects, "ScaledObject")]
    assert ("clf-transformer" in scalers) == (mode == "RawDeployment")


def test_canary_serverless_is_a_traffic_percent_on_one_service() -> None:
    req = request("canary", "Serverless", canary_percent=20)
    (isvc,) = by_kind(b.render(req, env("Serverless")), "InferenceService")
    assert isvc["spec"]["predictor"]["canaryTrafficPercent"] == 20
    assert isvc["spec"]["predictor"]["model"]["storageUri"] == CANDIDATE.storage_uri
    assert isvc["metadata"]["annotations"][b.STABLE_URI_ANNOTATION] == STABLE.storage_uri


def test_canary_raw_deployment_is_two_services_and_a_weighted_route() -> None:
    req = request("canary", "RawDeployment", canary_percent=20)
    objects = b.render(req, env("RawDeployment"))
    isvcs = {o["metadata"]["name"]: o for o in by_kind(objects, "InferenceService")}
    assert isvcs["clf"]["spec"]["predictor"]["model"]["storageUri"] == STABLE.storage_uri
    assert isvcs["clf-canary"]["spec"]["predictor"]["model"]["storageUri"] == CANDIDATE.storage_uri
    assert all("canaryTrafficPercent" not in i["spec"]["predictor"] for i in isvcs.values())
    (route,) = by_kind(objects, "HTTPRoute")
    weights = {r["name"]: r["weight"] for r in route["spec"]["rules"][0]["backendRefs"]}
    assert weights == {"clf-predictor": 80, "clf-canary-predictor": 20}
    assert route["spec"]["hostnames"] == ["clf.mlp-serving.example.com"]


@pytest.mark.parametrize("mode", b.MODES)
def test_ab_splits_by_weight_with_variant_labels(mode: str) -> None:
    req = request("ab", mode, weights=(70, 30))
    objects = b.render(req, env(mode))
    (graph,) = by_kind(objects, "InferenceGraph")
    steps = graph["spec"]["nodes"]["root"]["steps"]
    assert graph["spec"]["nodes"]["root"]["routerType"] == "Splitter"
    assert [(s["serviceName"], s["weight"]) for s in steps] == [("clf-a", 70), ("clf-b", 30)]
    variants = {
        o["metadata"]["name"]: o["metadata"]["labels"][b.VARIANT_LABEL]
        for o in by_kind(objects, "InferenceService")
    }
    assert variants == {"clf-a": "a", "clf-b": "b"}
    relabels = by_kind(objects, "PodMonitor")[0]["spec"]["podMetricsEndpoints"][0]["relabelings"]
    assert {
        "sourceLabels": ["__meta_kubernetes_pod_label_mlplatform_io_variant"],
        "targetLabel": "variant",
    } in relabels


@pytest.mark.parametrize(
    ("mode", "mirror"),
    [("RawDeployment", "gateway-api"), ("RawDeployment", "istio"), ("Serverless", "istio")],
)
def test_shadow_mirrors_to_the_candidate_and_answers_from_the_primary(mode: str, mirror: str) -> None:
    objects = b.render(request("shadow", mode, mirror=mirror, mirror_percent=50), env(mode))
    names = {o["metadata"]["name"] for o in by_kind(objects, "InferenceService")}
    assert names == {"clf", "clf-shadow"}
    if mirror == "gateway-api":
        rule = by_kind(objects, "HTTPRoute")[0]["spec"]["rules"][0]
        assert rule["backendRefs"] == [{"name": "clf-predictor", "port": 80}]
        assert rule["filters"][0]["requestMirror"] == {
            "backendRef": {"name": "clf-shadow-predictor", "port": 80},
            "percent": 50,
        }
    else:
        http = by_kind(objects, "VirtualService")[0]["spec"]["http"][0]
        assert http["mirror"]["host"].startswith("clf-shadow-predictor.")
        assert http["route"][0]["destination"]["host"].startswith("clf-predictor.")
        assert http["mirrorPercentage"] == {"value": 50.0}


@pytest.mark.parametrize("mode", b.MODES)
def test_alert_rules_per_mode(mode: str) -> None:
    rules = b.serving_alert_rules(env(mode))["spec"]["groups"][0]["rules"]
    alerts = {r["alert"]: r["expr"] for r in rules}
    assert "request_predict_seconds_bucket" in alerts["InferenceLatencyP95High"]
    # Only Knative's queue-proxy counts response codes; RawDeployment model servers do not.
    assert ("InferenceErrorRateHigh" in alerts) == (mode == "Serverless")


REJECTED = [
    ("shadow", "Serverless", {"mirror": "gateway-api"}, {}, "use --mirror istio"),
    (
        "single",
        "Serverless",
        {"scaling": b.Scaling(metric="gpu-utilization")},
        {"gpu": GPU},
        "not available in Serverless",
    ),
    (
        "single",
        "RawDeployment",
        {"scaling": b.Scaling(min_replicas=0)},
        {},
        "--min-replicas 0 in RawDeployment",
    ),
    ("single", "RawDeployment", {"scaling": b.Scaling(metric="concurrency")}, {}, "queue-proxy"),
    (
        "single",
        "RawDeployment",
        {"scaling": b.Scaling(metric="gpu-utilization")},
        {},
        "needs a GPU predictor",
    ),
    ("single", "RawDeployment", {}, {"prometheus_url": None}, "prometheusUrl"),
    (
        "single",
        "Serverless",
        {"models": (dataclasses.replace(STABLE, storage_uri="file:///tmp/m"),)},
        {},
        "not reachable",
    ),
    ("canary", "Serverless", {"models": (STABLE,)}, {}, "two models"),
    ("ab", "Serverless", {"weights": (60, 30)}, {}, "summing to 100"),
    (
        "multi-model",
        "Serverless",
        {"models": (STABLE, dataclasses.replace(OTHER, model_format="sklearn"))},
        {},
        "same format",
    ),
    ("single", "Serverless", {"name": "Bad_Name"}, {}, "--name"),
    ("single", "Serverless", {}, {"s3_bucket": None}, "--no-request-logging"),
]


@pytest.mark.parametrize(("pattern", "mode", "req", "stack", "message"), REJECTED)
def test_impossible_combinations_are_rejected(
    pattern: str, mode: str, req: dict[str, Any], stack: dict[str, Any], message: str
) -> None:
    with pytest.raises(b.ServingError, match=message.replace("(", r"\(")):
        b.render(request(pattern, mode, **req), env(mode, **stack))


class _Memory:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put(self, key: str, data: bytes) -> None:
        self.objects[key] = data


def test_log_sink_batches_events_per_service() -> None:
    store = _Memory()
    batcher = Batcher(store, "inference-logs/mlp-serving", batch=3)
    for i, service in enumerate(["clf", "clf", "reg"]):
        headers = {
            "ce-id": str(i),
            "ce-type": "org.kubeflow.serving.inference.request",
            "ce-inferenceservicename": service,
        }
        batcher.add(event_record(headers, json.dumps({"instances": [[i]]}).encode()))
    assert sorted(k.split("/")[2] for k in store.objects) == ["clf", "reg"]
    lines = [json.loads(line) for data in store.objects.values() for line in data.decode().splitlines()]
    assert sorted(line["id"] for line in lines) == ["0", "1", "2"]
    assert {line["payload"]["instances"][0][0] for line in lines} == {0, 1, 2}


OUTPUTS = {
    "target": "aks",
    "mlflowTrackingUri": "http://mlflow.mlflow.svc:5000",
    "s3Bucket": "mlplatform",
    "prometheusUrl": "http://prometheus.monitoring.svc:9090",
    "kserveDeploymentMode": "RawDeployment",
    "kserveServiceAccount": S3_SERVICE_ACCOUNT,
    "kubeconfig": "[secret]",
}


def test_render_command_writes_yaml_and_rejects_clearly(tmp_path: Path) -> None:
    from mlp.commands.serve_cluster import render_cmd

    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps(OUTPUTS))
    args = ["canary", "--outputs-file", str(outputs), "--out", str(tmp_path / "out")]
    args += ["--model", f"clf={STABLE.storage_uri}", "--model", f"clf={CANDIDATE.storage_uri}"]
    done = CliRunner().invoke(render_cmd, args)
    assert done.exit_code == 0, done.output
    written = list(yaml.safe_load_all((tmp_path / "out" / "clf-canary.yaml").read_text()))
    assert {o["kind"] for o in written} >= {"InferenceService", "HTTPRoute", "ScaledObject", "PodMonitor"}
    assert "RawDeployment" in done.output
    bad = CliRunner().invoke(render_cmd, [*args, "--min-replicas", "0"])
    assert bad.exit_code == 1
    assert "scale to zero" in bad.output and "Traceback" not in bad.output
    no_mode = tmp_path / "no-mode.json"
    no_mode.write_text(json.dumps({k: v for k, v in OUTPUTS.items() if k != "kserveDeploymentMode"}))
    missing = CliRunner().invoke(
        render_cmd, ["single", "--outputs-file", str(no_mode), "--model", "clf=s3://b/m"]
    )
    assert missing.exit_code == 1 and "--mode" in missing.output


def test_dashboard_serving_row_uses_the_scraped_metrics() -> None:
    from components.dashboards import load_dashboard

    panels = load_dashboard("platform")["panels"]
    row = next(i for i, p in enumerate(panels) if p["type"] == "row" and p["title"] == "Serving")
    serving = [p for p in panels[row + 1 :] if p["gridPos"]["y"] == panels[row]["gridPos"]["y"] + 1]
    exprs = " ".join(t["expr"] for p in serving for t in p.get("targets", []))
    rules = " ".join(
        r["expr"] for r in b.serving_alert_rules(env("Serverless"))["spec"]["groups"][0]["rules"]
    )
    for metric in ("request_predict_seconds_bucket", "revision_app_request_count"):
        assert metric in exprs and metric in rules
    assert all(p["type"] != "text" for p in serving)


def test_proxied_registry_uris_map_to_the_bucket_the_server_proxies_to() -> None:
    from workloads.serving.cluster.models import RegistryError, storage_uri

    mapped = storage_uri("mlflow-artifacts:/1/models/m-abc/artifacts", "s3://mlflow/artifacts")
    assert mapped == "s3://mlflow/artifacts/1/models/m-abc/artifacts"
    assert (
        storage_uri("mlflow-artifacts://mlflow.mlflow:5000/1/r/artifacts/model", "s3://mlflow/artifacts/")
        == "s3://mlflow/artifacts/1/r/artifacts/model"
    )
    assert storage_uri("s3://other/model", None) == "s3://other/model"
    with pytest.raises(RegistryError, match="mlflowArtifactsUri"):
        storage_uri("mlflow-artifacts:/1/x", None)
