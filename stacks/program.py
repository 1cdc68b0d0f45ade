"""The whole Pulumi program, callable so the offline plan can run it under mocks."""

from __future__ import annotations

from typing import Any

import pulumi

from stacks import outputs
from stacks.config import PlatformConfig, load_config


def program() -> None:
    """Load and validate config, build the cluster and platform, export the output contract."""
    cfg = load_config()
    export_all(build(cfg))


def build(cfg: PlatformConfig) -> dict[str, Any]:
    """Declare every resource of the stack and return its outputs by contract key."""
    from stacks.addons_data import add_data_layer
    from stacks.addons_gpu import add_gpu_layer
    from stacks.addons_interruption import add_interruption_layer
    from stacks.addons_platform import add_platform_layer
    from stacks.addons_serving import add_serving_layer
    from stacks.cluster_builders import build_cluster, cluster_outputs

    cluster = build_cluster(cfg)
    result: dict[str, Any] = {}
    result.update(cluster_outputs(cfg, cluster))
    result.update(add_gpu_layer(cfg, cluster))
    result.update(add_interruption_layer(cfg, cluster))
    result.update(add_data_layer(cfg, cluster))
    result.update(add_platform_layer(cfg, cluster, result))
    result.update(add_serving_layer(cfg, cluster, result))
    return result


def export_all(values: dict[str, Any]) -> None:
    """Export outputs under their contract keys; secret keys are always exported as secrets."""
    unknown = set(values) - outputs.ALL_KEYS
    if unknown:
        raise KeyError(f"outputs not in the contract (stacks/outputs.py): {sorted(unknown)}")
    for key, value in sorted(values.items()):
        pulumi.export(key, pulumi.Output.secret(value) if key in outputs.SECRET_KEYS else value)
