"""``AksCluster``: an AKS cluster with an on-demand system pool and spot GPU user pools.

Children: a resource group, the managed cluster (system pool inline, OIDC issuer, workload
identity, Kubernetes RBAC, API-server authorized ranges, AKS's own cluster autoscaler), an
on-demand platform pool for the platform's services, one ``AgentPool`` per GPU pool, and a
Kubernetes provider bound to the cluster's user kubeconfig (a secret).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
from pulumi_azure_native import containerservice, resources

from components.clusters.aks_spec import (
    AUTOSCALED_COUNT_PATHS,
    AksClusterArgs,
    AksGpuPool,
    AksNodePool,
    check_pool_names,
    decode_kubeconfig,
    gpu_agent_pool_spec,
    gpu_pool_info,
    platform_pool_spec,
    system_pool_profile,
)
from components.clusters.base import GpuPoolInfo
from components.clusters.pools import pool_summary

__all__ = ["AksCluster", "AksClusterArgs", "AksGpuPool", "AksNodePool"]

STORAGE_CLASS = "managed-csi"
"""AKS's built-in default class (Azure Disk CSI, StandardSSD_LRS)."""


def _kubelet_object_id(identities: Mapping[str, Any] | None) -> str:
    """Object ID of the cluster's kubelet identity ("" until AKS reports it)."""
    kubelet = (identities or {}).get("kubeletidentity")
    return str(getattr(kubelet, "object_id", None) or "")


class AksCluster(pulumi.ComponentResource):
    """An AKS cluster behind the ``Cluster`` protocol.

    Attributes:
        cluster_name: The AKS resource name.
        resource_group_name: The resource group holding the cluster.
        oidc_issuer_url: OIDC issuer for workload identity federation.
        kubelet_identity_object_id: Object ID of the kubelet identity (e.g. for ACR pull grants).
        kubeconfig: The cluster user's kubeconfig, a secret.
        provider: Kubernetes provider bound to ``kubeconfig``; it waits for the platform pool.
        gpu_pools: GPU pools with their node labels and taints.
        storage_class: ``managed-csi``.

    """

    cluster_name: pulumi.Output[str]
    resource_group_name: pulumi.Output[str]
    oidc_issuer_url: pulumi.Output[str]
    kubelet_identity_object_id: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]
    provider: k8s.Provider
    gpu_pools: list[GpuPoolInfo]
    storage_class: str

    def __init__(self, name: str, args: AksClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        check_pool_names(args)
        super().__init__("mlplatform:clusters:AksCluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags)
        # The autoscaler owns node counts: `pulumi up` after a refresh must not reset them.
        autoscaled = pulumi.ResourceOptions(parent=self, ignore_changes=list(AUTOSCALED_COUNT_PATHS))

        group = resources.ResourceGroup(f"{name}-rg", location=args.location, tags=tags, opts=child)

        ranges = list(args.api_server_authorized_ranges)
        cluster = containerservice.ManagedCluster(
            f"{name}-aks",
            resource_name_=args.cluster_name,
            resource_group_name=group.name,
            location=args.location,
            dns_prefix=args.cluster_name,
            kubernetes_version=args.kubernetes_version,
            sku=containerservice.ManagedClusterSKUArgs(name="Base", tier=args.sku_tier),
            identity=containerservice.ManagedClusterIdentityArgs(
                type=containerservice.ResourceIdentityType.SYSTEM_ASSIGNED
            ),
            enable_rbac=True,
            # The user kubeconfig below is a local-account credential; Entra ID integration
            # would need kubelogin wherever the provider runs.
            disable_local_accounts=False,
            oidc_issuer_profile=containerservice.ManagedClusterOIDCIssuerProfileArgs(enabled=True),
            security_profile=containerservice.ManagedClusterSecurityProfileArgs(
                workload_identity=containerservice.ManagedClusterSecurityProfileWorkloadIdentityArgs(
                    enabled=True
                )
            ),
            api_server_access_profile=containerservice.ManagedClusterAPIServerAccessProfileArgs(
                authorized_ip_ranges=ranges
            )
            if ranges
            else None,
            agent_pool_profiles=[
                containerservice.ManagedClusterAgentPoolProfileArgs(
                    **system_pool_profile(args.system_pool, kubernetes_version=args.kubernetes_version)
                )
            ],
            network_profile=containerservice.ContainerServiceNetworkProfileArgs(
                network_plugin="azure",
                network_plugin_mode="overlay",
                network_dataplane="cilium",
                network_policy="cilium",
                load_balancer_sku="standard",
            ),
            auto_scaler_profile=containerservice.ManagedClusterPropertiesAutoScalerProfileArgs(
                expander="least-waste",
                balance_similar_node_groups="true",
                max_node_provision_time="15m",
                scale_down_unneeded_time="10m",
            ),
            auto_upgrade_profile=containerservice.ManagedClusterAutoUpgradeProfileArgs(
                upgrade_channel="patch", node_os_upgrade_channel="NodeImage"
            ),
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["agentPoolProfiles[0].count"]),
        )

        platform_pool: containerservice.AgentPool | None = None
        if args.platform_pool is not None:
            platform_pool = containerservice.AgentPool(
                f"{name}-platform",
                resource_group_name=group.name,
                resource_name_=cluster.name,
                **platform_pool_spec(
                    args.platform_pool, kubernetes_version=args.kubernetes_version, tags=tags
                ),
                opts=autoscaled,
            )

        self.gpu_pools = []
        for pool in args.gpu_pools:
            containerservice.AgentPool(
                f"{name}-gpu-{pool.spec.name}",
                resource_group_name=group.name,
                resource_name_=cluster.name,
                **gpu_agent_pool_spec(pool, kubernetes_version=args.kubernetes_version, tags=tags),
                opts=autoscaled,
            )
            self.gpu_pools.append(gpu_pool_info(pool))

        credentials = containerservice.list_managed_cluster_user_credentials_output(
            resource_group_name=group.name,
            resource_name=cluster.name,
            opts=pulumi.InvokeOutputOptions(parent=self),
        )
        self.kubeconfig = pulumi.Output.secret(
            credentials.apply(lambda creds: decode_kubeconfig(creds.kubeconfigs[0].value))
        )
        self.cluster_name = cluster.name
        self.resource_group_name = group.name
        self.oidc_issuer_url = cluster.oidc_issuer_profile.apply(lambda p: p.issuer_url if p else "")
        self.kubelet_identity_object_id = cluster.identity_profile.apply(_kubelet_object_id)
        self.storage_class = STORAGE_CLASS
        # Platform services need an untainted pool: add-ons on this provider wait for it.
        self.provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=self.kubeconfig,
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[platform_pool] if platform_pool is not None else []
            ),
        )

        self.register_outputs(
            {
                "cluster_name": self.cluster_name,
                "resource_group_name": self.resource_group_name,
                "oidc_issuer_url": self.oidc_issuer_url,
                "kubelet_identity_object_id": self.kubelet_identity_object_id,
                "kubeconfig": self.kubeconfig,
                "provider": self.provider,
                "gpu_pools": [pool_summary(p) for p in self.gpu_pools],
                "storage_class": self.storage_class,
            }
        )
