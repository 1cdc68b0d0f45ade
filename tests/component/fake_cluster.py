"""A stand-in for a cluster component, for running the add-on layers under Pulumi mocks."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s


class FakeCluster:
    """A minimal object satisfying the Cluster protocol: no GPU pools, a provider named ``test-k8s``.

    Args:
        storage_class: The cluster's default storage class.
    """

    def __init__(self, storage_class: str = "standard") -> None:
        self.cluster_name = pulumi.Output.from_input("test")
        self.provider = k8s.Provider("test-k8s", kubeconfig="{}")
        self.kubeconfig = pulumi.Output.secret("{}")
        self.gpu_pools: list[Any] = []
        self.storage_class = storage_class
