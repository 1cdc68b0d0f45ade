"""The pinned Helm release helper: repository charts, ``oci://`` charts, and what it registers."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s
import pytest

from components.helm import is_oci, pinned_release, repository_opts
from components.versions import CHARTS, ChartPin
from stacks.plan.harness import ProgramRun, Registration, clean, run_program
from stacks.plan.render import manifests

RELEASE = "kubernetes:helm.sh/v3:Release"
REPO_PIN = CHARTS["minio"]
OCI_PIN = CHARTS["kserve"]


def test_repository_chart_gets_its_repository() -> None:
    assert not is_oci(REPO_PIN)
    assert repository_opts(REPO_PIN) == {"repo": REPO_PIN.repository}


def test_oci_chart_has_no_repository_opts() -> None:
    assert OCI_PIN.chart.startswith("oci://") and OCI_PIN.repository == ""
    assert is_oci(OCI_PIN)
    assert repository_opts(OCI_PIN) is None


@pytest.mark.parametrize("key", sorted(CHARTS))
def test_every_pinned_chart_resolves(key: str) -> None:
    pin = CHARTS[key]
    assert repository_opts(pin) == (None if pin.chart.startswith("oci://") else {"repo": pin.repository})


def test_oci_chart_with_a_repository_is_rejected() -> None:
    pin = ChartPin("oci://ghcr.io/example/charts/app", "1.0.0", "https://charts.example.com", "1.0.0")
    with pytest.raises(ValueError, match="repository must be empty"):
        repository_opts(pin)


def test_repository_chart_without_a_repository_is_rejected() -> None:
    with pytest.raises(ValueError, match="has no repository"):
        repository_opts(ChartPin("app", "1.0.0", "", "1.0.0"))


class TwoReleases(pulumi.ComponentResource):
    """A component installing one repository chart and one OCI chart, as add-ons do."""

    def __init__(self, name: str, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplatform:test:TwoReleases", name, None, opts)
        ns = k8s.core.v1.Namespace(
            f"{name}-ns", metadata={"name": "apps"}, opts=pulumi.ResourceOptions(parent=self)
        )
        pinned_release(
            f"{name}-repo",
            REPO_PIN,
            release_name="from-repo",
            namespace=ns.metadata.name,
            values={"replicas": 2},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[ns]),
        )
        pinned_release(
            f"{name}-oci",
            OCI_PIN,
            release_name="from-oci",
            namespace="apps",
            values={},
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({})


def program() -> None:
    provider = k8s.Provider("fake-k8s", kubeconfig="{}")
    TwoReleases("addon", pulumi.ResourceOptions(providers={"kubernetes": provider}))


@pytest.fixture(scope="module")
def run() -> ProgramRun:
    return run_program(program, stack="test")


def release(run: ProgramRun, name: str) -> Registration:
    return next(reg for reg in run.registrations if reg.type == RELEASE and reg.name == name)


@pytest.mark.timeout(60)
def test_repository_release_inputs(run: ProgramRun) -> None:
    reg = release(run, "addon-repo")
    inputs = clean(reg.inputs)
    assert inputs["name"] == "from-repo"
    assert (inputs["chart"], inputs["version"]) == (REPO_PIN.chart, REPO_PIN.version)
    assert inputs["repositoryOpts"] == {"repo": REPO_PIN.repository}
    assert inputs["namespace"] == "apps"
    assert inputs["values"] == {"replicas": 2}


@pytest.mark.timeout(60)
def test_oci_release_takes_the_full_reference_as_chart(run: ProgramRun) -> None:
    inputs = clean(release(run, "addon-oci").inputs)
    assert inputs["chart"] == OCI_PIN.chart
    assert inputs["version"] == OCI_PIN.version
    assert "repositoryOpts" not in inputs
    assert inputs["name"] == "from-oci"
    assert inputs["namespace"] == "apps"
    rendered = {m.document["helmRelease"]: m.document for m in manifests(run) if m.kind == "helm-release"}
    assert rendered["from-oci"]["chart"] == OCI_PIN.chart
    assert rendered["from-oci"]["repository"] == ""


@pytest.mark.timeout(60)
def test_releases_are_children_on_the_inherited_provider(run: ProgramRun) -> None:
    for name in ("addon-repo", "addon-oci"):
        reg = release(run, name)
        assert reg.parent == "addon"
        assert "fake-k8s" in reg.provider
