"""GPU benchmark: runs here without a GPU, exercises the measuring code on the CPU."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from mlp.commands.bench import bench
from workloads.benchmarks import gpu as gpu_bench

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize(
    ("device_name", "card"),
    [
        ("NVIDIA H100 80GB HBM3", "H100 SXM"),
        ("NVIDIA H100 PCIe", "H100 PCIe"),
        ("NVIDIA H100 NVL", "H100 NVL"),
        ("NVIDIA H200", "H200 SXM"),
        ("NVIDIA A100-SXM4-80GB", "A100 SXM 80GB"),
        ("NVIDIA A100-SXM4-40GB", "A100 SXM 40GB"),
        ("NVIDIA A100 80GB PCIe", "A100 PCIe 80GB"),
        ("NVIDIA L4", "L4"),
        ("NVIDIA L40S", "L40S"),
        ("NVIDIA A10G", "A10G"),
        ("NVIDIA A10", "A10"),
        ("Tesla T4", "T4"),
        ("Tesla V100-SXM2-16GB", "V100 SXM2"),
        ("NVIDIA GeForce RTX 4090", "RTX 4090"),
        ("NVIDIA GeForce GTX 1080", None),
    ],
)
def test_known_cards_are_identified(device_name: str, card: str | None) -> None:
    found = gpu_bench.identify(device_name)
    assert (found.name if found else None) == card


def test_dtypes_follow_compute_capability() -> None:
    assert gpu_bench.supported_dtypes((7, 5)) == ["fp32", "fp16"]  # T4: no TF32/BF16 tensor cores
    assert gpu_bench.supported_dtypes((8, 9)) == ["fp32", "tf32", "bf16", "fp16"]
    assert gpu_bench.supported_dtypes((6, 0)) == ["fp32"]


def test_without_a_gpu_the_command_says_so_and_exits_0(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    result = CliRunner().invoke(bench, ["gpu", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "No GPU" in result.output
    data = json.loads((tmp_path / "gpu.json").read_text())
    assert data["gpu"] is None and "no CUDA GPU" in data["reason"]
    assert not (tmp_path / "gpu.png").exists()


def test_measuring_code_runs_on_cpu(tmp_path: Path) -> None:
    result = gpu_bench.run_benchmark(device="cpu", n=64, copy_mib=1, warmup=1, repeats=3)
    assert [r["dtype"] for r in result["matmul"]] == ["fp32", "bf16"]
    assert all(r["tflops"] > 0 and r["median_ms"] > 0 for r in result["matmul"])
    assert result["memory_bandwidth"]["gbs"] > 0
    assert result["card"] is None and result["matmul"][0]["percent_of_peak"] is None
    paths = gpu_bench.write_results(result, tmp_path)
    assert json.loads(paths["json"].read_text())["settings"]["n"] == 64
    assert paths["plot"].stat().st_size > 1000


def test_percent_of_peak() -> None:
    result = {
        "matmul": [{"dtype": "fp16", "tflops": 32.5}, {"dtype": "tf32", "tflops": 1.0}],
        "memory_bandwidth": {"gbs": 240.0},
    }
    t4 = gpu_bench.identify("Tesla T4")
    gpu_bench.with_peaks(result, t4)
    assert result["matmul"][0]["percent_of_peak"] == pytest.approx(50.0)  # 32.5 of 65
    assert result["matmul"][1]["peak_tflops"] is None  # T4 has no TF32 path
    assert result["memory_bandwidth"]["percent_of_peak"] == pytest.approx(75.0)  # 240 of 320
    assert result["card"]["name"] == "T4"


def test_cli_on_cpu_device_writes_json_and_plot(tmp_path: Path) -> None:
    args = [
        "gpu",
        "--device",
        "cpu",
        "--size",
        "64",
        "--copy-mib",
        "1",
        "--repeats",
        "2",
        "--warmup",
        "1",
        "--out",
        str(tmp_path),
        "--json",
    ]
    result = CliRunner().invoke(bench, args)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "gpu.json").exists() and (tmp_path / "gpu.png").exists()
