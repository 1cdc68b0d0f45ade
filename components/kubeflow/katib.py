"""Katib (standalone) from its release-pinned manifests, with a ServiceMonitor on its controller.

Trials reach the GPU pools through the tolerations and node selectors the workloads put in each
Experiment's trial template (``workloads/tuning/katib.py``, from the stack's ``gpuTolerations``
and ``gpuPools`` outputs); nothing in the controller needs to know about the pools.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import pulumi
import pulumi_kubernetes as k8s

from components.kubeflow.manifests import github_kustomization
from components.metrics import service_monitor
from components.security import label_existing_namespace, namespace_policies
from components.versions import MANIFESTS

REPO: Final = "kubeflow/katib"
NAMESPACE: Final = "kubeflow"
"""Namespace of the standalone install (fixed by upstream); Experiments go there too."""
BUNDLE: Final = "manifests/v1beta1/installs/katib-standalone"


@dataclass(frozen=True)
class KatibArgs:
    """Arguments of :class:`Katib`.

    Attributes:
        ref: Upstream release tag.
        service_monitor: Declare a ServiceMonitor (needs the Prometheus Operator CRDs).
        secure_namespace: Patch the namespace's Pod Security labels and declare its NetworkPolicies
            (``components.security``); off when another component installed into it does it.

    """

    ref: str = MANIFESTS["katib"]
    service_monitor: bool = True
    secure_namespace: bool = True


class Katib(pulumi.ComponentResource):
    """Katib standalone: controller, DB manager, UI, CRDs.

    Attributes:
        namespace: The namespace of Katib and of the Experiments.
        ref: The pinned upstream release.
        bundle: The kustomize directory installed.

    """

    def __init__(self, name: str, args: KatibArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplatform:kubeflow:Katib", name, None, opts)
        self.ref = args.ref
        self.bundle = github_kustomization(REPO, args.ref, BUNDLE)
        install = k8s.kustomize.v2.Directory(
            f"{name}-install", directory=self.bundle, opts=pulumi.ResourceOptions(parent=self)
        )
        if args.secure_namespace:
            label_existing_namespace(name, NAMESPACE, parent=self, depends_on=install)
            namespace_policies(name, NAMESPACE, parent=self, depends_on=install)
        if args.service_monitor:
            service_monitor(
                f"{name}-controller-metrics",
                namespace=NAMESPACE,
                selector={"katib.kubeflow.org/component": "controller"},
                port="metrics",
                opts=pulumi.ResourceOptions(parent=self, depends_on=[install]),
            )
        self.namespace: str = NAMESPACE
        self.register_outputs({"namespace": self.namespace, "ref": self.ref, "bundle": self.bundle})
