"""Cross-field rules for MIG pools (``gpuPools[i].sharing.mig``).

A MIG layout must fit the pool's GPU (``components.gpu.catalog``), be the pool's only sharing mode,
be something the cloud can create (AKS: one ``gpuInstanceProfile`` per pool), and, where the GPU
Operator's MIG manager creates the instances (EKS, dev), come with ``gpu.provider: gpu-operator``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from components.gpu.catalog import GPU_MODELS, MIG_PROFILES
from components.gpu.mig import MigError, aks_gpu_instance_profile, aks_profiles, layout
from stacks.config.errors import ConfigIssue

if TYPE_CHECKING:
    from stacks.config.models import GpuPoolConfig, PlatformConfig


def check_pool_mig(path: str, pool: GpuPoolConfig, model: str | None, target: str) -> list[ConfigIssue]:
    """Issues of one pool's MIG settings.

    Args:
        path: The pool's key path (``gpuPools[2]``).
        pool: The pool's config.
        model: The pool's GPU model (from its size, or ``gpuModel`` on dev); None when unknown.
        target: ``dev``, ``aks`` or ``eks``.

    Returns:
        Issues naming ``sharing.timeSlicing``/``sharing.mps`` (a second mode), ``sharing.mig``
        (a GPU without MIG) or ``sharing.mig.profile`` (a profile the GPU or cloud cannot make).
    """
    mig = pool.sharing.mig
    if mig is None:
        return []
    spath = f"{path}.sharing"
    issues = [
        ConfigIssue(
            f"{spath}.{key}",
            f"{key} cannot be combined with mig: MIG is the pool's sharing mode",
            f"remove {key}, or put the {key} workloads on another pool (one sharing mode per pool)",
        )
        for key, mode in (("timeSlicing", pool.sharing.time_slicing), ("mps", pool.sharing.mps))
        if mode is not None
    ]
    if model is None or model == "none" or model not in GPU_MODELS:
        return issues
    if not GPU_MODELS[model].mig:
        issues.append(
            ConfigIssue(
                f"{spath}.mig",
                f"{model} GPUs do not support MIG",
                f"remove mig, or use a MIG-capable GPU ({', '.join(MIG_PROFILES)})",
            )
        )
        return issues
    try:
        chosen = layout(model, mig.strategy, mig.profile)
        if target == "aks":
            aks_gpu_instance_profile(chosen)
    except MigError as error:
        if target == "aks":
            allowed = ", ".join(aks_profiles(model))
        else:
            allowed = ", ".join([*MIG_PROFILES[model], "all-balanced (strategy mixed)"])
        issues.append(ConfigIssue(f"{spath}.mig.profile", str(error), f"use one of {allowed}"))
    return issues


def check_mig_provider(cfg: PlatformConfig, target: str | None) -> list[ConfigIssue]:
    """EKS and dev MIG pools need the GPU Operator: its MIG manager creates the instances there."""
    if target not in ("eks", "dev"):
        return []
    pools = [pool.name for pool in cfg.gpu_pools if pool.sharing.mig is not None]
    if not pools or cfg.gpu.provider == "gpu-operator":
        return []
    return [
        ConfigIssue(
            "gpu.provider",
            f"MIG pool(s) {', '.join(pools)} need the GPU Operator's MIG manager on {target}, "
            f"but gpu.provider is {cfg.gpu.provider}",
            "set gpu.provider: gpu-operator (with installDriver: false where the nodes have a driver, "
            "as on EKS NVIDIA AMIs), or remove mig",
        )
    ]
