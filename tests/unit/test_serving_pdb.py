"""PodDisruptionBudgets for predictors: one per InferenceService that keeps replicas, schema-valid."""

from __future__ import annotations

import dataclasses

import pytest

from stacks.plan.validate import Validator
from tests.conftest import crd_dir
from workloads.serving.cluster import builders as b

STABLE = b.ModelSource("clf", "s3://mlplatform/mlflow/1/models/m-1/artifacts", version="1")
CANDIDATE = b.ModelSource("clf", "s3://mlplatform/mlflow/1/models/m-2/artifacts", version="2")


def env(mode: str) -> b.ServingEnv:
    return b.ServingEnv(
        mode=mode,  # type: ignore[arg-type]
        workload_image="ghcr.io/mlplatform/workloads:0.1.0",
        prometheus_url="http://prometheus.monitoring.svc:9090",
        s3_bucket="mlplatform",
        s3_endpoint="http://minio.storage.svc:9000",
        url_template="http://{name}.{namespace}.example.com",
    )


def canary(mode: str, **scaling: int) -> list[dict]:
    request = b.ServeRequest(pattern="canary", name="clf", models=(STABLE, CANDIDATE), mirror="gateway-api")  # type: ignore[arg-type]
    if scaling:
        request = dataclasses.replace(request, scaling=dataclasses.replace(request.scaling, **scaling))
    return b.render(request, env(mode))


@pytest.fixture(scope="module")
def validator() -> Validator:
    path = crd_dir()
    if not path.is_dir():
        pytest.fail(f"official CRDs not found at {path}: set MLP_CRD_DIR")
    return Validator("1.33", path)


def test_raw_deployment_predictors_get_one_valid_budget_each(validator: Validator) -> None:
    objects = canary("RawDeployment")
    isvcs = [o for o in objects if o["kind"] == "InferenceService"]
    budgets = [o for o in objects if o["kind"] == "PodDisruptionBudget"]
    assert len(isvcs) == 2
    assert {p["metadata"]["name"] for p in budgets} == {
        b.predictor_service(i["metadata"]["name"]) for i in isvcs
    }
    for budget in budgets:
        assert validator.validate(budget).status == "valid"
        isvc = next(
            i for i in isvcs if b.predictor_service(i["metadata"]["name"]) == budget["metadata"]["name"]
        )
        assert budget["metadata"]["namespace"] == isvc["metadata"]["namespace"]
        assert budget["spec"]["selector"]["matchLabels"] == {
            b.ISVC_LABEL: isvc["metadata"]["name"],
            "component": "predictor",
        }
        assert budget["spec"]["maxUnavailable"] == 1


def test_scale_to_zero_predictors_get_none_and_kept_replicas_do() -> None:
    assert not [o for o in canary("Serverless") if o["kind"] == "PodDisruptionBudget"]
    kept = canary("Serverless", min_replicas=2)
    assert [o["metadata"]["name"] for o in kept if o["kind"] == "PodDisruptionBudget"] == ["clf-predictor"]
