"""Namespaces with Pod Security Admission labels and default-deny ingress NetworkPolicies.

Every platform namespace is declared through :class:`NamespaceSecurity`, so its Pod Security level
and its ingress rules come from one place:

* the namespace itself, labelled ``pod-security.kubernetes.io/{enforce,audit,warn}`` with a level
  (``restricted`` where the workloads allow it, ``baseline`` where they need host-free privileges
  the restricted profile forbids, ``privileged`` only for the GPU system namespaces and node agents);
* a ``default-deny-ingress`` NetworkPolicy selecting every pod;
* ``allow-same-namespace`` (pods of one service talk to each other, e.g. Milvus' parts);
* ``allow-monitoring`` (Prometheus in the monitoring namespace scrapes everything);
* one policy per :class:`IngressAllow`: who else may reach which pods on which ports.

The policy documents are built by plain functions (:func:`network_policy_documents`,
:func:`namespace_labels`) with plain unit tests; the component only declares them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import pulumi
import pulumi_kubernetes as k8s

PodSecurityLevel = Literal["restricted", "baseline", "privileged"]

PSA_PREFIX: Final = "pod-security.kubernetes.io"
NAMESPACE_NAME_LABEL: Final = "kubernetes.io/metadata.name"
"""Label the API server sets on every namespace (Kubernetes >= 1.22): selects a namespace by name."""
PART_OF: Final = {"app.kubernetes.io/part-of": "mlplatform"}
MONITORING_NAMESPACE: Final = "monitoring"
"""Where Prometheus runs (``components.observability.ObservabilityArgs.namespace``)."""

GPU_SYSTEM_NAMESPACES: Final = frozenset({"nvidia-device-plugin", "gpu-operator", "dcgm-exporter"})
"""Namespaces whose node agents need privileged pods (device plugin, driver, DCGM)."""

RESTRICTED_CONTAINER_SECURITY: Final[dict[str, Any]] = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "runAsNonRoot": True,
    "seccompProfile": {"type": "RuntimeDefault"},
}
"""A container ``securityContext`` that the ``restricted`` Pod Security profile admits."""

RESTRICTED_POD_SECURITY: Final[dict[str, Any]] = {
    "runAsNonRoot": True,
    "seccompProfile": {"type": "RuntimeDefault"},
}
"""A pod ``securityContext`` that the ``restricted`` Pod Security profile admits."""


def container_security(*, read_only_root: bool = True, run_as_user: int | None = None) -> dict[str, Any]:
    """A restricted container ``securityContext`` (camelCase, for manifests and Helm values).

    Args:
        read_only_root: Mount the root filesystem read-only (give the app an emptyDir for scratch).
        run_as_user: A fixed non-root UID, for images whose default user is root.

    Returns:
        A fresh dict; callers may extend it.

    """
    ctx: dict[str, Any] = {**RESTRICTED_CONTAINER_SECURITY, "capabilities": {"drop": ["ALL"]}}
    ctx["seccompProfile"] = {"type": "RuntimeDefault"}
    ctx["readOnlyRootFilesystem"] = read_only_root
    if run_as_user is not None:
        ctx["runAsUser"] = run_as_user
    return ctx


def pod_security(*, run_as_user: int | None = None, fs_group: int | None = None) -> dict[str, Any]:
    """A restricted pod ``securityContext``.

    Args:
        run_as_user: A fixed non-root UID.
        fs_group: Group that owns mounted volumes (lets a non-root user write to a PVC).

    Returns:
        A fresh dict.

    """
    ctx: dict[str, Any] = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    if run_as_user is not None:
        ctx["runAsUser"] = run_as_user
    if fs_group is not None:
        ctx["fsGroup"] = fs_group
    return ctx


@dataclass(frozen=True)
class IngressAllow:
    """One explicit ingress allowance into a namespace.

    Attributes:
        name: Short name; the policy is called ``allow-<name>``.
        ports: TCP ports the allowed peers may reach (empty: every port).
        pod_selector: Labels of the target pods in this namespace (empty: every pod).
        from_namespaces: Names of the namespaces whose pods may connect.
        from_pod_labels: Restrict the peers to pods with these labels (within ``from_namespaces``,
            or within this namespace when ``from_namespaces`` is empty).
        from_anywhere: Allow any source, including the API server calling a webhook and
            traffic from outside the cluster (use for admission webhooks and ingress gateways).

    """

    name: str
    ports: tuple[int, ...] = ()
    pod_selector: Mapping[str, str] = field(default_factory=dict)
    from_namespaces: tuple[str, ...] = ()
    from_pod_labels: Mapping[str, str] = field(default_factory=dict)
    from_anywhere: bool = False

    def __post_init__(self) -> None:
        if not (self.from_anywhere or self.from_namespaces or self.from_pod_labels):
            raise ValueError(
                f"IngressAllow {self.name!r} names no peer: give from_namespaces, from_pod_labels "
                "or from_anywhere=True"
            )


def namespace_labels(
    level: PodSecurityLevel,
    extra: Mapping[str, str] | None = None,
    *,
    warn: PodSecurityLevel | None = None,
) -> dict[str, str]:
    """Namespace labels: part-of, and Pod Security Admission enforce/audit/warn.

    Args:
        level: Level enforced (pods that break it are refused).
        extra: Further labels.
        warn: A stricter level to audit and warn at (default: ``level``), for namespaces whose
            third-party charts do not yet meet ``restricted``: violations are logged, not refused.

    Raises:
        ValueError: For an unknown level.

    """
    for value in (level, warn or level):
        if value not in ("restricted", "baseline", "privileged"):
            raise ValueError(f"pod security level must be restricted, baseline or privileged, got {value!r}")
    labels = {**PART_OF, **(extra or {})}
    for mode, value in (("enforce", level), ("audit", warn or level), ("warn", warn or level)):
        labels[f"{PSA_PREFIX}/{mode}"] = value
        labels[f"{PSA_PREFIX}/{mode}-version"] = "latest"
    return labels


def _ports(ports: Sequence[int]) -> list[dict[str, Any]]:
    return [{"protocol": "TCP", "port": port} for port in ports]


def _peer(allow: IngressAllow) -> list[dict[str, Any]]:
    if allow.from_anywhere:
        return [{"ipBlock": {"cidr": "0.0.0.0/0"}}, {"namespaceSelector": {}}]
    pods = {"podSelector": {"matchLabels": dict(allow.from_pod_labels)}} if allow.from_pod_labels else {}
    if not allow.from_namespaces:
        return [pods]
    return [
        {"namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: ns}}, **pods}
        for ns in sorted(allow.from_namespaces)
    ]


def network_policy_documents(
    namespace: str,
    allows: Sequence[IngressAllow] = (),
    *,
    monitoring_namespace: str | None = MONITORING_NAMESPACE,
) -> list[dict[str, Any]]:
    """The NetworkPolicies of one namespace: default deny, same-namespace, monitoring, the allows.

    Args:
        namespace: The namespace they live in.
        allows: The explicit allowances.
        monitoring_namespace: Namespace whose pods (Prometheus) may scrape every pod; None: none.

    Returns:
        Plain NetworkPolicy objects (``networking.k8s.io/v1``).

    Raises:
        ValueError: When two allowances share a name.

    """
    names = [a.name for a in allows]
    if len(names) != len(set(names)):
        raise ValueError(f"duplicate IngressAllow names in namespace {namespace}: {sorted(names)}")

    def policy(name: str, spec: dict[str, Any]) -> dict[str, Any]:
        return {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": namespace, "labels": dict(PART_OF)},
            "spec": spec,
        }

    docs = [
        policy("default-deny-ingress", {"podSelector": {}, "policyTypes": ["Ingress"]}),
        policy(
            "allow-same-namespace",
            {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{"from": [{"podSelector": {}}]}]},
        ),
    ]
    if monitoring_namespace and monitoring_namespace != namespace:
        docs.append(
            policy(
                "allow-monitoring",
                {
                    "podSelector": {},
                    "policyTypes": ["Ingress"],
                    "ingress": [
                        {
                            "from": [
                                {
                                    "namespaceSelector": {
                                        "matchLabels": {NAMESPACE_NAME_LABEL: monitoring_namespace}
                                    }
                                }
                            ]
                        }
                    ],
                },
            )
        )
    for allow in allows:
        rule: dict[str, Any] = {"from": _peer(allow)}
        if allow.ports:
            rule["ports"] = _ports(allow.ports)
        docs.append(
            policy(
                f"allow-{allow.name}",
                {
                    "podSelector": {"matchLabels": dict(allow.pod_selector)} if allow.pod_selector else {},
                    "policyTypes": ["Ingress"],
                    "ingress": [rule],
                },
            )
        )
    return docs


@dataclass(frozen=True)
class NamespaceSecurityArgs:
    """Arguments of :class:`NamespaceSecurity`.

    Attributes:
        namespace: Namespace name.
        pod_security: Pod Security Admission level enforced on it.
        allows: Explicit ingress allowances beyond same-namespace and monitoring.
        pod_security_warn: Stricter level to audit and warn at (default: ``pod_security``).
        labels: Extra namespace labels.
        monitoring_namespace: Namespace allowed to scrape every pod (None: none).
        create_namespace: Declare the Namespace (False: it exists; only the policies are added).

    """

    namespace: str
    pod_security: PodSecurityLevel = "restricted"
    allows: tuple[IngressAllow, ...] = ()
    pod_security_warn: PodSecurityLevel | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    monitoring_namespace: str | None = MONITORING_NAMESPACE
    create_namespace: bool = True


class NamespaceSecurity(pulumi.ComponentResource):
    """A platform namespace with Pod Security labels and default-deny ingress NetworkPolicies.

    Attributes:
        namespace: The namespace name (resolves once the Namespace exists).
        namespace_resource: The Namespace resource (None when ``create_namespace`` is False);
            put it in ``depends_on`` of what goes inside.
        policies: The NetworkPolicy resources.

    """

    namespace: pulumi.Output[str]

    def __init__(
        self, name: str, args: NamespaceSecurityArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlplatform:security:NamespaceSecurity", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        if args.pod_security == "privileged" and args.namespace not in GPU_SYSTEM_NAMESPACES | {
            MONITORING_NAMESPACE
        }:
            raise ValueError(
                f"namespace {args.namespace}: privileged Pod Security is only for the GPU system "
                f"namespaces {sorted(GPU_SYSTEM_NAMESPACES)} and {MONITORING_NAMESPACE} (node exporter)"
            )
        self.namespace_resource: k8s.core.v1.Namespace | None = None
        if args.create_namespace:
            self.namespace_resource = k8s.core.v1.Namespace(
                name,
                metadata={
                    "name": args.namespace,
                    "labels": namespace_labels(args.pod_security, args.labels, warn=args.pod_security_warn),
                },
                opts=child,
            )
            self.namespace = self.namespace_resource.metadata.apply(lambda m: m.name)
            after = pulumi.ResourceOptions(parent=self, depends_on=[self.namespace_resource])
        else:
            self.namespace = pulumi.Output.from_input(args.namespace)
            after = child
        self.policies: list[k8s.networking.v1.NetworkPolicy] = []
        for doc in network_policy_documents(
            args.namespace, args.allows, monitoring_namespace=args.monitoring_namespace
        ):
            self.policies.append(
                k8s.networking.v1.NetworkPolicy(
                    f"{name}-{doc['metadata']['name']}",
                    metadata=doc["metadata"],
                    spec=doc["spec"],
                    opts=after,
                )
            )
        self.register_outputs({"namespace": self.namespace})


# --- the platform's namespaces, in one place --------------------------------------------------------

MINIO_API_PORT: Final = 9000
VECTORDB_PORTS: Final = (6333, 6334, 19530)
"""Qdrant REST and gRPC, Milvus gRPC."""
DATA_CLIENT_NAMESPACES: Final = ("argo-events", "kubeflow", "mlflow", "mlp-serving")
"""Who reads and writes object storage: pipeline and Katib trial pods, the MLflow server (artifacts),
the MinIO event source, the model servers' storage initializers."""
VECTORDB_CLIENT_NAMESPACES: Final = ("kubeflow", "mlp-serving")
"""Who queries the vector databases: pipeline steps (ingest) and model servers (retrieval)."""

PLATFORM_NAMESPACES: Final[dict[str, NamespaceSecurityArgs]] = {
    # MinIO, Qdrant and Milvus. Milvus' images and its etcd subchart do not all meet `restricted`
    # (the subchart's defaults are not held here to check), so it is enforced at baseline and
    # audited/warned at restricted.
    "mlp-data": NamespaceSecurityArgs(
        "mlp-data",
        pod_security="baseline",
        pod_security_warn="restricted",
        allows=(
            IngressAllow("object-storage", ports=(MINIO_API_PORT,), from_namespaces=DATA_CLIENT_NAMESPACES),
            IngressAllow(
                "vector-databases", ports=VECTORDB_PORTS, from_namespaces=VECTORDB_CLIENT_NAMESPACES
            ),
        ),
    ),
    # node-exporter needs hostNetwork, hostPID and host paths: privileged is the only level that
    # admits it. The operator's admission webhook is called by the API server.
    "monitoring": NamespaceSecurityArgs(
        "monitoring",
        pod_security="privileged",
        allows=(IngressAllow("operator-webhook", ports=(10250,), from_anywhere=True),),
    ),
    # Kubeflow Pipelines and Katib (upstream bundles create the namespace; its labels are patched).
    # Argo's executor and KFP's launcher images do not all meet `restricted`: baseline, warned.
    # The KFP API takes runs from the dataset trigger Job; KFP's cache server and Katib's
    # admission webhooks are called by the API server.
    "kubeflow": NamespaceSecurityArgs(
        "kubeflow",
        pod_security="baseline",
        pod_security_warn="restricted",
        allows=(
            IngressAllow("pipelines-api", ports=(8888, 8887), from_namespaces=("argo-events",)),
            IngressAllow("webhooks", ports=(8443,), from_anywhere=True),
        ),
    ),
    # GPU system namespaces: device plugin sockets, driver installation, DCGM host access.
    "nvidia-device-plugin": NamespaceSecurityArgs("nvidia-device-plugin", pod_security="privileged"),
    "gpu-operator": NamespaceSecurityArgs("gpu-operator", pod_security="privileged"),
    "dcgm-exporter": NamespaceSecurityArgs("dcgm-exporter", pod_security="privileged"),
}
"""Pod Security level and ingress allowances of the namespaces the existing components declare."""


def platform_namespace(namespace: str) -> NamespaceSecurityArgs:
    """The security settings of a platform namespace (restricted, no extra allows when unlisted)."""
    return PLATFORM_NAMESPACES.get(namespace) or NamespaceSecurityArgs(namespace)


def platform_namespace_labels(namespace: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The labels a platform namespace is declared with (Pod Security levels from the table)."""
    args = platform_namespace(namespace)
    return namespace_labels(args.pod_security, {**args.labels, **(extra or {})}, warn=args.pod_security_warn)


def webhook_namespace(
    name: str, namespace: str, ports: Sequence[int], *, parent: pulumi.Resource
) -> NamespaceSecurity:
    """A ``restricted`` namespace for an operator whose admission webhooks the API server calls.

    The API server's source address is not a pod, so the webhook ``ports`` are open to any source;
    everything else keeps the default-deny, same-namespace and monitoring policies.
    """
    return NamespaceSecurity(
        f"{name}-ns",
        NamespaceSecurityArgs(
            namespace=namespace,
            pod_security="restricted",
            allows=(IngressAllow("webhook", ports=tuple(ports), from_anywhere=True),),
        ),
        opts=pulumi.ResourceOptions(parent=parent),
    )


def service_namespace(
    name: str,
    namespace: str,
    allow: IngressAllow,
    *,
    labels: Mapping[str, str],
    parent: pulumi.Resource,
) -> NamespaceSecurity:
    """A namespace for a service whose third-party pods do not meet ``restricted`` yet.

    ``baseline`` is enforced and ``restricted`` audited and warned about; ``allow`` says who may
    reach the service beyond the namespace itself and monitoring.
    """
    return NamespaceSecurity(
        f"{name}-ns",
        NamespaceSecurityArgs(
            namespace=namespace,
            pod_security="baseline",
            pod_security_warn="restricted",
            labels=labels,
            allows=(allow,),
        ),
        opts=pulumi.ResourceOptions(parent=parent),
    )


def namespace_policies(
    name: str, namespace: str, *, parent: pulumi.Resource, depends_on: pulumi.Resource
) -> NamespaceSecurity:
    """Declare the NetworkPolicies of a namespace that a component declares itself.

    Args:
        name: Logical name prefix (the calling component's name).
        namespace: The namespace (its settings come from :data:`PLATFORM_NAMESPACES`).
        parent: The calling component.
        depends_on: The Namespace resource.

    Returns:
        The :class:`NamespaceSecurity` (policies only; the Namespace stays where it is declared).

    """
    args = dataclasses.replace(platform_namespace(namespace), create_namespace=False)
    return NamespaceSecurity(
        f"{name}-security", args, opts=pulumi.ResourceOptions(parent=parent, depends_on=[depends_on])
    )


def label_existing_namespace(
    name: str, namespace: str, *, parent: pulumi.Resource, depends_on: pulumi.Resource
) -> pulumi.Resource:
    """Patch the Pod Security labels of :data:`PLATFORM_NAMESPACES` onto a namespace a bundle created.

    Args:
        name: Logical name prefix (the calling component's name).
        namespace: The namespace (its settings come from :data:`PLATFORM_NAMESPACES`).
        parent: The calling component.
        depends_on: The resource that creates the namespace.

    Returns:
        The ``NamespacePatch``.

    """
    patch: pulumi.Resource = k8s.core.v1.NamespacePatch(
        f"{name}-namespace-labels",
        metadata={
            "name": namespace,
            "labels": platform_namespace_labels(namespace),
            "annotations": {"pulumi.com/patchForce": "true"},
        },
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[depends_on]),
    )
    return patch


@dataclass(frozen=True)
class PrivilegedComponent:
    """A workload allowed to run privileged or to escalate privileges, and why.

    Attributes:
        namespace: Its namespace (a GPU system namespace or the monitoring namespace).
        name_contains: Workloads whose name contains this (empty: every workload there).
        reason: Why it needs host access.

    """

    namespace: str
    name_contains: str
    reason: str


PRIVILEGED_COMPONENTS: Final[tuple[PrivilegedComponent, ...]] = (
    PrivilegedComponent(
        "nvidia-device-plugin",
        "",
        "device plugin (kubelet device-plugin socket; SYS_ADMIN for MIG) and GPU feature discovery",
    ),
    PrivilegedComponent("gpu-operator", "", "driver, container toolkit, validator and MIG manager operands"),
    PrivilegedComponent(
        "dcgm-exporter", "", "DCGM reads the GPUs' profiling counters as root with SYS_ADMIN"
    ),
    PrivilegedComponent(MONITORING_NAMESPACE, "node-exporter", "host network, PID namespace and host paths"),
)
"""The only workloads whose containers may be privileged or escalate privileges."""


def privileged_allowed(namespace: str, workload: str) -> bool:
    """Whether a workload may run privileged containers (listed in :data:`PRIVILEGED_COMPONENTS`)."""
    return any(c.namespace == namespace and c.name_contains in workload for c in PRIVILEGED_COMPONENTS)
