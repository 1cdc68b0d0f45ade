"""Serving add-ons: config rejection, and the Helm values and settings the components render."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from components.serving.cert_manager import CertManagerArgs, cert_manager_values
from components.serving.keda import keda_values
from components.serving.knative import KOURIER_INGRESS_CLASS, KnativeArgs, config_patches
from components.serving.kserve import (
    INTERNAL_URL_TEMPLATE,
    KserveArgs,
    KserveIngress,
    S3Storage,
    kserve_values,
    runtime_config_values,
    s3_annotations,
    url_template,
)
from components.versions import CHARTS, MANIFESTS, release_asset_url
from stacks.config import ConfigError, parse_config

REPO_ROOT = Path(__file__).resolve().parents[2]
STORAGE = S3Storage(endpoint="http://minio.mlp-data.svc:9000", access_key_id="k", secret_access_key="s")


def charts_dir() -> Path:
    """The held upstream chart defaults: $MLP_CHARTS_DIR, else ../shared/charts beside the checkout."""
    env = os.environ.get("MLP_CHARTS_DIR")
    path = Path(env) if env else REPO_ROOT.parent / "shared" / "charts"
    if not path.is_dir():
        pytest.fail(f"upstream chart defaults not found at {path}: set MLP_CHARTS_DIR")
    return path


def chart_values(name: str, version: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((charts_dir() / name / version / "values.yaml").read_text())
    return data


OBJECT_KEYS = frozenset({"resources", "securityContext", "containerSecurityContext", "podSecurityContext"})
"""Values the charts pass whole (or per part, KEDA) into a pod spec with ``toYaml``: any Kubernetes
field is valid inside, so the check stops one level below them."""


def unknown_paths(ours: Any, theirs: Any, prefix: str = "") -> list[str]:
    """Paths set in ``ours`` that the chart's defaults do not have (maps are followed, leaves not)."""
    if not isinstance(ours, dict) or not isinstance(theirs, dict):
        return []
    missing = []
    for key, value in ours.items():
        path = f"{prefix}.{key}" if prefix else key
        if key not in theirs:
            missing.append(path)
        elif theirs[key] not in ({}, None) and not {key, prefix.rsplit(".", 1)[-1]} & OBJECT_KEYS:
            missing += unknown_paths(value, theirs[key], path)
    return missing


def kserve_args(mode: str = "RawDeployment", **ingress: Any) -> KserveArgs:
    if mode == "Serverless":
        ingress.setdefault("local_gateway_service", "kourier-internal.kourier-system.svc.cluster.local")
    return KserveArgs(
        deployment_mode=mode,  # type: ignore[arg-type]
        ingress=KserveIngress(domain=ingress.pop("domain", "models.example.com"), **ingress),
        storage=STORAGE,
    )


# --- config -----------------------------------------------------------------------------------


def serving_errors(serving: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as err:
        parse_config({"target": "dev", "serving": serving})
    return [issue.path for issue in err.value.issues]


def test_every_unworkable_raw_deployment_setting_is_reported_at_once() -> None:
    paths = serving_errors(
        {
            "deploymentMode": "RawDeployment",
            "ingress": {"networkLayer": "kourier"},
            "autoscaling": {"scaleToZero": True, "requestBased": True},
        }
    )
    assert paths == [
        "serving.ingress.networkLayer",
        "serving.autoscaling.scaleToZero",
        "serving.autoscaling.requestBased",
    ]


def test_serverless_needs_a_networking_layer_and_no_ingress_class() -> None:
    paths = serving_errors({"deploymentMode": "Serverless", "ingress": {"className": "nginx"}})
    assert paths == ["serving.ingress.networkLayer", "serving.ingress.className"]


def test_messages_name_the_key_and_a_fix() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"target": "dev", "serving": {"autoscaling": {"scaleToZero": True}}})
    text = str(err.value)
    assert "mlplatform:serving.autoscaling.scaleToZero" in text
    assert "serving.keda.enabled: true" in text


def test_unknown_mode_and_keys_are_rejected_with_their_path() -> None:
    paths = serving_errors({"deploymentMode": "Knative", "autoscale": {}})
    assert set(paths) == {"serving.deploymentMode", "serving.autoscale"}


@pytest.mark.parametrize(
    "serving",
    [
        {},
        {
            "deploymentMode": "Serverless",
            "ingress": {"networkLayer": "kourier"},
            "autoscaling": {"scaleToZero": True},
        },
        {"autoscaling": {"scaleToZero": True, "requestBased": True}, "keda": {"enabled": True}},
        {"ingress": {"className": "nginx"}},
        {"enabled": False, "deploymentMode": "Serverless"},
    ],
)
def test_workable_settings_pass(serving: dict[str, Any]) -> None:
    cfg = parse_config({"target": "dev", "serving": serving})
    assert cfg.serving.deployment_mode in ("Serverless", "RawDeployment")


def test_shipped_stacks_choose_their_modes() -> None:
    from stacks.config import load_stack_file

    modes = {stack: load_stack_file(stack).serving.deployment_mode for stack in ("dev", "aks", "eks")}
    assert modes == {"dev": "RawDeployment", "aks": "Serverless", "eks": "RawDeployment"}


# --- values builders --------------------------------------------------------------------------


def test_cert_manager_values_match_the_chart_schema_and_install_crds() -> None:
    pin = CHARTS["cert-manager"]
    values = cert_manager_values(CertManagerArgs())
    schema = json.loads((charts_dir() / pin.chart / pin.version / "values.schema.json").read_text())
    jsonschema.validate(values, schema)
    assert values["crds"] == {"enabled": True, "keep": True}
    for part in (values, values["webhook"], values["cainjector"], values["startupapicheck"]):
        assert part["resources"]["requests"] and part["resources"]["limits"]["memory"]
        assert part["containerSecurityContext"]["allowPrivilegeEscalation"] is False
        assert part["securityContext"]["runAsNonRoot"] is True


def test_cert_manager_rejects_zero_replicas() -> None:
    with pytest.raises(ValueError, match="replicas"):
        CertManagerArgs(replicas=0)


@pytest.mark.parametrize("mode", ["Serverless", "RawDeployment"])
def test_kserve_values_are_keys_of_the_chart(mode: str) -> None:
    chart = chart_values("kserve-resources", CHARTS["kserve"].version)
    assert unknown_paths(kserve_values(kserve_args(mode)), chart) == []


def test_kserve_modes_use_the_chart_names() -> None:
    serverless = kserve_values(kserve_args("Serverless"))["kserve"]["controller"]
    raw = kserve_values(kserve_args("RawDeployment"))["kserve"]["controller"]
    assert (serverless["deploymentMode"], raw["deploymentMode"]) == ("Knative", "Standard")
    assert serverless["gateway"]["disableIstioVirtualHost"] and raw["gateway"]["disableIstioVirtualHost"]
    assert serverless["gateway"]["localGateway"]["gatewayService"].startswith("kourier-internal.")
    assert raw["gateway"]["disableIngressCreation"] is True
    with_class = kserve_values(kserve_args("RawDeployment", class_name="nginx"))["kserve"]["controller"]
    assert with_class["gateway"]["disableIngressCreation"] is False
    assert with_class["gateway"]["ingressGateway"]["className"] == "nginx"


def test_kserve_args_reject_inconsistent_ingress() -> None:
    with pytest.raises(ValueError, match="local gateway"):
        KserveArgs("Serverless", KserveIngress(domain="a.b"), STORAGE)
    with pytest.raises(ValueError, match="class_name"):
        kserve_args("Serverless", class_name="nginx")


def test_url_templates_follow_the_mode() -> None:
    assert url_template(kserve_args("Serverless")) == "http://{name}-predictor.{namespace}.models.example.com"
    assert url_template(kserve_args("RawDeployment", class_name="nginx", url_scheme="https")) == (
        "https://{name}-{namespace}.models.example.com"
    )
    assert url_template(kserve_args("RawDeployment")) == INTERNAL_URL_TEMPLATE
    assert INTERNAL_URL_TEMPLATE.format(name="iris", namespace="mlp-serving") == (
        "http://iris-predictor.mlp-serving.svc.cluster.local"
    )


def test_s3_annotations_from_the_endpoint() -> None:
    assert s3_annotations("http://minio.mlp-data.svc:9000", "us-east-1") == {
        "serving.kserve.io/s3-endpoint": "minio.mlp-data.svc:9000",
        "serving.kserve.io/s3-usehttps": "0",
        "serving.kserve.io/s3-verifyssl": "0",
        "serving.kserve.io/s3-region": "us-east-1",
        "serving.kserve.io/s3-useanoncredential": "false",
    }
    assert s3_annotations("https://s3.example.com", "eu-west-1")["serving.kserve.io/s3-usehttps"] == "1"
    with pytest.raises(ValueError, match="http"):
        s3_annotations("minio:9000", "us-east-1")


def test_runtime_configs_turn_the_cluster_serving_runtimes_on() -> None:
    assert runtime_config_values() == {"kserve": {"servingruntime": {"enabled": True}}}


def test_keda_values_are_keys_of_the_chart() -> None:
    values = keda_values()
    assert unknown_paths(values, chart_values("keda", CHARTS["keda"].version)) == []
    for part in ("operator", "metricServer", "webhooks"):
        assert values["securityContext"][part]["readOnlyRootFilesystem"] is True
        assert values["resources"][part]["limits"]["memory"]


def test_knative_patches_set_kourier_domain_and_scale_to_zero() -> None:
    patches = config_patches(KnativeArgs(domain="models.example.com", scale_to_zero=False))
    assert patches["config-network"] == {"ingress-class": KOURIER_INGRESS_CLASS}
    assert patches["config-domain"] == {"models.example.com": ""}
    assert patches["config-autoscaler"]["enable-scale-to-zero"] == "false"


def test_knative_manifests_come_from_the_pinned_release() -> None:
    url = release_asset_url("knative-serving", "serving-core.yaml")
    assert url.endswith(f"/releases/download/{MANIFESTS['knative-serving']}/serving-core.yaml")
    assert MANIFESTS["net-kourier"] == MANIFESTS["knative-serving"]
