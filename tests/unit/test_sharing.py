"""GPU sharing: the device plugin's named configs, chart values, and config validation of sharing."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from components.alerts import GpuAlertSettings, gpu_rule_groups, ksm_label, prometheus_rule_spec
from components.clusters.base import (
    AKS_SPOT_TAINT,
    DEVICE_PLUGIN_CONFIG_LABEL,
    GPU_TAINT,
    POOL_LABEL,
    GpuPoolInfo,
    GpuPoolSpec,
    GpuSharing,
    Mig,
    Mps,
    TimeSlicing,
    gpu_node_labels,
)
from components.dashboards import DASHBOARDS, load_dashboard
from components.gpu.dcgm import METRICS, metrics_csv, service_monitor_spec
from components.gpu.device_plugin import device_plugin_values, gpu_node_affinity
from components.gpu.operator import operator_values
from components.gpu.sharing import (
    DEFAULT_CONFIG,
    advertised_resources,
    build_configs,
    plugin_config,
    shares_per_device,
)
from stacks.config import ConfigError, parse_config

WHOLE = GpuSharing()


def info(
    name: str, model: str, sharing: GpuSharing = WHOLE, *, count: int = 1, config: str | None = None
) -> GpuPoolInfo:
    spec = GpuPoolSpec(name, model, count, 0, 2, True, sharing)
    return GpuPoolInfo(spec, gpu_node_labels(spec, device_plugin_config=config), (GPU_TAINT, AKS_SPOT_TAINT))


# --- Plugin config documents ------------------------------------------------------------------


def test_whole_gpus_have_no_sharing_section() -> None:
    assert plugin_config(GpuSharing(), "T4") == {"version": "v1", "flags": {"migStrategy": "none"}}
    assert advertised_resources(GpuSharing(), "T4") == ("nvidia.com/gpu",)
    assert shares_per_device(GpuSharing()) == 1


def test_time_slicing_config() -> None:
    sharing = GpuSharing(
        time_slicing=TimeSlicing(4, rename_by_default=True, fail_requests_greater_than_one=True)
    )
    doc = plugin_config(sharing, "T4")
    assert doc["sharing"]["timeSlicing"] == {
        "renameByDefault": True,
        "failRequestsGreaterThanOne": True,
        "resources": [{"name": "nvidia.com/gpu", "replicas": 4}],
    }
    assert advertised_resources(sharing, "T4") == ("nvidia.com/gpu.shared",)
    assert shares_per_device(sharing) == 4


def test_mps_config() -> None:
    doc = plugin_config(GpuSharing(mps=Mps(2)), "A10")
    assert doc["sharing"] == {"mps": {"resources": [{"name": "nvidia.com/gpu", "replicas": 2}]}}
    assert doc["flags"]["migStrategy"] == "none"


def test_mig_single_and_mixed() -> None:
    single = GpuSharing(mig=Mig("single", "1g.10gb"))
    assert plugin_config(single, "A100-80GB") == {"version": "v1", "flags": {"migStrategy": "single"}}
    assert advertised_resources(single, "A100-80GB") == ("nvidia.com/gpu",)
    mixed = GpuSharing(mig=Mig("mixed", "all-1g.10gb"))
    assert advertised_resources(mixed, "A100-80GB") == ("nvidia.com/mig-1g.10gb",)
    assert plugin_config(mixed, "A100-80GB")["flags"]["migStrategy"] == "mixed"
    balanced = GpuSharing(mig=Mig("mixed", "all-balanced"))
    assert advertised_resources(balanced, "H100-80GB") == (
        "nvidia.com/mig-1g.10gb",
        "nvidia.com/mig-2g.20gb",
        "nvidia.com/mig-3g.40gb",
    )


@pytest.mark.parametrize(
    ("sharing", "model", "message"),
    [
        (GpuSharing(time_slicing=TimeSlicing(2), mps=Mps(2)), "T4", "time-slicing and MPS"),
        (GpuSharing(mps=Mps(2), mig=Mig("single", "1g.10gb")), "A100-80GB", "MIG is a pool's only"),
        (GpuSharing(time_slicing=TimeSlicing(2), mig=Mig("mixed", "1g.10gb")), "H100-80GB", "only sharing"),
        (GpuSharing(time_slicing=TimeSlicing(1)), "T4", "shares nothing"),
        (GpuSharing(mig=Mig("single", "1g.10gb")), "T4", "do not support MIG"),
        (GpuSharing(mig=Mig("single", "1g.5gb")), "A100-80GB", "not a MIG profile of the A100-80GB"),
    ],
)
def test_plugin_config_guards_direct_callers(sharing: GpuSharing, model: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        plugin_config(sharing, model)


def test_configs_are_named_by_the_pool_label() -> None:
    pools = [
        info("t4", "T4", GpuSharing(time_slicing=TimeSlicing(4))),
        info("a10", "A10", GpuSharing(mps=Mps(2))),
        info("cpu", "none", count=0),
    ]
    configs = build_configs(pools)
    assert set(configs.files) == {"t4", "a10", DEFAULT_CONFIG}
    assert configs.default == DEFAULT_CONFIG
    assert configs.by_pool == {"t4": "t4", "a10": "a10"}
    for pool in pools[:2]:
        assert pool.labels[DEVICE_PLUGIN_CONFIG_LABEL] in configs.files
    assert yaml.safe_load(configs.files["t4"])["version"] == "v1"


def test_single_config_is_also_the_default() -> None:
    configs = build_configs([info("local", "RTX-4090", GpuSharing(time_slicing=TimeSlicing(4)))])
    assert configs.default == "local" and set(configs.files) == {"local"}


def test_pools_sharing_a_label_must_share_alike() -> None:
    same = GpuSharing(time_slicing=TimeSlicing(4))
    assert build_configs(
        [info("a", "T4", same, config="t4"), info("b", "T4", same, config="t4")]
    ).by_pool == {
        "a": "t4",
        "b": "t4",
    }
    with pytest.raises(ValueError, match="share their GPUs differently"):
        build_configs([info("a", "T4", same, config="t4"), info("b", "T4", GpuSharing(), config="t4")])


# --- Chart values ------------------------------------------------------------------------------


def test_device_plugin_values_use_the_pools() -> None:
    pools = [info("t4", "T4", GpuSharing(time_slicing=TimeSlicing(4))), info("cpu", "none", count=0)]
    values = device_plugin_values(pools)
    assert values["config"]["default"] == "t4"
    assert values["gfd"]["enabled"] is True
    match = values["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert match["nodeSelectorTerms"][0]["matchExpressions"][0] == {
        "key": POOL_LABEL,
        "operator": "In",
        "values": ["t4"],
    }
    assert (
        GPU_TAINT.toleration() in values["tolerations"]
        and AKS_SPOT_TAINT.toleration() in values["tolerations"]
    )


def test_no_gpu_pool_means_no_placement() -> None:
    with pytest.raises(ValueError, match="no GPU pools"):
        gpu_node_affinity([info("cpu", "none", count=0)])


def test_operator_values_carry_the_same_configs() -> None:
    pools = [info("a100", "A100-80GB", GpuSharing(mig=Mig("mixed", "1g.10gb"))), info("t4", "T4")]
    values = operator_values(pools, release_name="gpu-operator")
    config = values["devicePlugin"]["config"]
    assert config["create"] is True and config["name"] == "gpu-operator-device-plugin-config"
    assert set(config["data"]) == {"a100", "t4", DEFAULT_CONFIG}
    assert values["mig"]["strategy"] == "mixed"
    assert values["driver"]["enabled"] is True
    assert AKS_SPOT_TAINT.toleration() in values["daemonsets"]["tolerations"]


# --- DCGM metrics, dashboards and alerts --------------------------------------------------------


def test_metrics_csv_lists_every_field() -> None:
    lines = [line for line in metrics_csv().splitlines() if line and not line.startswith("#")]
    assert len(lines) == len(METRICS)
    assert all(len(line.split(",")) >= 3 for line in lines)


def test_service_monitor_relabels_node_pool_labels() -> None:
    spec = service_monitor_spec("dcgm", "dcgm-exporter")
    sources = {r["sourceLabels"][0]: r["targetLabel"] for r in spec["endpoints"][0]["relabelings"]}
    assert sources["__meta_kubernetes_node_label_mlplatform_io_gpu_pool"] == "gpu_pool"
    assert spec["endpoints"][0]["honorLabels"] is False


def _exprs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["expr"]] if isinstance(node.get("expr"), str) else []
        return found + [e for v in node.values() for e in _exprs(v)]
    if isinstance(node, list):
        return [e for v in node for e in _exprs(v)]
    return []


def test_dashboards_use_collected_metrics_only() -> None:
    collected = {m.field for m in METRICS}
    uids = set()
    for name in DASHBOARDS:
        dashboard = load_dashboard(name)
        uids.add(dashboard["uid"])
        ids = [p["id"] for p in dashboard["panels"]]
        assert len(ids) == len(set(ids))
        for expr in _exprs(dashboard["panels"]):
            assert set(re.findall(r"DCGM_[A-Z0-9_]+", expr)) <= collected, (name, expr)
    assert len(uids) == len(DASHBOARDS)
    gpu = load_dashboard("gpu")
    titles = " ".join(p["title"].lower() for p in gpu["panels"])
    for word in ("utilization", "memory", "power", "temperature", "pod", "pool"):
        assert word in titles
    platform_exprs = " ".join(_exprs(load_dashboard("platform")["panels"]))
    assert ksm_label(POOL_LABEL) in platform_exprs


def test_alert_rules() -> None:
    groups = gpu_rule_groups(
        GpuAlertSettings(gpu_pools=("t4", "a10"), dcgm_namespace="dcgm", dcgm_release="dcgm-exporter")
    )
    rules = {r["alert"]: r for g in prometheus_rule_spec(groups)["groups"] for r in g["rules"]}
    assert set(rules) == {
        "GpuXidError",
        "GpuMemoryNearlyFull",
        "GpuNodeWithoutAllocatableGpu",
        "DcgmExporterRestarting",
    }
    assert 'label_mlplatform_io_gpu_pool=~"a10|t4"' in rules["GpuNodeWithoutAllocatableGpu"]["expr"]
    assert rules["GpuNodeWithoutAllocatableGpu"]["for"] == "15m"
    assert 'namespace="dcgm"' in rules["DcgmExporterRestarting"]["expr"]
    assert "> 0.95" in rules["GpuMemoryNearlyFull"]["expr"]
    assert "for" not in rules["GpuXidError"]
    collected = {m.field for m in METRICS}
    for rule in rules.values():
        assert set(re.findall(r"DCGM_[A-Z0-9_]+", rule["expr"])) <= collected
    # Without an exporter only the device-plugin rule remains; without GPU pools, nothing.
    only = gpu_rule_groups(GpuAlertSettings(gpu_pools=("t4",)))
    assert [r.alert for r in only[0].rules] == ["GpuNodeWithoutAllocatableGpu"]
    assert gpu_rule_groups(GpuAlertSettings(gpu_pools=())) == ()


# --- Config validation of sharing (stacks/config.py) -----------------------------------------


def aks(*pools: dict[str, Any]) -> dict[str, Any]:
    return {
        "target": "aks",
        "aks": {"location": "westeurope", "apiServerAuthorizedRanges": ["203.0.113.0/24"]},
        "gpuPools": list(pools),
    }


T4 = {"name": "t4", "vmSize": "Standard_NC4as_T4_v3"}
A100 = {"name": "a100", "vmSize": "Standard_NC24ads_A100_v4"}


def issues(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, "test")
    return [str(issue) for issue in caught.value.issues]


@pytest.mark.parametrize(
    ("pool", "path", "message"),
    [
        (
            {**T4, "sharing": {"timeSlicing": {"replicas": 2}, "mps": {"replicas": 2}}},
            "gpuPools[0].sharing",
            "time-slicing and MPS cannot be combined",
        ),
        (
            {
                **A100,
                "sharing": {"mps": {"replicas": 2}, "mig": {"strategy": "single", "profile": "1g.10gb"}},
            },
            "gpuPools[0].sharing.mps",
            "mps cannot be combined with mig",
        ),
        (
            {
                **A100,
                "sharing": {
                    "timeSlicing": {"replicas": 2},
                    "mig": {"strategy": "mixed", "profile": "1g.10gb"},
                },
            },
            "gpuPools[0].sharing.timeSlicing",
            "timeSlicing cannot be combined with mig",
        ),
        (
            {**A100, "sharing": {"mig": {"strategy": "mixed", "profile": "1g.7gb"}}},
            "gpuPools[0].sharing.mig.profile",
            "'1g.7gb' is not a MIG profile of the A100-80GB",
        ),
        (
            {**A100, "sharing": {"mig": {"strategy": "mixed", "profile": "1g.20gb"}}},
            "gpuPools[0].sharing.mig.profile",
            "AKS's gpuInstanceProfile cannot create 1g.20gb",
        ),
        (
            {**A100, "sharing": {"mig": {"strategy": "single", "profile": "all-balanced"}}},
            "gpuPools[0].sharing.mig.profile",
            "single strategy cannot advertise",
        ),
        ({**A100, "sharing": {"mig": {"strategy": "single"}}}, "gpuPools[0].sharing.mig.profile", "required"),
        (
            {**T4, "sharing": {"timeSlicing": {"replicas": 1}}},
            "gpuPools[0].sharing.timeSlicing.replicas",
            "shares nothing",
        ),
        ({**T4, "sharing": {"mps": {"replicas": 1}}}, "gpuPools[0].sharing.mps.replicas", "shares nothing"),
        (
            {**T4, "sharing": {"mig": {"strategy": "single", "profile": "1g.10gb"}}},
            "gpuPools[0].sharing.mig",
            "T4 GPUs do not support MIG",
        ),
        ({**T4, "sharing": {"mig": {"strategy": "half"}}}, "gpuPools[0].sharing.mig.strategy", "single"),
    ],
)
def test_invalid_sharing_is_rejected_with_its_key(pool: dict[str, Any], path: str, message: str) -> None:
    found = issues(aks(pool))
    assert any(f"mlplatform:{path}:" in issue and message in issue for issue in found), found
    assert all("Fix:" in issue for issue in found)


def test_sharing_on_a_gpu_less_pool_is_rejected() -> None:
    raw = {
        "target": "dev",
        "gpuPools": [{"name": "cpu", "gpuModel": "none", "sharing": {"timeSlicing": {"replicas": 2}}}],
    }
    assert any("sharing is set on a pool that has no GPU" in issue for issue in issues(raw))


def test_a_valid_mig_pool_is_accepted() -> None:
    cfg = parse_config(aks({**A100, "sharing": {"mig": {"strategy": "mixed", "profile": "2g.20gb"}}}), "test")
    assert cfg.gpu_pools[0].sharing.mig is not None
    assert cfg.gpu_pools[0].sharing.mig.profile == "2g.20gb"


def test_every_sharing_error_is_reported_at_once() -> None:
    found = issues(
        aks(
            {**T4, "sharing": {"timeSlicing": {"replicas": 1}, "mps": {"replicas": 1}}},
            {
                **A100,
                "sharing": {"mps": {"replicas": 2}, "mig": {"strategy": "single", "profile": "1g.10gb"}},
            },
        )
    )
    assert len(found) >= 4
    assert any("gpuPools[0]" in i and "MPS" in i for i in found)
    assert any("gpuPools[1].sharing.mps" in i and "mig" in i for i in found)
