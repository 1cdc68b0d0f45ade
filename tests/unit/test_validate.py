"""Offline validation of built-in objects and custom resources."""

from __future__ import annotations

from pathlib import Path

import pytest

from stacks.plan.validate import Validator, validate_custom_resource


def test_builtin_object_is_valid(validator: Validator) -> None:
    result = validator.validate({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ml"}})
    assert result.status == "valid"
    assert "kubernetes 1.33" in result.schema


def test_builtin_strict_reports_every_unknown_field(validator: Validator) -> None:
    obj = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "x"},
        "spec": {
            "replica": 2,
            "selector": {"matchLabels": {"a": "b"}},
            "template": {"spec": {"containers": [{"name": "c", "image": "i:1", "imagePullPolcy": "Always"}]}},
        },
    }
    result = validator.validate(obj)
    assert result.status == "invalid"
    joined = "\n".join(result.errors)
    assert "'replica' was unexpected" in joined
    assert "'imagePullPolcy' was unexpected" in joined


def test_builtin_wrong_type(validator: Validator) -> None:
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"a": 1}}
    result = validator.validate(obj)
    assert result.status == "invalid"
    assert result.errors[0].startswith("data.a:")


def test_custom_resource_against_official_crd(validator: Validator) -> None:
    rule = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "gpu"},
        "spec": {"groups": [{"name": "gpu", "rules": [{"alert": "X", "expr": "up == 0", "for": "5m"}]}]},
    }
    assert validator.validate(rule).status == "valid"
    rule["spec"]["groups"][0]["rules"][0]["severity"] = "page"
    bad = validator.validate(rule)
    assert bad.status == "invalid"
    assert "severity" in bad.errors[0]
    assert "prometheusrules" in bad.schema


def test_schema_less_crd_uses_upstream_api_schema(validator: Validator) -> None:
    good = {
        "apiVersion": "kubeflow.org/v1beta1",
        "kind": "Experiment",
        "metadata": {"name": "tune"},
        "spec": {"objective": {"type": "maximize", "objectiveMetricName": "accuracy"}, "maxTrialCount": 4},
    }
    assert validator.validate(good).status == "valid"
    bad = dict(good, spec={"objective": {"type": "maximize"}, "maxTrials": 4})
    result = validator.validate(bad)
    assert result.status == "invalid"
    assert "maxTrials" in "\n".join(result.errors)
    assert "katib/openapi-spec.json" in result.schema


def test_unknown_custom_resource_is_unvalidated_not_valid(validator: Validator) -> None:
    result = validator.validate({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}})
    assert result.status == "unvalidated"


def test_schema_less_crd_without_api_schema_is_unvalidated(validator: Validator) -> None:
    obj = {
        "apiVersion": "kubeflow.org/v1beta1",
        "kind": "ScheduledWorkflow",
        "metadata": {"name": "w"},
        "spec": {},
    }
    assert validator.validate(obj).status == "unvalidated"


def test_no_crd_dir_leaves_custom_resources_unvalidated() -> None:
    result = Validator("1.33", None).validate(
        {
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "PrometheusRule",
            "metadata": {"name": "x"},
            "spec": {},
        }
    )
    assert result.status == "unvalidated"


def test_bad_object_name_is_invalid(validator: Validator) -> None:
    errors = validate_custom_resource(
        {
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "PrometheusRule",
            "metadata": {"name": "Bad_Name"},
        },
        validator.crd_dir,
    )
    assert any("metadata.name" in e for e in errors)


def test_validate_custom_resource_refuses_unknown_kinds(crds: Path) -> None:
    with pytest.raises(LookupError):
        validate_custom_resource({"apiVersion": "x.io/v1", "kind": "Y", "metadata": {"name": "y"}}, crds)


def test_newer_kubernetes_than_bundled_falls_back_to_newest() -> None:
    assert Validator("1.99").schema_version >= "1.33"


def test_too_old_kubernetes_is_refused() -> None:
    with pytest.raises(ValueError, match="no bundled Kubernetes schemas"):
        Validator("1.10")
