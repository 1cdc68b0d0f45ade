"""``SpotDrain``: cordon and drain AKS spot GPU nodes on Azure Scheduled Events (Preempt).

Children, parented to the component and named after it: a ServiceAccount, a ClusterRole and its
binding, and the DaemonSet running ``workloads.gpu.spot_drain`` from the workload image on every
node of the spot GPU pools (builders in :mod:`components.clusters.aks_interruption_spec`).
See adr/0010-spot-interruption-handling.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components.clusters.aks_interruption_spec import (
    DRAIN_NAME,
    DRAIN_NAMESPACE,
    cluster_role,
    cluster_role_binding,
    daemonset,
    drain_labels,
)
from components.clusters.base import GpuPoolInfo
from components.versions import IMAGES, ImagePin


@dataclass(frozen=True)
class SpotDrainArgs:
    """Arguments of ``SpotDrain``.

    Attributes:
        pools: The spot GPU pools to watch (at least one).
        image: The workload image holding ``workloads.gpu.spot_drain``.

    """

    pools: tuple[GpuPoolInfo, ...]
    image: ImagePin = field(default_factory=lambda: IMAGES["workloads"])


class SpotDrain(pulumi.ComponentResource):
    """The scheduled-events drain DaemonSet with its RBAC; give it the cluster's provider in ``opts``.

    Attributes:
        daemonset_name: The DaemonSet's name.
        namespace: Its namespace.

    """

    daemonset_name: pulumi.Output[str]
    namespace: str

    def __init__(self, name: str, args: SpotDrainArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplatform:clusters:SpotDrain", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        body = daemonset(args.pools, args.image.ref)
        account = k8s.core.v1.ServiceAccount(
            f"{name}-sa",
            metadata={"name": DRAIN_NAME, "namespace": DRAIN_NAMESPACE, "labels": drain_labels()},
            opts=child,
        )
        role_body = cluster_role()
        role = k8s.rbac.v1.ClusterRole(
            f"{name}-role", metadata=role_body["metadata"], rules=role_body["rules"], opts=child
        )
        binding_body = cluster_role_binding()
        binding = k8s.rbac.v1.ClusterRoleBinding(
            f"{name}-binding",
            metadata=binding_body["metadata"],
            role_ref=binding_body["roleRef"],
            subjects=binding_body["subjects"],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[role, account]),
        )
        ds = k8s.apps.v1.DaemonSet(
            f"{name}-ds",
            metadata=body["metadata"],
            spec=body["spec"],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[binding]),
        )
        self.daemonset_name = ds.metadata.apply(
            lambda m: str(m["name"]) if isinstance(m, dict) else str(m.name)
        )
        self.namespace = DRAIN_NAMESPACE
        self.register_outputs({"daemonset_name": self.daemonset_name, "namespace": self.namespace})
