"""The platform's policy rules as plain functions over recorded resources.

A resource is a plain mapping ``{"type": <Pulumi type token>, "name": <logical name>, "inputs":
{...}}`` with camelCase input names, which is both what the offline plan records in
``resources.json`` and what ``pulumi preview`` hands a CrossGuard policy as ``args.resource_type``,
``args.name`` and ``args.props``. The rules import nothing from Pulumi, so they run offline
(``mlp plan --policy``) and unit-test without a CLI; ``policy/__main__.py`` wraps the same
functions as a ``pulumi-policy`` PolicyPack.

Resource rules return a list of violation messages (empty: compliant). Stack rules see every
resource at once. Enforcement is ``mandatory`` (the plan and the preview fail) or ``advisory``
(reported only).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

Resource = Mapping[str, Any]
Enforcement = Literal["mandatory", "advisory"]

GPU_SYSTEM_NAMESPACES: Final = frozenset({"nvidia-device-plugin", "gpu-operator", "dcgm-exporter"})
GPU_TAINT_KEY: Final = "nvidia.com/gpu"
GPU_RESOURCE: Final = re.compile(r"^nvidia\.com/(gpu|gpu\.shared|mig-.+)$")
OPEN_CIDRS: Final = frozenset({"0.0.0.0/0", "::/0"})
REQUIRED_EKS_LOGS: Final = frozenset({"api", "audit", "authenticator"})
DATA_CHARTS: Final = frozenset({"minio", "qdrant", "milvus"})
DATA_PORTS: Final = frozenset({9000, 9001, 6333, 6334, 19530})
INTERNAL_LB_ANNOTATIONS: Final = {
    "service.beta.kubernetes.io/azure-load-balancer-internal": "true",
    "service.beta.kubernetes.io/aws-load-balancer-internal": "true",
    "service.beta.kubernetes.io/aws-load-balancer-scheme": "internal",
}
SECRET_PLACEHOLDERS: Final = frozenset({"[secret]", "[unknown]"})
"""How the offline plan writes a Pulumi secret or a not-yet-known value."""
WORKLOAD_KINDS: Final = frozenset(
    {"Pod", "Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "ReplicaSet"}
)


@dataclass(frozen=True)
class PolicyConfig:
    """What a stack explicitly allows (from its config; see :func:`config_from_stack`).

    Attributes:
        allow_public_api_server: The stack opted in to an API server reachable from anywhere
            (``aks.allowPublicApiServer`` / ``eks.allowPublicApiServer``).

    """

    allow_public_api_server: bool = False


@dataclass(frozen=True)
class Rule:
    """One policy.

    Attributes:
        name: Kebab-case id (the CrossGuard policy name).
        description: What it requires.
        enforcement: ``mandatory`` or ``advisory``.
        check: ``(resource, config) -> messages`` for resource rules.
        check_stack: ``(resources, config) -> (resource name, message)`` for stack rules.

    """

    name: str
    description: str
    enforcement: Enforcement
    check: Callable[[Resource, PolicyConfig], list[str]] | None = None
    check_stack: Callable[[Sequence[Resource], PolicyConfig], list[tuple[str, str]]] | None = None


@dataclass(frozen=True)
class Violation:
    """One violated rule on one resource."""

    rule: str
    enforcement: Enforcement
    resource: str
    type: str
    message: str


# --- helpers --------------------------------------------------------------------------------------


def _inputs(resource: Resource) -> Mapping[str, Any]:
    value = resource.get("inputs") or resource.get("props") or {}
    return value if isinstance(value, Mapping) else {}


def _kind(resource: Resource) -> str:
    """The Kubernetes kind of a ``kubernetes:<group>/<version>:<Kind>`` resource ('' otherwise)."""
    rtype = str(resource.get("type", ""))
    if not rtype.startswith("kubernetes:") or rtype.startswith(("kubernetes:helm.sh/", "kubernetes:yaml/")):
        return ""
    return str(_inputs(resource).get("kind") or rtype.rsplit(":", 1)[-1])


def _namespace(resource: Resource) -> str:
    inputs = _inputs(resource)
    if resource.get("type") == HELM_RELEASE:
        return str(inputs.get("namespace") or "")
    meta = inputs.get("metadata") or {}
    return str(meta.get("namespace") or "") if isinstance(meta, Mapping) else ""


def pod_spec(resource: Resource) -> Mapping[str, Any] | None:
    """The pod spec of a workload object (Pod, Deployment, Job, CronJob, ...), else None."""
    kind = _kind(resource)
    if kind not in WORKLOAD_KINDS:
        return None
    spec = _inputs(resource).get("spec") or {}
    if kind == "Pod":
        return spec
    if kind == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec")) or {}
    return ((spec.get("template") or {}).get("spec")) or {}


def containers(spec: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """Every container of a pod spec (init, regular, ephemeral)."""
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for container in spec.get(key) or []:
            if isinstance(container, Mapping):
                yield container


def _walk(value: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    yield path, value
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _walk(item, (*path, str(key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, (*path, str(index)))


HELM_RELEASE: Final = "kubernetes:helm.sh/v3:Release"


def _chart(resource: Resource) -> str:
    return str(_inputs(resource).get("chart") or "").rstrip("/").rsplit("/", 1)[-1]


# --- cluster rules --------------------------------------------------------------------------------


def eks_endpoint_not_public(resource: Resource, config: PolicyConfig) -> list[str]:
    """The EKS API endpoint is private, or public only to named CIDRs (never 0.0.0.0/0)."""
    rtype = resource.get("type")
    inputs = _inputs(resource)
    if rtype == "eks:index:Cluster":
        public = inputs.get("endpointPublicAccess", True)
        cidrs = inputs.get("publicAccessCidrs") or []
    elif rtype == "aws:eks/cluster:Cluster":
        vpc = inputs.get("vpcConfig") or {}
        public = vpc.get("endpointPublicAccess", True)
        cidrs = vpc.get("publicAccessCidrs") or []
    else:
        return []
    if not public or config.allow_public_api_server:
        return []
    if not cidrs:
        return ["the API endpoint is public and publicAccessCidrs is empty, which EKS reads as 0.0.0.0/0"]
    open_ = sorted(set(cidrs) & OPEN_CIDRS)
    return [f"the API endpoint is public to {', '.join(open_)}"] if open_ else []


def eks_secrets_encryption(resource: Resource, config: PolicyConfig) -> list[str]:
    """EKS encrypts Kubernetes Secrets with a KMS key."""
    inputs = _inputs(resource)
    if resource.get("type") == "eks:index:Cluster":
        ok = bool(inputs.get("encryptionConfigKeyArn"))
    elif resource.get("type") == "aws:eks/cluster:Cluster":
        ok = any("secrets" in (c.get("resources") or []) for c in _as_list(inputs.get("encryptionConfig")))
    else:
        return []
    return [] if ok else ["Kubernetes Secrets are not envelope-encrypted with a KMS key"]


def _as_list(value: Any) -> list[Mapping[str, Any]]:
    if isinstance(value, Mapping):
        return [value]
    return [v for v in value or [] if isinstance(v, Mapping)]


def eks_control_plane_logging(resource: Resource, config: PolicyConfig) -> list[str]:
    """EKS ships the api, audit and authenticator control-plane logs."""
    if resource.get("type") not in ("eks:index:Cluster", "aws:eks/cluster:Cluster"):
        return []
    logs = set(_inputs(resource).get("enabledClusterLogTypes") or [])
    missing = sorted(REQUIRED_EKS_LOGS - logs)
    return [f"control-plane log types missing: {', '.join(missing)}"] if missing else []


def aks_authorized_ip_ranges(resource: Resource, config: PolicyConfig) -> list[str]:
    """The AKS API server is private or limited to authorized IP ranges (not 0.0.0.0/0)."""
    if (
        resource.get("type") != "azure-native:containerservice:ManagedCluster"
        or config.allow_public_api_server
    ):
        return []
    profile = _inputs(resource).get("apiServerAccessProfile") or {}
    if profile.get("enablePrivateCluster"):
        return []
    ranges = set(profile.get("authorizedIPRanges") or [])
    if not ranges:
        return ["the API server has no authorized IP ranges: it is reachable from anywhere"]
    return ["authorized IP ranges include 0.0.0.0/0"] if ranges & OPEN_CIDRS else []


def aks_entra_rbac(resource: Resource, config: PolicyConfig) -> list[str]:
    """AKS uses Microsoft Entra ID with Azure RBAC, and local accounts are disabled."""
    if resource.get("type") != "azure-native:containerservice:ManagedCluster":
        return []
    inputs = _inputs(resource)
    problems = []
    if inputs.get("disableLocalAccounts") is not True:
        problems.append("local accounts are enabled (disableLocalAccounts is not true)")
    aad = inputs.get("aadProfile") or {}
    if not (aad.get("managed") and aad.get("enableAzureRBAC")):
        problems.append("Azure RBAC for Kubernetes authorization is off (aadProfile.enableAzureRBAC)")
    return problems


def aks_system_pool_not_spot(resource: Resource, config: PolicyConfig) -> list[str]:
    """No AKS system-mode pool runs on spot VMs (eviction would take the control add-ons down)."""
    rtype = resource.get("type")
    inputs = _inputs(resource)
    if rtype == "azure-native:containerservice:ManagedCluster":
        pools = _as_list(inputs.get("agentPoolProfiles"))
    elif rtype == "azure-native:containerservice:AgentPool":
        pools = [inputs]
    else:
        return []
    return [
        f"system pool {p.get('name') or p.get('agentPoolName') or resource.get('name')} uses spot VMs"
        for p in pools
        if str(p.get("mode", "")).lower() == "system" and str(p.get("scaleSetPriority", "")).lower() == "spot"
    ]


# --- workload rules -------------------------------------------------------------------------------


def _gpu_taints(resource: Resource) -> list[dict[str, str]] | None:
    """The taints of a GPU node pool resource (None when it is not a GPU pool)."""
    rtype = resource.get("type")
    inputs = _inputs(resource)
    if rtype == "azure-native:containerservice:AgentPool":
        taints = []
        for text in inputs.get("nodeTaints") or []:
            key, _, rest = str(text).partition("=")
            value, _, effect = rest.partition(":")
            taints.append({"key": key, "value": value, "effect": effect})
    elif rtype == "aws:eks/nodeGroup:NodeGroup":
        effects = {
            "NO_SCHEDULE": "NoSchedule",
            "NO_EXECUTE": "NoExecute",
            "PREFER_NO_SCHEDULE": "PreferNoSchedule",
        }
        taints = [
            {
                "key": t.get("key", ""),
                "value": t.get("value", ""),
                "effect": effects.get(t.get("effect", ""), ""),
            }
            for t in _as_list(inputs.get("taints"))
        ]
    else:
        return None
    return taints if any(t["key"] == GPU_TAINT_KEY for t in taints) else None


def _tolerates(tolerations: Iterable[Mapping[str, Any]], taint: Mapping[str, str]) -> bool:
    for tol in tolerations:
        if tol.get("effect") and tol.get("effect") != taint["effect"]:
            continue
        if tol.get("operator") == "Exists" and not tol.get("key"):
            return True
        if tol.get("key") != taint["key"]:
            continue
        if tol.get("operator") == "Exists" or str(tol.get("value", "")) == taint["value"]:
            return True
    return False


def _requests_gpu(spec: Mapping[str, Any]) -> bool:
    for container in containers(spec):
        resources = container.get("resources") or {}
        for section in ("limits", "requests"):
            if any(GPU_RESOURCE.match(str(k)) for k in (resources.get(section) or {})):
                return True
    return False


def gpu_pods_tolerate_pool_taints(
    resources: Sequence[Resource], config: PolicyConfig
) -> list[tuple[str, str]]:
    """Every pod that requests a GPU tolerates all taints of at least one GPU pool."""
    pools = [taints for r in resources if (taints := _gpu_taints(r)) is not None]
    if not pools:
        pools = [[{"key": GPU_TAINT_KEY, "value": "present", "effect": "NoSchedule"}]]
    found = []
    for resource in resources:
        spec = pod_spec(resource)
        if spec is None or not _requests_gpu(spec):
            continue
        tolerations = [t for t in spec.get("tolerations") or [] if isinstance(t, Mapping)]
        if not any(all(_tolerates(tolerations, taint) for taint in pool) for pool in pools):
            wanted = "; ".join(
                ", ".join(f"{t['key']}={t['value']}:{t['effect']}" for t in pool) for pool in pools
            )
            found.append(
                (str(resource.get("name")), f"requests a GPU but tolerates no GPU pool's taints ({wanted})")
            )
    return found


def no_privileged_outside_gpu_namespaces(resource: Resource, config: PolicyConfig) -> list[str]:
    """No privileged container (or Helm value ``privileged: true``) outside the GPU system namespaces."""
    namespace = _namespace(resource)
    if namespace in GPU_SYSTEM_NAMESPACES:
        return []
    if resource.get("type") == HELM_RELEASE:
        values = _inputs(resource).get("values") or {}
        return [
            f"Helm value {'.'.join(path)} is true in namespace {namespace or '(default)'}"
            for path, value in _walk(values)
            if path and path[-1] == "privileged" and value is True
        ]
    spec = pod_spec(resource)
    if spec is None:
        return []
    return [
        f"container {c.get('name')} is privileged in namespace {namespace or '(default)'}"
        for c in containers(spec)
        if (c.get("securityContext") or {}).get("privileged") is True
    ]


def _image_pinned(image: str) -> bool:
    if "@sha256:" in image:
        return True
    last = image.rsplit("/", 1)[-1]
    return ":" in last and not last.endswith(":latest")


_RANGE = re.compile(r"[\^~*xX<>=|\s]|^$")


def images_and_charts_pinned(resource: Resource, config: PolicyConfig) -> list[str]:
    """Helm charts have an exact version; images have a fixed tag or digest (never latest)."""
    problems = []
    inputs = _inputs(resource)
    if resource.get("type") == HELM_RELEASE:
        version = str(inputs.get("version") or "")
        if _RANGE.search(version):
            problems.append(f"chart {inputs.get('chart')} has no exact version ({version or 'none'})")
        values = inputs.get("values") or {}
        for path, value in _walk(values):
            if path and path[-1] == "image" and isinstance(value, str) and not _image_pinned(value):
                problems.append(f"Helm value {'.'.join(path)}: image {value} has no fixed tag")
        return problems
    spec = pod_spec(resource)
    for container in containers(spec or {}):
        image = str(container.get("image") or "")
        if not _image_pinned(image):
            problems.append(f"container {container.get('name')}: image {image or '(none)'} has no fixed tag")
    return problems


def _public_lb(service_type: Any, annotations: Any) -> bool:
    if service_type != "LoadBalancer":
        return False
    annotations = annotations if isinstance(annotations, Mapping) else {}
    return not any(str(annotations.get(k, "")).lower() == v for k, v in INTERNAL_LB_ANNOTATIONS.items())


def data_services_not_public(resource: Resource, config: PolicyConfig) -> list[str]:
    """Object storage and vector databases are never exposed through a public LoadBalancer."""
    inputs = _inputs(resource)
    if resource.get("type") == HELM_RELEASE and _chart(resource) in DATA_CHARTS:
        values = inputs.get("values") or {}
        return [
            f"{_chart(resource)} Helm value {'.'.join(path)}.type is a public LoadBalancer"
            for path, value in _walk(values)
            if isinstance(value, Mapping) and _public_lb(value.get("type"), value.get("annotations"))
        ]
    if _kind(resource) == "Service":
        spec = inputs.get("spec") or {}
        meta = inputs.get("metadata") or {}
        ports = {
            int(p.get("port", 0)) for p in _as_list(spec.get("ports")) if str(p.get("port", "")).isdigit()
        }
        if _public_lb(spec.get("type"), meta.get("annotations")) and ports & DATA_PORTS:
            return [f"Service exposes data ports {sorted(ports & DATA_PORTS)} through a public LoadBalancer"]
    return []


def secrets_generated(resource: Resource, config: PolicyConfig) -> list[str]:
    """Every Kubernetes Secret value is a generated Pulumi secret, never a literal in the program."""
    if _kind(resource) != "Secret":
        return []
    inputs = _inputs(resource)
    problems = []
    for section in ("data", "stringData"):
        values = inputs.get(section)
        if values is None or (isinstance(values, str) and values in SECRET_PLACEHOLDERS):
            continue
        if not isinstance(values, Mapping):
            problems.append(f"{section} is a literal")
            continue
        for key, value in values.items():
            if not (isinstance(value, str) and value in SECRET_PLACEHOLDERS):
                problems.append(f"{section}.{key} is a literal value, not a generated secret")
    return problems


# --- advisory -------------------------------------------------------------------------------------


def gpu_pool_scales_from_zero(resource: Resource, config: PolicyConfig) -> list[str]:
    """Cost: a GPU pool's minimum size is zero, so idle GPUs are not paid for."""
    if _gpu_taints(resource) is None:
        return []
    inputs = _inputs(resource)
    if resource.get("type") == "aws:eks/nodeGroup:NodeGroup":
        minimum = (inputs.get("scalingConfig") or {}).get("minSize", 0)
    else:
        minimum = inputs.get("minCount", inputs.get("count", 0))
    return [f"GPU pool keeps {minimum} node(s) running when idle (min > 0)"] if (minimum or 0) > 0 else []


RULES: Final[tuple[Rule, ...]] = (
    Rule(
        "eks-endpoint-not-public", eks_endpoint_not_public.__doc__ or "", "mandatory", eks_endpoint_not_public
    ),
    Rule("eks-secrets-encryption", eks_secrets_encryption.__doc__ or "", "mandatory", eks_secrets_encryption),
    Rule(
        "eks-control-plane-logging",
        eks_control_plane_logging.__doc__ or "",
        "mandatory",
        eks_control_plane_logging,
    ),
    Rule(
        "aks-authorized-ip-ranges",
        aks_authorized_ip_ranges.__doc__ or "",
        "mandatory",
        aks_authorized_ip_ranges,
    ),
    Rule("aks-entra-rbac-no-local-accounts", aks_entra_rbac.__doc__ or "", "mandatory", aks_entra_rbac),
    Rule(
        "aks-system-pool-not-spot",
        aks_system_pool_not_spot.__doc__ or "",
        "mandatory",
        aks_system_pool_not_spot,
    ),
    Rule(
        "gpu-pods-tolerate-pool-taints",
        gpu_pods_tolerate_pool_taints.__doc__ or "",
        "mandatory",
        check_stack=gpu_pods_tolerate_pool_taints,
    ),
    Rule(
        "no-privileged-outside-gpu-namespaces",
        no_privileged_outside_gpu_namespaces.__doc__ or "",
        "mandatory",
        no_privileged_outside_gpu_namespaces,
    ),
    Rule(
        "images-and-charts-pinned",
        images_and_charts_pinned.__doc__ or "",
        "mandatory",
        images_and_charts_pinned,
    ),
    Rule(
        "data-services-not-public",
        data_services_not_public.__doc__ or "",
        "mandatory",
        data_services_not_public,
    ),
    Rule("secrets-generated", secrets_generated.__doc__ or "", "mandatory", secrets_generated),
    Rule(
        "gpu-pool-scales-from-zero",
        gpu_pool_scales_from_zero.__doc__ or "",
        "advisory",
        gpu_pool_scales_from_zero,
    ),
)
"""Every rule, mandatory first."""


@dataclass(frozen=True)
class Waiver:
    """A mandatory rule knowingly not met by some stacks, with the reason (``policy/waivers.yaml``)."""

    rule: str
    stacks: tuple[str, ...]
    reason: str


@dataclass
class Report:
    """The outcome of running every rule over one stack's resources."""

    violations: list[Violation] = field(default_factory=list)
    waived: list[Violation] = field(default_factory=list)

    @property
    def mandatory(self) -> list[Violation]:
        """Mandatory violations that no waiver covers (these fail)."""
        return [v for v in self.violations if v.enforcement == "mandatory"]

    @property
    def advisory(self) -> list[Violation]:
        """Advisory findings."""
        return [v for v in self.violations if v.enforcement == "advisory"]


def evaluate(
    resources: Sequence[Resource],
    config: PolicyConfig | None = None,
    *,
    stack: str = "",
    waivers: Sequence[Waiver] = (),
    rules: Sequence[Rule] = RULES,
) -> Report:
    """Run the rules over recorded resources.

    Args:
        resources: ``{"type", "name", "inputs"}`` mappings (the plan's ``resources.json``).
        config: What the stack explicitly allows.
        stack: Stack name, to apply waivers.
        waivers: Reasoned exceptions; a waived violation is reported but does not fail.
        rules: The rules to run.

    Returns:
        The violations, waived ones apart.

    """
    config = config or PolicyConfig()
    waived_rules = {w.rule for w in waivers if stack in w.stacks}
    report = Report()
    for rule in rules:
        hits: list[tuple[Resource | None, str, str]] = []
        if rule.check is not None:
            for resource in resources:
                hits += [(resource, str(resource.get("name")), m) for m in rule.check(resource, config)]
        if rule.check_stack is not None:
            hits += [(None, name, m) for name, m in rule.check_stack(resources, config)]
        for hit, name, message in hits:
            rtype = str(hit.get("type")) if hit is not None else ""
            violation = Violation(rule.name, rule.enforcement, name, rtype, message)
            (report.waived if rule.name in waived_rules else report.violations).append(violation)
    return report


def config_from_stack(cfg: Any) -> PolicyConfig:
    """The policy config a validated :class:`stacks.config.PlatformConfig` implies."""
    allow = False
    for cloud in ("aks", "eks"):
        section = getattr(cfg, cloud, None)
        if section is not None and getattr(cfg, "target", None) == cloud:
            allow = bool(getattr(section, "allow_public_api_server", False))
    return PolicyConfig(allow_public_api_server=allow)
