"""PodDisruptionBudgets for predictors: one per InferenceService that keeps replicas, schema-valid."""

from __future__ import annotations

import dataclasses

from stacks.plan.validate import Validator
from tests.unit.test_serving_render import env
from workloads.serving.cluster import builders as b

STABLE = b.ModelSource("clf", "s3://mlplatform/mlflow/1/models/m-1/artifacts", version="1")
CANDIDATE = b.ModelSource("clf", "s3://mlplatform/mlflow/1/models/m-2/artifacts", version="2")


def canary(mode: str, **scaling: int) -> list[dict]:
    request = b.ServeRequest(pattern="canary", name="clf", models=(STABLE, CANDIDATE), mirror="gateway-api")  # type: ignore[arg-type]
    if scaling:
        request = dataclasses.replace(request, scaling=dataclasses.replace(request.scaling, **scaling))
    return b.render(request, env(mode))


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
