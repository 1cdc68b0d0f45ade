"""``mlp rag eval`` and ``bench``: retrieval quality and speed reports."""

from __future__ import annotations

import json
from pathlib import Path

import click

from mlp.common import BadInput, CheckFailed

from .options import (
    AppOptions,
    app_options,
    backend_option,
    chunk_options,
    default_paths,
    embedder_option,
    emit_json,
    errors,
    index_options,
    json_option,
    progress_display,
)


@click.command("eval")
@backend_option
@click.option(
    "--questions",
    "questions_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Labelled question set (default: the packaged eval_questions.yaml).",
)
@click.option("--k", "ks", default="1,3,5", show_default=True, help="Cut-offs for recall@k, comma-separated.")
@click.option(
    "--depth",
    type=click.IntRange(1, 100),
    default=10,
    show_default=True,
    help="Passages retrieved per question (MRR counts ranks up to it).",
)
@click.option(
    "--repeats",
    type=click.IntRange(0, 50),
    default=3,
    show_default=True,
    help="Timed repetitions of every question for latency percentiles.",
)
@click.option(
    "--ingest/--no-ingest",
    "do_ingest",
    default=True,
    show_default=True,
    help="Bring the index up to date first (incremental).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Report path (default: build/rag/eval.json; a PNG plot is written beside it).",
)
@click.option("--plot/--no-plot", "with_plot", default=True, show_default=True, help="Write the PNG plot.")
@index_options
@json_option
def eval_(
    backend: str,
    questions_file: Path | None,
    ks: str,
    depth: int,
    repeats: int,
    do_ingest: bool,
    out: Path | None,
    with_plot: bool,
    app_options: AppOptions,
    as_json: bool,
) -> None:
    """Score retrieval per backend: recall@k and MRR on labelled questions, plus query latency."""
    from workloads.rag.app import DEFAULT_EVAL_OUT, parse_backends, write_eval
    from workloads.rag.evaluation import QUESTIONS_FILE

    try:
        cutoffs = tuple(sorted({int(x) for x in ks.split(",") if x.strip()}))
    except ValueError:
        raise click.BadParameter("expected comma-separated integers", param_hint="--k") from None
    if questions_file is not None:
        _check_question_file(questions_file)
    backends = parse_backends(backend)
    with errors(), app_options.open() as app:
        ingest_report = None
        if do_ingest:
            with progress_display(not as_json) as progress:
                ingest_report = app.ingest(backends, app.corpus(default_paths()), progress=progress)
        try:
            report = app.evaluate(
                backends,
                questions_file=questions_file or QUESTIONS_FILE,
                ks=cutoffs,
                depth=depth,
                latency_repeats=repeats,
                ingest_report=ingest_report,
            )
        except ValueError as error:
            raise CheckFailed(str(error)) from None
        written = write_eval(report, out or app.root / DEFAULT_EVAL_OUT, with_plot=with_plot)
    if as_json:
        emit_json(report)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Retrieval on {report['questions']} questions ({report['embedder']})")
    for column in ["backend", *[f"recall@{k}" for k in cutoffs], "MRR", "query p50 ms", "query p95 ms"]:
        table.add_column(column, justify="right" if column != "backend" else "left")
    for name, result in report["backends"].items():
        latency = result["latency_ms"]["query_end_to_end"]
        table.add_row(
            name,
            *[f"{result[f'recall@{k}']:.3f}" for k in cutoffs],
            f"{result['mrr']:.3f}",
            f"{latency['p50']:.1f}",
            f"{latency['p95']:.1f}",
        )
    console = Console()
    console.print(table)
    console.print("Written: " + ", ".join(str(p) for p in written))


@click.command()
@backend_option
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Report path (default: build/rag/bench.json).",
)
@click.option(
    "--repeats",
    type=click.IntRange(1, 50),
    default=5,
    show_default=True,
    help="Timed repetitions of every labelled question for query latency.",
)
@app_options(embedder_option, chunk_options)
@json_option
def bench(backend: str, out: Path | None, repeats: int, app_options: AppOptions, as_json: bool) -> None:
    """Measure ingestion throughput (from scratch, in throw-away stores) and query latency p50/p95.

    Uses the embedded engines; the live index is only read (and brought up to date) for the
    latency part.
    """
    from workloads.rag.app import DEFAULT_BENCH_OUT, machine_info, parse_backends

    backends = parse_backends(backend)
    with errors(), app_options.open() as app:
        documents = app.corpus(default_paths())
        with progress_display(not as_json) as progress:
            fresh = app.bench_ingest(backends, documents, progress=progress)
            app.ingest(backends, documents, progress=progress)
        evaluation = app.evaluate(backends, latency_repeats=repeats)
        report = {
            "created_at": evaluation["created_at"],
            "embedder": evaluation["embedder"],
            "machine": machine_info(),
            "ingest_from_scratch": fresh.to_dict(),
            "query_latency_ms": {b: r["latency_ms"] for b, r in evaluation["backends"].items()},
            "retrieval": {
                b: {k: v for k, v in r.items() if k.startswith(("recall@", "mrr"))}
                for b, r in evaluation["backends"].items()
            },
        }
        path = out or app.root / DEFAULT_BENCH_OUT
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2) + "\n")
    if as_json:
        emit_json(report)
        return
    click.echo(
        f"Ingestion from scratch: {fresh.chunks} chunks in {fresh.write_seconds:.1f} s = "
        f"{fresh.chunks_per_second:.1f} chunks/s ({fresh.embed_chunks_per_second:.1f} chunks/s embedding)"
    )
    for name, latency in report["query_latency_ms"].items():
        e2e = latency["query_end_to_end"]
        click.echo(
            f"{name}: query p50 {e2e['p50']:.1f} ms, p95 {e2e['p95']:.1f} ms "
            f"(search alone p50 {latency['search']['p50']:.2f} ms, p95 {latency['search']['p95']:.2f} ms)"
        )
    click.echo(f"Written: {path}")


def _check_question_file(path: Path) -> None:
    """Refuse a question set that is not a readable YAML mapping with a ``questions`` list (exit 2)."""
    from stacks.files import load_yaml

    data = load_yaml(path, what="question set")
    if not isinstance(data.get("questions"), list):
        raise BadInput(f"{path}: the question set needs a 'questions' list")
