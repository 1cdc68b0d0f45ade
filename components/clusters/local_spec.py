"""Typed arguments of ``LocalCluster``, importable without pulumi-command."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from components.clusters.base import GpuPoolSpec
from components.versions import IMAGES


@dataclass(frozen=True)
class KindSettings:
    """A kind cluster to create.

    Attributes:
        cluster_name: kind cluster name (its context is ``kind-<name>``).
        node_image: ``kindest/node`` image; its tag is the Kubernetes version.
        wait: How long ``kind create cluster`` waits for the control plane.

    """

    cluster_name: str = "mlplatform"
    node_image: str = IMAGES["kind-node"].ref
    wait: str = "180s"


@dataclass(frozen=True)
class LocalClusterArgs:
    """Everything ``LocalCluster`` needs.

    Attributes:
        cluster_name: Name reported as the cluster's name when using an existing context.
        kube_context: Existing context to use; ``None`` means the current one. Ignored with kind.
        kind: Create this kind cluster instead of using a context.
        storage_class: The cluster's default storage class (kind's is ``standard``).
        gpu_pools: Pools of GPU nodes (labelled ``mlplatform.io/gpu-pool=<name>``).

    """

    cluster_name: str
    kube_context: str | None = None
    kind: KindSettings | None = None
    storage_class: str = "standard"
    gpu_pools: tuple[GpuPoolSpec, ...] = ()


def kubeconfig_command(context: str | None) -> str:
    """The command printing a self-contained kubeconfig of one context (the current one if ``None``)."""
    command = ["kubectl", "config", "view", "--raw", "--minify", "--flatten"]
    if context:
        command += ["--context", context]
    return shlex.join(command)
