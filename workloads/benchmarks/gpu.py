"""GPU benchmark: matmul throughput per dtype and device memory bandwidth, as % of the card's peak.

* Matmul: ``n x n`` by ``n x n`` products in fp32 (IEEE), tf32, bf16 and fp16 where the card
  supports them; warm-up runs first, each timed run is bracketed by CUDA events and synchronized,
  and the median of the repeats is reported as TFLOP/s (``2 n^3`` floating-point operations).
* Bandwidth: device-to-device copies of a large buffer; each copy reads and writes every byte,
  so GB/s = ``2 x bytes / seconds``.
* Peaks: dense (no structured sparsity) datasheet figures of known cards, matched on the name the
  driver reports. Unknown cards get figures without percentages.

Without a CUDA device the benchmark says so and returns ``{"gpu": null, "reason": ...}``; the same
code runs on ``device="cpu"`` so tests exercise it without a GPU.
"""

from __future__ import annotations

import json
import re
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from workloads.figures import save_figure

DTYPES: Final = ("fp32", "tf32", "bf16", "fp16")
DEFAULT_OUT: Final = Path("build/bench")


@dataclass(frozen=True)
class CardPeak:
    """Datasheet peaks of one GPU model.

    Attributes:
        name: Card name used in reports.
        pattern: Regex matched (case-insensitively) against the device name the driver reports.
        tflops: Dense peak TFLOP/s per dtype (``fp32``, ``tf32``, ``bf16``, ``fp16``); absent when
            the card has no tensor-core path for that dtype.
        bandwidth_gbs: Peak device memory bandwidth in GB/s.
        source: Where the figures come from.

    """

    name: str
    pattern: str
    tflops: dict[str, float]
    bandwidth_gbs: float
    source: str = "NVIDIA datasheet, dense (without sparsity)"


def _hopper(fp32: float, tf32: float, half: float) -> dict[str, float]:
    return {"fp32": fp32, "tf32": tf32, "bf16": half, "fp16": half}


KNOWN_CARDS: Final[tuple[CardPeak, ...]] = (
    # Most specific first: "H200 NVL" before "H200", "A10G" before "A10", "L40S" before "L4".
    CardPeak("H200 NVL", r"\bH200 NVL\b", _hopper(60, 417.5, 835.5), 4800),
    CardPeak("H200 SXM", r"\bH200\b", _hopper(67, 494.7, 989.4), 4800),
    CardPeak("H100 NVL", r"\bH100 NVL\b", _hopper(60, 417.5, 835.5), 3900),
    CardPeak("H100 PCIe", r"\bH100\b.*PCIe", _hopper(51, 378, 756), 2000),
    CardPeak("H100 SXM", r"\bH100\b", _hopper(67, 494.7, 989.4), 3350),
    CardPeak("A100 SXM 80GB", r"\bA100-SXM4?-80GB\b", _hopper(19.5, 156, 312), 2039),
    CardPeak("A100 SXM 40GB", r"\bA100-SXM4?-40GB\b", _hopper(19.5, 156, 312), 1555),
    CardPeak("A100 PCIe 80GB", r"\bA100 80GB PCIe\b", _hopper(19.5, 156, 312), 1935),
    CardPeak("A100 PCIe 40GB", r"\bA100-PCIE-40GB\b", _hopper(19.5, 156, 312), 1555),
    CardPeak("L40S", r"\bL40S\b", _hopper(91.6, 183, 362), 864),
    CardPeak("L4", r"\bL4\b", _hopper(30.3, 60, 121), 300),
    CardPeak(
        "A10G",
        r"\bA10G\b",
        _hopper(31.2, 35, 70),
        600,
        "no NVIDIA datasheet (AWS variant of the A10 with lower tensor clocks); commonly cited figures",
    ),
    CardPeak("A10", r"\bA10\b", _hopper(31.2, 62.5, 125), 600),
    CardPeak("RTX 4090", r"\bRTX 4090\b", _hopper(82.6, 82.6, 165.2), 1008),
    CardPeak("V100 SXM2", r"\bV100-SXM2\b", {"fp32": 15.7, "fp16": 125}, 900),
    CardPeak("V100 PCIe", r"\bV100\b", {"fp32": 14, "fp16": 112}, 900),
    CardPeak("T4", r"\bT4\b", {"fp32": 8.1, "fp16": 65}, 320),
)
"""Known cards, matched in order."""


def identify(device_name: str) -> CardPeak | None:
    """The known card a device name refers to, if any."""
    for card in KNOWN_CARDS:
        if re.search(card.pattern, device_name, flags=re.IGNORECASE):
            return card
    return None


def supported_dtypes(capability: tuple[int, int]) -> list[str]:
    """Dtypes worth measuring for a compute capability (tensor cores: fp16 from 7.0, tf32/bf16 from 8.0)."""
    major = capability[0]
    dtypes = ["fp32"]
    if major >= 8:
        dtypes += ["tf32", "bf16"]
    if major >= 7:
        dtypes.append("fp16")
    return dtypes


def no_gpu_result(reason: str) -> dict[str, Any]:
    """The result recorded when there is no GPU to measure."""
    import torch

    return {
        "gpu": None,
        "reason": reason,
        "torch": torch.__version__,
        "cuda_build": torch.version.cuda,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def cuda_unavailable_reason() -> str | None:
    """Why CUDA cannot be used here, or None when a CUDA device is available."""
    import torch

    if not torch.cuda.is_available():
        build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        return f"no CUDA GPU available (torch {torch.__version__}, {build}); nothing to measure"
    return None


def _timer(device: str) -> Callable[[Callable[[], Any]], float]:
    """A function timing one call in seconds (CUDA events on GPUs, perf_counter on CPU)."""
    import torch

    if device.startswith("cuda"):

        def cuda_time(fn: Callable[[], Any]) -> float:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            return float(start.elapsed_time(end)) / 1000

        return cuda_time

    def cpu_time(fn: Callable[[], Any]) -> float:
        started = time.perf_counter()
        fn()
        return time.perf_counter() - started

    return cpu_time


def measure_matmul(
    n: int, dtype: str, *, device: str = "cuda", warmup: int = 3, repeats: int = 10
) -> dict[str, Any]:
    """Median time and TFLOP/s of an ``n x n`` matmul in ``dtype`` on ``device``."""
    import torch

    torch_dtype = {
        "fp32": torch.float32,
        "tf32": torch.float32,
        "bf16": torch.bfloat16,
        "fp16": torch.float16,
    }[dtype]
    previous = torch.get_float32_matmul_precision()
    # "highest" keeps fp32 in IEEE fp32; "high" lets fp32 matmuls use TF32 tensor cores.
    torch.set_float32_matmul_precision("high" if dtype == "tf32" else "highest")
    try:
        a = torch.randn(n, n, device=device, dtype=torch_dtype)
        b = torch.randn(n, n, device=device, dtype=torch_dtype)
        out = torch.empty(n, n, device=device, dtype=torch_dtype)
        timer = _timer(device)
        for _ in range(warmup):
            torch.matmul(a, b, out=out)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times = [timer(lambda: torch.matmul(a, b, out=out)) for _ in range(repeats)]
    finally:
        torch.set_float32_matmul_precision(previous)
    median = statistics.median(times)
    return {
        "dtype": dtype,
        "n": n,
        "repeats": repeats,
        "median_ms": median * 1000,
        "tflops": 2 * n**3 / median / 1e12,
    }


def measure_copy(nbytes: int, *, device: str = "cuda", warmup: int = 3, repeats: int = 10) -> dict[str, Any]:
    """Median device-to-device copy time and GB/s (read + write) of a ``nbytes`` buffer."""
    import torch

    src = torch.empty(nbytes, dtype=torch.uint8, device=device).fill_(1)
    dst = torch.empty_like(src)
    timer = _timer(device)
    for _ in range(warmup):
        dst.copy_(src)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    times = [timer(lambda: dst.copy_(src)) for _ in range(repeats)]
    median = statistics.median(times)
    return {"bytes": nbytes, "repeats": repeats, "median_ms": median * 1000, "gbs": 2 * nbytes / median / 1e9}


def with_peaks(result: dict[str, Any], card: CardPeak | None) -> dict[str, Any]:
    """Add peak figures and percentages of ``card`` to a result (in place; returned for chaining)."""
    for row in result["matmul"]:
        peak = card.tflops.get(row["dtype"]) if card else None
        row["peak_tflops"] = peak
        row["percent_of_peak"] = 100 * row["tflops"] / peak if peak else None
    bandwidth = result["memory_bandwidth"]
    bandwidth["peak_gbs"] = card.bandwidth_gbs if card else None
    bandwidth["percent_of_peak"] = 100 * bandwidth["gbs"] / card.bandwidth_gbs if card else None
    result["card"] = asdict(card) if card else None
    return result


def run_benchmark(
    *,
    device: str = "cuda",
    n: int = 8192,
    copy_mib: int = 1024,
    warmup: int = 3,
    repeats: int = 10,
    dtypes: list[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Measure one device; on a CUDA device, dtypes default to what its capability supports."""
    import torch

    if device.startswith("cuda"):
        index = torch.device(device).index or 0
        props = torch.cuda.get_device_properties(index)
        name = torch.cuda.get_device_name(index)
        capability = torch.cuda.get_device_capability(index)
        gpu: dict[str, Any] = {
            "name": name,
            "capability": f"{capability[0]}.{capability[1]}",
            "memory_gib": round(props.total_memory / 2**30, 1),
            "multiprocessors": props.multi_processor_count,
        }
        chosen = dtypes or supported_dtypes(capability)
    else:
        name = f"cpu ({torch.get_num_threads()} threads)"
        gpu = {"name": name, "capability": None, "memory_gib": None, "multiprocessors": None}
        chosen = dtypes or ["fp32", "bf16"]
    rows = []
    for dtype in chosen:
        if progress:
            progress(f"matmul {dtype} n={n}")
        rows.append(measure_matmul(n, dtype, device=device, warmup=warmup, repeats=repeats))
    if progress:
        progress(f"copy {copy_mib} MiB")
    copy = measure_copy(copy_mib * 2**20, device=device, warmup=warmup, repeats=repeats)
    result = {
        "gpu": gpu,
        "device": device,
        "torch": torch.__version__,
        "cuda_build": torch.version.cuda,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "settings": {"n": n, "copy_mib": copy_mib, "warmup": warmup, "repeats": repeats},
        "matmul": rows,
        "memory_bandwidth": copy,
    }
    return with_peaks(result, identify(name) if device.startswith("cuda") else None)


def plot(result: dict[str, Any], path: Path) -> Path:
    """Bar chart of achieved vs peak throughput per dtype and bandwidth."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["matmul"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4), gridspec_kw={"width_ratios": [3, 1]})
    labels = [r["dtype"] for r in rows]
    xs = range(len(rows))
    ax1.bar([x - 0.2 for x in xs], [r["tflops"] for r in rows], width=0.4, label="measured")
    ax1.bar([x + 0.2 for x in xs], [r["peak_tflops"] or 0 for r in rows], width=0.4, label="peak (dense)")
    for x, r in zip(xs, rows, strict=True):
        if r["percent_of_peak"] is not None:
            ax1.annotate(f"{r['percent_of_peak']:.0f}%", (x - 0.2, r["tflops"]), ha="center", va="bottom")
    ax1.set_xticks(list(xs), labels)
    ax1.set_ylabel("TFLOP/s")
    ax1.set_title(f"matmul n={result['settings']['n']}")
    ax1.legend()
    bw = result["memory_bandwidth"]
    ax2.bar(["measured", "peak"], [bw["gbs"], bw["peak_gbs"] or 0], color=["tab:blue", "tab:orange"])
    ax2.set_ylabel("GB/s")
    ax2.set_title("device copy")
    fig.suptitle(result["gpu"]["name"])
    return save_figure(fig, path)


def write_results(result: dict[str, Any], out_dir: Path = DEFAULT_OUT) -> dict[str, Path]:
    """Write ``gpu.json`` (always) and ``gpu.png`` (when something was measured)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {"json": out_dir / "gpu.json"}
    written["json"].write_text(json.dumps(result, indent=2) + "\n")
    if result.get("gpu") is not None:
        written["plot"] = plot(result, out_dir / "gpu.png")
    return written
