"""Values a cloud would refuse, rejected before any deployment: regions, sizes, bounds, labels, tags.

The models check types and simple ranges; :mod:`stacks.config.checks` checks how fields fit
together. This module checks single values against what the providers accept, so that a typo
fails ``mlp config check`` with the key and the closest right value instead of failing
``pulumi up`` minutes in (or, worse, being dropped silently):

* regions: ``aks.location`` and ``eks.region`` against :mod:`components.clusters.regions`;
* CPU pool sizes: ``aks.systemPool.vmSize`` / ``aks.platformPool.vmSize`` and
  ``eks.systemNodeGroup.instanceTypes`` by the catalog, else by the providers' naming scheme;
  GPU and Arm sizes refused where the pool cannot use them;
* node counts: the providers' documented per-pool limits (below, with their sources);
* node labels (Kubernetes label syntax, prefixes the kubelet or the cloud refuse or the platform
  sets itself), cloud tags (Azure or AWS tag rules), the local storage class name.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping

from components.clusters.aks_spec import RESERVED_LABEL_PREFIX as AKS_RESERVED_LABEL_PREFIX
from components.clusters.base import (
    CAPACITY_LABEL,
    DEVICE_PLUGIN_CONFIG_LABEL,
    GPU_MODEL_LABEL,
    NODE_POOL_LABEL,
    POOL_LABEL,
)
from components.clusters.eks_spec import RESERVED_LABEL_PREFIXES as EKS_RESERVED_LABEL_PREFIXES
from components.clusters.eks_spec import SYSTEM_AMI_TYPE
from components.clusters.regions import CATALOG_DATE, closest_region, is_known_region
from components.gpu.catalog import MACHINE_TYPES, Cloud, machine_type
from components.gpu.mig import MIG_CONFIG_LABEL
from stacks.config.errors import ConfigIssue
from stacks.config.models import AksConfig, EksConfig, GpuPoolConfig, PlatformConfig

# --- Providers' documented limits ------------------------------------------------------------

AKS_MAX_NODES_PER_POOL = 1000
"""AKS: "Maximum nodes per node pool (Virtual Machine Scale Sets node pools): 1000" —
https://learn.microsoft.com/azure/aks/quotas-skus-regions (Service quotas and limits)."""
EKS_MAX_NODES_PER_GROUP = 450
"""EKS: "Nodes per managed node group: 450" (default quota, adjustable on request) —
https://docs.aws.amazon.com/eks/latest/userguide/service-quotas.html."""
K8S_MAX_NODES = 5000
"""Kubernetes: "No more than 5,000 nodes" per cluster —
https://kubernetes.io/docs/setup/best-practices/cluster-large/ (bound for dev pools)."""
EKS_LABEL_MAX = 63
"""EKS node group labels: key and value 1-63 characters —
https://docs.aws.amazon.com/eks/latest/APIReference/API_UpdateLabelsPayload.html."""
AZURE_TAG_NAME_MAX = 512
AZURE_TAG_VALUE_MAX = 256
AZURE_TAG_NAME_FORBIDDEN = "<>%&\\?/"
"""Azure tags: name <= 512, value <= 256 characters, names without ``< > % & \\ ? /`` —
https://learn.microsoft.com/azure/azure-resource-manager/management/tag-resources (Limitations)."""
AWS_TAG_KEY_MAX = 128
AWS_TAG_VALUE_MAX = 256
AWS_TAG_CHARS = re.compile(r"^[\w\s.:/=+\-@]*$")
"""AWS tags: key 1-128, value <= 256 characters of letters, digits, spaces and ``_ . : / = + - @``,
no ``aws:`` prefix — https://docs.aws.amazon.com/tag-editor/latest/userguide/tagging.html
(Tag naming limits and requirements; IAM and other services enforce the character set)."""

# --- Kubernetes names (https://kubernetes.io/docs/concepts/overview/working-with-objects/) -----

_DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS_SUBDOMAIN = re.compile(rf"^{_DNS_LABEL}(\.{_DNS_LABEL})*$")
LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
KUBELET_LABEL_NAMESPACES = ("kubernetes.io", "k8s.io")
"""Label prefixes (and their subdomains) the kubelet refuses in ``--node-labels``, apart from
``node.kubernetes.io`` and ``kubelet.kubernetes.io`` (NodeRestriction admission; a kubelet given
one does not start) — https://kubernetes.io/docs/reference/access-authn-authz/admission-controllers/#noderestriction."""
KUBELET_ALLOWED_NAMESPACES = ("node.kubernetes.io", "kubelet.kubernetes.io")
PLATFORM_LABELS = frozenset(
    {
        POOL_LABEL,
        NODE_POOL_LABEL,
        GPU_MODEL_LABEL,
        CAPACITY_LABEL,
        DEVICE_PLUGIN_CONFIG_LABEL,
        MIG_CONFIG_LABEL,
    }
)
"""Node labels the platform sets itself; scheduling and the device plugin depend on them."""

# --- Machine size names ----------------------------------------------------------------------

AZURE_FAMILIES = frozenset("A B D DC DS E EC ES F FS FX G GS H HB HC HX L LS M MS NC ND NG NP NV".split())
"""Azure VM size families (https://learn.microsoft.com/azure/virtual-machines/vm-naming-conventions)."""
AZURE_SIZE = re.compile(
    r"^Standard_(?P<family>[A-Z]{1,2})(?P<vcpus>\d+)(-\d+)?(?P<features>[a-z]*)"
    r"(_(?:[A-Z]+\d+[A-Za-z0-9]*|cc))?(_v(?P<version>\d+))?(_Promo)?$",
    re.IGNORECASE,
)
"""``Standard_<family><vCPUs>[-<constrained vCPUs>]<features>[_<accelerator>][_v<version>]``."""
AWS_INSTANCE_TYPE = re.compile(
    r"^(?P<family>(?P<series>[a-z]+)(?P<generation>\d+)(?P<options>[a-z]*)(-[a-z0-9]+)*"
    r"|u-\d+tb\d+)\.(?P<size>nano|micro|small|medium|large|\d*xlarge|metal(-\d+xl)?)$"
)
"""``<family>.<size>``, e.g. ``m6i.large``, ``m7i-flex.2xlarge``, ``c7gn.metal``, ``u-6tb1.112xlarge``."""
AWS_ACCELERATED_SERIES = frozenset({"g", "gr", "p", "inf", "trn", "dl", "vt", "f"})
"""EC2 accelerated-computing series (GPU, Inferentia, Trainium, Gaudi, video, FPGA)."""


def check_values(
    cfg: PlatformConfig, present: set[str], failed: set[str], pools: dict[int, GpuPoolConfig]
) -> list[ConfigIssue]:
    """Values of the parsed sections that the target cloud would refuse, each with its key and a fix.

    Called by :func:`stacks.config.checks.cross_checks` with its arguments: the partial config, the
    top-level keys present, those that failed to parse (skipped here) and the pools that parsed.
    """
    issues: list[ConfigIssue] = []
    target = cfg.target if "target" in present else None
    if target == "aks" and "aks" not in failed:
        issues += _aks(cfg.aks)
    if target == "eks" and "eks" not in failed:
        issues += _eks(cfg.eks)
    if target is not None:
        for i, pool in pools.items():
            issues += _pool(f"gpuPools[{i}]", pool, target)
    if "tags" in present and "tags" not in failed and target in ("aks", "eks"):
        issues += _azure_tags(cfg.tags) if target == "aks" else _aws_tags(cfg.tags)
    if "local" in present and "local" not in failed:
        issues += _storage_class("local.storageClass", cfg.local.storage_class)
    return issues


# --- Clusters --------------------------------------------------------------------------------


def _region(cloud: Cloud, path: str, name: str | None) -> list[ConfigIssue]:
    if not name or is_known_region(cloud, name):
        return []
    what = "an Azure region" if cloud == "aks" else "an AWS region"
    close = closest_region(cloud, name)
    hint = f"did you mean '{close}'?" if close else "check the spelling"
    return [
        ConfigIssue(
            path,
            f"'{name}' is not {what}; {hint}",
            f"use a region name as {'Azure Resource Manager' if cloud == 'aks' else 'AWS'} spells it "
            f"(catalog of {CATALOG_DATE} in components/clusters/regions.py; add a region opened since)",
        )
    ]


def _count_bound(path: str, value: int, limit: int, source: str) -> list[ConfigIssue]:
    if value <= limit:
        return []
    return [ConfigIssue(path, f"must be ≤ {limit} ({source}), got {value}", f"set it to at most {limit}")]


def _aks(aks: AksConfig) -> list[ConfigIssue]:
    issues = _region("aks", "aks.location", aks.location)
    limit = "AKS's limit of nodes per node pool"
    for key, pool in (("systemPool", aks.system_pool), ("platformPool", aks.platform_pool)):
        issues += _azure_cpu_size(f"aks.{key}.vmSize", pool.vm_size)
        issues += _count_bound(f"aks.{key}.minCount", pool.min_count, AKS_MAX_NODES_PER_POOL, limit)
        issues += _count_bound(f"aks.{key}.maxCount", pool.max_count, AKS_MAX_NODES_PER_POOL, limit)
    return issues


def _eks(eks: EksConfig) -> list[ConfigIssue]:
    issues = _region("eks", "eks.region", eks.region)
    group = eks.system_node_group
    for j, name in enumerate(group.instance_types):
        issues += _aws_system_instance_type(f"eks.systemNodeGroup.instanceTypes[{j}]", name)
    limit = "the EKS quota of nodes per managed node group"
    for key, value in (
        ("minSize", group.min_size),
        ("maxSize", group.max_size),
        ("desiredSize", group.desired_size),
    ):
        issues += _count_bound(f"eks.systemNodeGroup.{key}", value, EKS_MAX_NODES_PER_GROUP, limit)
    return issues


def _cpu_examples(cloud: Cloud) -> list[str]:
    return [m.name for m in MACHINE_TYPES.values() if m.cloud == cloud and m.gpu_count == 0]


def _azure_cpu_size(path: str, name: str) -> list[ConfigIssue]:
    known = machine_type(name)
    if known is not None:  # GPU sizes in a CPU pool are reported by the cross-field checks
        if known.cloud != "aks":
            return [
                ConfigIssue(path, f"'{name}' is an EC2 instance type, not an Azure VM size", _azure_fix())
            ]
        return []
    match = AZURE_SIZE.match(name)
    if match is None or match["family"].upper() not in AZURE_FAMILIES or int(match["vcpus"]) == 0:
        close = difflib.get_close_matches(name, _cpu_examples("aks"), n=1, cutoff=0.6)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        return [
            ConfigIssue(
                path,
                f"'{name}' is not an Azure VM size (Standard_<family><vCPUs><features>[_v<version>]){hint}",
                _azure_fix(),
            )
        ]
    if match["family"].upper().startswith("N"):
        return [
            ConfigIssue(
                path,
                f"{name} is a GPU/accelerator size (N family); this pool runs CPU services only",
                _azure_fix(),
            )
        ]
    return []


def _azure_fix() -> str:
    return f"use a CPU size such as {', '.join(_cpu_examples('aks')[:3])}"


def _aws_system_instance_type(path: str, name: str) -> list[ConfigIssue]:
    fix = f"use on-demand x86_64 CPU types such as {', '.join(_cpu_examples('eks')[:3])}"
    known = machine_type(name)
    if known is not None and known.cloud != "eks":
        return [ConfigIssue(path, f"'{name}' is an Azure VM size, not an EC2 instance type", fix)]
    match = AWS_INSTANCE_TYPE.match(name)
    if match is None:
        close = difflib.get_close_matches(name.lower(), _cpu_examples("eks"), n=1, cutoff=0.6)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        return [
            ConfigIssue(
                path, f"'{name}' is not an EC2 instance type (<family>.<size>, e.g. m6i.large){hint}", fix
            )
        ]
    if (known is not None and known.gpu_count > 0) or match["series"] in AWS_ACCELERATED_SERIES:
        return [
            ConfigIssue(
                path,
                f"{name} is a GPU/accelerator instance type; the system node group runs CPU services only",
                f"{fix}; put GPU types in gpuPools",
            )
        ]
    if match["family"] == "a1" or "g" in (match["options"] or ""):
        return [
            ConfigIssue(
                path,
                f"{name} is an Arm (Graviton) type; the system node group's AMI {SYSTEM_AMI_TYPE} is x86_64",
                fix,
            )
        ]
    return []


# --- GPU pools -------------------------------------------------------------------------------


def _pool(path: str, pool: GpuPoolConfig, target: str) -> list[ConfigIssue]:
    if target == "aks":
        limit, source = AKS_MAX_NODES_PER_POOL, "AKS's limit of nodes per node pool"
    elif target == "eks":
        limit, source = EKS_MAX_NODES_PER_GROUP, "the EKS quota of nodes per managed node group"
    else:
        limit, source = K8S_MAX_NODES, "the largest cluster Kubernetes supports"
    issues = _count_bound(f"{path}.minCount", pool.min_count, limit, source)
    issues += _count_bound(f"{path}.maxCount", pool.max_count, limit, source)
    issues += _labels(f"{path}.labels", pool.labels, target)
    return issues


def label_key_problem(key: str) -> str:
    """What is wrong with a Kubernetes label key (empty when it is valid)."""
    prefix, slash, name = key.rpartition("/")
    if slash and not prefix:
        return "the prefix before '/' is empty"
    if prefix and (len(prefix) > 253 or not DNS_SUBDOMAIN.match(prefix)):
        return f"prefix '{prefix}' is not a DNS subdomain (lowercase letters, digits, '-', '.'; ≤ 253 characters)"
    if not name:
        return "the name is empty"
    if len(name) > 63:
        return f"name '{name[:20]}...' is {len(name)} characters; must be ≤ 63"
    if not LABEL_NAME.match(name):
        return f"name '{name}' must start and end with a letter or digit and hold only letters, digits, '-', '_', '.'"
    return ""


def label_value_problem(value: str) -> str:
    """What is wrong with a Kubernetes label value (empty when it is valid)."""
    if len(value) > 63:
        return f"is {len(value)} characters; must be ≤ 63"
    if value and not LABEL_NAME.match(value):
        return "must be empty or start and end with a letter or digit and hold only letters, digits, '-', '_', '.'"
    return ""


def _in_namespace(prefix: str, namespaces: tuple[str, ...]) -> bool:
    return any(prefix == ns or prefix.endswith(f".{ns}") for ns in namespaces)


def _labels(path: str, labels: Mapping[str, str], target: str) -> list[ConfigIssue]:
    issues: list[ConfigIssue] = []
    for key, value in labels.items():
        where = f"{path}.{key}"
        problem = label_key_problem(key)
        if problem:
            issues.append(ConfigIssue(where, f"invalid label key '{key}': {problem}", "write [prefix/]name"))
            continue
        prefix = key.rpartition("/")[0]
        if key in PLATFORM_LABELS:
            issues.append(
                ConfigIssue(where, f"the platform sets label {key} itself", "remove it (use another key)")
            )
        elif _in_namespace(prefix, KUBELET_LABEL_NAMESPACES) and not _in_namespace(
            prefix, KUBELET_ALLOWED_NAMESPACES
        ):
            issues.append(
                ConfigIssue(
                    where,
                    f"the kubelet refuses node labels under {prefix}/ (NodeRestriction)",
                    "use your own prefix, e.g. example.com/team, or node.kubernetes.io/",
                )
            )
        elif target == "aks" and key.startswith(AKS_RESERVED_LABEL_PREFIX):
            issues.append(
                ConfigIssue(
                    where, f"AKS owns labels under {AKS_RESERVED_LABEL_PREFIX}", "use your own prefix"
                )
            )
        elif target == "eks" and key.startswith(EKS_RESERVED_LABEL_PREFIXES):
            issues.append(ConfigIssue(where, f"EKS owns labels under {prefix}/", "use your own prefix"))
        elif target == "eks" and len(key) > EKS_LABEL_MAX:
            issues.append(
                ConfigIssue(
                    where,
                    f"EKS node group label keys must be ≤ {EKS_LABEL_MAX} characters, this one has {len(key)}",
                    "shorten the prefix or the name",
                )
            )
        problem = label_value_problem(value)
        if problem:
            issues.append(ConfigIssue(where, f"label value '{value[:70]}' {problem}", "correct the value"))
        elif target == "eks" and not value:
            issues.append(
                ConfigIssue(
                    where, "EKS node group labels cannot have an empty value", "give the label a value"
                )
            )
    return issues


# --- Tags and names --------------------------------------------------------------------------


def _azure_tags(tags: Mapping[str, str]) -> list[ConfigIssue]:
    issues: list[ConfigIssue] = []
    for name, value in tags.items():
        where = f"tags.{name}"
        bad = sorted({c for c in name if c in AZURE_TAG_NAME_FORBIDDEN})
        if not name.strip():
            issues.append(ConfigIssue(where, "an Azure tag name cannot be empty", "name the tag"))
        elif len(name) > AZURE_TAG_NAME_MAX:
            issues.append(
                ConfigIssue(where, f"Azure tag names must be ≤ {AZURE_TAG_NAME_MAX} characters", "shorten it")
            )
        elif bad:
            issues.append(
                ConfigIssue(
                    where,
                    f"Azure tag names cannot contain {' '.join(bad)}",
                    f"remove the characters {' '.join(AZURE_TAG_NAME_FORBIDDEN)} from the name",
                )
            )
        if len(value) > AZURE_TAG_VALUE_MAX:
            issues.append(
                ConfigIssue(
                    where, f"Azure tag values must be ≤ {AZURE_TAG_VALUE_MAX} characters", "shorten it"
                )
            )
    return issues


def _aws_tags(tags: Mapping[str, str]) -> list[ConfigIssue]:
    issues: list[ConfigIssue] = []
    allowed = "letters, digits, spaces and _ . : / = + - @"
    for key, value in tags.items():
        where = f"tags.{key}"
        if not key:
            issues.append(ConfigIssue(where, "an AWS tag key cannot be empty", "name the tag"))
        elif len(key) > AWS_TAG_KEY_MAX:
            issues.append(
                ConfigIssue(where, f"AWS tag keys must be ≤ {AWS_TAG_KEY_MAX} characters", "shorten it")
            )
        elif key.lower().startswith("aws:"):
            issues.append(ConfigIssue(where, "the aws: prefix is reserved for AWS", "drop the prefix"))
        elif not AWS_TAG_CHARS.match(key):
            issues.append(
                ConfigIssue(where, f"AWS tag keys may hold only {allowed}", "remove the other characters")
            )
        if len(value) > AWS_TAG_VALUE_MAX:
            issues.append(
                ConfigIssue(where, f"AWS tag values must be ≤ {AWS_TAG_VALUE_MAX} characters", "shorten it")
            )
        elif not AWS_TAG_CHARS.match(value):
            issues.append(
                ConfigIssue(where, f"AWS tag values may hold only {allowed}", "remove the other characters")
            )
    return issues


def _storage_class(path: str, name: str) -> list[ConfigIssue]:
    if not name.strip():
        return [
            ConfigIssue(
                path, "the storage class name is empty", "set the cluster's storage class, e.g. standard"
            )
        ]
    if len(name) > 253 or not DNS_SUBDOMAIN.match(name):
        return [
            ConfigIssue(
                path,
                f"'{name}' is not a Kubernetes object name (lowercase letters, digits, '-', '.'; ≤ 253)",
                "use the name `kubectl get storageclass` shows",
            )
        ]
    return []
