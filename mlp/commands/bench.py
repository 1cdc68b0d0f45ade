"""``mlp bench``: benchmarks. Each subcommand lives in its own module and is imported when run.

Add a benchmark by adding an entry to ``SUBCOMMANDS`` (``vectordb``, ``inference``...), pointing at a
click command in its own module; ``mlp bench --help`` lists it without importing it.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import click

from mlp.common import Failed, bench_out_option, emit_json, json_option

SUBCOMMANDS: dict[str, tuple[str, str, str]] = {
    "gpu": (
        "mlp.commands.bench",
        "bench_gpu",
        "Matmul TFLOP/s and memory bandwidth as % of the card's peak.",
    ),
    "vectordb": (
        "mlp.commands.bench_vectordb",
        "bench_vectordb",
        "Vector engines on real embeddings: recall/QPS curves, filters, RSS, disk, operations.",
    ),
    "inference": (
        "mlp.commands.serve",
        "bench_inference",
        "Inference latency/throughput: KServe V1/V2, nginx, transformer, logging vs a bare FastAPI baseline.",
    ),
}
"""name -> (module, attribute, one-line help)."""


class _LazyBench(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:  # noqa: D102
        return sorted(set(SUBCOMMANDS) | set(self.commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:  # noqa: D102
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        if cmd_name not in SUBCOMMANDS:
            return None
        module_name, attr, short_help = SUBCOMMANDS[cmd_name]
        if ctx.resilient_parsing:
            return click.Command(cmd_name, short_help=short_help)
        command: click.Command = getattr(importlib.import_module(module_name), attr)
        return command


@click.group("bench", cls=_LazyBench)
def bench() -> None:
    """Benchmarks; results go to build/bench/ as JSON and plots."""


@click.command("gpu", short_help=SUBCOMMANDS["gpu"][2])
@click.option(
    "--size", "n", type=click.IntRange(64), default=8192, show_default=True, help="Matrix size n (n x n)."
)
@click.option(
    "--copy-mib",
    type=click.IntRange(1),
    default=1024,
    show_default=True,
    help="Buffer size of the copy test.",
)
@click.option("--warmup", type=click.IntRange(0), default=3, show_default=True, help="Untimed runs first.")
@click.option(
    "--repeats", type=click.IntRange(1), default=10, show_default=True, help="Timed runs (median reported)."
)
@click.option(
    "--dtype",
    "dtypes",
    multiple=True,
    type=click.Choice(["fp32", "tf32", "bf16", "fp16"]),
    help="Only these dtypes (repeatable).",
)
@bench_out_option
@click.option(
    "--device",
    default="cuda",
    show_default=True,
    hidden=True,
    help="Torch device (cpu for testing the code path).",
)
@json_option
def bench_gpu(
    n: int,
    copy_mib: int,
    warmup: int,
    repeats: int,
    dtypes: tuple[str, ...],
    out_dir: Path,
    device: str,
    as_json: bool,
) -> None:
    """Measure matmul throughput (fp32, tf32, bf16, fp16 where supported) and memory bandwidth.

    Results are compared with the card's datasheet peak (dense) when the card is known, and
    written to OUT/gpu.json and OUT/gpu.png. Without a CUDA GPU the command says so, records
    {"gpu": null, "reason": ...} and exits 0. Exit status 1 means the measurement itself failed.
    """
    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    from workloads.benchmarks import gpu as gpu_bench

    console = Console(stderr=as_json)
    reason = gpu_bench.cuda_unavailable_reason() if device.startswith("cuda") else None
    if reason is not None:
        result = gpu_bench.no_gpu_result(reason)
        paths = gpu_bench.write_results(result, out_dir)
        console.print(f"[yellow]No GPU:[/] {reason}. Wrote {paths['json']}.")
        if as_json:
            emit_json(result)
        return
    try:
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("benchmark", total=None)
            result = gpu_bench.run_benchmark(
                device=device,
                n=n,
                copy_mib=copy_mib,
                warmup=warmup,
                repeats=repeats,
                dtypes=list(dtypes) or None,
                progress=lambda text: progress.update(task, description=text),
            )
    except RuntimeError as exc:  # CUDA errors, out of memory
        raise Failed(f"benchmark failed: {exc}") from None
    paths = gpu_bench.write_results(result, out_dir)
    card = result["card"]["name"] if result["card"] else "unknown card (no peak figures)"
    table = Table(title=f"{result['gpu']['name']} ({card})")
    for column in ("test", "measured", "peak", "% of peak"):
        table.add_column(column, justify="left" if column == "test" else "right")

    def pct(value: float | None) -> str:
        return f"{value:.0f}%" if value is not None else "-"

    for row in result["matmul"]:
        peak = f"{row['peak_tflops']:g} TFLOP/s" if row["peak_tflops"] else "-"
        table.add_row(
            f"matmul {row['dtype']}", f"{row['tflops']:.3g} TFLOP/s", peak, pct(row["percent_of_peak"])
        )
    bw = result["memory_bandwidth"]
    table.add_row(
        "device copy",
        f"{bw['gbs']:.0f} GB/s",
        f"{bw['peak_gbs']:g} GB/s" if bw["peak_gbs"] else "-",
        pct(bw["percent_of_peak"]),
    )
    console.print(table)
    console.print(f"Wrote {', '.join(str(p) for p in paths.values())}")
    if as_json:
        emit_json(result)
