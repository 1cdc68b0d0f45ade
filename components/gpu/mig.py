"""MIG layouts: which instances each GPU of a pool is cut into, and how each cloud is told.

Pure functions, no Pulumi. A pool's MIG settings are a resource ``strategy`` (how the device
plugin advertises the instances) and a ``profile`` (how every GPU of the pool is partitioned):

* ``1g.10gb`` (or ``all-1g.10gb``): every GPU cut into as many instances of that profile as it
  holds (7 × ``1g.10gb`` on an A100 80GB);
* ``all-balanced`` (``mixed`` only): a mix of small, medium and large instances on every GPU
  (``components.gpu.catalog.MIG_BALANCED``).

How the instances are created depends on the cloud:

* **AKS** creates them itself from the agent pool's ``gpuInstanceProfile`` (``MIG1g`` ... ``MIG7g``),
  which takes the compute-slice count only: it always picks the smallest-memory profile with that
  many slices, so only those profiles (and no balanced layout) can be asked for on AKS.
* **EKS and local clusters**: the GPU Operator's MIG manager applies the mig-parted config that the
  node's ``nvidia.com/mig.config`` label names; :func:`mig_parted_config` renders those configs.

Resources pods request: ``nvidia.com/gpu`` under ``single`` (every instance looks like a GPU);
``nvidia.com/mig-<profile>`` per profile under ``mixed``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from components.clusters.base import GpuPoolSpec
from components.gpu.catalog import GPU_MODELS, MIG_BALANCED, MIG_PROFILES

MIG_CONFIG_LABEL: Final = "nvidia.com/mig.config"
"""Node label the GPU Operator's MIG manager reads: the name of the mig-parted config to apply."""
MIG_DISABLED: Final = "all-disabled"
"""mig-parted config that turns MIG off (the MIG manager's default for unlabelled nodes)."""
BALANCED: Final = "all-balanced"
AKS_INSTANCE_PROFILES: Final = ("MIG1g", "MIG2g", "MIG3g", "MIG4g", "MIG7g")
"""Values of the AKS agent pool's ``gpuInstanceProfile`` (azure-native ``GPUInstanceProfile``)."""

Strategy = Literal["single", "mixed"]
_PROFILE = re.compile(r"^(\d)g\.(\d+)gb$")


class MigError(ValueError):
    """A MIG layout that the GPU or the cloud cannot run; the message says why and what to use."""


@dataclass(frozen=True)
class MigLayout:
    """A validated MIG layout of one pool.

    Attributes:
        gpu_model: GPU model (``components.gpu.catalog``).
        strategy: Device plugin MIG strategy.
        config_name: mig-parted config name (``all-1g.10gb``, ``all-balanced``).
        devices: Instances per GPU by profile, smallest first.
    """

    gpu_model: str
    strategy: Strategy
    config_name: str
    devices: tuple[tuple[str, int], ...]

    @property
    def uniform(self) -> bool:
        """Whether every instance has the same profile."""
        return len(self.devices) == 1

    @property
    def instances_per_gpu(self) -> int:
        """MIG instances one GPU is cut into."""
        return sum(count for _, count in self.devices)

    def resources(self) -> tuple[str, ...]:
        """Extended resources the device plugin advertises, smallest instance first."""
        if self.strategy == "single":
            return ("nvidia.com/gpu",)
        return tuple(f"nvidia.com/mig-{profile}" for profile, _ in self.devices)

    def resources_per_node(self, gpus_per_node: int) -> dict[str, int]:
        """Count of each advertised resource on one node."""
        if self.strategy == "single":
            return {"nvidia.com/gpu": gpus_per_node * self.instances_per_gpu}
        return {f"nvidia.com/mig-{p}": gpus_per_node * n for p, n in self.devices}


def _slices_and_memory(profile: str) -> tuple[int, int]:
    match = _PROFILE.match(profile)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def layout(gpu_model: str, strategy: Strategy, profile: str) -> MigLayout:
    """The layout a pool's ``strategy`` and ``profile`` ask for on ``gpu_model``.

    Raises:
        MigError: When the GPU has no MIG, the profile is not one of the GPU's, or ``all-balanced``
            is asked for under ``single`` (single needs identical instances).
    """
    model = GPU_MODELS.get(gpu_model)
    if model is None or not model.mig or gpu_model not in MIG_PROFILES:
        capable = ", ".join(m for m in MIG_PROFILES)
        raise MigError(f"{gpu_model} GPUs do not support MIG (MIG-capable: {capable})")
    profiles = MIG_PROFILES[gpu_model]
    name = profile.removeprefix("all-")
    if profile == BALANCED:
        if strategy == "single":
            raise MigError(
                "all-balanced mixes instance sizes, which the single strategy cannot advertise; "
                "use strategy mixed, or one profile such as all-" + next(iter(profiles))
            )
        devices = MIG_BALANCED[gpu_model]
    elif name in profiles:
        devices = {name: profiles[name]}
    else:
        raise MigError(
            f"'{profile}' is not a MIG profile of the {gpu_model} "
            f"(its profiles: {', '.join(profiles)}, or {BALANCED})"
        )
    ordered = tuple(sorted(devices.items(), key=lambda item: _slices_and_memory(item[0])))
    config = BALANCED if profile == BALANCED else f"all-{name}"
    return MigLayout(gpu_model=gpu_model, strategy=strategy, config_name=config, devices=ordered)


def aks_profiles(gpu_model: str) -> dict[str, str]:
    """MIG profiles AKS can create on ``gpu_model``: profile -> ``gpuInstanceProfile``.

    AKS's ``MIG<n>g`` creates the smallest-memory profile with ``n`` compute slices.
    """
    result: dict[str, str] = {}
    for profile in sorted(MIG_PROFILES.get(gpu_model, {}), key=_slices_and_memory):
        value = f"MIG{_slices_and_memory(profile)[0]}g"
        if value in AKS_INSTANCE_PROFILES and value not in result.values():
            result[profile] = value
    return result


def aks_gpu_instance_profile(mig: MigLayout) -> str:
    """The AKS ``gpuInstanceProfile`` that creates ``mig``'s instances.

    Raises:
        MigError: When AKS cannot create the layout: mixed sizes, or a profile that is not the
            smallest-memory one of its slice count (AKS picks that one).
    """
    if not mig.uniform:
        raise MigError(
            f"AKS creates one instance size per pool (gpuInstanceProfile); {mig.config_name} mixes sizes: "
            "use one profile per pool, e.g. a pool per size"
        )
    [(profile, _)] = mig.devices
    possible = aks_profiles(mig.gpu_model)
    if profile not in possible:
        raise MigError(
            f"AKS's gpuInstanceProfile cannot create {profile} on the {mig.gpu_model} "
            f"(MIG<n>g picks the smallest profile with n slices); on AKS use one of {', '.join(possible)}"
        )
    return possible[profile]


def node_config_name(pool_name: str, mig: MigLayout) -> str:
    """The mig-parted config a pool's nodes select: pool-scoped, so two pools never clash."""
    return f"{pool_name}-{mig.config_name}"


def mig_parted_config(layouts: Mapping[str, MigLayout]) -> dict[str, Any]:
    """The mig-parted config file (``version: v1``) with one entry per MIG pool.

    Args:
        layouts: Config name (:func:`node_config_name`) -> layout.

    Returns:
        The document the MIG manager reads: ``all-disabled`` plus every pool's layout applied to
        all GPUs of a node.
    """
    configs: dict[str, Any] = {MIG_DISABLED: [{"devices": "all", "mig-enabled": False}]}
    for name, mig in sorted(layouts.items()):
        configs[name] = [{"devices": "all", "mig-enabled": True, "mig-devices": dict(mig.devices)}]
    return {"version": "v1", "mig-configs": configs}


def pool_layout(spec: GpuPoolSpec) -> MigLayout | None:
    """The MIG layout of a pool, or None when the pool does not use MIG."""
    if spec.sharing.mig is None or spec.gpu_count == 0:
        return None
    return layout(spec.gpu_model, spec.sharing.mig.strategy, spec.sharing.mig.profile)


def mig_manager_labels(spec: GpuPoolSpec) -> dict[str, str]:
    """Node labels that make the GPU Operator's MIG manager partition a pool's GPUs (EKS, local).

    Not used on AKS, where the agent pool's ``gpuInstanceProfile`` creates the instances.
    """
    mig = pool_layout(spec)
    return {MIG_CONFIG_LABEL: node_config_name(spec.name, mig)} if mig else {}


def profiles_of(gpu_models: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """MIG profiles by GPU model, for messages and docs."""
    return {m: tuple(MIG_PROFILES[m]) for m in gpu_models if m in MIG_PROFILES}
