"""Spot interruption handling of the aks stack (adr/0010-spot-interruption-handling.md).

On AKS, ``SpotDrain`` (a DaemonSet on the spot GPU pools polling Azure Scheduled Events) cordons
and drains a node on its ``Preempt`` notice. On EKS the handler is part of ``EksCluster`` (it
needs the node groups' Auto Scaling groups): ``NodeTerminationHandler`` in queue mode. Local
clusters have no spot capacity and get nothing.
"""

from __future__ import annotations

from typing import Any

import pulumi

from components.clusters.aks_interruption import SpotDrain, SpotDrainArgs
from components.clusters.aks_interruption_spec import spot_pools
from components.clusters.base import Cluster
from stacks.addons_gpu import effective_pools
from stacks.config import PlatformConfig


def add_interruption_layer(cfg: PlatformConfig, cluster: Cluster) -> dict[str, Any]:
    """Declare the AKS spot drain when the stack targets AKS and has spot GPU pools.

    Returns:
        No outputs (the drain publishes none); a dict so the program can merge it like other layers.

    """
    if cfg.target != "aks":
        return {}
    pools = spot_pools(effective_pools(cfg, cluster))
    if pools:
        SpotDrain(
            f"{cfg.cluster_name}-spot-drain",
            SpotDrainArgs(pools=tuple(pools)),
            pulumi.ResourceOptions(provider=cluster.provider),
        )
    return {}
