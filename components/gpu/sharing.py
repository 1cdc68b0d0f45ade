"""The NVIDIA device plugin's named sharing configs, built from each GPU pool's ``GpuSharing``.

Pure functions, no Pulumi: the device plugin and GPU Operator components only hand the result to
their charts. The plugin reads one config file per node; the chart stores several named files in
a ConfigMap (``config.map``) and a config-manager sidecar picks one per node from the node label
``nvidia.com/device-plugin.config`` (``DEVICE_PLUGIN_CONFIG_LABEL``), falling back to
``config.default``. Every GPU pool labels its nodes with its own config name, so a T4 pool can
time-slice while an A10 pool uses MPS and an A100 pool is partitioned with MIG, in one cluster.

Config file format (plugin ``version: v1``)::

    version: v1
    flags:
      migStrategy: none | single | mixed
    sharing:
      timeSlicing:            # or mps:
        renameByDefault: false
        failRequestsGreaterThanOne: false
        resources:
        - name: nvidia.com/gpu
          replicas: 4
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import yaml

from components.clusters.base import DEVICE_PLUGIN_CONFIG_LABEL, GPU_RESOURCE, GpuPoolInfo, GpuSharing
from components.gpu.mig import MigError, layout

"""The extended resource the device plugin advertises for whole GPUs (and MIG ``single``)."""
SHARED_SUFFIX: Final = ".shared"
"""Suffix of the renamed resource under ``renameByDefault``."""
DEFAULT_CONFIG: Final = "no-sharing"
"""Name of the fallback config for nodes without a config label. Pool names cannot contain a hyphen,
so this never collides with a pool's own config."""


@dataclass(frozen=True)
class PluginConfigs:
    """The device plugin's named configs for a set of pools.

    Attributes:
        files: Config name -> config file content (YAML text), as the chart's ``config.map`` wants.
        default: Config used by GPU nodes that carry no config label.
        by_pool: Pool name -> the config name its nodes select.

    """

    files: dict[str, str]
    default: str
    by_pool: dict[str, str]


def sharing_mode(sharing: GpuSharing) -> str:
    """The pool's sharing mode as the ``gpuPools`` output names it.

    Returns:
        ``time-slicing``, ``mps``, ``mig`` or ``none`` (one mode per pool).

    """
    if sharing.time_slicing:
        return "time-slicing"
    if sharing.mps:
        return "mps"
    return "mig" if sharing.mig else "none"


def mig_strategy(sharing: GpuSharing) -> str:
    """The plugin's ``flags.migStrategy`` for a pool: ``none``, ``single`` or ``mixed``."""
    return sharing.mig.strategy if sharing.mig else "none"


def advertised_resources(sharing: GpuSharing, gpu_model: str) -> tuple[str, ...]:
    """Extended resources a pool's nodes advertise, in the order pods should request them.

    Args:
        sharing: The pool's sharing settings.
        gpu_model: GPU model name (``components.gpu.catalog``); used for MIG ``mixed`` profiles.

    Returns:
        Resource names such as ``("nvidia.com/gpu",)``, ``("nvidia.com/gpu.shared",)`` or, under
        MIG ``mixed``, one ``nvidia.com/mig-<profile>`` per profile of the pool's layout (smallest
        first).

    """
    if sharing.mig:
        # MIG is the pool's only sharing mode: the layout says what the plugin advertises.
        return layout(gpu_model, sharing.mig.strategy, sharing.mig.profile).resources()
    base = (GPU_RESOURCE,)
    rename = bool(sharing.time_slicing and sharing.time_slicing.rename_by_default)
    return tuple(f"{r}{SHARED_SUFFIX}" for r in base) if rename else base


def shares_per_device(sharing: GpuSharing) -> int:
    """How many pods one advertised device (a GPU or a MIG instance) can hold."""
    if sharing.time_slicing:
        return sharing.time_slicing.replicas
    if sharing.mps:
        return sharing.mps.replicas
    return 1


def plugin_config(sharing: GpuSharing, gpu_model: str) -> dict[str, Any]:
    """The plugin config document for one pool.

    Raises:
        ValueError: For combinations the plugin cannot run (two sharing modes on one pool, MIG on
            a GPU without it or with a profile it lacks, fewer than 2 replicas). Stack config
            rejects these earlier with key paths; this guards direct callers.

    """
    _check(sharing, gpu_model)
    doc: dict[str, Any] = {"version": "v1", "flags": {"migStrategy": mig_strategy(sharing)}}
    names = [GPU_RESOURCE]
    if sharing.time_slicing:
        ts = sharing.time_slicing
        doc["sharing"] = {
            "timeSlicing": {
                "renameByDefault": ts.rename_by_default,
                "failRequestsGreaterThanOne": ts.fail_requests_greater_than_one,
                "resources": [{"name": n, "replicas": ts.replicas} for n in names],
            }
        }
    elif sharing.mps:
        doc["sharing"] = {"mps": {"resources": [{"name": GPU_RESOURCE, "replicas": sharing.mps.replicas}]}}
    return doc


def _check(sharing: GpuSharing, gpu_model: str) -> None:
    problems = []
    if sharing.time_slicing and sharing.mps:
        problems.append("time-slicing and MPS cannot be combined")
    if sharing.mig and (sharing.mps or sharing.time_slicing):
        problems.append("MIG is a pool's only sharing mode (no time-slicing or MPS on top)")
    for label, mode in (("time-slicing", sharing.time_slicing), ("MPS", sharing.mps)):
        if mode is not None and mode.replicas < 2:
            problems.append(f"{label} replicas {mode.replicas} shares nothing (use >= 2)")
    if sharing.mig:
        try:
            layout(gpu_model, sharing.mig.strategy, sharing.mig.profile)
        except MigError as error:
            problems.append(str(error))
    if problems:
        raise ValueError("; ".join(problems))


def render(doc: Mapping[str, Any]) -> str:
    """A config document as the YAML text the plugin reads."""
    return yaml.safe_dump(dict(doc), sort_keys=False, default_flow_style=False)


def config_name(pool: GpuPoolInfo) -> str:
    """The config name a pool's nodes select: the value of their device-plugin config label."""
    return pool.labels.get(DEVICE_PLUGIN_CONFIG_LABEL, pool.name)


def build_configs(pools: Iterable[GpuPoolInfo]) -> PluginConfigs:
    """Named plugin configs for every GPU pool, plus a default.

    Pools whose nodes carry the same config label must share identically. With a single distinct
    config it is also the default, so nodes that were labelled by hand (dev clusters) without the
    config label still get their pool's sharing; with several, unlabelled nodes get whole GPUs.

    Raises:
        ValueError: When two pools select the same config name with different sharing.

    """
    files: dict[str, str] = {}
    by_pool: dict[str, str] = {}
    owners: dict[str, str] = {}
    for pool in pools:
        if pool.spec.gpu_count <= 0:
            continue
        name = config_name(pool)
        text = render(plugin_config(pool.spec.sharing, pool.spec.gpu_model))
        if name in files and files[name] != text:
            raise ValueError(
                f"pools '{owners[name]}' and '{pool.name}' both select device-plugin config '{name}' "
                "but share their GPUs differently; give them different config labels"
            )
        files[name] = text
        owners.setdefault(name, pool.name)
        by_pool[pool.name] = name
    if len(files) == 1:
        default = next(iter(files))
    else:
        default = DEFAULT_CONFIG
        files[DEFAULT_CONFIG] = render(plugin_config(GpuSharing(), ""))
    return PluginConfigs(files=files, default=default, by_pool=by_pool)
