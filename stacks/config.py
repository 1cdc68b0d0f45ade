"""Stack configuration: the only reader of ``pulumi.Config``.

Every key lives under the ``mlplatform`` namespace and is declared in ``Pulumi.yaml``. Loading
happens in two passes so that a user sees every mistake at once:

1. each top-level key is parsed on its own by a strict pydantic model (unknown keys, wrong types,
   closed sets), so one bad section does not hide errors in another;
2. cross-field rules (pool sizes, GPU types, spot prices, sharing modes, API-server exposure) run
   over every section that parsed.

All problems are raised together as ``ConfigError`` before any resource is declared.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from components.gpu.catalog import GPU_MODELS, gpu_machine_types, machine_type

NAMESPACE = "mlplatform"
SUPPORTED_K8S_MINORS = range(30, 36)
"""Kubernetes minor versions the platform is tested against (1.30–1.35)."""

NVIDIA_AMI_TYPES = ("AL2023_x86_64_NVIDIA", "BOTTLEROCKET_x86_64_NVIDIA", "AL2_x86_64_GPU")
OPEN_CIDRS = ("0.0.0.0/0", "::/0")
AKS_RESERVED_POOL_NAMES = frozenset({"system", "platform"})


class _Model(BaseModel):
    """Strict base: camelCase keys as in the stack files, unknown keys rejected."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True)


# --- GPU pools -------------------------------------------------------------------------------


class TimeSlicingConfig(_Model):
    """Time-slicing: advertise each GPU ``replicas`` times."""

    replicas: int = Field(description="How many pods may share one GPU.")
    rename_by_default: bool = Field(
        False, description="Advertise shared GPUs as nvidia.com/gpu.shared instead of nvidia.com/gpu."
    )
    fail_requests_greater_than_one: bool = Field(
        False, description="Reject pods asking for more than one shared GPU."
    )


class MpsConfig(_Model):
    """CUDA Multi-Process Service sharing."""

    replicas: int = Field(description="How many MPS clients share one GPU.")


class MigConfig(_Model):
    """Multi-Instance GPU partitioning."""

    strategy: Literal["single", "mixed"] = Field(description="MIG resource strategy of the device plugin.")


class SharingConfig(_Model):
    """GPU sharing of one pool; leave empty for whole GPUs."""

    time_slicing: TimeSlicingConfig | None = Field(None, description="Time-slicing settings.")
    mps: MpsConfig | None = Field(None, description="MPS settings.")
    mig: MigConfig | None = Field(None, description="MIG settings (time-slicing may be added on top).")


class GpuPoolConfig(_Model):
    """One GPU node pool."""

    name: str = Field(
        pattern=r"^[a-z][a-z0-9]{0,11}$", description="Pool name: 1-12 lowercase letters/digits."
    )
    vm_size: str | None = Field(None, description="AKS: the VM size, e.g. Standard_NC4as_T4_v3.")
    instance_types: list[str] | None = Field(
        None, description="EKS: instance types of one GPU model; several give spot diversity."
    )
    gpu_model: str | None = Field(
        None, description="dev: the GPU model of the existing nodes; clouds derive it from the size."
    )
    min_count: int = Field(0, ge=0, description="Minimum nodes; 0 lets the pool scale from zero.")
    max_count: int = Field(1, ge=0, description="Maximum nodes.")
    spot: bool = Field(True, description="Use spot capacity.")
    spot_max_price: float | None = Field(
        None, description="AKS: highest hourly price in USD, or -1 for up to the on-demand price."
    )
    ami_type: str = Field("AL2023_x86_64_NVIDIA", description="EKS: AMI type; must be an NVIDIA one.")
    disk_size_gb: int = Field(100, ge=30, le=4096, description="OS disk size per node.")
    labels: dict[str, str] = Field(default_factory=dict, description="Extra node labels.")
    sharing: SharingConfig = Field(default_factory=SharingConfig, description="GPU sharing mode.")


# --- Clusters --------------------------------------------------------------------------------


class AksSystemPoolConfig(_Model):
    """The AKS system pool (on-demand, critical add-ons only)."""

    vm_size: str = Field("Standard_D4s_v5", description="VM size of the system nodes (a CPU size).")
    min_count: int = Field(1, ge=1, description="Minimum system nodes.")
    max_count: int = Field(3, ge=1, description="Maximum system nodes.")
    spot: bool = Field(False, description="Must stay false: AKS system pools cannot be spot.")


class AksPlatformPoolConfig(_Model):
    """The untainted on-demand AKS user pool that runs platform services (Prometheus, MinIO...)."""

    vm_size: str = Field("Standard_D4s_v5", description="VM size of the platform nodes (a CPU size).")
    min_count: int = Field(1, ge=1, description="Minimum platform nodes.")
    max_count: int = Field(3, ge=1, description="Maximum platform nodes.")


class AksConfig(_Model):
    """Azure Kubernetes Service settings."""

    location: str | None = Field(None, description="Azure region, e.g. westeurope.")
    sku_tier: Literal["Free", "Standard", "Premium"] = Field(
        "Free", description="Control-plane tier; Standard adds the uptime SLA."
    )
    system_pool: AksSystemPoolConfig = Field(
        default_factory=AksSystemPoolConfig, description="The on-demand system pool."
    )
    platform_pool: AksPlatformPoolConfig = Field(
        default_factory=AksPlatformPoolConfig, description="The on-demand pool for platform services."
    )
    api_server_authorized_ranges: list[str] = Field(
        default_factory=list, description="CIDRs allowed to reach the API server."
    )
    allow_public_api_server: bool = Field(
        False, description="Opt in to an API server reachable from anywhere."
    )


class EksSystemNodeGroupConfig(_Model):
    """The EKS on-demand system node group."""

    instance_types: list[str] = Field(
        default_factory=lambda: ["m6i.large"], description="On-demand CPU instance types."
    )
    min_size: int = Field(1, ge=1, description="Minimum system nodes.")
    max_size: int = Field(3, ge=1, description="Maximum system nodes.")
    desired_size: int = Field(2, ge=1, description="Initial system nodes.")


class EksConfig(_Model):
    """Amazon EKS settings."""

    region: str | None = Field(None, description="AWS region, e.g. us-west-2.")
    vpc_cidr: str = Field("10.0.0.0/16", description="VPC address block (/16 to /20).")
    availability_zone_count: int = Field(3, ge=2, le=3, description="Availability zones the VPC spans.")
    system_node_group: EksSystemNodeGroupConfig = Field(
        default_factory=EksSystemNodeGroupConfig, description="The on-demand system node group."
    )
    endpoint_public_access: bool = Field(True, description="Expose the API endpoint publicly.")
    endpoint_private_access: bool = Field(True, description="Expose the API endpoint inside the VPC.")
    public_access_cidrs: list[str] = Field(
        default_factory=list, description="CIDRs allowed to reach the public endpoint."
    )
    allow_public_api_server: bool = Field(
        False, description="Opt in to a public endpoint reachable from anywhere."
    )
    autoscaler: Literal["cluster-autoscaler"] = Field(
        "cluster-autoscaler", description="GPU node autoscaler (see adr/0003)."
    )
    enabled_log_types: list[Literal["api", "audit", "authenticator", "controllerManager", "scheduler"]] = (
        Field(
            default_factory=lambda: ["api", "audit", "authenticator"],
            description="Control-plane log types sent to CloudWatch.",
        )
    )


class LocalConfig(_Model):
    """Local cluster settings."""

    kube_context: str | None = Field(None, description="Existing kube context; None uses the current one.")
    create_kind: bool = Field(False, description="Create a kind cluster instead of using a context.")
    kind_cluster_name: str = Field("mlplatform", description="Name of the kind cluster to create.")
    storage_class: str = Field("standard", description="Default storage class of the local cluster.")


# --- Platform add-ons ------------------------------------------------------------------------


class GpuConfig(_Model):
    """Cluster-wide GPU software."""

    provider: Literal["device-plugin", "gpu-operator"] = Field(
        "device-plugin",
        description="device-plugin where nodes have drivers (AKS, EKS NVIDIA AMIs); gpu-operator otherwise.",
    )
    dcgm_exporter: bool = Field(True, description="Install the DCGM exporter on GPU nodes.")
    install_driver: bool = Field(
        True,
        description="gpu-operator only: let the operator install the NVIDIA driver (false when nodes have one).",
    )


class ObservabilityConfig(_Model):
    """Prometheus, Grafana and alerting."""

    enabled: bool = Field(True, description="Install Prometheus, Grafana and the alert rules.")
    retention: str = Field("7d", pattern=r"^\d+[hdw]$", description="Prometheus retention, e.g. 7d.")
    storage_size_gi: int = Field(20, ge=1, description="Prometheus volume size in GiB.")


class QdrantConfig(_Model):
    """Qdrant vector database."""

    enabled: bool = Field(True, description="Install Qdrant.")
    replicas: int = Field(1, ge=1, description="Qdrant pods (distributed mode above 1).")
    shard_number: int = Field(1, ge=1, description="Default shard number of new collections.")
    replication_factor: int = Field(1, ge=1, description="Default replication factor of new collections.")
    storage_size_gi: int = Field(10, ge=1, description="Volume size per pod in GiB.")
    snapshot_schedule: str = Field("0 3 * * *", description="Cron schedule of collection snapshots.")
    snapshot_retention_days: int = Field(
        7, ge=1, description="Keep snapshot runs this many days (the newest complete run is always kept)."
    )


class MilvusConfig(_Model):
    """Milvus vector database."""

    enabled: bool = Field(True, description="Install Milvus.")
    mode: Literal["standalone", "cluster"] = Field(
        "standalone", description="standalone (one pod) or cluster (separate coordinators and nodes)."
    )
    storage_size_gi: int = Field(10, ge=1, description="Volume size in GiB.")


class StorageConfig(_Model):
    """Platform object storage (MinIO)."""

    size_gi: int = Field(
        50, ge=1, description="MinIO volume size in GiB (artifacts, pipeline data, snapshots)."
    )


class VectorDbConfig(_Model):
    """Vector databases."""

    qdrant: QdrantConfig = Field(default_factory=QdrantConfig, description="Qdrant settings.")
    milvus: MilvusConfig = Field(default_factory=MilvusConfig, description="Milvus settings.")


# --- The whole stack -------------------------------------------------------------------------


class PlatformConfig(_Model):
    """Everything a stack's config says, validated."""

    target: Literal["dev", "aks", "eks"] = Field(description="Where the cluster runs.")
    kubernetes_version: str = Field("1.33", description="Kubernetes minor version, e.g. 1.33.")
    cluster_name: str = Field(
        "mlplatform", pattern=r"^[a-z][a-z0-9-]{1,30}[a-z0-9]$", description="Base name of the cluster."
    )
    tags: dict[str, str] = Field(default_factory=dict, description="Cloud tags on every resource.")
    local: LocalConfig = Field(default_factory=LocalConfig, description="Local cluster (target dev).")
    aks: AksConfig = Field(default_factory=AksConfig, description="AKS cluster (target aks).")
    eks: EksConfig = Field(default_factory=EksConfig, description="EKS cluster (target eks).")
    gpu_pools: list[GpuPoolConfig] = Field(default_factory=list, description="GPU node pools.")
    gpu: GpuConfig = Field(default_factory=GpuConfig, description="GPU software.")
    observability: ObservabilityConfig = Field(
        default_factory=ObservabilityConfig, description="Metrics, dashboards, alerts."
    )
    storage: StorageConfig = Field(default_factory=StorageConfig, description="Object storage (MinIO).")
    vectordb: VectorDbConfig = Field(default_factory=VectorDbConfig, description="Vector databases.")

    @property
    def kubernetes_minor(self) -> int:
        """The minor version number (33 for ``1.33``)."""
        return int(self.kubernetes_version.split(".")[1])


# --- Errors ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in a stack's config.

    Attributes:
        path: Key path as written in the stack file, e.g. ``gpuPools[0].maxCount``.
        message: What is wrong.
        fix: What to change.

    """

    path: str
    message: str
    fix: str

    def __str__(self) -> str:
        return f"{NAMESPACE}:{self.path}: {self.message}. Fix: {self.fix}"


class ConfigError(ValueError):
    """Raised with every issue of a stack's config."""

    def __init__(self, issues: list[ConfigIssue], stack: str | None = None) -> None:
        self.issues = issues
        self.stack = stack
        where = f" in stack '{stack}'" if stack else ""
        lines = "\n".join(f"  - {issue}" for issue in issues)
        super().__init__(f"{len(issues)} configuration error(s){where}:\n{lines}")


# --- Loading ---------------------------------------------------------------------------------


def _fields_by_alias(model: type[BaseModel]) -> dict[str, str]:
    return {(info.alias or name): name for name, info in model.model_fields.items()}


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _known_keys_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Aliases accepted at the object that holds ``loc``'s last key."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return []
        info = current.model_fields.get(_fields_by_alias(current).get(part, part))
        if info is None:
            return []
        current = _model_in(info.annotation)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(_fields_by_alias(current))
    return []


def _model_in(annotation: Any) -> Any:
    """The BaseModel class inside ``X``, ``X | None`` or ``list[X]``, if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _issue_from_pydantic(err: Mapping[str, Any], prefix: tuple[Any, ...]) -> ConfigIssue:
    loc = prefix + tuple(err["loc"])
    path = _path(loc)
    kind = err["type"]
    if kind == "extra_forbidden":
        known = _known_keys_at(PlatformConfig, loc)
        key = str(loc[-1])
        close = difflib.get_close_matches(key, known, n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"known keys here: {', '.join(sorted(known))}"
        return ConfigIssue(path, f"unknown key '{key}'", f"remove it or correct the spelling ({hint})")
    if kind == "missing":
        return ConfigIssue(path, "required key is missing", f"set {NAMESPACE}:{path}")
    if kind in ("literal_error", "enum"):
        expected = err.get("ctx", {}).get("expected", "")
        return ConfigIssue(
            path, f"{err['msg'].rstrip('.')} (got {err.get('input')!r})", f"use one of {expected}"
        )
    if kind == "string_pattern_mismatch":
        pattern = err.get("ctx", {}).get("pattern", "")
        return ConfigIssue(path, f"{err.get('input')!r} is not valid", f"use a value matching {pattern}")
    return ConfigIssue(
        path, f"{err['msg'].rstrip('.')} (got {err.get('input')!r})", "correct the value's type"
    )


def _decode(value: Any) -> Any:
    """Pulumi passes structured config as JSON strings; scalars stay strings."""
    if isinstance(value, str):
        stripped = value.strip()
        if stripped[:1] in ("{", "[") or stripped in ("true", "false"):
            try:
                return json.loads(stripped)
            except json.JSONDecodeError:
                return value
        if re.fullmatch(r"-?\d+", stripped):
            return int(stripped)
    return value


def parse_config(raw: Mapping[str, Any], stack: str | None = None) -> PlatformConfig:
    """Validate a stack's ``mlplatform:*`` values and return the typed config.

    Args:
        raw: Keys without the ``mlplatform:`` prefix, as in the stack file's ``config:`` block.
        stack: The stack name, for messages.

    Returns:
        The validated configuration.

    Raises:
        ConfigError: With every problem found, structural and cross-field.

    """
    data = {key: _decode(value) for key, value in raw.items()}
    if "kubernetesVersion" in data and not isinstance(data["kubernetesVersion"], str):
        data["kubernetesVersion"] = str(data["kubernetesVersion"])
    issues: list[ConfigIssue] = []
    fields = _fields_by_alias(PlatformConfig)
    parsed: dict[str, Any] = {}
    parsed_pools: dict[int, GpuPoolConfig] = {}
    failed: set[str] = set()
    for key, value in data.items():
        if key not in fields:
            close = difflib.get_close_matches(key, list(fields), n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"known keys: {', '.join(sorted(fields))}"
            issues.append(
                ConfigIssue(key, f"unknown key '{key}'", f"remove it or correct the spelling ({hint})")
            )
            continue
        if key == "gpuPools" and isinstance(value, list):
            pools: dict[int, GpuPoolConfig] = {}
            for i, item in enumerate(value):
                try:
                    pools[i] = GpuPoolConfig.model_validate(item)
                except ValidationError as exc:
                    failed.add(key)
                    issues.extend(_issue_from_pydantic(err, ("gpuPools", i)) for err in exc.errors())
            parsed_pools = pools
            parsed[key] = list(pools.values())
            continue
        try:
            # Validate the single key in isolation so every section reports its own errors.
            one = PlatformConfig.model_validate({"target": "dev", key: value})
            parsed[key] = getattr(one, fields[key])
        except ValidationError as exc:
            failed.add(key)
            issues.extend(
                _issue_from_pydantic(err, ())
                for err in exc.errors()
                if not (err["loc"] and err["loc"][0] == "target" and key != "target")
            )
    if "target" not in data:
        issues.append(
            ConfigIssue("target", "required key is missing", f"set {NAMESPACE}:target to dev, aks or eks")
        )
    config: PlatformConfig | None = None
    if not issues:
        config = PlatformConfig.model_validate(data)
    partial = PlatformConfig.model_construct(**{fields[k]: v for k, v in parsed.items()})
    issues.extend(_cross_checks(partial, set(parsed), failed, parsed_pools))
    if issues:
        raise ConfigError(issues, stack)
    assert config is not None
    return config


def load_config() -> PlatformConfig:
    """Read the running stack's config from Pulumi and validate it (see ``parse_config``)."""
    import pulumi
    from pulumi.runtime import config as runtime_config

    prefix = f"{NAMESPACE}:"
    merged: dict[str, Any] = dict(runtime_config.get_config_env())
    merged.update(runtime_config.CONFIG.get())
    raw = {key[len(prefix) :]: value for key, value in merged.items() if key.startswith(prefix)}
    return parse_config(raw, pulumi.get_stack())


# --- Cross-field rules -----------------------------------------------------------------------


def _check_cidrs(path: str, cidrs: list[str], issues: list[ConfigIssue]) -> None:
    for i, cidr in enumerate(cidrs):
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            issues.append(ConfigIssue(f"{path}[{i}]", f"'{cidr}' is not a CIDR", "write it as a.b.c.d/nn"))


def _cross_checks(
    cfg: PlatformConfig, present: set[str], failed: set[str], pools: dict[int, GpuPoolConfig]
) -> list[ConfigIssue]:
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
    if sharing.mps and sharing.mig:
        issues.append(
            ConfigIssue(
                spath,
                "MPS cannot be combined with MIG",
                "choose one of mps or mig (timeSlicing may go with mig)",
            )
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
    if sharing.mig and model is not None and model in GPU_MODELS and not GPU_MODELS[model].mig:
        mig_models = [m.name for m in GPU_MODELS.values() if m.mig]
        issues.append(
            ConfigIssue(
                f"{spath}.mig",
                f"{model} GPUs do not support MIG",
                f"remove mig, or use a MIG-capable GPU ({', '.join(mig_models)})",
            )
        )


def project_root() -> Path:
    """The directory holding ``Pulumi.yaml`` (the repository root)."""
    return Path(__file__).resolve().parent.parent


def stack_file_config(stack: str, root: Path | None = None) -> dict[str, Any]:
    """The raw ``mlplatform:*`` values of ``Pulumi.<stack>.yaml``, with full key names.

    Raises:
        FileNotFoundError: When the stack file does not exist (the message lists the stacks that do).

    """
    import yaml

    root = root or project_root()
    path = root / f"Pulumi.{stack}.yaml"
    if not path.exists():
        known = sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in root.glob("Pulumi.*.yaml"))
        raise FileNotFoundError(f"no stack file {path.name}; stacks here: {', '.join(known)}")
    data = yaml.safe_load(path.read_text()) or {}
    values = data.get("config") or {}
    return {key: value for key, value in values.items() if key.startswith(f"{NAMESPACE}:")}


def load_stack_file(stack: str, root: Path | None = None) -> PlatformConfig:
    """Validate a stack file's config without Pulumi (for ``mlp cost``, ``mlp config check``)."""
    return parse_config(without_namespace(stack_file_config(stack, root)), stack)


def without_namespace(values: Mapping[str, Any]) -> dict[str, Any]:
    """``{"mlplatform:target": ...}`` -> ``{"target": ...}``, the form ``parse_config`` takes."""
    return {key.split(":", 1)[1]: value for key, value in values.items()}
