"""``LocalCluster``: an existing kube context by default, or a kind cluster it creates.

Either way the Kubernetes provider is explicit. With an existing context the provider uses that
context and the exported kubeconfig is the context's, flattened by ``kubectl`` at deploy time.
With kind, a ``command.local.Command`` runs ``kind create cluster`` on a generated config
(``components.clusters.kind``) and the provider uses ``kind get kubeconfig``. Both kubeconfigs are
stored and exported as secrets. GPU pools are optional: they describe nodes that carry a GPU.
"""

from __future__ import annotations

import shlex

import pulumi
import pulumi_kubernetes as k8s
from pulumi_command import local

from components.clusters.base import GpuPoolInfo
from components.clusters.kind import kind_cluster_config, render_kind_config
from components.clusters.local_spec import KindSettings, LocalClusterArgs, kubeconfig_command
from components.clusters.pools import local_pool_taints, pool_info, pool_summary
from components.gpu.mig import mig_manager_labels

__all__ = ["KindSettings", "LocalCluster", "LocalClusterArgs", "kubeconfig_command"]


class LocalCluster(pulumi.ComponentResource):
    """A local cluster behind the ``Cluster`` protocol.

    Attributes:
        cluster_name: The kind cluster name, or ``args.cluster_name`` for an existing context.
        kubeconfig: Kubeconfig, a secret.
        provider: Kubernetes provider for the context or the kind cluster.
        gpu_pools: GPU pools with the labels and taints their nodes carry.
        storage_class: From ``args.storage_class``.
        kind_config: The generated kind config (empty without kind).

    """

    cluster_name: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]
    provider: k8s.Provider
    gpu_pools: list[GpuPoolInfo]
    storage_class: str
    kind_config: str

    def __init__(self, name: str, args: LocalClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplatform:clusters:LocalCluster", name, None, opts)
        # Kubeconfigs carry credentials: keep them out of logs and encrypted in the state.
        secret_stdout = pulumi.ResourceOptions(parent=self, additional_secret_outputs=["stdout"])
        self.kind_config = ""
        if args.kind is None:
            read = local.Command(
                f"{name}-kubeconfig",
                create=kubeconfig_command(args.kube_context),
                logging=local.Logging.NONE,
                opts=secret_stdout,
            )
            self.kubeconfig = pulumi.Output.secret(read.stdout)
            self.cluster_name = pulumi.Output.from_input(args.cluster_name)
            self.provider = k8s.Provider(
                f"{name}-k8s", context=args.kube_context, opts=pulumi.ResourceOptions(parent=self)
            )
        else:
            kind = args.kind
            self.kind_config = render_kind_config(
                kind_cluster_config(kind.cluster_name, node_image=kind.node_image, pools=args.gpu_pools)
            )
            cluster_arg = shlex.quote(kind.cluster_name)
            created = local.Command(
                f"{name}-kind",
                create=f"kind create cluster --name {cluster_arg} --config=- --wait {shlex.quote(kind.wait)}",
                delete=f"kind delete cluster --name {cluster_arg}",
                stdin=self.kind_config,
                triggers=[self.kind_config],
                # A new cluster of the same name can only be created once the old one is gone.
                opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True),
            )
            read = local.Command(
                f"{name}-kubeconfig",
                create=f"kind get kubeconfig --name {cluster_arg}",
                logging=local.Logging.NONE,
                triggers=[created.id],
                opts=pulumi.ResourceOptions.merge(
                    secret_stdout, pulumi.ResourceOptions(depends_on=[created])
                ),
            )
            self.kubeconfig = pulumi.Output.secret(read.stdout)
            self.cluster_name = created.id.apply(lambda _: kind.cluster_name)
            self.provider = k8s.Provider(
                f"{name}-k8s", kubeconfig=self.kubeconfig, opts=pulumi.ResourceOptions(parent=self)
            )

        self.gpu_pools = [
            pool_info(spec, local_pool_taints(spec), mig_manager_labels(spec)) for spec in args.gpu_pools
        ]
        self.storage_class = args.storage_class
        self.register_outputs(
            {
                "cluster_name": self.cluster_name,
                "kubeconfig": self.kubeconfig,
                "provider": self.provider,
                "gpu_pools": [pool_summary(p) for p in self.gpu_pools],
                "storage_class": self.storage_class,
                "kind_config": self.kind_config,
            }
        )
