"""Cross-field rules over every section that parsed: pool sizes, GPU types, spot prices, sharing, exposure."""

from __future__ import annotations

import ipaddress
import re
from decimal import Decimal, InvalidOperation

from components.gpu.catalog import GPU_MODELS, gpu_machine_types, machine_type
from stacks.config.errors import ConfigIssue
from stacks.config.mig import check_mig_provider, check_pool_mig
from stacks.config.models import (
    AKS_RESERVED_POOL_NAMES,
    NVIDIA_AMI_TYPES,
    OPEN_CIDRS,
    SUPPORTED_K8S_MINORS,
    AksConfig,
    EksConfig,
    GpuPoolConfig,
    PlatformConfig,
)
from stacks.config.platform import check_platform
from stacks.config.serving import check_serving
from stacks.config.values import check_values
from stacks.config.vectordb import check_vectordb


def _check_cidrs(path: str, cidrs: list[str], issues: list[ConfigIssue]) -> None:
    for i, cidr in enumerate(cidrs):
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            issues.append(ConfigIssue(f"{path}[{i}]", f"'{cidr}' is not a CIDR", "write it as a.b.c.d/nn"))


def cross_checks(
    cfg: PlatformConfig, present: set[str], failed: set[str], pools: dict[int, GpuPoolConfig]
) -> list[ConfigIssue]:
    """Every cross-field rule over the sections that parsed.

    Args:
        cfg: A partial config holding the sections that parsed.
        present: Top-level keys the stack file sets.
        failed: Top-level keys whose section failed to parse (their rules are skipped).
        pools: GPU pools that parsed, by index in ``gpuPools``.

    Returns:
        The issues found, in key order.

    """
    issues: list[ConfigIssue] = []
    target = cfg.target if "target" in present else None

    if "kubernetesVersion" in present:
        version = cfg.kubernetes_version
        match = re.fullmatch(r"1\.(\d{1,2})", version)
        if not match:
            issues.append(
                ConfigIssue(
                    "kubernetesVersion",
                    f"'{version}' is not a Kubernetes minor version",
                    'write it as 1.NN, e.g. "1.33" (quoted; the patch level is chosen by the cloud)',
                )
            )
        elif int(match.group(1)) not in SUPPORTED_K8S_MINORS:
            lo, hi = SUPPORTED_K8S_MINORS[0], SUPPORTED_K8S_MINORS[-1]
            issues.append(
                ConfigIssue(
                    "kubernetesVersion",
                    f"Kubernetes {version} is not supported",
                    f"use a version from 1.{lo} to 1.{hi}",
                )
            )

    if target == "aks" and "aks" not in failed:
        _check_aks(cfg.aks, issues)
    if target == "eks" and "eks" not in failed:
        _check_eks(cfg.eks, issues)
    if target == "dev" and "local" not in failed and cfg.local.create_kind and cfg.local.kube_context:
        issues.append(
            ConfigIssue(
                "local.createKind",
                "createKind and kubeContext are both set",
                "either create a kind cluster or use an existing context, not both",
            )
        )

    if "gpuPools" in present and target is not None:
        names: set[str] = set()
        for i, pool in pools.items():
            path = f"gpuPools[{i}]"
            if pool.name in names:
                issues.append(
                    ConfigIssue(f"{path}.name", f"pool name '{pool.name}' is used twice", "rename one")
                )
            names.add(pool.name)
            _check_pool(path, pool, target, issues)
        if "gpu" not in failed:
            issues.extend(check_mig_provider(cfg, target))
    if "serving" in present:
        issues.extend(check_serving(cfg.serving))
    if "platform" in present and "platform" not in failed:
        issues.extend(check_platform(cfg.platform))
    if "vectordb" in present and "vectordb" not in failed:
        issues.extend(check_vectordb(cfg.vectordb))
    issues.extend(check_values(cfg, present, failed, pools))
    return issues


def _check_aks(aks: AksConfig, issues: list[ConfigIssue]) -> None:
    if not aks.location:
        issues.append(
            ConfigIssue(
                "aks.location", "required for target aks", "set mlplatform:aks.location, e.g. westeurope"
            )
        )
    if aks.system_pool.spot:
        issues.append(
            ConfigIssue(
                "aks.systemPool.spot",
                "the AKS system pool cannot use spot capacity (System mode pools must be Regular priority)",
                "set it to false; put spot capacity in gpuPools",
            )
        )
    for key, pool in (("systemPool", aks.system_pool), ("platformPool", aks.platform_pool)):
        if pool.min_count > pool.max_count:
            issues.append(
                ConfigIssue(
                    f"aks.{key}.minCount", "minCount is greater than maxCount", "make minCount <= maxCount"
                )
            )
        size = machine_type(pool.vm_size)
        if size is not None and size.gpu_count > 0:
            issues.append(
                ConfigIssue(
                    f"aks.{key}.vmSize",
                    f"{pool.vm_size} is a GPU size; this pool runs CPU services only",
                    "use a CPU size such as Standard_D4s_v5",
                )
            )
    _check_cidrs("aks.apiServerAuthorizedRanges", aks.api_server_authorized_ranges, issues)
    ranges = aks.api_server_authorized_ranges
    if not aks.allow_public_api_server and (not ranges or any(r in OPEN_CIDRS for r in ranges)):
        issues.append(
            ConfigIssue(
                "aks.apiServerAuthorizedRanges",
                "the API server would be open to 0.0.0.0/0",
                "list the CIDRs that may reach it, or set aks.allowPublicApiServer: true to accept the exposure",
            )
        )


def _check_eks(eks: EksConfig, issues: list[ConfigIssue]) -> None:
    if not eks.region:
        issues.append(
            ConfigIssue("eks.region", "required for target eks", "set mlplatform:eks.region, e.g. us-west-2")
        )
    try:
        net = ipaddress.ip_network(eks.vpc_cidr)
        if not 16 <= net.prefixlen <= 20:
            issues.append(
                ConfigIssue("eks.vpcCidr", f"/{net.prefixlen} is outside /16–/20", "use a /16 to /20 block")
            )
    except ValueError:
        issues.append(
            ConfigIssue("eks.vpcCidr", f"'{eks.vpc_cidr}' is not a network CIDR", "use e.g. 10.0.0.0/16")
        )
    group = eks.system_node_group
    if not group.min_size <= group.desired_size <= group.max_size:
        issues.append(
            ConfigIssue(
                "eks.systemNodeGroup.desiredSize",
                f"desiredSize {group.desired_size} is outside [{group.min_size}, {group.max_size}]",
                "make minSize <= desiredSize <= maxSize",
            )
        )
    if not eks.endpoint_public_access and not eks.endpoint_private_access:
        issues.append(
            ConfigIssue(
                "eks.endpointPublicAccess",
                "both public and private endpoint access are off",
                "enable at least one of endpointPublicAccess / endpointPrivateAccess",
            )
        )
    _check_cidrs("eks.publicAccessCidrs", eks.public_access_cidrs, issues)
    cidrs = eks.public_access_cidrs
    if (
        eks.endpoint_public_access
        and not eks.allow_public_api_server
        and (not cidrs or any(c in OPEN_CIDRS for c in cidrs))
    ):
        issues.append(
            ConfigIssue(
                "eks.publicAccessCidrs",
                "the public API endpoint would be open to 0.0.0.0/0",
                "list the CIDRs that may reach it, turn endpointPublicAccess off, "
                "or set eks.allowPublicApiServer: true to accept the exposure",
            )
        )


def _decimals(value: float) -> int:
    try:
        exponent = Decimal(repr(value)).normalize().as_tuple().exponent
    except InvalidOperation:
        return 99
    return max(0, -exponent) if isinstance(exponent, int) else 99


def pool_gpu(pool: GpuPoolConfig, target: str) -> tuple[str | None, int]:
    """The GPU model and per-node GPU count a pool resolves to (``(None, 0)`` when unknown)."""
    if target == "aks" and pool.vm_size:
        size = machine_type(pool.vm_size)
        return (size.gpu_model, size.gpu_count) if size else (None, 0)
    if target == "eks" and pool.instance_types:
        size = machine_type(pool.instance_types[0])
        return (size.gpu_model, size.gpu_count) if size else (None, 0)
    if target == "dev":
        if pool.gpu_model in (None, "none"):
            return None, 0
        return pool.gpu_model, 1
    return None, 0


def _check_pool(path: str, pool: GpuPoolConfig, target: str, issues: list[ConfigIssue]) -> None:
    if pool.max_count == 0:
        issues.append(
            ConfigIssue(f"{path}.maxCount", "maxCount is 0, so the pool can never run", "set maxCount >= 1")
        )
    if pool.min_count > pool.max_count:
        issues.append(
            ConfigIssue(
                f"{path}.minCount",
                f"minCount {pool.min_count} is greater than maxCount {pool.max_count}",
                "make minCount <= maxCount (minCount 0 scales from zero)",
            )
        )

    if target == "aks":
        _check_aks_pool(path, pool, issues)
    elif target == "eks":
        _check_eks_pool(path, pool, issues)
    else:
        for key, value in (("vmSize", pool.vm_size), ("instanceTypes", pool.instance_types)):
            if value:
                issues.append(
                    ConfigIssue(f"{path}.{key}", f"{key} is for cloud targets", "remove it for dev")
                )
        if pool.gpu_model is None:
            issues.append(
                ConfigIssue(
                    f"{path}.gpuModel",
                    "a dev pool needs the GPU model of its nodes",
                    f"set gpuModel to one of {', '.join(GPU_MODELS)} (or none for CPU-only nodes)",
                )
            )
        elif pool.gpu_model != "none" and pool.gpu_model not in GPU_MODELS:
            issues.append(
                ConfigIssue(
                    f"{path}.gpuModel",
                    f"unknown GPU model '{pool.gpu_model}'",
                    f"use one of {', '.join(GPU_MODELS)}",
                )
            )
        if pool.spot_max_price is not None:
            issues.append(
                ConfigIssue(f"{path}.spotMaxPrice", "spot prices apply to clouds only", "remove it")
            )

    _check_sharing(path, pool, target, issues)


def _check_aks_pool(path: str, pool: GpuPoolConfig, issues: list[ConfigIssue]) -> None:
    if pool.name in AKS_RESERVED_POOL_NAMES:
        issues.append(
            ConfigIssue(
                f"{path}.name",
                f"'{pool.name}' is the name of the cluster's own {pool.name} pool",
                "rename the GPU pool, e.g. after its GPU model (t4, a10)",
            )
        )
    if pool.instance_types:
        issues.append(ConfigIssue(f"{path}.instanceTypes", "instanceTypes is for EKS", "use vmSize on AKS"))
    if not pool.vm_size:
        issues.append(
            ConfigIssue(
                f"{path}.vmSize", "an AKS GPU pool needs a VM size", "set vmSize, e.g. Standard_NC4as_T4_v3"
            )
        )
    else:
        size = machine_type(pool.vm_size)
        if size is None or size.cloud != "aks":
            issues.append(
                ConfigIssue(
                    f"{path}.vmSize",
                    f"'{pool.vm_size}' is not a known Azure GPU VM size",
                    f"use one of {', '.join(gpu_machine_types('aks'))}",
                )
            )
        elif size.gpu_count == 0:
            issues.append(
                ConfigIssue(
                    f"{path}.vmSize",
                    f"{pool.vm_size} has no GPU",
                    f"use a GPU size such as {', '.join(gpu_machine_types('aks')[:3])}",
                )
            )
        elif pool.gpu_model and pool.gpu_model != size.gpu_model:
            issues.append(
                ConfigIssue(
                    f"{path}.gpuModel",
                    f"gpuModel {pool.gpu_model} does not match {pool.vm_size} ({size.gpu_model})",
                    "remove gpuModel; it is derived from the VM size",
                )
            )
    price = pool.spot_max_price
    if price is not None:
        if not pool.spot:
            issues.append(
                ConfigIssue(
                    f"{path}.spotMaxPrice", "set on a pool that is not spot", "remove it or set spot: true"
                )
            )
        elif not (price == -1 or (price > 0 and _decimals(price) <= 5)):
            issues.append(
                ConfigIssue(
                    f"{path}.spotMaxPrice",
                    f"{price} is not a valid AKS spot max price",
                    "use -1 (pay up to the on-demand price) or a positive USD price with at most 5 decimals",
                )
            )


def _check_eks_pool(path: str, pool: GpuPoolConfig, issues: list[ConfigIssue]) -> None:
    if pool.vm_size:
        issues.append(ConfigIssue(f"{path}.vmSize", "vmSize is for AKS", "use instanceTypes on EKS"))
    if not pool.instance_types:
        issues.append(
            ConfigIssue(
                f"{path}.instanceTypes",
                "an EKS GPU pool needs instance types",
                "set e.g. [g5.xlarge, g5.2xlarge]",
            )
        )
    else:
        models: set[str | None] = set()
        for j, name in enumerate(pool.instance_types):
            size = machine_type(name)
            if size is None or size.cloud != "eks":
                issues.append(
                    ConfigIssue(
                        f"{path}.instanceTypes[{j}]",
                        f"'{name}' is not a known EC2 GPU instance type",
                        f"use one of {', '.join(gpu_machine_types('eks'))}",
                    )
                )
            elif size.gpu_count == 0:
                issues.append(
                    ConfigIssue(
                        f"{path}.instanceTypes[{j}]",
                        f"{name} has no GPU",
                        "use GPU instance types such as g4dn.xlarge, g5.xlarge, g6.xlarge",
                    )
                )
            else:
                models.add(size.gpu_model)
        if len(models) > 1:
            issues.append(
                ConfigIssue(
                    f"{path}.instanceTypes",
                    f"instance types mix GPU models ({', '.join(sorted(m or '' for m in models))})",
                    "keep one GPU model per pool (labels and sharing are per model); add another pool",
                )
            )
    if pool.ami_type not in NVIDIA_AMI_TYPES:
        issues.append(
            ConfigIssue(
                f"{path}.amiType",
                f"{pool.ami_type} has no NVIDIA driver",
                f"use one of {', '.join(NVIDIA_AMI_TYPES)}",
            )
        )
    if pool.spot_max_price is not None:
        issues.append(
            ConfigIssue(
                f"{path}.spotMaxPrice",
                "EKS managed node groups take no spot max price (they pay the current spot price)",
                "remove it; control spend with maxCount",
            )
        )


def _check_sharing(path: str, pool: GpuPoolConfig, target: str, issues: list[ConfigIssue]) -> None:
    sharing = pool.sharing
    spath = f"{path}.sharing"
    if not any((sharing.time_slicing, sharing.mps, sharing.mig)):
        return
    model, count = pool_gpu(pool, target)
    if count == 0:
        if target == "dev" and pool.gpu_model in (None, "none"):
            issues.append(
                ConfigIssue(
                    spath, "sharing is set on a pool that has no GPU", "remove sharing or give the pool a GPU"
                )
            )
        return
    if sharing.time_slicing and sharing.mps:
        issues.append(
            ConfigIssue(spath, "time-slicing and MPS cannot be combined", "choose one of timeSlicing or mps")
        )
    for key, mode in (("timeSlicing", sharing.time_slicing), ("mps", sharing.mps)):
        if mode is not None and mode.replicas < 2:
            issues.append(
                ConfigIssue(
                    f"{spath}.{key}.replicas",
                    f"replicas {mode.replicas} shares nothing",
                    "use replicas >= 2, or remove the sharing mode",
                )
            )
    issues.extend(check_pool_mig(path, pool, model, target))
