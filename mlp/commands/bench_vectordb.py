"""``mlp bench vectordb``: the vector engines side by side (the benchmark is :mod:`workloads.benchmarks.vectordb`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from mlp.common import BadInput, Failed
from workloads.benchmarks import vectordb as bench
from workloads.benchmarks.vectordb import CACHE_DIR, LOCAL_ENGINES, REPORT_DIR, SERVER_ENGINES
from workloads.target import LOCAL


@click.command("vectordb")
@click.option("--size", type=click.IntRange(100), default=10_000, show_default=True, help="Base vectors.")
@click.option("--queries", type=click.IntRange(10), default=200, show_default=True, help="Held-out queries.")
@click.option(
    "--engines",
    default=",".join(LOCAL_ENGINES),
    show_default=True,
    help=f"Comma-separated subset of {', '.join(LOCAL_ENGINES + SERVER_ENGINES)}.",
)
@click.option(
    "--threads",
    type=click.IntRange(1),
    default=os.cpu_count() or 1,
    show_default=True,
    help="Callers for the N-thread QPS.",
)
@click.option("--no-ops", is_flag=True, help="Skip the timed backup/restore/re-index.")
@click.option(
    "--engine-timeout",
    type=click.IntRange(10),
    default=3600,
    show_default=True,
    help="Seconds one engine may take; a slower one is reported as timed out.",
)
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=REPORT_DIR,
    show_default=True,
)
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=CACHE_DIR,
    show_default=True,
)
@click.option(
    "--target", default=LOCAL, show_default=True, help="`local`, or a stack whose servers join the run."
)
@click.option(
    "--outputs-file", type=click.Path(dir_okay=False, path_type=Path), help="Stack outputs JSON for --target."
)
def bench_vectordb(
    size: int,
    queries: int,
    engines: str,
    threads: int,
    no_ops: bool,
    engine_timeout: int,
    out_dir: Path,
    cache_dir: Path,
    target: str,
    outputs_file: Path | None,
) -> None:
    """Compare vector engines on real MiniLM embeddings: recall/QPS curves, filters, RSS, disk, operations."""
    with_servers = target != LOCAL
    try:
        chosen = bench.choose_engines(engines, with_target=with_servers)
        outputs = bench.server_outputs(target, outputs_file) if with_servers else {}
    except bench.BenchInputError as error:
        raise BadInput(str(error)) from None

    def embedding(done: int, total: int) -> None:
        click.echo(
            f"\rembedding {done}/{total} sentences (cached in {cache_dir})", nl=done >= total, err=True
        )

    def engine(name: str, result: dict[str, Any] | None) -> None:
        if result is None:
            click.echo(f"{name}: building and querying {size} vectors ...", err=True)
        else:
            click.echo(f"  {name}: {bench.summary(result)}", err=True)

    try:
        report, report_path, plot_path = bench.run(
            chosen,
            size=size,
            queries=queries,
            threads=threads,
            ops=not no_ops,
            engine_timeout=engine_timeout,
            out_dir=out_dir,
            cache_dir=cache_dir,
            outputs=outputs,
            on_embedding=embedding,
            on_engine=engine,
        )
    except ValueError as error:
        raise Failed(str(error)) from None
    click.echo(bench.table(report))
    click.echo(f"report: {report_path}, plot: {plot_path}")
