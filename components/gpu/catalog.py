"""Known GPU models and the cloud machine sizes that carry them.

One table answers "what GPU does this VM size / instance type have, how many, how much memory,
can it be partitioned with MIG". Config validation uses it to reject non-GPU sizes, the device
plugin uses it to reject MIG on cards without it, and the cost report and GPU benchmark use it
for peaks and prices.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

Cloud = Literal["aks", "eks"]


@dataclass(frozen=True)
class GpuModel:
    """One GPU model.

    Attributes:
        name: Short model name used in labels and config (``T4``, ``A100-80GB``...).
        memory_gib: Device memory per GPU.
        mig: Whether the card supports Multi-Instance GPU partitioning.
        architecture: NVIDIA architecture name.

    """

    name: str
    memory_gib: int
    mig: bool
    architecture: str


@dataclass(frozen=True)
class MachineType:
    """A cloud VM size or instance type.

    Attributes:
        name: The cloud's name for it (``Standard_NC4as_T4_v3``, ``g5.xlarge``).
        cloud: ``aks`` or ``eks``.
        gpu_model: Key into ``GPU_MODELS``, or ``None`` for a CPU-only type.
        gpu_count: GPUs per node (0 for CPU-only types).
        vcpus: vCPUs per node.
        memory_gib: Host memory per node.

    """

    name: str
    cloud: Cloud
    gpu_model: str | None
    gpu_count: int
    vcpus: int
    memory_gib: int


GPU_MODELS: Final[dict[str, GpuModel]] = {
    m.name: m
    for m in (
        GpuModel("T4", 16, False, "Turing"),
        GpuModel("V100", 16, False, "Volta"),
        GpuModel("A10", 24, False, "Ampere"),
        GpuModel("A10G", 24, False, "Ampere"),
        GpuModel("L4", 24, False, "Ada Lovelace"),
        GpuModel("L40S", 48, False, "Ada Lovelace"),
        GpuModel("A30", 24, True, "Ampere"),
        GpuModel("A100-40GB", 40, True, "Ampere"),
        GpuModel("A100-80GB", 80, True, "Ampere"),
        GpuModel("H100-80GB", 80, True, "Hopper"),
        GpuModel("H100-NVL", 94, True, "Hopper"),
        GpuModel("H200", 141, True, "Hopper"),
        GpuModel("RTX-4090", 24, False, "Ada Lovelace"),
    )
}
"""GPU models by name."""

MIG_PROFILES: Final[dict[str, dict[str, int]]] = {
    "A30": {"1g.6gb": 4, "2g.12gb": 2, "4g.24gb": 1},
    "A100-40GB": {"1g.5gb": 7, "1g.10gb": 4, "2g.10gb": 3, "3g.20gb": 2, "4g.20gb": 1, "7g.40gb": 1},
    "A100-80GB": {"1g.10gb": 7, "1g.20gb": 4, "2g.20gb": 3, "3g.40gb": 2, "4g.40gb": 1, "7g.80gb": 1},
    "H100-80GB": {"1g.10gb": 7, "1g.20gb": 4, "2g.20gb": 3, "3g.40gb": 2, "4g.40gb": 1, "7g.80gb": 1},
    "H100-NVL": {"1g.12gb": 7, "1g.24gb": 4, "2g.24gb": 3, "3g.47gb": 2, "4g.47gb": 1, "7g.94gb": 1},
    "H200": {"1g.18gb": 7, "1g.35gb": 4, "2g.35gb": 3, "3g.71gb": 2, "4g.71gb": 1, "7g.141gb": 1},
}
"""MIG profiles of each MIG-capable model: profile -> most instances of it one GPU holds
(NVIDIA's MIG user guide, "Supported MIG profiles"). A profile name is ``<compute slices>g.<memory>gb``."""

MIG_BALANCED: Final[dict[str, dict[str, int]]] = {
    "A30": {"1g.6gb": 2, "2g.12gb": 1},
    "A100-40GB": {"1g.5gb": 2, "2g.10gb": 1, "3g.20gb": 1},
    "A100-80GB": {"1g.10gb": 2, "2g.20gb": 1, "3g.40gb": 1},
    "H100-80GB": {"1g.10gb": 2, "2g.20gb": 1, "3g.40gb": 1},
    "H100-NVL": {"1g.12gb": 2, "2g.24gb": 1, "3g.47gb": 1},
    "H200": {"1g.18gb": 2, "2g.35gb": 1, "3g.71gb": 1},
}
"""The ``all-balanced`` layout per GPU (as in the GPU Operator's default mig-parted config): a mix of
small, medium and large instances on every GPU, for the ``mixed`` strategy."""


def _m(name: str, cloud: Cloud, gpu: str | None, count: int, vcpus: int, mem: int) -> MachineType:
    return MachineType(name, cloud, gpu, count, vcpus, mem)


MACHINE_TYPES: Final[dict[str, MachineType]] = {
    m.name: m
    for m in (
        # Azure: NCasT4_v3 (T4), NVadsA10_v5 full-GPU sizes (A10), NC A100 v4, NC H100 v5, ND A100 v4.
        _m("Standard_NC4as_T4_v3", "aks", "T4", 1, 4, 28),
        _m("Standard_NC8as_T4_v3", "aks", "T4", 1, 8, 56),
        _m("Standard_NC16as_T4_v3", "aks", "T4", 1, 16, 110),
        _m("Standard_NC64as_T4_v3", "aks", "T4", 4, 64, 440),
        _m("Standard_NV36ads_A10_v5", "aks", "A10", 1, 36, 440),
        _m("Standard_NV72ads_A10_v5", "aks", "A10", 2, 72, 880),
        _m("Standard_NC6s_v3", "aks", "V100", 1, 6, 112),
        _m("Standard_NC24ads_A100_v4", "aks", "A100-80GB", 1, 24, 220),
        _m("Standard_NC48ads_A100_v4", "aks", "A100-80GB", 2, 48, 440),
        _m("Standard_NC96ads_A100_v4", "aks", "A100-80GB", 4, 96, 880),
        _m("Standard_ND96asr_v4", "aks", "A100-40GB", 8, 96, 900),
        _m("Standard_NC40ads_H100_v5", "aks", "H100-NVL", 1, 40, 320),
        _m("Standard_NC80adis_H100_v5", "aks", "H100-NVL", 2, 80, 640),
        # Azure CPU sizes, known so that a mistaken pool gets a precise message.
        _m("Standard_D2s_v5", "aks", None, 0, 2, 8),
        _m("Standard_D4s_v5", "aks", None, 0, 4, 16),
        _m("Standard_D8s_v5", "aks", None, 0, 8, 32),
        _m("Standard_D4ds_v5", "aks", None, 0, 4, 16),
        _m("Standard_E4s_v5", "aks", None, 0, 4, 32),
        # AWS: g4dn (T4), g5 (A10G), g6 (L4), g6e (L40S), p3 (V100), p4d (A100), p5 (H100), p5e (H200).
        _m("g4dn.xlarge", "eks", "T4", 1, 4, 16),
        _m("g4dn.2xlarge", "eks", "T4", 1, 8, 32),
        _m("g4dn.4xlarge", "eks", "T4", 1, 16, 64),
        _m("g4dn.8xlarge", "eks", "T4", 1, 32, 128),
        _m("g4dn.12xlarge", "eks", "T4", 4, 48, 192),
        _m("g5.xlarge", "eks", "A10G", 1, 4, 16),
        _m("g5.2xlarge", "eks", "A10G", 1, 8, 32),
        _m("g5.4xlarge", "eks", "A10G", 1, 16, 64),
        _m("g5.8xlarge", "eks", "A10G", 1, 32, 128),
        _m("g5.12xlarge", "eks", "A10G", 4, 48, 192),
        _m("g6.xlarge", "eks", "L4", 1, 4, 16),
        _m("g6.2xlarge", "eks", "L4", 1, 8, 32),
        _m("g6.4xlarge", "eks", "L4", 1, 16, 64),
        _m("g6.8xlarge", "eks", "L4", 1, 32, 128),
        _m("g6.12xlarge", "eks", "L4", 4, 48, 192),
        _m("g6e.xlarge", "eks", "L40S", 1, 4, 32),
        _m("g6e.2xlarge", "eks", "L40S", 1, 8, 64),
        _m("p3.2xlarge", "eks", "V100", 1, 8, 61),
        _m("p4d.24xlarge", "eks", "A100-40GB", 8, 96, 1152),
        _m("p5.48xlarge", "eks", "H100-80GB", 8, 192, 2048),
        _m("p5e.48xlarge", "eks", "H200", 8, 192, 2048),
        # AWS CPU types.
        _m("t3.large", "eks", None, 0, 2, 8),
        _m("m5.large", "eks", None, 0, 2, 8),
        _m("m6i.large", "eks", None, 0, 2, 8),
        _m("m6i.xlarge", "eks", None, 0, 4, 16),
        _m("m7i.xlarge", "eks", None, 0, 4, 16),
        _m("c6i.xlarge", "eks", None, 0, 4, 8),
    )
}
"""Machine types by cloud name."""


def machine_type(name: str) -> MachineType | None:
    """Look up a VM size or instance type, case-insensitively for Azure's names."""
    if name in MACHINE_TYPES:
        return MACHINE_TYPES[name]
    lowered = name.lower()
    for key, value in MACHINE_TYPES.items():
        if key.lower() == lowered:
            return value
    return None


def gpu_machine_types(cloud: Cloud) -> list[str]:
    """Names of the known GPU machine types of one cloud, for error messages."""
    return [m.name for m in MACHINE_TYPES.values() if m.cloud == cloud and m.gpu_count > 0]
