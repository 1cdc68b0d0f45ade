"""Config validation: every invalid configuration is rejected with its key path and a fix."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from stacks.config import (
    NAMESPACE,
    ConfigError,
    PlatformConfig,
    load_stack_file,
    parse_config,
    project_root,
)

AKS: dict[str, Any] = {
    "target": "aks",
    "kubernetesVersion": "1.33",
    "aks": {"location": "westeurope", "apiServerAuthorizedRanges": ["203.0.113.0/24"]},
    "gpuPools": [{"name": "t4", "vmSize": "Standard_NC4as_T4_v3", "maxCount": 2, "spotMaxPrice": -1}],
}
EKS: dict[str, Any] = {
    "target": "eks",
    "eks": {"region": "us-west-2", "publicAccessCidrs": ["203.0.113.0/24"]},
    "gpuPools": [{"name": "g5", "instanceTypes": ["g5.xlarge", "g5.2xlarge"], "maxCount": 2}],
}
DEV: dict[str, Any] = {"target": "dev", "gpuPools": [{"name": "local", "gpuModel": "T4"}]}


def with_changes(base: dict[str, Any], *edits: tuple[str, Any]) -> dict[str, Any]:
    """Copy ``base`` and set dotted paths (``gpuPools.0.maxCount``); value ``...`` deletes."""
    data = copy.deepcopy(base)
    for path, value in edits:
        *parents, last = path.split(".")
        node: Any = data
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
        if value is ...:
            del node[last]
        elif isinstance(node, list):
            index = int(last)
            if index == len(node):
                node.append(value)
            else:
                node[index] = value
        else:
            node[last] = value
    return data


def issues_of(raw: dict[str, Any]) -> list[tuple[str, str, str]]:
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, "test")
    return [(i.path, i.message, i.fix) for i in caught.value.issues]


INVALID = [
    pytest.param(
        with_changes(AKS, ("gpuPools.0.minCount", 3), ("gpuPools.0.maxCount", 1)),
        "gpuPools[0].minCount",
        "greater than maxCount",
        id="pool-min-above-max",
    ),
    pytest.param(
        with_changes(AKS, ("gpuPools.0.maxCount", 0)), "gpuPools[0].maxCount", "maxCount is 0", id="max-0"
    ),
    pytest.param(
        with_changes(AKS, ("gpuPools.0.vmSize", "Standard_D4s_v5")),
        "gpuPools[0].vmSize",
        "has no GPU",
        id="aks-cpu-size",
    ),
    pytest.param(
        with_changes(AKS, ("gpuPools.0.vmSize", "Standard_Bogus_v9")),
        "gpuPools[0].vmSize",
        "not a known Azure GPU VM size",
        id="aks-unknown-size",
    ),
    pytest.param(
        with_changes(EKS, ("gpuPools.0.instanceTypes", ["g5.xlarge", "m5.large"])),
        "gpuPools[0].instanceTypes[1]",
        "has no GPU",
        id="eks-cpu-instance",
    ),
    pytest.param(
        with_changes(AKS, ("gpuPools.0.spotMaxPrice", -2)),
        "gpuPools[0].spotMaxPrice",
        "not a valid AKS spot max price",
        id="spot-price-negative",
    ),
    pytest.param(
        with_changes(AKS, ("gpuPools.0.spotMaxPrice", 0.123456)),
        "gpuPools[0].spotMaxPrice",
        "not a valid AKS spot max price",
        id="spot-price-6-decimals",
    ),
    pytest.param(
        with_changes(AKS, ("aks.systemPool", {"spot": True})),
        "aks.systemPool.spot",
        "cannot use spot",
        id="aks-spot-system-pool",
    ),
    pytest.param(
        with_changes(EKS, ("gpuPools.0.amiType", "AL2023_x86_64_STANDARD")),
        "gpuPools[0].amiType",
        "no NVIDIA driver",
        id="eks-non-nvidia-ami",
    ),
    pytest.param(with_changes(AKS, ("target", "gke")), "target", "Input should be", id="unknown-target"),
    pytest.param(
        with_changes(AKS, ("gpuPool", [])), "gpuPool", "unknown key 'gpuPool'", id="misspelled-top-key"
    ),
    pytest.param(
        with_changes(AKS, ("gpuPools.0.maxCnt", 2)),
        "gpuPools[0].maxCnt",
        "unknown key 'maxCnt'",
        id="misspelled-pool-key",
    ),
    pytest.param(
        with_changes(AKS, ("aks.location", ...)),
        "aks.location",
        "required for target aks",
        id="aks-no-location",
    ),
    pytest.param(
        with_changes(EKS, ("eks.region", ...)), "eks.region", "required for target eks", id="eks-no-region"
    ),
    pytest.param(
        with_changes(AKS, ("kubernetesVersion", "1.33.x")),
        "kubernetesVersion",
        "not a Kubernetes minor version",
        id="k8s-version-malformed",
    ),
    pytest.param(
        with_changes(AKS, ("kubernetesVersion", "1.12")),
        "kubernetesVersion",
        "not supported",
        id="k8s-version-old",
    ),
    pytest.param(
        with_changes(AKS, ("aks.apiServerAuthorizedRanges", ["0.0.0.0/0"])),
        "aks.apiServerAuthorizedRanges",
        "open to 0.0.0.0/0",
        id="aks-open-api",
    ),
    pytest.param(
        with_changes(AKS, ("aks.apiServerAuthorizedRanges", [])),
        "aks.apiServerAuthorizedRanges",
        "open to 0.0.0.0/0",
        id="aks-no-ranges",
    ),
    pytest.param(
        with_changes(EKS, ("eks.publicAccessCidrs", ["0.0.0.0/0"])),
        "eks.publicAccessCidrs",
        "open to 0.0.0.0/0",
        id="eks-open-api",
    ),
    pytest.param(
        with_changes(EKS, ("gpuPools.0.spotMaxPrice", 0.5)),
        "gpuPools[0].spotMaxPrice",
        "take no spot max price",
        id="eks-spot-price",
    ),
    pytest.param(
        with_changes(EKS, ("gpuPools.0.instanceTypes", ["g5.xlarge", "g6.xlarge"])),
        "gpuPools[0].instanceTypes",
        "mix GPU models",
        id="eks-mixed-models",
    ),
    pytest.param(
        with_changes(AKS, ("gpuPools.1", {"name": "t4", "vmSize": "Standard_NC4as_T4_v3"})),
        "gpuPools[1].name",
        "used twice",
        id="duplicate-pool",
    ),
    pytest.param(
        with_changes(AKS, ("aks.apiServerAuthorizedRanges", ["10.0.0.300/24"])),
        "aks.apiServerAuthorizedRanges[0]",
        "not a CIDR",
        id="bad-cidr",
    ),
    pytest.param(
        with_changes(AKS, ("gpuPools.0.name", "system")),
        "gpuPools[0].name",
        "cluster's own",
        id="aks-reserved-name",
    ),
    pytest.param(
        with_changes(AKS, ("aks.platformPool", {"vmSize": "Standard_NC4as_T4_v3"})),
        "aks.platformPool.vmSize",
        "GPU size",
        id="aks-gpu-platform-pool",
    ),
    pytest.param(
        with_changes(AKS, ("gpuPools.0.name", "GPU_Pool")),
        "gpuPools[0].name",
        "is not valid",
        id="bad-pool-name",
    ),
    pytest.param(
        with_changes(AKS, ("gpuPools.0.spot", False), ("gpuPools.0.spotMaxPrice", 0.5)),
        "gpuPools[0].spotMaxPrice",
        "not spot",
        id="price-on-regular-pool",
    ),
    pytest.param(
        with_changes(EKS, ("eks.vpcCidr", "10.0.0.0/8")), "eks.vpcCidr", "outside /16", id="eks-vpc-too-big"
    ),
    pytest.param(
        with_changes(DEV, ("local", {"createKind": True, "kubeContext": "x"})),
        "local.createKind",
        "both set",
        id="dev-kind-and-context",
    ),
    pytest.param(
        with_changes(AKS, ("gpuPools.0.minCount", "two")),
        "gpuPools[0].minCount",
        "must be a whole number",
        id="wrong-type",
    ),
]

VALUES_INVALID = [
    # (base, edits, key path, message fragment): values a cloud would refuse (stacks/config/values.py)
    (
        AKS,
        [("aks.location", "westeurop")],
        "aks.location",
        "'westeurop' is not an Azure region; did you mean 'westeurope'?",
    ),
    (AKS, [("aks.location", "West Europe")], "aks.location", "did you mean 'westeurope'?"),
    (EKS, [("eks.region", "us-west-9")], "eks.region", "'us-west-9' is not an AWS region"),
    (EKS, [("eks.region", "westeurope")], "eks.region", "is not an AWS region"),
    (
        AKS,
        [("aks.systemPool", {"vmSize": "Standard_Bogus_v9"})],
        "aks.systemPool.vmSize",
        "is not an Azure VM size",
    ),
    (
        AKS,
        [("aks.platformPool", {"vmSize": "Standard D4s v5"})],
        "aks.platformPool.vmSize",
        "did you mean 'Standard_D4s_v5'?",
    ),
    (AKS, [("aks.systemPool", {"vmSize": "m6i.large"})], "aks.systemPool.vmSize", "is an EC2 instance type"),
    (
        AKS,
        [("aks.systemPool", {"vmSize": "Standard_ND40rs_v2"})],
        "aks.systemPool.vmSize",
        "GPU/accelerator size",
    ),
    (
        EKS,
        [("eks.systemNodeGroup", {"instanceTypes": ["g5.xlarge"]})],
        "eks.systemNodeGroup.instanceTypes[0]",
        "GPU/accelerator instance type",
    ),
    (
        EKS,
        [("eks.systemNodeGroup", {"instanceTypes": ["m6i.large", "p4de.24xlarge"]})],
        "eks.systemNodeGroup.instanceTypes[1]",
        "GPU/accelerator instance type",
    ),
    (
        EKS,
        [("eks.systemNodeGroup", {"instanceTypes": ["m6i.huge"]})],
        "eks.systemNodeGroup.instanceTypes[0]",
        "is not an EC2 instance type",
    ),
    (
        EKS,
        [("eks.systemNodeGroup", {"instanceTypes": ["Standard_D4s_v5"]})],
        "eks.systemNodeGroup.instanceTypes[0]",
        "is an Azure VM size",
    ),
    (
        EKS,
        [("eks.systemNodeGroup", {"instanceTypes": ["m7g.large"]})],
        "eks.systemNodeGroup.instanceTypes[0]",
        "Arm (Graviton)",
    ),
    (AKS, [("gpuPools.0.maxCount", 10**12)], "gpuPools[0].maxCount", "must be ≤ 1000"),
    (
        AKS,
        [("gpuPools.0.minCount", 1001), ("gpuPools.0.maxCount", 1001)],
        "gpuPools[0].minCount",
        "must be ≤ 1000",
    ),
    (AKS, [("aks.systemPool", {"maxCount": 1001})], "aks.systemPool.maxCount", "must be ≤ 1000"),
    (AKS, [("aks.platformPool", {"minCount": 0})], "aks.platformPool.minCount", "must be ≥ 1"),
    (EKS, [("gpuPools.0.maxCount", 451)], "gpuPools[0].maxCount", "must be ≤ 450"),
    (EKS, [("eks.systemNodeGroup", {"maxSize": 500})], "eks.systemNodeGroup.maxSize", "must be ≤ 450"),
    (DEV, [("gpuPools.0.maxCount", 10**12)], "gpuPools[0].maxCount", "must be ≤ 5000"),
    (AKS, [("gpuPools.0.minCount", -1)], "gpuPools[0].minCount", "must be ≥ 0"),
    (AKS, [("gpuPools.0.labels", {"team name": "a"})], "gpuPools[0].labels.team name", "invalid label key"),
    (
        AKS,
        [("gpuPools.0.labels", {"example.com/" + "n" * 64: "a"})],
        "gpuPools[0].labels.example.com/" + "n" * 64,
        "must be ≤ 63",
    ),
    (
        AKS,
        [("gpuPools.0.labels", {"Example.COM/team": "a"})],
        "gpuPools[0].labels.Example.COM/team",
        "not a DNS subdomain",
    ),
    (AKS, [("gpuPools.0.labels", {"/team": "a"})], "gpuPools[0].labels./team", "prefix before '/' is empty"),
    (AKS, [("gpuPools.0.labels", {"team": "-ml-"})], "gpuPools[0].labels.team", "label value '-ml-'"),
    (AKS, [("gpuPools.0.labels", {"team": "v" * 64})], "gpuPools[0].labels.team", "must be ≤ 63"),
    (
        AKS,
        [("gpuPools.0.labels", {"kubernetes.io/role": "gpu"})],
        "gpuPools[0].labels.kubernetes.io/role",
        "kubelet refuses",
    ),
    (
        DEV,
        [("gpuPools.0.labels", {"mlplatform.io/gpu-pool": "x"})],
        "gpuPools[0].labels.mlplatform.io/gpu-pool",
        "the platform sets",
    ),
    (
        AKS,
        [("gpuPools.0.labels", {"kubernetes.azure.com/mode": "x"})],
        "gpuPools[0].labels.kubernetes.azure.com/mode",
        "AKS owns",
    ),
    (
        EKS,
        [("gpuPools.0.labels", {"eks.amazonaws.com/capacityType": "SPOT"})],
        "gpuPools[0].labels.eks.amazonaws.com/capacityType",
        "EKS owns",
    ),
    (EKS, [("gpuPools.0.labels", {"team": ""})], "gpuPools[0].labels.team", "empty value"),
    (
        EKS,
        [("gpuPools.0.labels", {"t" * 40 + ".example.com/" + "n" * 20: "x"})],
        "gpuPools[0].labels." + "t" * 40 + ".example.com/" + "n" * 20,
        "≤ 63 characters",
    ),
    (AKS, [("tags", {"cost/center": "x"})], "tags.cost/center", "cannot contain /"),
    (AKS, [("tags", {"t" * 513: "x"})], "tags." + "t" * 513, "≤ 512"),
    (AKS, [("tags", {"team": "v" * 257})], "tags.team", "≤ 256"),
    (AKS, [("tags", {" ": "x"})], "tags. ", "cannot be empty"),
    (EKS, [("tags", {"aws:owner": "x"})], "tags.aws:owner", "reserved for AWS"),
    (EKS, [("tags", {"k" * 129: "x"})], "tags." + "k" * 129, "≤ 128"),
    (EKS, [("tags", {"team": "ml&data"})], "tags.team", "may hold only"),
    (DEV, [("local", {"storageClass": ""})], "local.storageClass", "storage class name is empty"),
    (DEV, [("local", {"storageClass": "Fast SSD"})], "local.storageClass", "not a Kubernetes object name"),
    (
        DEV,
        [("vectordb", {"qdrant": {"snapshotSchedule": "0 25 * * *"}})],
        "vectordb.qdrant.snapshotSchedule",
        "not a cron schedule",
    ),
    (
        DEV,
        [("vectordb", {"milvus": {"backupSchedule": "daily"}})],
        "vectordb.milvus.backupSchedule",
        "not a cron schedule",
    ),
]
"""Values the clouds (or Kubernetes) refuse; every message says what is wrong."""

SHARING_INVALID = [
    pytest.param(
        with_changes(AKS, ("gpuPools.0.sharing", {"timeSlicing": {"replicas": 4}, "mps": {"replicas": 2}})),
        "gpuPools[0].sharing",
        "time-slicing and MPS cannot be combined",
        id="time-slicing-with-mps",
    ),
    pytest.param(
        with_changes(
            AKS,
            ("gpuPools.0.vmSize", "Standard_NC24ads_A100_v4"),
            (
                "gpuPools.0.sharing",
                {"mps": {"replicas": 2}, "mig": {"strategy": "single", "profile": "1g.10gb"}},
            ),
        ),
        "gpuPools[0].sharing.mps",
        "mps cannot be combined with mig",
        id="mps-with-mig",
    ),
    pytest.param(
        with_changes(AKS, ("gpuPools.0.sharing", {"timeSlicing": {"replicas": 1}})),
        "gpuPools[0].sharing.timeSlicing.replicas",
        "shares nothing",
        id="time-slicing-replicas-1",
    ),
    pytest.param(
        with_changes(AKS, ("gpuPools.0.sharing", {"mps": {"replicas": 0}})),
        "gpuPools[0].sharing.mps.replicas",
        "shares nothing",
        id="mps-replicas-0",
    ),
    pytest.param(
        with_changes(AKS, ("gpuPools.0.sharing", {"mig": {"strategy": "single", "profile": "1g.10gb"}})),
        "gpuPools[0].sharing.mig",
        "T4 GPUs do not support MIG",
        id="mig-on-t4",
    ),
    pytest.param(
        with_changes(
            DEV, ("gpuPools.0.gpuModel", "none"), ("gpuPools.0.sharing", {"timeSlicing": {"replicas": 2}})
        ),
        "gpuPools[0].sharing",
        "no GPU",
        id="sharing-without-gpu",
    ),
    pytest.param(
        with_changes(AKS, ("gpuPools.0.sharing", {"mig": {"strategy": "all"}})),
        "gpuPools[0].sharing.mig.strategy",
        "Input should be",
        id="mig-bad-strategy",
    ),
]


VALUE_CASES = [
    pytest.param(with_changes(base, *edits), path, fragment, id=f"value-{i}-{path}"[:60])
    for i, (base, edits, path, fragment) in enumerate(VALUES_INVALID)
]


@pytest.mark.parametrize(("raw", "path", "fragment"), INVALID + SHARING_INVALID + VALUE_CASES)
def test_invalid_config_is_rejected_with_key_and_fix(raw: dict[str, Any], path: str, fragment: str) -> None:
    found = issues_of(raw)
    matching = [issue for issue in found if issue[0] == path and fragment in issue[1]]
    assert matching, f"expected an issue at {path} containing {fragment!r}, got {found}"
    assert all(fix for _, _, fix in found), "every issue carries a fix"


def test_valid_baselines_parse() -> None:
    for raw in (AKS, EKS, DEV):
        cfg = parse_config(raw)
        assert isinstance(cfg, PlatformConfig)
        assert cfg.target == raw["target"]


def test_mig_on_eks_needs_the_gpu_operator() -> None:
    raw = with_changes(
        EKS,
        ("gpuPools.0.instanceTypes", ["p4d.24xlarge"]),
        ("gpuPools.0.sharing", {"mig": {"strategy": "single", "profile": "3g.20gb"}}),
    )
    with pytest.raises(ConfigError) as caught:
        parse_config(raw)
    assert [i.path for i in caught.value.issues] == ["gpu.provider"]
    raw["gpu"] = {"provider": "gpu-operator", "installDriver": False}
    assert parse_config(raw).gpu_pools[0].sharing.mig is not None


def test_every_error_is_reported_at_once() -> None:
    raw = with_changes(
        AKS,
        ("aks.location", ...),
        ("gpuPools.0.minCount", 5),
        ("gpuPools.0.typo", 1),
        ("gpuPools.1", {"name": "a10", "vmSize": "Standard_D4s_v5", "maxCount": 0}),
        ("kubernetesVersion", "v1"),
        ("observability", {"retention": "forever"}),
    )
    paths = {path for path, _, _ in issues_of(raw)}
    assert {
        "aks.location",
        "gpuPools[0].typo",
        "gpuPools[1].maxCount",
        "gpuPools[1].vmSize",
        "kubernetesVersion",
        "observability.retention",
    } <= paths


def test_misspelled_key_suggests_the_right_one() -> None:
    [(path, message, fix)] = issues_of(
        with_changes(AKS, ("gpuPools.0.maxCount", ...), ("gpuPools.0.maxCont", 2))
    )
    assert path == "gpuPools[0].maxCont"
    assert "did you mean 'maxCount'" in fix


def test_error_message_names_namespace_key_and_fix() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(with_changes(AKS, ("gpuPools.0.maxCount", 0)), "aks")
    text = str(caught.value)
    assert f"{NAMESPACE}:gpuPools[0].maxCount" in text
    assert "Fix: set maxCount >= 1" in text
    assert "stack 'aks'" in text


def test_pulumi_passes_objects_as_json_strings() -> None:
    raw = {key: yaml.safe_dump(value) if key == "x" else value for key, value in AKS.items()}
    raw["aks"] = '{"location": "westeurope", "apiServerAuthorizedRanges": ["203.0.113.0/24"]}'
    raw["gpuPools"] = '[{"name": "t4", "vmSize": "Standard_NC4as_T4_v3", "maxCount": 2}]'
    cfg = parse_config(raw)
    assert cfg.aks.location == "westeurope"
    assert cfg.gpu_pools[0].max_count == 2


@pytest.mark.parametrize("stack", ["dev", "aks", "eks"])
def test_shipped_stack_files_are_valid(stack: str) -> None:
    cfg = load_stack_file(stack)
    assert cfg.target == stack
    assert cfg.gpu_pools, "every shipped stack has a GPU pool"
    assert all(pool.min_count == 0 for pool in cfg.gpu_pools), "GPU pools scale from zero"


def test_pulumi_yaml_declares_scalar_keys_with_type_default_description() -> None:
    project = yaml.safe_load((project_root() / "Pulumi.yaml").read_text())
    declared = project["config"]
    for key, field in PlatformConfig.model_fields.items():
        alias = field.alias or key
        if field.annotation in (str,) or str(field.annotation).startswith("typing.Literal"):
            entry = declared[f"{NAMESPACE}:{alias}"]
            assert entry["type"] == "string"
            assert entry["description"]
            expected = field.get_default(call_default_factory=True) if not field.is_required() else "dev"
            assert entry["default"] == expected
    for key in declared:
        assert key.split(":", 1)[1] in {f.alias or n for n, f in PlatformConfig.model_fields.items()}


def test_every_key_has_a_description() -> None:
    from mlp.commands.config import describe_keys

    missing = [row["key"] for row in describe_keys(PlatformConfig) if not row["description"]]
    assert missing == []


@pytest.mark.parametrize(
    "edits",
    [
        [("aks.systemPool", {"vmSize": size})]
        for size in (
            "Standard_DS2_v2",
            "Standard_B2s",
            "Standard_E96-48ads_v5",
            "Standard_D8pds_v6",
            "Standard_F4s",
        )
    ]
    + [[("aks.platformPool", {"vmSize": "Standard_DC4as_cc_v5"})], [("aks.location", "swedencentral")]]
    + [[("gpuPools.0.labels", {"node.kubernetes.io/team": "ml", "example.com/team": "ml_2.a", "plain": ""})]]
    + [[("tags", {"Cost Center": "ml+data@example.com", "owner": ""})]],
    ids=lambda edits: str(edits[0][1])[:40],
)
def test_real_aks_values_are_accepted(edits: list[tuple[str, Any]]) -> None:
    assert parse_config(with_changes(AKS, *edits)).target == "aks"


@pytest.mark.parametrize(
    "types",
    [["m7i-flex.2xlarge", "c6in.xlarge"], ["r7iz.large", "t3a.medium"], ["m5.metal"], ["m6i.large"]],
    ids=lambda types: types[0],
)
def test_real_eks_system_types_are_accepted(types: list[str]) -> None:
    raw = with_changes(EKS, ("eks.systemNodeGroup", {"instanceTypes": types}), ("eks.region", "eu-central-2"))
    assert parse_config(raw).eks.system_node_group.instance_types == types


def test_price_table_regions_are_in_the_region_catalog() -> None:
    from components.clusters.regions import is_known_region
    from components.gpu.prices import load_prices

    table = load_prices()
    for cloud, regions in table.prices.items():
        assert regions, cloud
        for region in regions:
            assert is_known_region(cloud, region), (
                f"{cloud}/{region} is missing from components/clusters/regions.py"
            )


def test_a_duplicate_key_deep_in_a_stack_file_is_refused_with_its_line(tmp_path: Path) -> None:
    from stacks.files import InputFileError

    (tmp_path / "Pulumi.yaml").write_text("name: mlplatform\nruntime: python\n")
    (tmp_path / "Pulumi.dup.yaml").write_text(
        "config:\n  mlplatform:target: aks\n  mlplatform:gpuPools:\n"
        "    - name: t4\n      maxCount: 2\n      maxCount: 4000\n"
    )
    with pytest.raises(InputFileError) as caught:
        load_stack_file("dup", tmp_path)
    assert "duplicate key 'maxCount' at line 6 (first at line 5)" in str(caught.value)
    assert "Pulumi.dup.yaml" in str(caught.value)
