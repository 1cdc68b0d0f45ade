"""``mlp rag ingest`` and ``reindex``: build and rebuild the index."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from .options import (
    AppOptions,
    corpus_options,
    default_paths,
    emit_json,
    errors,
    index_options,
    json_option,
    progress_display,
    stderr_console,
)

if TYPE_CHECKING:
    from workloads.rag.app import RagApp
    from workloads.rag.ingest import IngestReport, Progress
    from workloads.rag.sources import Document


def _print_ingest(report: IngestReport, title: str) -> None:
    console = stderr_console()
    console.print(
        f"[bold]{title}[/bold]: {report.documents} documents, {report.unchanged} unchanged, "
        f"{report.changed} (re)chunked into {report.chunks} chunks; embedded {report.embedded}, "
        f"reused {report.reused}, deleted {report.deleted} stale points."
    )
    if report.pruned_sources:
        console.print(f"Removed sources no longer in the corpus: {', '.join(report.pruned_sources)}")
    for backend, collection in report.collections.items():
        console.print(f"  {backend}: {collection} holds {report.points.get(backend, 0)} points")
    if report.chunks:
        console.print(
            f"Throughput: {report.chunks_per_second:.1f} chunks/s chunking, embedding and writing "
            f"({report.embed_chunks_per_second:.1f} chunks/s in the embedder); model load "
            f"{report.load_seconds:.1f} s; {report.seconds:.1f} s in all."
        )


def _write_index(
    app_options: AppOptions,
    paths: tuple[Path, ...],
    results: bool,
    as_json: bool,
    write: Callable[[RagApp, list[Document], Progress | None], IngestReport],
    *,
    title: str,
    require_documents: bool = False,
) -> None:
    """Read the corpus, ``write`` it into the index under a progress display, and report.

    Args:
        app_options: Target and settings.
        paths: Corpus paths given on the command line (the default docs when empty).
        results: Whether the JSON experiment reports join the corpus.
        as_json: Print the report as JSON instead of a summary.
        write: Ingests or re-indexes the documents; returns the report.
        title: First word of the summary.
        require_documents: Fail (exit 1) on an empty corpus instead of writing it.
    """
    with errors(), app_options.open() as app:
        documents = app.corpus([str(p) for p in paths] or default_paths(), results=results)
        if require_documents and not documents:
            raise click.ClickException("no Markdown or text documents found; run from the repository root")
        with progress_display(not as_json) as progress:
            report = write(app, documents, progress)
    if as_json:
        emit_json(report.to_dict())
    else:
        _print_ingest(report, title)


@click.command()
@corpus_options
@click.option(
    "--prune/--no-prune",
    default=True,
    show_default=True,
    help="Delete indexed sources that are no longer in the corpus.",
)
@index_options
@json_option
def ingest(
    paths: tuple[Path, ...],
    backend: str,
    results: bool,
    prune: bool,
    app_options: AppOptions,
    as_json: bool,
) -> None:
    """Index the docs (default: README.md docs/ adr/) incrementally, by content hash.

    The first run creates a versioned collection per backend behind the alias; later runs embed
    only new or changed chunks and delete stale ones.
    """
    from workloads.rag.app import parse_backends

    def write(app: RagApp, documents: list[Document], progress: Progress | None) -> IngestReport:
        return app.ingest(parse_backends(backend), documents, prune=prune, progress=progress)

    _write_index(app_options, paths, results, as_json, write, title="Ingested", require_documents=True)


@click.command()
@corpus_options
@click.option(
    "--keep-old", is_flag=True, help="Keep the previous collection (for a rollback with `mlp rag alias`)."
)
@index_options
@json_option
def reindex(
    paths: tuple[Path, ...],
    backend: str,
    results: bool,
    keep_old: bool,
    app_options: AppOptions,
    as_json: bool,
) -> None:
    """Rebuild the index into a new collection and switch the alias to it with no downtime.

    Use after changing the embedder or chunk sizes. Readers keep using the old collection until
    the new one is complete and its count checked; then the alias moves in one atomic step.
    """
    from workloads.rag.app import parse_backends

    def write(app: RagApp, documents: list[Document], progress: Progress | None) -> IngestReport:
        return app.reindex(parse_backends(backend), documents, keep_old=keep_old, progress=progress)

    _write_index(app_options, paths, results, as_json, write, title="Re-indexed")
