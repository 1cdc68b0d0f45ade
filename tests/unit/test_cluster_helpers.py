"""Pure functions behind the cluster components: no Pulumi runtime, no mocks."""

from __future__ import annotations

import base64
import ipaddress
import itertools

import pytest
import yaml

from components.clusters import aks_spec, eks_spec, iam, kind, network, pools, tags
from components.clusters.base import (
    AKS_SPOT_TAINT,
    EKS_SPOT_LABEL,
    GPU_MODEL_LABEL,
    GPU_TAINT,
    POOL_LABEL,
    GpuPoolSpec,
    GpuSharing,
    Mig,
    Mps,
    Taint,
    TimeSlicing,
)
from components.clusters.local_spec import kubeconfig_command
from components.gpu.mig import MIG_CONFIG_LABEL


def spec(
    name: str = "t4", *, model: str = "T4", count: int = 1, spot: bool = True, **kw: object
) -> GpuPoolSpec:
    return GpuPoolSpec(
        name=name,
        gpu_model=model,
        gpu_count=count,
        min_count=kw.pop("min_count", 0),  # type: ignore[arg-type]
        max_count=kw.pop("max_count", 4),  # type: ignore[arg-type]
        spot=spot,
        **kw,  # type: ignore[arg-type]
    )


# --- subnet layout ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cidr", "zones", "private_prefix", "public_prefix"),
    [
        ("10.0.0.0/16", 3, 18, 22),
        ("10.40.0.0/16", 2, 18, 22),
        ("10.0.0.0/20", 3, 22, 26),
        ("172.16.0.0/16", 4, 19, 23),
        ("10.0.0.0/16", 1, 17, 21),
    ],
)
def test_subnet_layout_sizes_and_containment(
    cidr: str, zones: int, private_prefix: int, public_prefix: int
) -> None:
    layout = network.subnet_layout(cidr, zones)
    vpc = ipaddress.IPv4Network(cidr)
    assert [p.zone_index for p in layout] == list(range(zones))
    subnets = [ipaddress.IPv4Network(c) for p in layout for c in (p.public_cidr, p.private_cidr)]
    for plan in layout:
        assert ipaddress.ip_network(plan.private_cidr).prefixlen == private_prefix
        assert ipaddress.ip_network(plan.public_cidr).prefixlen == public_prefix
    assert all(s.subnet_of(vpc) for s in subnets)
    assert not any(a.overlaps(b) for a, b in itertools.combinations(subnets, 2))


def test_subnet_layout_gives_pods_most_of_the_vpc() -> None:
    layout = network.subnet_layout("10.0.0.0/16", 3)
    private = sum(ipaddress.ip_network(p.private_cidr).num_addresses for p in layout)
    assert private / 2**16 == 0.75
    assert layout[0].private_cidr == "10.0.0.0/18"
    assert layout[0].public_cidr == "10.0.192.0/22"


@pytest.mark.parametrize(
    ("cidr", "zones", "message"),
    [
        ("10.0.0.0/16", 0, "between 1 and 7"),
        ("10.0.0.0/16", 8, "between 1 and 7"),
        ("10.0.0.0/26", 3, "too small"),
        ("fd00::/56", 2, "not an IPv4"),
    ],
)
def test_subnet_layout_rejects(cidr: str, zones: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        network.subnet_layout(cidr, zones)


def test_subnet_layout_rejects_malformed_cidr() -> None:
    with pytest.raises(ValueError):
        network.subnet_layout("10.0.0.1/16", 2)


# --- autoscaler and subnet tags --------------------------------------------------------------


def test_node_template_tags_cover_labels_taints_and_resources() -> None:
    result = tags.autoscaler_node_template_tags(
        {POOL_LABEL: "t4", GPU_MODEL_LABEL: "T4"}, [GPU_TAINT], {"nvidia.com/gpu": 1}
    )
    assert result == {
        "k8s.io/cluster-autoscaler/node-template/label/mlplatform.io/gpu-pool": "t4",
        "k8s.io/cluster-autoscaler/node-template/label/mlplatform.io/gpu-model": "T4",
        "k8s.io/cluster-autoscaler/node-template/taint/nvidia.com/gpu": "present:NoSchedule",
        "k8s.io/cluster-autoscaler/node-template/resources/nvidia.com/gpu": "1",
    }


def test_node_group_tags_add_discovery() -> None:
    result = tags.node_group_autoscaler_tags("mlp", {}, [], {})
    assert result == {"k8s.io/cluster-autoscaler/enabled": "true", "k8s.io/cluster-autoscaler/mlp": "owned"}


def test_node_template_tags_reject_duplicate_taint_keys() -> None:
    with pytest.raises(ValueError, match="two taints"):
        tags.autoscaler_node_template_tags({}, [GPU_TAINT, Taint(GPU_TAINT.key, "x", "NoExecute")], {})


def test_node_template_tags_enforce_aws_limits() -> None:
    with pytest.raises(ValueError, match="max 128"):
        tags.autoscaler_node_template_tags({"example.com/" + "k" * 100: "v"}, [], {})
    with pytest.raises(ValueError, match="max 256"):
        tags.autoscaler_node_template_tags({"k": "v" * 300}, [], {})


def test_subnet_tags_mark_load_balancer_roles() -> None:
    assert tags.subnet_tags("mlp", public=True) == {
        "kubernetes.io/role/elb": "1",
        "kubernetes.io/cluster/mlp": "shared",
    }
    assert "kubernetes.io/role/internal-elb" in tags.subnet_tags("mlp", public=False)


def test_merge_tags_later_wins() -> None:
    assert tags.merge_tags({"a": "1", "b": "1"}, None, {"b": "2"}) == {"a": "1", "b": "2"}


# --- GPU pool math ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sharing", "count", "expected"),
    [
        (GpuSharing(), 1, {"nvidia.com/gpu": 1}),
        (GpuSharing(), 4, {"nvidia.com/gpu": 4}),
        (GpuSharing(time_slicing=TimeSlicing(4)), 1, {"nvidia.com/gpu": 4}),
        (GpuSharing(time_slicing=TimeSlicing(4, rename_by_default=True)), 2, {"nvidia.com/gpu.shared": 8}),
        (GpuSharing(mps=Mps(2)), 1, {"nvidia.com/gpu": 2}),
        (GpuSharing(mig=Mig("single", "3g.40gb")), 8, {"nvidia.com/gpu": 16}),
        (GpuSharing(mig=Mig("mixed", "1g.10gb")), 2, {"nvidia.com/mig-1g.10gb": 14}),
        (
            GpuSharing(mig=Mig("mixed", "all-balanced")),
            1,
            {"nvidia.com/mig-1g.10gb": 2, "nvidia.com/mig-2g.20gb": 1, "nvidia.com/mig-3g.40gb": 1},
        ),
        (GpuSharing(), 0, {}),
    ],
)
def test_advertised_gpu_resources(sharing: GpuSharing, count: int, expected: dict[str, int]) -> None:
    model = "A100-80GB" if sharing.mig else "T4"
    assert pools.advertised_gpu_resources(spec(model=model, count=count, sharing=sharing)) == expected


def test_taints_per_cloud() -> None:
    assert pools.aks_pool_taints(spec(spot=True)) == (GPU_TAINT, AKS_SPOT_TAINT)
    assert pools.aks_pool_taints(spec(spot=False)) == (GPU_TAINT,)
    # EKS puts no taint on spot nodes; we add only the GPU taint (see pools.eks_pool_taints).
    assert pools.eks_pool_taints(spec(spot=True)) == (GPU_TAINT,)
    assert pools.local_pool_taints(spec(count=0, model="none")) == ()


def test_pool_summary_has_the_output_contract_shape() -> None:
    info = pools.pool_info(spec(), (GPU_TAINT,), {"x": "y"})
    summary = pools.pool_summary(info)
    from workloads.target import GpuPool

    # The program writes exactly the fields the workloads' reader of the output knows.
    assert set(summary) == {f.alias or name for name, f in GpuPool.model_fields.items()}
    parsed = GpuPool.model_validate(summary)
    assert (parsed.sharing, parsed.resource_name, parsed.shares_per_gpu) == ("none", "nvidia.com/gpu", 1)
    assert parsed.node_selector == {POOL_LABEL: "t4"}
    shared = pools.pool_summary(
        pools.pool_info(spec(sharing=GpuSharing(time_slicing=TimeSlicing(4, rename_by_default=True))), ())
    )
    assert (shared["sharing"], shared["resourceName"], shared["sharesPerGpu"]) == (
        "time-slicing",
        "nvidia.com/gpu.shared",
        4,
    )
    assert summary["taints"] == [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]
    assert summary["labels"] == {**info.labels}
    assert info.labels["x"] == "y" and info.labels[POOL_LABEL] == "t4"


# --- AKS agent pools -------------------------------------------------------------------------


def aks_pool(**kw: object) -> aks_spec.AksGpuPool:
    return aks_spec.AksGpuPool(spec=kw.pop("spec", spec()), vm_size="Standard_NC4as_T4_v3", **kw)  # type: ignore[arg-type]


def test_aks_spot_gpu_pool_spec() -> None:
    args = aks_spec.gpu_agent_pool_spec(
        aks_pool(spot_max_price=0.35), kubernetes_version="1.33", tags={"project": "mlp"}
    )
    assert args["mode"] == "User"
    assert args["scale_set_priority"] == "Spot"
    assert args["scale_set_eviction_policy"] == "Delete"
    assert args["spot_max_price"] == 0.35
    assert args["enable_auto_scaling"] is True
    assert (args["min_count"], args["max_count"], args["count"]) == (0, 4, 0)
    assert args["node_taints"] == [
        "nvidia.com/gpu=present:NoSchedule",
        "kubernetes.azure.com/scalesetpriority=spot:NoSchedule",
    ]
    assert args["node_labels"][POOL_LABEL] == "t4"
    assert args["node_labels"][GPU_MODEL_LABEL] == "T4"
    assert args["gpu_profile"] == {"driver": "Install"}
    assert args["agent_pool_name"] == "t4"
    assert args["tags"] == {"project": "mlp"}
    assert "upgrade_settings" not in args  # surge upgrades do not apply to spot pools


def test_aks_pool_info_includes_the_spot_label_aks_sets() -> None:
    info = aks_spec.gpu_pool_info(aks_pool())
    assert info.labels["kubernetes.azure.com/scalesetpriority"] == "spot"
    assert "kubernetes.azure.com/scalesetpriority" not in aks_spec.settable_labels(info.labels)
    assert (
        "kubernetes.azure.com/scalesetpriority"
        not in aks_spec.gpu_pool_info(aks_pool(spec=spec(spot=False))).labels
    )


def test_aks_spot_price_defaults_to_on_demand_cap() -> None:
    args = aks_spec.gpu_agent_pool_spec(aks_pool(), kubernetes_version="1.33", tags={})
    assert args["spot_max_price"] == -1


def test_aks_on_demand_gpu_pool_spec() -> None:
    args = aks_spec.gpu_agent_pool_spec(
        aks_pool(spec=spec(spot=False), gpu_driver="None", spot_max_price=2.0),
        kubernetes_version="1.33",
        tags={},
    )
    assert args["scale_set_priority"] == "Regular"
    assert "scale_set_eviction_policy" not in args and "spot_max_price" not in args
    assert args["node_taints"] == ["nvidia.com/gpu=present:NoSchedule"]
    assert args["gpu_profile"] == {"driver": "None"}


def test_aks_system_pool_is_on_demand_critical_addons_only() -> None:
    profile = aks_spec.system_pool_profile(
        aks_spec.AksNodePool("Standard_D4s_v5", 1, 3), kubernetes_version="1.33"
    )
    assert profile["mode"] == "System"
    assert profile["scale_set_priority"] == "Regular"
    assert profile["node_taints"] == ["CriticalAddonsOnly=true:NoSchedule"]
    assert (profile["min_count"], profile["max_count"], profile["enable_auto_scaling"]) == (1, 3, True)


def test_aks_platform_pool_is_untainted_user_pool() -> None:
    args = aks_spec.platform_pool_spec(
        aks_spec.AksNodePool("Standard_D4s_v5", 1, 3), kubernetes_version="1.33", tags={}
    )
    assert args["mode"] == "User" and args["scale_set_priority"] == "Regular"
    assert "node_taints" not in args


def test_aks_reserved_pool_names() -> None:
    system = aks_spec.AksNodePool("Standard_D4s_v5", 1, 3)
    args = aks_spec.AksClusterArgs(
        "mlp", "westeurope", "1.33", system, gpu_pools=(aks_pool(spec=spec("system")),)
    )
    with pytest.raises(ValueError, match="reserved"):
        aks_spec.check_pool_names(args)
    aks_spec.check_pool_names(
        aks_spec.AksClusterArgs("mlp", "westeurope", "1.33", system, gpu_pools=(aks_pool(),))
    )


def test_decode_kubeconfig() -> None:
    text = "apiVersion: v1\nkind: Config\n"
    assert aks_spec.decode_kubeconfig(base64.b64encode(text.encode()).decode()) == text


# --- EKS node groups -------------------------------------------------------------------------


def eks_group(**kw: object) -> eks_spec.EksGpuNodeGroup:
    return eks_spec.EksGpuNodeGroup(
        spec=kw.pop("spec", spec(sharing=GpuSharing(time_slicing=TimeSlicing(4)))),  # type: ignore[arg-type]
        instance_types=("g4dn.xlarge", "g4dn.2xlarge", "g4dn.4xlarge"),
        **kw,  # type: ignore[arg-type]
    )


def test_eks_gpu_node_group_spec() -> None:
    args = eks_spec.gpu_node_group_spec(eks_group(), cluster_name="mlp", kubernetes_version="1.33")
    assert args["capacity_type"] == "SPOT"
    assert args["instance_types"] == ["g4dn.xlarge", "g4dn.2xlarge", "g4dn.4xlarge"]
    assert args["ami_type"] == "AL2023_x86_64_NVIDIA"
    assert args["scaling_config"] == {"min_size": 0, "max_size": 4, "desired_size": 0}
    assert args["taints"] == [{"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"}]
    assert args["labels"][POOL_LABEL] == "t4"
    assert args["labels"]["k8s.amazonaws.com/accelerator"] == "nvidia-t4"
    assert EKS_SPOT_LABEL not in args["labels"]  # EKS sets it; node groups may not
    node_tags = args["tags"]
    assert node_tags["k8s.io/cluster-autoscaler/enabled"] == "true"
    assert node_tags["k8s.io/cluster-autoscaler/mlp"] == "owned"
    assert node_tags["k8s.io/cluster-autoscaler/node-template/taint/nvidia.com/gpu"] == "present:NoSchedule"
    assert node_tags["k8s.io/cluster-autoscaler/node-template/resources/nvidia.com/gpu"] == "4"
    assert node_tags["k8s.io/cluster-autoscaler/node-template/label/eks.amazonaws.com/capacityType"] == "SPOT"


def test_eks_on_demand_group_and_pool_info() -> None:
    group = eks_group(spec=spec(spot=False))
    assert group.capacity_type == "ON_DEMAND"
    info = eks_spec.gpu_pool_info(group)
    assert info.labels[EKS_SPOT_LABEL] == "ON_DEMAND"
    assert info.taints == (GPU_TAINT,)


def test_asg_tags_are_only_node_templates() -> None:
    asg = eks_spec.asg_node_template_tags(eks_group())
    assert asg and all(k.startswith("k8s.io/cluster-autoscaler/node-template/") for k in asg)


@pytest.mark.parametrize(
    ("effect", "expected"),
    [("NoSchedule", "NO_SCHEDULE"), ("PreferNoSchedule", "PREFER_NO_SCHEDULE"), ("NoExecute", "NO_EXECUTE")],
)
def test_eks_taint_effects(effect: str, expected: str) -> None:
    assert eks_spec.eks_taint(Taint("k", "v", effect))["effect"] == expected  # type: ignore[arg-type]


def test_eks_system_node_group_spec() -> None:
    args = eks_spec.system_node_group_spec(
        eks_spec.EksSystemNodeGroup(("m6i.large",), 1, 3, 2), kubernetes_version="1.33"
    )
    assert args["capacity_type"] == "ON_DEMAND"
    assert args["scaling_config"] == {"min_size": 1, "max_size": 3, "desired_size": 2}
    assert "taints" not in args


def test_settable_labels_drop_reserved_prefixes() -> None:
    assert eks_spec.settable_labels({EKS_SPOT_LABEL: "SPOT", "kubernetes.io/x": "1", "a/b": "c"}) == {
        "a/b": "c"
    }


def test_tag_resource_suffixes() -> None:
    keys = list(eks_spec.asg_node_template_tags(eks_group()))
    suffixes = eks_spec.tag_resource_suffixes(keys)
    assert suffixes["k8s.io/cluster-autoscaler/node-template/taint/nvidia.com/gpu"] == "taint-nvidia-com-gpu"
    assert len(set(suffixes.values())) == len(keys)
    with pytest.raises(ValueError, match="same resource name"):
        eks_spec.tag_resource_suffixes(["a.b", "a-b"])


def test_cluster_autoscaler_values() -> None:
    values = eks_spec.cluster_autoscaler_values(cluster_name="mlp", region="us-west-2", role_arn="arn:role")
    assert values["autoDiscovery"] == {"clusterName": "mlp"}
    assert values["awsRegion"] == "us-west-2"
    assert values["extraArgs"]["balance-similar-node-groups"] is True
    assert values["extraArgs"]["expander"] == "least-waste"
    sa = values["rbac"]["serviceAccount"]
    assert sa["name"] == eks_spec.AUTOSCALER_SERVICE_ACCOUNT
    assert sa["annotations"] == {"eks.amazonaws.com/role-arn": "arn:role"}


# --- IAM -------------------------------------------------------------------------------------


def test_irsa_trust_policy_binds_one_service_account() -> None:
    doc = iam.irsa_trust_policy("arn:oidc", "https://oidc.eks.x/id/ABC", "kube-system", "cluster-autoscaler")
    statement = doc["Statement"][0]
    assert statement["Principal"] == {"Federated": "arn:oidc"}
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Condition"]["StringEquals"] == {
        "oidc.eks.x/id/ABC:sub": "system:serviceaccount:kube-system:cluster-autoscaler",
        "oidc.eks.x/id/ABC:aud": "sts.amazonaws.com",
    }


def test_cluster_autoscaler_policy_scopes_scaling_to_owned_groups() -> None:
    doc = iam.cluster_autoscaler_policy("mlp")
    scale = next(s for s in doc["Statement"] if s["Sid"] == "ScaleOwnGroups")
    assert "autoscaling:SetDesiredCapacity" in scale["Action"]
    assert scale["Condition"]["StringEquals"]["aws:ResourceTag/k8s.io/cluster-autoscaler/mlp"] == "owned"
    describe = next(s for s in doc["Statement"] if s["Sid"] == "Describe")
    assert "eks:DescribeNodegroup" in describe["Action"]


def test_managed_policy_arn_partition() -> None:
    assert (
        iam.managed_policy_arn("aws-cn", "AmazonEKS_CNI_Policy")
        == "arn:aws-cn:iam::aws:policy/AmazonEKS_CNI_Policy"
    )
    assert iam.assume_role_policy("ec2.amazonaws.com")["Statement"][0]["Principal"] == {
        "Service": "ec2.amazonaws.com"
    }


# --- kind and local --------------------------------------------------------------------------


def test_kind_config_nodes_labels_taints_and_gpu_mounts() -> None:
    pools_ = [
        spec("gpu", model="RTX-4090", spot=False),
        spec("cpu", model="none", count=0, spot=False, min_count=2),
    ]
    text = kind.render_kind_config(
        kind.kind_cluster_config("mlp", node_image="kindest/node:v1.33.1", pools=pools_)
    )
    config = yaml.safe_load(text)
    assert config["kind"] == "Cluster" and config["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    assert config["name"] == "mlp"
    roles = [n["role"] for n in config["nodes"]]
    assert roles == ["control-plane", "worker", "worker", "worker"]
    gpu_node, cpu_node = config["nodes"][1], config["nodes"][2]
    assert gpu_node["labels"][POOL_LABEL] == "gpu"
    patch = yaml.safe_load(gpu_node["kubeadmConfigPatches"][0])
    assert patch["kind"] == "JoinConfiguration"
    assert patch["nodeRegistration"]["taints"] == [
        {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
    ]
    assert gpu_node["extraMounts"] == [kind.NVIDIA_DEVICES_MOUNT]
    assert "extraMounts" not in cpu_node and "kubeadmConfigPatches" not in cpu_node
    assert all(n["image"] == "kindest/node:v1.33.1" for n in config["nodes"])


def test_kind_pool_worker_count() -> None:
    assert kind.pool_worker_count(spec(min_count=0)) == 1
    assert kind.pool_worker_count(spec(min_count=3, max_count=3)) == 3


def test_kubeconfig_command() -> None:
    assert kubeconfig_command(None) == "kubectl config view --raw --minify --flatten"
    assert kubeconfig_command("my ctx").endswith("--context 'my ctx'")


# --- config -> component arguments (stacks/cluster_builders) ---------------------------------


def test_builder_aks_args_from_stack_file() -> None:
    from stacks.cluster_builders import aks_args
    from stacks.config import load_stack_file

    args = aks_args(load_stack_file("aks"))
    assert args.cluster_name == "mlp-aks" and args.location == "westeurope"
    assert args.platform_pool == args.system_pool
    t4, a10, a100mig = args.gpu_pools
    assert (t4.spec.gpu_model, t4.spec.gpu_count, t4.spot_max_price) == ("T4", 1, -1)
    assert a100mig.spec.sharing.mig == Mig("mixed", "1g.10gb")
    pool = aks_spec.gpu_agent_pool_spec(a100mig, kubernetes_version="1.33", tags={})
    assert pool["gpu_instance_profile"] == "MIG1g"
    assert MIG_CONFIG_LABEL not in pool["node_labels"]  # AKS creates the instances, no MIG manager
    assert t4.spec.sharing.time_slicing == TimeSlicing(4, False, True)
    assert a10.spec.sharing.mps == Mps(2) and a10.spot_max_price == 1.2
    assert t4.gpu_driver == "Install"
    assert args.api_server_authorized_ranges == ("203.0.113.0/24",)


def test_builder_aks_driver_follows_gpu_provider() -> None:
    from stacks.cluster_builders import aks_args
    from stacks.config import parse_config, stack_file_config

    raw = {k.split(":", 1)[1]: v for k, v in stack_file_config("aks").items()}
    raw["gpu"] = {"provider": "gpu-operator"}
    assert {p.gpu_driver for p in aks_args(parse_config(raw, "aks")).gpu_pools} == {"None"}
    raw["gpu"] = {"provider": "gpu-operator", "installDriver": False}
    assert {p.gpu_driver for p in aks_args(parse_config(raw, "aks")).gpu_pools} == {"Install"}


def test_builder_eks_args_from_stack_file() -> None:
    from stacks.cluster_builders import eks_args
    from stacks.config import load_stack_file

    args = eks_args(load_stack_file("eks"))
    assert args.region == "us-west-2" and args.vpc_cidr == "10.40.0.0/16"
    assert args.system_node_group.instance_types == ("m6i.large", "m7i.xlarge")
    t4, l4, a100mig = args.gpu_node_groups
    info = eks_spec.gpu_pool_info(a100mig)
    assert info.labels[MIG_CONFIG_LABEL] == "a100mig-all-3g.20gb"
    assert pools.pool_resource_name(a100mig.spec) == "nvidia.com/gpu"
    assert pools.advertised_gpu_resources(a100mig.spec) == {"nvidia.com/gpu": 16}
    assert t4.instance_types == ("g4dn.xlarge", "g4dn.2xlarge", "g4dn.4xlarge")
    assert (l4.spec.gpu_model, l4.capacity_type, l4.ami_type) == ("L4", "SPOT", "AL2023_x86_64_NVIDIA")
    assert args.public_access_cidrs == ("203.0.113.0/24",)


def test_builder_local_args() -> None:
    from stacks.cluster_builders import local_args
    from stacks.config import load_stack_file, parse_config

    args = local_args(load_stack_file("dev"))
    assert args.kind is None and args.kube_context is None and args.storage_class == "standard"
    (pool,) = args.gpu_pools
    assert (pool.gpu_model, pool.gpu_count, pool.spot) == ("RTX-4090", 1, False)

    kind_cfg = parse_config({"target": "dev", "local": {"createKind": True, "kindClusterName": "lab"}}, "dev")
    assert local_args(kind_cfg).kind is not None and local_args(kind_cfg).kind.cluster_name == "lab"  # type: ignore[union-attr]


def test_builder_cpu_only_dev_pool() -> None:
    from stacks.cluster_builders import gpu_pool_spec
    from stacks.config import GpuPoolConfig

    pool = gpu_pool_spec(
        GpuPoolConfig.model_validate({"name": "cpu", "gpuModel": "none", "maxCount": 2, "spot": False}), "dev"
    )
    assert (pool.gpu_model, pool.gpu_count) == ("none", 0)
