"""The serving layer under recording mocks: ordering edges, parenting, pins, secrets, outputs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pulumi
import pytest

from components.versions import CHARTS, MANIFESTS
from stacks import outputs
from stacks.config import parse_config
from stacks.plan import harness
from stacks.plan.harness import ProgramRun, Registration, clean, is_secret, run_program
from tests.component.fake_cluster import FakeCluster

pytestmark = pytest.mark.timeout(120)

SECRET = "kserve-minio-password-0123456789"
KEY_ID = "kserve-access-key"
RELEASE = "kubernetes:helm.sh/v3:Release"


class DependencyMonitor(harness.RecordingMonitor):
    """The plan's recording monitor, also keeping each registration's dependency URNs."""

    dependencies: dict[str, list[str]] = {}

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
        DependencyMonitor.dependencies[request.name] = list(request.dependencies)
        return super().RegisterResource(request)


def layer(serving: dict[str, Any]) -> Callable[[], None]:
    cfg = parse_config({"target": "dev", "serving": serving})

    def program() -> None:
        from stacks.addons_serving import add_serving_layer

        upstream = {
            outputs.S3_ENDPOINT: pulumi.Output.from_input("http://minio.mlp-data.svc:9000"),
            outputs.S3_ACCESS_KEY_ID: "platform-key",
            outputs.S3_SECRET_ACCESS_KEY: pulumi.Output.secret("platform-secret-value"),
            outputs.S3_SERVICE_CREDENTIALS: pulumi.Output.secret(
                {"kserve": {"accessKeyId": KEY_ID, "secretAccessKey": SECRET, "buckets": ["mlflow"]}}
            ),
        }
        for key, value in add_serving_layer(cfg, FakeCluster(), upstream).items():
            pulumi.export(key, value)

    return program


class Run:
    def __init__(self, run: ProgramRun, deps: dict[str, list[str]]) -> None:
        self.run = run
        self.by_name = {reg.name: reg for reg in run.registrations}
        self.deps = deps

    def depends_on(self, name: str, other: str) -> bool:
        return self.by_name[other].urn in self.deps[name]

    def values(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = clean(self.by_name[name].inputs)["values"]
        return result


def run_layer(serving: dict[str, Any]) -> Run:
    original = harness.RecordingMonitor
    DependencyMonitor.dependencies = {}
    harness.RecordingMonitor = DependencyMonitor  # type: ignore[misc]
    try:
        run = run_program(layer(serving), stack="test")
    finally:
        harness.RecordingMonitor = original  # type: ignore[misc]
    return Run(run, dict(DependencyMonitor.dependencies))


@pytest.fixture(scope="module")
def raw() -> Run:
    return run_layer({})


@pytest.fixture(scope="module")
def serverless() -> Run:
    return run_layer(
        {
            "deploymentMode": "Serverless",
            "ingress": {"networkLayer": "kourier", "domain": "models.example.com"},
            "autoscaling": {"scaleToZero": True},
        }
    )


@pytest.fixture(scope="module")
def keda() -> Run:
    return run_layer({"autoscaling": {"requestBased": True}, "keda": {"enabled": True}})


@pytest.fixture(scope="module")
def runs(raw: Run, serverless: Run, keda: Run) -> Iterator[Run]:
    return iter((raw, serverless, keda))


def test_cert_manager_then_crds_then_controller_then_runtimes(runs: Iterator[Run]) -> None:
    for r in runs:
        assert r.depends_on("kserve-crd", "cert-manager-release")
        assert r.depends_on("kserve-controller", "kserve-crd")
        assert r.depends_on("kserve-runtimes", "kserve-controller")
        assert r.depends_on("cert-manager-release", "cert-manager-ns")


def test_serverless_installs_knative_in_order_before_kserve(serverless: Run, raw: Run) -> None:
    r = serverless
    assert r.depends_on("knative-core", "knative-crds")
    assert r.depends_on("knative-kourier", "knative-core")
    for patch in ("knative-config-network", "knative-config-domain", "knative-config-autoscaler"):
        assert r.depends_on(patch, "knative-kourier")
        assert r.depends_on("kserve-crd", patch)
        assert r.depends_on("kserve-controller", patch)
    files = [clean(r.by_name[f"knative-{part}"].inputs)["file"] for part in ("crds", "core", "kourier")]
    assert all(MANIFESTS["knative-serving"] in url for url in files)
    assert not any(reg.name.startswith("knative") for reg in raw.run.registrations)
    assert "keda-release" not in raw.by_name


def test_keda_is_ready_before_kserve(keda: Run) -> None:
    assert keda.depends_on("kserve-crd", "keda-release")
    release = clean(keda.by_name["keda-release"].inputs)
    assert (release["chart"], release["version"]) == (CHARTS["keda"].chart, CHARTS["keda"].version)


def test_releases_use_the_pins(raw: Run) -> None:
    for name, pin in (
        ("cert-manager-release", "cert-manager"),
        ("kserve-crd", "kserve-crd"),
        ("kserve-controller", "kserve"),
        ("kserve-runtimes", "kserve-runtime-configs"),
    ):
        inputs = clean(raw.by_name[name].inputs)
        assert (inputs["chart"], inputs["version"]) == (CHARTS[pin].chart, CHARTS[pin].version)
    assert CHARTS["kserve"].chart.endswith("/kserve-resources")


def test_mode_reaches_the_controller_values(raw: Run, serverless: Run) -> None:
    assert raw.values("kserve-controller")["kserve"]["controller"]["deploymentMode"] == "Standard"
    assert serverless.values("kserve-controller")["kserve"]["controller"]["deploymentMode"] == "Knative"


def test_every_child_is_parented_to_a_serving_component(runs: Iterator[Run]) -> None:
    for r in runs:
        for reg in r.run.registrations:
            if reg.type.startswith("pulumi:providers:"):
                continue
            top = reg
            while top.parent is not None:
                top = r.by_name[top.parent]
            assert top.type.startswith("mlplatform:serving:"), reg.name


def s3_secret(r: Run) -> Registration:
    return r.by_name["kserve-s3-credentials"]


def test_s3_credentials_are_secret_and_never_plaintext(runs: Iterator[Run]) -> None:
    for r in runs:
        secret = s3_secret(r)
        assert is_secret(secret.inputs["stringData"])
        assert secret.inputs["stringData"]["value"] == {
            "AWS_ACCESS_KEY_ID": KEY_ID,
            "AWS_SECRET_ACCESS_KEY": SECRET,
        }
        rendered = repr([clean(reg.inputs) for reg in r.run.registrations])
        assert SECRET not in rendered and "platform-secret-value" not in rendered
        annotations = clean(secret.inputs)["metadata"]["annotations"]
        assert annotations["serving.kserve.io/s3-endpoint"] == "minio.mlp-data.svc:9000"
        account = clean(r.by_name["kserve-s3-sa"].inputs)
        assert account["secrets"] == [{"name": "kserve-s3-credentials"}]
        assert account["metadata"]["namespace"] == r.run.exports[outputs.KSERVE_NAMESPACE]


def test_outputs_describe_the_mode(raw: Run, serverless: Run, keda: Run) -> None:
    assert raw.run.exports[outputs.KSERVE_DEPLOYMENT_MODE] == "RawDeployment"
    assert raw.run.exports[outputs.KSERVE_AUTOSCALER_CLASS] == "hpa"
    assert keda.run.exports[outputs.KSERVE_AUTOSCALER_CLASS] == "keda"
    assert serverless.run.exports[outputs.KSERVE_DEPLOYMENT_MODE] == "Serverless"
    assert serverless.run.exports[outputs.KSERVE_SCALE_TO_ZERO] is True
    assert serverless.run.exports[outputs.KSERVE_URL_TEMPLATE].endswith(".models.example.com")
    for r in (raw, serverless, keda):
        assert set(r.run.exports) <= outputs.ALL_KEYS
        assert not (set(r.run.exports) & outputs.SECRET_KEYS)


def test_disabled_serving_declares_nothing() -> None:
    run = run_program(layer({"enabled": False}), stack="test")
    assert [reg.name for reg in run.registrations if not reg.type.startswith("pulumi:providers:")] == []
    assert run.exports == {}
