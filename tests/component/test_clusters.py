"""Cluster components under recording mocks: what they would ask the clouds for.

Every test runs a small program through ``stacks.plan.harness.run_program`` and asserts on the
recorded registrations (type, name, parent, inputs) and exports. Mocked provider outputs come from
``stacks.plan.mock_outputs``; a test fails if the program calls an invoke the mocks do not answer.
"""

from __future__ import annotations

import collections
import json
from collections.abc import Callable
from typing import Any

import pulumi
import pytest
import yaml

from components.clusters.aks import AksCluster, AksClusterArgs, AksGpuPool, AksNodePool
from components.clusters.base import (
    GPU_MODEL_LABEL,
    POOL_LABEL,
    Cluster,
    GpuPoolSpec,
    GpuSharing,
    TimeSlicing,
)
from components.clusters.eks import EksCluster, EksClusterArgs, EksGpuNodeGroup, EksSystemNodeGroup
from components.clusters.local import KindSettings, LocalCluster, LocalClusterArgs
from stacks import outputs
from stacks.cluster_builders import build_cluster, cluster_outputs
from stacks.config import load_stack_file
from stacks.plan.harness import ProgramRun, Registration, clean, is_secret, run_program

pytestmark = pytest.mark.timeout(120)

GPU_TAINT_STR = "nvidia.com/gpu=present:NoSchedule"
AKS_SPOT_TAINT_STR = "kubernetes.azure.com/scalesetpriority=spot:NoSchedule"
GPU_TAINT_OBJ = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
AKS_SPOT_TAINT_OBJ = {"key": "kubernetes.azure.com/scalesetpriority", "value": "spot", "effect": "NoSchedule"}


def run(program: Callable[[], None], stack: str) -> ProgramRun:
    result = run_program(program, stack=stack)
    assert result.unanswered_invokes == [], "add the invokes to stacks/plan/mock_outputs.INVOKES"
    return result


def by_type(result: ProgramRun, type_: str) -> list[Registration]:
    return [r for r in result.registrations if r.type == type_]


def one(result: ProgramRun, type_: str, name: str) -> Registration:
    found = [r for r in result.registrations if r.type == type_ and r.name == name]
    assert len(found) == 1, f"{type_} {name}: {[r.name for r in by_type(result, type_)]}"
    return found[0]


def assert_parented(result: ProgramRun, root_type: str) -> None:
    """Exactly the root component is unparented; every other resource has a registered parent."""
    names = {r.name for r in result.registrations}
    roots = [r for r in result.registrations if r.parent is None]
    assert [r.type for r in roots] == [root_type] * len(roots) and roots
    orphans = [(r.type, r.name) for r in result.registrations if r.parent is None and r.type != root_type]
    assert orphans == []
    assert all(r.parent in names for r in result.registrations if r.parent is not None)


def assert_names_start_with(result: ProgramRun, prefixes: tuple[str, ...]) -> None:
    bad = [(r.type, r.name) for r in result.registrations if not r.name.startswith(prefixes)]
    assert bad == []


def assert_no_clashes(result: ProgramRun) -> None:
    counts = collections.Counter((r.type, r.name) for r in result.registrations)
    assert [key for key, n in counts.items() if n > 1] == []


def export_protocol(cluster: Cluster) -> None:
    """Export what the ``Cluster`` protocol exposes, so the tests see resolved values."""
    assert isinstance(cluster, Cluster)
    pulumi.export("kubeconfig", cluster.kubeconfig)
    pulumi.export("clusterName", cluster.cluster_name)
    pulumi.export("storageClass", cluster.storage_class)


# --- AKS -------------------------------------------------------------------------------------


def t4_spec(name: str = "t4", spot: bool = True) -> GpuPoolSpec:
    return GpuPoolSpec(name, "T4", 1, 0, 4, spot, GpuSharing(time_slicing=TimeSlicing(4)))


def aks_args(cluster_name: str = "mlp-aks") -> AksClusterArgs:
    system = AksNodePool("Standard_D4s_v5", 1, 3)
    return AksClusterArgs(
        cluster_name=cluster_name,
        location="westeurope",
        kubernetes_version="1.33",
        system_pool=system,
        platform_pool=system,
        gpu_pools=(
            AksGpuPool(t4_spec(), "Standard_NC4as_T4_v3", spot_max_price=0.4),
            AksGpuPool(t4_spec("ondemand", spot=False), "Standard_NC4as_T4_v3"),
        ),
        sku_tier="Standard",
        api_server_authorized_ranges=("203.0.113.0/24",),
        tags={"project": "mlplatform"},
    )


IgnoreChanges = dict[str, list[str]]


def recording_ignore_changes(build: Callable[[], None]) -> tuple[Callable[[], None], IgnoreChanges]:
    """Wrap a program so it records each resource's ``ignore_changes`` (not sent to the mocks)."""
    ignored: IgnoreChanges = {}

    def record(args: pulumi.ResourceTransformationArgs) -> None:
        ignored[args.name] = list(args.opts.ignore_changes or [])

    def program() -> None:
        pulumi.runtime.register_stack_transformation(record)
        build()

    return program, ignored


@pytest.fixture(scope="module")
def aks_run() -> tuple[ProgramRun, IgnoreChanges]:
    program, ignored = recording_ignore_changes(lambda: export_protocol(AksCluster("a", aks_args())))
    return run(program, "aks"), ignored


def test_aks_spot_gpu_pool(aks_run: tuple[ProgramRun, IgnoreChanges]) -> None:
    result, ignored = aks_run
    pool = clean(one(result, "azure-native:containerservice:AgentPool", "a-gpu-t4").inputs)
    assert pool["mode"] == "User"
    assert pool["scaleSetPriority"] == "Spot"
    assert pool["scaleSetEvictionPolicy"] == "Delete"
    assert pool["spotMaxPrice"] == 0.4
    assert pool["enableAutoScaling"] is True
    assert (pool["minCount"], pool["maxCount"], pool["count"]) == (0, 4, 0)
    assert pool["nodeTaints"] == [GPU_TAINT_STR, AKS_SPOT_TAINT_STR]
    assert pool["nodeLabels"][POOL_LABEL] == "t4"
    assert pool["nodeLabels"][GPU_MODEL_LABEL] == "T4"
    assert pool["gpuProfile"] == {"driver": "Install"}
    # Inputs computed by the mocked provider are present (an unfilled `name` would drop them).
    assert pool["resourceName"] == "mlp-aks"
    assert pool["resourceGroupName"].startswith("a-rg")
    # AKS sets its spot label itself and refuses it in nodeLabels.
    assert "kubernetes.azure.com/scalesetpriority" not in pool["nodeLabels"]
    assert ignored["a-gpu-t4"] == ["count"]


def test_aks_on_demand_gpu_pool_has_gpu_taint_only(aks_run: tuple[ProgramRun, IgnoreChanges]) -> None:
    result, ignored = aks_run
    pool = clean(one(result, "azure-native:containerservice:AgentPool", "a-gpu-ondemand").inputs)
    assert pool["scaleSetPriority"] == "Regular"
    assert "scaleSetEvictionPolicy" not in pool and "spotMaxPrice" not in pool
    assert pool["nodeTaints"] == [GPU_TAINT_STR]


def test_aks_cluster_security_and_system_pool(aks_run: tuple[ProgramRun, IgnoreChanges]) -> None:
    result, ignored = aks_run
    cluster = clean(one(result, "azure-native:containerservice:ManagedCluster", "a-aks").inputs)
    assert cluster["resourceName"] == "mlp-aks"
    assert cluster["identity"] == {"type": "SystemAssigned"}
    assert cluster["enableRBAC"] is True
    assert cluster["oidcIssuerProfile"] == {"enabled": True}
    assert cluster["securityProfile"] == {"workloadIdentity": {"enabled": True}}
    assert cluster["apiServerAccessProfile"]["authorizedIPRanges"] == ["203.0.113.0/24"]
    assert cluster["sku"] == {"name": "Base", "tier": "Standard"}
    (system,) = cluster["agentPoolProfiles"]
    assert system["mode"] == "System"
    assert system["scaleSetPriority"] == "Regular"
    assert system["nodeTaints"] == ["CriticalAddonsOnly=true:NoSchedule"]
    platform = clean(one(result, "azure-native:containerservice:AgentPool", "a-platform").inputs)
    assert platform["mode"] == "User" and "nodeTaints" not in platform
    assert ignored["a-aks"] == ["agentPoolProfiles[0].count"]
    assert ignored["a-platform"] == ["count"]


def test_aks_kubeconfig_is_secret_and_feeds_the_provider(aks_run: tuple[ProgramRun, IgnoreChanges]) -> None:
    result, ignored = aks_run
    assert "kubeconfig" in result.secret_exports
    assert yaml.safe_load(result.exports["kubeconfig"])["kind"] == "Config"
    provider = one(result, "pulumi:providers:kubernetes", "a-k8s")
    assert is_secret(provider.inputs["kubeconfig"])
    assert result.exports["clusterName"] == "mlp-aks"
    assert result.exports["storageClass"] == "managed-csi"


def test_aks_children_are_parented_and_named(aks_run: tuple[ProgramRun, IgnoreChanges]) -> None:
    result, ignored = aks_run
    assert_parented(result, "mlplatform:clusters:AksCluster")
    assert_names_start_with(result, ("a",))


def test_two_aks_clusters_do_not_clash() -> None:
    def program() -> None:
        AksCluster("a", aks_args("one"))
        AksCluster("b", aks_args("two"))

    result = run(program, "aks")
    assert_no_clashes(result)
    assert len(by_type(result, "azure-native:containerservice:AgentPool")) == 6


# --- EKS -------------------------------------------------------------------------------------


def eks_args(cluster_name: str = "mlp-eks") -> EksClusterArgs:
    return EksClusterArgs(
        cluster_name=cluster_name,
        region="us-west-2",
        kubernetes_version="1.33",
        system_node_group=EksSystemNodeGroup(("m6i.large", "m7i.xlarge"), 1, 3, 2),
        gpu_node_groups=(EksGpuNodeGroup(t4_spec(), ("g4dn.xlarge", "g4dn.2xlarge", "g4dn.4xlarge")),),
        vpc_cidr="10.40.0.0/16",
        availability_zone_count=3,
        public_access_cidrs=("203.0.113.0/24",),
        tags={"project": "mlplatform"},
    )


@pytest.fixture(scope="module")
def eks_run() -> tuple[ProgramRun, IgnoreChanges]:
    program, ignored = recording_ignore_changes(lambda: export_protocol(EksCluster("a", eks_args())))
    return run(program, "eks"), ignored


def test_eks_gpu_node_group(eks_run: tuple[ProgramRun, IgnoreChanges]) -> None:
    result, ignored = eks_run
    group = clean(one(result, "aws:eks/nodeGroup:NodeGroup", "a-gpu-t4").inputs)
    assert group["capacityType"] == "SPOT"
    assert len(group["instanceTypes"]) >= 2
    assert group["amiType"] == "AL2023_x86_64_NVIDIA"
    assert group["scalingConfig"] == {"minSize": 0, "maxSize": 4, "desiredSize": 0}
    assert group["taints"] == [{"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"}]
    assert group["labels"][POOL_LABEL] == "t4"
    assert group["labels"]["k8s.amazonaws.com/accelerator"] == "nvidia-t4"
    assert group["clusterName"] == "mlp-eks"
    assert group["nodeRoleArn"].startswith("arn:aws:iam::")
    assert len(group["subnetIds"]) == 3
    tags = group["tags"]
    assert tags["k8s.io/cluster-autoscaler/enabled"] == "true"
    assert tags["k8s.io/cluster-autoscaler/mlp-eks"] == "owned"
    assert tags["k8s.io/cluster-autoscaler/node-template/label/mlplatform.io/gpu-pool"] == "t4"
    assert tags["k8s.io/cluster-autoscaler/node-template/taint/nvidia.com/gpu"] == "present:NoSchedule"
    assert tags["k8s.io/cluster-autoscaler/node-template/resources/nvidia.com/gpu"] == "4"
    assert ignored["a-gpu-t4"] == ["scalingConfig.desiredSize"]


def test_eks_node_template_tags_reach_the_asg(eks_run: tuple[ProgramRun, IgnoreChanges]) -> None:
    result, _ = eks_run
    asg_tags = [clean(r.inputs) for r in by_type(result, "aws:autoscaling/tag:Tag")]
    assert asg_tags and all(t["autoscalingGroupName"].startswith("eks-a-gpu-t4") for t in asg_tags)
    keyed = {t["tag"]["key"]: t["tag"]["value"] for t in asg_tags}
    assert keyed["k8s.io/cluster-autoscaler/node-template/taint/nvidia.com/gpu"] == "present:NoSchedule"
    assert keyed["k8s.io/cluster-autoscaler/node-template/label/eks.amazonaws.com/capacityType"] == "SPOT"


def test_eks_system_node_group_is_on_demand(eks_run: tuple[ProgramRun, IgnoreChanges]) -> None:
    result, _ = eks_run
    group = clean(one(result, "aws:eks/nodeGroup:NodeGroup", "a-system").inputs)
    assert group["capacityType"] == "ON_DEMAND"
    assert "taints" not in group
    assert group["scalingConfig"] == {"minSize": 1, "maxSize": 3, "desiredSize": 2}


def test_eks_control_plane(eks_run: tuple[ProgramRun, IgnoreChanges]) -> None:
    result, _ = eks_run
    cluster = clean(one(result, "eks:index:Cluster", "a-eks").inputs)
    assert cluster["name"] == "mlp-eks"
    assert cluster["skipDefaultNodeGroup"] is True
    assert cluster["createOidcProvider"] is True
    assert cluster["authenticationMode"] == "API"
    assert cluster["enabledClusterLogTypes"] == ["api", "audit", "authenticator"]
    assert cluster["encryptionConfigKeyArn"].startswith("arn:aws:kms:")
    assert cluster["endpointPrivateAccess"] is True
    assert cluster["publicAccessCidrs"] == ["203.0.113.0/24"]
    assert len(cluster["privateSubnetIds"]) == 3 and len(cluster["publicSubnetIds"]) == 3
    key = clean(one(result, "aws:kms/key:Key", "a-secrets").inputs)
    assert key["enableKeyRotation"] is True


def test_eks_vpc_spans_zones(eks_run: tuple[ProgramRun, IgnoreChanges]) -> None:
    result, _ = eks_run
    subnets = [clean(r.inputs) for r in by_type(result, "aws:ec2/subnet:Subnet")]
    assert len(subnets) == 6
    assert {s["availabilityZone"] for s in subnets} == {"us-west-2a", "us-west-2b", "us-west-2c"}
    private = [s for s in subnets if "kubernetes.io/role/internal-elb" in s["tags"]]
    assert sorted(s["cidrBlock"] for s in private) == ["10.40.0.0/18", "10.40.128.0/18", "10.40.64.0/18"]
    assert len(by_type(result, "aws:ec2/natGateway:NatGateway")) == 1


def test_eks_cluster_autoscaler_with_irsa(eks_run: tuple[ProgramRun, IgnoreChanges]) -> None:
    result, _ = eks_run
    release = clean(one(result, "kubernetes:helm.sh/v3:Release", "a-autoscaler").inputs)
    assert release["chart"] == "cluster-autoscaler"
    assert release["version"] == "9.52.1"
    assert release["namespace"] == "kube-system"
    values = release["values"]
    assert values["autoDiscovery"]["clusterName"] == "mlp-eks"
    assert values["extraArgs"]["balance-similar-node-groups"] is True
    role_arn = values["rbac"]["serviceAccount"]["annotations"]["eks.amazonaws.com/role-arn"]
    assert role_arn.startswith("arn:aws:iam::123456789012:role/a-autoscaler-irsa")
    role = clean(one(result, "aws:iam/role:Role", "a-autoscaler-irsa").inputs)
    trust = json.loads(role["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"]["Federated"].startswith("arn:aws:iam::123456789012:oidc-provider/")
    (condition,) = [v for k, v in trust["Condition"]["StringEquals"].items() if k.endswith(":sub")]
    assert condition == "system:serviceaccount:kube-system:cluster-autoscaler"
    policy = clean(one(result, "aws:iam/rolePolicy:RolePolicy", "a-autoscaler-irsa").inputs)
    assert "autoscaling:SetDesiredCapacity" in policy["policy"]
    assert policy["role"].startswith("a-autoscaler-irsa")


def test_eks_default_gp3_storage_class(eks_run: tuple[ProgramRun, IgnoreChanges]) -> None:
    result, _ = eks_run
    sc = clean(one(result, "kubernetes:storage.k8s.io/v1:StorageClass", "a-gp3").inputs)
    assert sc["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true"
    assert sc["provisioner"] == "ebs.csi.aws.com" and sc["parameters"]["type"] == "gp3"
    addon = clean(one(result, "aws:eks/addon:Addon", "a-ebs-csi").inputs)
    assert addon["addonName"] == "aws-ebs-csi-driver"
    assert addon["serviceAccountRoleArn"].startswith("arn:aws:iam::")
    assert result.exports["storageClass"] == "gp3"


def test_eks_kubeconfig_is_secret(eks_run: tuple[ProgramRun, IgnoreChanges]) -> None:
    result, _ = eks_run
    assert "kubeconfig" in result.secret_exports
    assert json.loads(result.exports["kubeconfig"])["kind"] == "Config"
    assert is_secret(one(result, "pulumi:providers:kubernetes", "a-k8s").inputs["kubeconfig"])
    assert result.exports["clusterName"] == "mlp-eks"


def test_eks_children_are_parented_and_named(eks_run: tuple[ProgramRun, IgnoreChanges]) -> None:
    result, _ = eks_run
    assert_parented(result, "mlplatform:clusters:EksCluster")
    assert_names_start_with(result, ("a",))
    vpc_children = [r for r in result.registrations if r.type.startswith("aws:ec2/")]
    assert all(r.parent == "a-vpc" for r in vpc_children)


def test_two_eks_clusters_do_not_clash() -> None:
    def program() -> None:
        EksCluster("a", eks_args("one"))
        EksCluster("b", eks_args("two"))

    result = run(program, "eks")
    assert_no_clashes(result)
    assert len(by_type(result, "aws:eks/nodeGroup:NodeGroup")) == 4


# --- Local -----------------------------------------------------------------------------------


def test_local_cluster_uses_existing_context() -> None:
    args = LocalClusterArgs(
        "mlp-dev", kube_context="docker-desktop", gpu_pools=(t4_spec("local", spot=False),)
    )
    result = run(lambda: export_protocol(LocalCluster("a", args)), "dev")
    provider = clean(one(result, "pulumi:providers:kubernetes", "a-k8s").inputs)
    assert provider["context"] == "docker-desktop"
    read = clean(one(result, "command:local:Command", "a-kubeconfig").inputs)
    assert read["create"].endswith("--context docker-desktop")
    assert "kubeconfig" in result.secret_exports
    assert result.exports["storageClass"] == "standard"
    assert not by_type(result, "command:local:Command")[1:]  # no kind cluster
    assert_parented(result, "mlplatform:clusters:LocalCluster")


def test_local_cluster_can_create_kind() -> None:
    args = LocalClusterArgs("mlp-dev", kind=KindSettings("lab"), gpu_pools=(t4_spec("local", spot=False),))
    result = run(lambda: export_protocol(LocalCluster("a", args)), "dev")
    create = clean(one(result, "command:local:Command", "a-kind").inputs)
    assert create["create"].startswith("kind create cluster --name lab --config=-")
    assert create["delete"] == "kind delete cluster --name lab"
    config = yaml.safe_load(create["stdin"])
    (worker,) = [n for n in config["nodes"] if n["role"] == "worker"]
    assert worker["labels"][POOL_LABEL] == "local"
    provider = one(result, "pulumi:providers:kubernetes", "a-k8s")
    assert is_secret(provider.inputs["kubeconfig"])
    assert result.exports["clusterName"] == "lab"
    assert "kubeconfig" in result.secret_exports
    assert_parented(result, "mlplatform:clusters:LocalCluster")


# --- Whole builder path from the stack files -------------------------------------------------


def _build_stack(stack: str) -> tuple[ProgramRun, dict[str, Any]]:
    cfg = load_stack_file(stack)

    def program() -> None:
        cluster = build_cluster(cfg)
        for key, value in cluster_outputs(cfg, cluster).items():
            pulumi.export(key, value)

    result = run(program, stack)
    return result, clean(result.exports)


@pytest.mark.slow
@pytest.mark.parametrize("stack", ["aks", "eks", "dev"])
def test_stack_file_builds_cluster_and_contract(stack: str) -> None:
    result, exported = _build_stack(stack)
    assert set(exported) == {
        outputs.TARGET,
        outputs.CLUSTER_NAME,
        outputs.KUBERNETES_VERSION,
        outputs.KUBECONFIG,
        outputs.STORAGE_CLASS,
        outputs.GPU_POOLS,
        outputs.GPU_TOLERATIONS,
    }
    assert outputs.KUBECONFIG in result.secret_exports
    assert exported[outputs.TARGET] == stack
    assert exported[outputs.CLUSTER_NAME] == f"mlp-{stack}"
    assert_no_clashes(result)
    pools = exported[outputs.GPU_POOLS]
    assert pools and all(GPU_TAINT_OBJ in p["taints"] for p in pools)
    assert {
        "key": "nvidia.com/gpu",
        "operator": "Equal",
        "value": "present",
        "effect": "NoSchedule",
    } in exported[outputs.GPU_TOLERATIONS]
    if stack != "dev":
        assert all(p["spot"] and p["minCount"] == 0 for p in pools)


@pytest.mark.slow
def test_aks_stack_pools_match_the_stack_file() -> None:
    result, exported = _build_stack("aks")
    a10 = clean(one(result, "azure-native:containerservice:AgentPool", "mlp-aks-gpu-a10").inputs)
    assert a10["spotMaxPrice"] == 1.2 and a10["vmSize"] == "Standard_NV36ads_A10_v5"
    t4 = next(p for p in exported[outputs.GPU_POOLS] if p["name"] == "t4")
    assert t4["taints"] == [GPU_TAINT_OBJ, AKS_SPOT_TAINT_OBJ]
    assert t4["labels"][GPU_MODEL_LABEL] == "T4"


@pytest.mark.slow
def test_eks_stack_groups_match_the_stack_file() -> None:
    result, _ = _build_stack("eks")
    l4 = clean(one(result, "aws:eks/nodeGroup:NodeGroup", "mlp-eks-gpu-l4").inputs)
    assert l4["instanceTypes"] == ["g6.xlarge", "g6.2xlarge", "g6.4xlarge"]
    # MPS with 2 replicas: the scale-from-zero template advertises 2 GPUs per node.
    assert l4["tags"]["k8s.io/cluster-autoscaler/node-template/resources/nvidia.com/gpu"] == "2"
