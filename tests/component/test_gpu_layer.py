"""The GPU layer under recording mocks: device plugin, GPU Operator, DCGM exporter, observability."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pytest
import yaml

from components.clusters.base import (
    AKS_SPOT_TAINT,
    DEVICE_PLUGIN_CONFIG_LABEL,
    GPU_TAINT,
    POOL_LABEL,
    GpuPoolInfo,
    GpuPoolSpec,
    GpuSharing,
    Mig,
    gpu_node_labels,
    union_tolerations,
)
from components.gpu.dcgm import DcgmExporter, DcgmExporterArgs
from components.gpu.device_plugin import DevicePlugin, DevicePluginArgs
from components.observability import Observability, ObservabilityArgs
from components.versions import CHARTS
from stacks import outputs
from stacks.addons_gpu import add_gpu_layer
from stacks.config import PlatformConfig, parse_config
from stacks.plan.harness import ProgramRun, Registration, clean, is_secret, run_program
from stacks.plan.render import manifests, secret_values
from stacks.plan.validate import Validator

pytestmark = pytest.mark.timeout(120)

RELEASE = "kubernetes:helm.sh/v3:Release"


@dataclass
class FakeCluster:
    """The smallest object satisfying the Cluster protocol."""

    cluster_name: pulumi.Output[str]
    provider: k8s.Provider
    kubeconfig: pulumi.Output[str]
    gpu_pools: list[GpuPoolInfo]
    storage_class: str


def pool(name: str, model: str, *, spot: bool = True, count: int = 1) -> GpuPoolInfo:
    spec = GpuPoolSpec(name=name, gpu_model=model, gpu_count=count, min_count=0, max_count=2, spot=spot)
    taints = (GPU_TAINT, AKS_SPOT_TAINT) if spot else (GPU_TAINT,)
    return GpuPoolInfo(spec=spec, labels=gpu_node_labels(spec), taints=taints)


POOLS = [pool("t4", "T4"), pool("a100", "A100-80GB", spot=False)]


def aks_config(**overrides: Any) -> PlatformConfig:
    raw: dict[str, Any] = {
        "target": "aks",
        "aks": {"location": "westeurope", "apiServerAuthorizedRanges": ["203.0.113.0/24"]},
        "gpuPools": [
            {
                "name": "t4",
                "vmSize": "Standard_NC4as_T4_v3",
                "maxCount": 2,
                "sharing": {"timeSlicing": {"replicas": 4, "failRequestsGreaterThanOne": True}},
            },
            {
                "name": "a100",
                "vmSize": "Standard_NC24ads_A100_v4",
                "maxCount": 2,
                "spot": False,
                "sharing": {"mig": {"strategy": "mixed", "profile": "1g.10gb"}},
            },
        ],
    }
    raw.update(overrides)
    return parse_config(raw, "test")


def layer_program(cfg: PlatformConfig, pools: list[GpuPoolInfo] = POOLS) -> Any:
    def program() -> None:
        provider = k8s.Provider("fake-k8s", kubeconfig="{}")
        cluster = FakeCluster(
            cluster_name=pulumi.Output.from_input("fake"),
            provider=provider,
            kubeconfig=pulumi.Output.secret("{}"),
            gpu_pools=pools,
            storage_class="managed-csi",
        )
        for key, value in add_gpu_layer(cfg, cluster).items():
            pulumi.export(key, value)

    return program


@pytest.fixture(scope="module")
def aks_run() -> ProgramRun:
    return run_program(layer_program(aks_config()), stack="test")


def named(run: ProgramRun, name: str) -> Registration:
    matches = [r for r in run.registrations if r.name == name]
    assert len(matches) == 1, [r.name for r in run.registrations]
    return matches[0]


def values(reg: Registration) -> dict[str, Any]:
    return clean(reg.inputs["values"])


def test_components_have_type_tokens_and_children_are_parented(aks_run: ProgramRun) -> None:
    types = {r.name: r.type for r in aks_run.registrations if not r.custom}
    assert types["gpu-device-plugin"] == "mlplatform:gpu:DevicePlugin"
    assert types["dcgm-exporter"] == "mlplatform:gpu:DcgmExporter"
    assert types["observability"] == "mlplatform:observability:Observability"
    components = set(types)
    for reg in aks_run.registrations:
        if reg.custom and reg.name != "fake-k8s":
            assert reg.parent in components, reg.name
            assert reg.name.startswith(f"{reg.parent}-"), reg.name


def test_kubernetes_children_use_the_cluster_provider(aks_run: ProgramRun) -> None:
    for reg in aks_run.registrations:
        if reg.custom and reg.type.startswith("kubernetes:") and not reg.type.startswith("pulumi:"):
            assert "fake-k8s" in reg.provider, reg.name


def test_charts_are_pinned_from_versions(aks_run: ProgramRun) -> None:
    releases = {r.name: clean(r.inputs) for r in aks_run.registrations if r.type == RELEASE}
    expected = {
        "gpu-device-plugin-release": CHARTS["nvidia-device-plugin"],
        "dcgm-exporter-release": CHARTS["dcgm-exporter"],
        "observability-release": CHARTS["kube-prometheus-stack"],
    }
    assert set(releases) == set(expected)
    for name, pin in expected.items():
        assert releases[name]["chart"] == pin.chart
        assert releases[name]["version"] == pin.version
        assert releases[name]["repositoryOpts"]["repo"] == pin.repository


def test_device_plugin_has_one_named_config_per_pool(aks_run: ProgramRun) -> None:
    v = values(named(aks_run, "gpu-device-plugin-release"))
    configs = {name: yaml.safe_load(text) for name, text in v["config"]["map"].items()}
    # Each pool's nodes select their config through the label the pool carries.
    for info in POOLS:
        assert info.labels[DEVICE_PLUGIN_CONFIG_LABEL] in configs
    t4 = configs["t4"]["sharing"]["timeSlicing"]
    assert t4["resources"] == [{"name": "nvidia.com/gpu", "replicas": 4}]
    assert t4["failRequestsGreaterThanOne"] is True
    assert configs["a100"]["flags"]["migStrategy"] == "mixed"
    assert "sharing" not in configs["a100"]
    assert v["config"]["default"] == "no-sharing"
    assert v["gfd"]["enabled"] is True


def test_gpu_daemons_are_placed_from_the_pools_labels_and_taints(aks_run: ProgramRun) -> None:
    expected_tolerations = union_tolerations(POOLS)
    for name in ("gpu-device-plugin-release", "dcgm-exporter-release"):
        v = values(named(aks_run, name))
        terms = v["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        expression = terms["nodeSelectorTerms"][0]["matchExpressions"][0]
        assert expression == {"key": POOL_LABEL, "operator": "In", "values": ["a100", "t4"]}
        for toleration in expected_tolerations:
            assert toleration in v["tolerations"]
    nfd = values(named(aks_run, "gpu-device-plugin-release"))["nfd"]["worker"]["tolerations"]
    assert AKS_SPOT_TAINT.toleration() in nfd


def test_grafana_password_is_secret_and_never_in_values(aks_run: ProgramRun) -> None:
    v = values(named(aks_run, "observability-release"))
    admin = v["grafana"]["admin"]
    assert admin["existingSecret"] == "monitoring-grafana-admin"
    assert "adminPassword" not in v["grafana"]
    secret = named(aks_run, "observability-grafana-admin")
    assert is_secret(secret.inputs["stringData"]) or is_secret(secret.inputs["stringData"]["admin-password"])
    leaked = secret_values(aks_run)
    assert leaked
    for reg in aks_run.registrations:
        if reg.type == RELEASE:
            text = json.dumps(clean(reg.inputs))
            assert not any(value in text for value in leaked), reg.name
    assert outputs.GRAFANA_ADMIN_PASSWORD in aks_run.secret_exports


def test_outputs_are_in_cluster_urls(aks_run: ProgramRun) -> None:
    assert aks_run.exports[outputs.PROMETHEUS_URL] == (
        "http://monitoring-prometheus.monitoring.svc.cluster.local:9090"
    )
    assert aks_run.exports[outputs.GRAFANA_URL] == "http://monitoring-grafana.monitoring.svc.cluster.local"
    assert set(aks_run.exports) == {
        outputs.PROMETHEUS_URL,
        outputs.GRAFANA_URL,
        outputs.GRAFANA_ADMIN_PASSWORD,
    }


def test_prometheus_uses_cluster_storage_class_and_retention(aks_run: ProgramRun) -> None:
    spec = values(named(aks_run, "observability-release"))["prometheus"]["prometheusSpec"]
    assert spec["retention"] == "7d"
    claim = spec["storageSpec"]["volumeClaimTemplate"]["spec"]
    assert claim["storageClassName"] == "managed-csi"
    assert claim["resources"]["requests"]["storage"] == "20Gi"
    assert spec["ruleSelectorNilUsesHelmValues"] is False


def test_dashboards_and_rules_render_and_validate(aks_run: ProgramRun, crds: Path) -> None:
    validator = Validator("1.33", crds)
    rendered = [m for m in manifests(aks_run) if m.kind == "object"]
    kinds = [m.document["kind"] for m in rendered]
    assert kinds.count("PrometheusRule") == 1
    assert kinds.count("ServiceMonitor") == 1
    dashboards = [
        m.document
        for m in rendered
        if m.document["kind"] == "ConfigMap"
        and "grafana_dashboard" in m.document["metadata"].get("labels", {})
    ]
    assert {next(iter(d["data"])) for d in dashboards} == {"gpu.json", "platform.json"}
    for manifest in rendered:
        document = manifest.document
        if document["kind"] == "Secret":
            # The Kubernetes SDK marks all of stringData secret; validate its revealed shape here.
            document = {
                **document,
                "stringData": clean(named(aks_run, manifest.resource).inputs, reveal=True)["stringData"],
            }
            assert set(document["stringData"]) == {"admin-user", "admin-password"}
        result = validator.validate(document)
        assert result.status == "valid", (manifest.filename, result.errors)
    rule = next(m.document for m in rendered if m.document["kind"] == "PrometheusRule")
    alerts = {r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]}
    assert alerts == {
        "GpuXidError",
        "GpuMemoryNearlyFull",
        "GpuNodeWithoutAllocatableGpu",
        "DcgmExporterRestarting",
    }


def test_dcgm_service_monitor_selects_the_release_and_labels_pools(aks_run: ProgramRun) -> None:
    monitor = clean(named(aks_run, "dcgm-exporter-servicemonitor").inputs)
    assert monitor["spec"]["selector"]["matchLabels"]["app.kubernetes.io/instance"] == "dcgm-exporter"
    assert monitor["spec"]["attachMetadata"] == {"node": True}
    targets = {r["targetLabel"] for r in monitor["spec"]["endpoints"][0]["relabelings"]}
    assert {"node", "gpu_pool", "gpu_model"} <= targets
    v = values(named(aks_run, "dcgm-exporter-release"))
    assert v["serviceMonitor"]["enabled"] is False
    assert v["kubernetes"]["enablePodLabels"] is True
    assert "runtimeClassName" not in v


def test_gpu_operator_replaces_the_device_plugin_when_asked() -> None:
    cfg = aks_config(gpu={"provider": "gpu-operator"})
    run = run_program(layer_program(cfg), stack="test")
    types = {r.type for r in run.registrations}
    assert "mlplatform:gpu:GpuOperator" in types
    assert "mlplatform:gpu:DevicePlugin" not in types
    operator = clean(named(run, "gpu-operator-release").inputs)
    assert (operator["chart"], operator["version"]) == (
        CHARTS["gpu-operator"].chart,
        CHARTS["gpu-operator"].version,
    )
    plugin = operator["values"]["devicePlugin"]["config"]
    assert set(plugin["data"]) == {"t4", "a100", "no-sharing"}
    assert operator["values"]["dcgmExporter"]["enabled"] is False
    # AKS pools carry no nvidia.com/mig.config label: AKS makes their instances (gpuInstanceProfile).
    assert operator["values"]["migManager"] == {"enabled": False}
    assert values(named(run, "dcgm-exporter-release"))["runtimeClassName"] == "nvidia"
    assert operator["values"]["driver"]["enabled"] is True


def test_gpu_operator_mig_manager_gets_the_labelled_pools_layouts() -> None:
    from components.gpu.mig import MIG_CONFIG_LABEL, mig_manager_labels

    cfg = aks_config(gpu={"provider": "gpu-operator"})
    a100 = pool("a100", "A100-80GB", spot=False)
    a100 = dataclasses.replace(
        a100, spec=dataclasses.replace(a100.spec, sharing=GpuSharing(mig=Mig("mixed", "1g.10gb")))
    )
    # Label the pool as an EKS or local cluster does.
    labelled = dataclasses.replace(a100, labels={**a100.labels, **mig_manager_labels(a100.spec)})
    run = run_program(layer_program(cfg, [POOLS[0], labelled]), stack="test")
    manager = clean(named(run, "gpu-operator-release").inputs)["values"]["migManager"]
    assert manager["enabled"] is True and manager["config"]["default"] == "all-disabled"
    parted = yaml.safe_load(manager["config"]["data"]["config.yaml"])
    assert parted["mig-configs"][labelled.labels[MIG_CONFIG_LABEL]] == [
        {"devices": "all", "mig-enabled": True, "mig-devices": {"1g.10gb": 7}}
    ]


def test_gpu_operator_can_leave_an_installed_driver_alone() -> None:
    cfg = aks_config(gpu={"provider": "gpu-operator", "installDriver": False})
    run = run_program(layer_program(cfg), stack="test")
    assert clean(named(run, "gpu-operator-release").inputs)["values"]["driver"]["enabled"] is False


def test_switches_turn_parts_off() -> None:
    cfg = aks_config(observability={"enabled": False}, gpu={"dcgmExporter": False})
    run = run_program(layer_program(cfg), stack="test")
    types = {r.type for r in run.registrations}
    assert "mlplatform:observability:Observability" not in types
    assert "mlplatform:gpu:DcgmExporter" not in types
    assert "mlplatform:gpu:DevicePlugin" in types
    assert run.exports == {}


def test_no_gpu_pools_installs_only_observability() -> None:
    cfg = parse_config({"target": "dev"}, "test")
    run = run_program(layer_program(cfg, pools=[]), stack="test")
    types = {r.type for r in run.registrations}
    assert "mlplatform:gpu:DevicePlugin" not in types and "mlplatform:gpu:DcgmExporter" not in types
    assert "mlplatform:observability:Observability" in types
    assert not any(r.type.endswith("CustomResource") and "rules" in r.name for r in run.registrations)


def test_config_sharing_wins_over_the_cluster_pools() -> None:
    # A cluster builder that forgot to copy sharing still gets the configured sharing.
    bare = [pool("t4", "T4"), pool("a100", "A100-80GB", spot=False)]
    assert all(p.spec.sharing == GpuSharing() for p in bare)
    run = run_program(layer_program(aks_config(), pools=bare), stack="test")
    text = values(named(run, "gpu-device-plugin-release"))["config"]["map"]["t4"]
    assert yaml.safe_load(text)["sharing"]["timeSlicing"]["resources"][0]["replicas"] == 4


def test_two_instances_do_not_clash() -> None:
    def program() -> None:
        provider = k8s.Provider("fake-k8s", kubeconfig="{}")
        opts = pulumi.ResourceOptions(provider=provider)
        DevicePlugin("plugin-a", DevicePluginArgs(pools=tuple(POOLS), namespace="plugin-a"), opts)
        DevicePlugin("plugin-b", DevicePluginArgs(pools=tuple(POOLS), namespace="plugin-b"), opts)
        DcgmExporter("dcgm-a", DcgmExporterArgs(pools=tuple(POOLS), namespace="dcgm-a"), opts)
        DcgmExporter("dcgm-b", DcgmExporterArgs(pools=tuple(POOLS), namespace="dcgm-b"), opts)
        Observability("obs-a", ObservabilityArgs(namespace="obs-a", release_name="obs-a"), opts)
        Observability("obs-b", ObservabilityArgs(namespace="obs-b", release_name="obs-b"), opts)

    run = run_program(program, stack="test")
    urns = [r.urn for r in run.registrations]
    assert len(urns) == len(set(urns))
    objects = [
        (m.document["kind"], m.document["metadata"].get("namespace"), m.document["metadata"]["name"])
        for m in manifests(run)
        if m.kind == "object"
    ]
    assert len(objects) == len(set(objects))
    release_names = [clean(r.inputs)["name"] for r in run.registrations if r.type == RELEASE]
    assert sorted(release_names) == ["dcgm-a", "dcgm-b", "obs-a", "obs-b", "plugin-a", "plugin-b"]
