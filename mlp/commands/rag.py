"""``mlp rag``: retrieval-augmented generation over the lab's docs and experiment results.

Exit codes: 0 success; 1 an operation failed (no index, engine busy, endpoint down); 2 usage
error; 3 a verification failed (restore count mismatch, crash test, out-of-date question set).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import click

from workloads.target import LOCAL, resolve_target, target_options

if TYPE_CHECKING:
    from workloads.rag.app import RagApp
    from workloads.rag.ingest import IngestReport, Progress
    from workloads.rag.sources import Document
    from workloads.rag.stores.base import Filter

F = TypeVar("F", bound=Callable[..., Any])

EXIT_VERIFY = 3


class VerificationFailed(click.ClickException):
    """A check the command exists to perform did not pass (exit code 3)."""

    exit_code = EXIT_VERIFY


@dataclass(frozen=True)
class _AppOptions:
    """Where a command's app points: the target and the settings its flags override (``None``: unset)."""

    target: str = LOCAL
    outputs_file: Path | None = None
    alias: str | None = None
    embedder: str | None = None
    chunk_tokens: int | None = None
    overlap_tokens: int | None = None

    def open(self, **overrides: Any) -> RagApp:
        """The app for the target, with these options and ``overrides`` applied to the settings."""
        from workloads.rag.app import RagApp
        from workloads.rag.settings import RagSettings

        resolved = resolve_target(self.target, self.outputs_file)
        settings = RagSettings.from_env(
            home=resolved.home / "rag",
            alias=self.alias,
            embedder=self.embedder,
            chunk_tokens=self.chunk_tokens,
            overlap_tokens=self.overlap_tokens,
            **overrides,
        )
        return RagApp(settings, outputs=resolved.outputs)


@dataclass(frozen=True)
class _FilterOptions:
    """The payload filter flags as given: ``--filter`` expressions, ``--source`` and ``--kind``."""

    filters: tuple[str, ...] = ()
    source: tuple[str, ...] = ()
    kind: tuple[str, ...] = ()

    def parse(self) -> Filter | None:
        """One filter from all the flags, or ``None`` when none was given.

        Raises:
            ValueError: On a malformed ``--filter`` expression.
        """
        from workloads.rag.stores.base import Filter

        expressions = list(self.filters)
        if self.source:
            expressions.append("source=" + ",".join(self.source))
        if self.kind:
            expressions.append("kind=" + ",".join(self.kind))
        return Filter.parse(expressions) if expressions else None


@contextmanager
def _errors() -> Iterator[None]:
    """Turn the workload's expected failures into clean CLI errors."""
    from workloads.rag.generation import GenerationError
    from workloads.rag.stores.base import RestoreMismatchError, StoreError
    from workloads.target import TargetError

    try:
        yield
    except RestoreMismatchError as error:
        raise VerificationFailed(str(error)) from None
    except (StoreError, TargetError, GenerationError, ValueError, OSError) as error:
        raise click.ClickException(str(error)) from None


def _emit(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def _console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[str, int, int], None] | None]:
    """A rich progress display on stderr, as a ``progress(stage, done, total)`` callback."""
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    labels = {"scan": "Reading index state", "write": "Embedding and writing chunks", "finalize": "Indexing"}
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=_console(),
        transient=False,
    ) as bar:
        tasks: dict[str, Any] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(labels.get(stage, stage), total=max(total, 1))
            bar.update(tasks[stage], completed=done if total else 1, total=max(total, 1))

        yield update


def _options(*options: Callable[[F], F]) -> Callable[[F], F]:
    """Several click options and arguments as one decorator; ``--help`` lists them in this order."""

    def decorate(command: F) -> F:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def _bundle(argument: str, bundle: type[Any], *options: Callable[[F], F]) -> Callable[[F], F]:
    """Add ``options`` to a command and hand it their values as one dataclass, ``argument``.

    The values of the parameters named like fields of ``bundle`` go into it; the others pass
    through. ``--help`` is unchanged: the options appear where the decorator stands.
    """
    names = [f.name for f in dataclasses.fields(bundle)]

    def decorate(command: F) -> F:
        @functools.wraps(command)
        def run(*args: Any, **kwargs: Any) -> Any:
            values = {name: kwargs.pop(name) for name in names if name in kwargs}
            return command(*args, **kwargs, **{argument: bundle(**values)})

        return _options(*options)(cast(F, run))

    return decorate


def _app_options(*options: Callable[[F], F]) -> Callable[[F], F]:
    """``options`` (target and settings flags) handed to the command as ``app_options: _AppOptions``."""
    return _bundle("app_options", _AppOptions, *options)


_backend_option = click.option(
    "--backend",
    type=click.Choice(["qdrant", "milvus", "all"]),
    default="all",
    show_default=True,
    help="Vector database: Qdrant (Edge locally, the stack's server otherwise), Milvus (Lite or server), or both.",
)
_one_backend_option = click.option(
    "--backend",
    type=click.Choice(["qdrant", "milvus", "all"]),
    default="qdrant",
    show_default=True,
    help="Vector database to query (`all` asks each in turn).",
)
_alias_option = click.option("--alias", default=None, help="Index alias (default: mlp_docs).")
_embedder_option = click.option(
    "--embedder",
    type=click.Choice(["minilm", "openai", "hash"]),
    default=None,
    help="minilm (offline all-MiniLM-L6-v2, default), openai (MLP_RAG_EMBEDDINGS_URL/_MODEL), hash (no model; smoke tests).",
)
_chunk_options = _options(
    click.option(
        "--chunk-tokens",
        type=click.IntRange(32, 2048),
        default=None,
        help="Largest chunk in model tokens (default 200; env MLP_RAG_CHUNK_TOKENS). Changing it re-chunks everything.",
    ),
    click.option(
        "--overlap-tokens",
        type=click.IntRange(0, 512),
        default=None,
        help="Tokens shared by consecutive chunks of a section (default 40; env MLP_RAG_OVERLAP_TOKENS).",
    ),
)
_index_options = _app_options(_alias_option, _embedder_option, _chunk_options, target_options)
"""Target and index settings of the commands that (re)build the index: ingest, reindex, eval."""
_query_options = _app_options(_alias_option, _embedder_option, target_options)
"""Target and index settings of the commands that only query it: ask, search."""

_json_option = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON on stdout.")
_corpus_options = _options(
    click.argument("paths", nargs=-1, type=click.Path(path_type=Path)),
    _backend_option,
    click.option(
        "--results/--no-results",
        default=True,
        show_default=True,
        help="Also ingest the JSON experiment reports under build/ (as text facts).",
    ),
)
"""The corpus and the backends of ingest and reindex."""


@click.group()
def rag() -> None:
    """Ask the lab's docs and experiment results, with cited answers.

    `mlp rag ingest` indexes README.md, docs/, adr/ and the JSON reports under build/ into
    Qdrant and Milvus (embedded engines locally, the stack's servers with --target). Re-running
    it only embeds what changed. `mlp rag ask "How do I share one GPU between pods?"` answers
    with citations: through an OpenAI-compatible chat endpoint when MLP_RAG_LLM_URL (or
    --llm-url) is set, otherwise extractively, quoting the retrieved passages.
    `mlp rag eval` scores retrieval (recall@k, MRR, latency) into build/rag/eval.json.

    Local state lives in .mlp/rag/ (or $MLP_HOME/rag).
    """


def _print_ingest(report: IngestReport, title: str) -> None:
    console = _console()
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
    app_options: _AppOptions,
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
    with _errors(), app_options.open() as app:
        documents = app.corpus([str(p) for p in paths] or _default_paths(), results=results)
        if require_documents and not documents:
            raise click.ClickException("no Markdown or text documents found; run from the repository root")
        with _progress(not as_json) as progress:
            report = write(app, documents, progress)
    if as_json:
        _emit(report.to_dict())
    else:
        _print_ingest(report, title)


@rag.command()
@_corpus_options
@click.option(
    "--prune/--no-prune",
    default=True,
    show_default=True,
    help="Delete indexed sources that are no longer in the corpus.",
)
@_index_options
@_json_option
def ingest(
    paths: tuple[Path, ...],
    backend: str,
    results: bool,
    prune: bool,
    app_options: _AppOptions,
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


def _default_paths() -> list[str]:
    from workloads.rag.sources import DEFAULT_DOC_PATHS

    return list(DEFAULT_DOC_PATHS)


@rag.command()
@_corpus_options
@click.option(
    "--keep-old", is_flag=True, help="Keep the previous collection (for a rollback with `mlp rag alias`)."
)
@_index_options
@_json_option
def reindex(
    paths: tuple[Path, ...],
    backend: str,
    results: bool,
    keep_old: bool,
    app_options: _AppOptions,
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


_retrieval_options = _options(
    click.option(
        "-k",
        "--top-k",
        "k",
        type=click.IntRange(1, 100),
        default=5,
        show_default=True,
        help="Passages to retrieve.",
    ),
    _bundle(
        "where",
        _FilterOptions,
        click.option(
            "--filter",
            "-f",
            "filters",
            multiple=True,
            help="Payload filter, repeatable: source=docs/a.md, kind=doc,adr, source!=README.md, position<=3.",
        ),
        click.option("--source", multiple=True, help="Only these source paths (repeatable)."),
        click.option(
            "--kind",
            multiple=True,
            type=click.Choice(["doc", "adr", "readme", "result"]),
            help="Only these kinds of source (repeatable); `result` = experiment reports.",
        ),
    ),
)
"""``-k`` and the payload filter flags of ask and search (the filter as ``where: _FilterOptions``)."""


@rag.command()
@click.argument("question")
@_one_backend_option
@_retrieval_options
@click.option(
    "--llm-url", default=None, help="OpenAI-compatible chat endpoint base URL (overrides MLP_RAG_LLM_URL)."
)
@click.option(
    "--llm-model", default=None, help="Chat model (default: MLP_RAG_LLM_MODEL, else the endpoint's first)."
)
@click.option(
    "--extractive", is_flag=True, help="Answer extractively even when an LLM endpoint is configured."
)
@_query_options
@_json_option
def ask(
    question: str,
    backend: str,
    k: int,
    where: _FilterOptions,
    llm_url: str | None,
    llm_model: str | None,
    extractive: bool,
    app_options: _AppOptions,
    as_json: bool,
) -> None:
    """Answer QUESTION from the index, citing the passages used."""
    from workloads.rag.app import parse_backends

    results = []
    with _errors(), app_options.open(llm_url=llm_url, llm_model=llm_model) as app:
        filter_ = where.parse()
        mode = "extractive" if extractive else "auto"
        for name in parse_backends(backend):
            results.append(app.ask(name, question, k=k, filter=filter_, mode=mode))
    if as_json:
        _emit({"question": question, "results": [r.to_dict() for r in results]})
        return
    _print_answers(question, results)


def _print_answers(question: str, results: list[Any]) -> None:
    from rich.console import Console
    from rich.markup import escape

    console = Console()
    console.print(f"[bold]Q:[/bold] {escape(question)}")
    for result in results:
        answer = result.answer
        timing = result.timings_ms
        console.rule(f"{result.engine} · {result.collection}")
        console.print(escape(answer.text))
        console.print()
        cited = {c.number for c in answer.citations}
        for passage in answer.passages:
            mark = "*" if passage.rank in cited else " "
            console.print(
                f" {mark}[{passage.rank}] {escape(passage.citation)}  [dim](score {passage.score:.3f})[/dim]"
            )
        console.print(
            f"[dim]embed {timing['embed']:.0f} ms · search {timing['search']:.1f} ms · "
            f"answer {timing['generate']:.0f} ms ({answer.mode}{' ' + answer.model if answer.model else ''})[/dim]"
        )


@rag.command()
@click.argument("query")
@_one_backend_option
@_retrieval_options
@_query_options
@_json_option
def search(
    query: str, backend: str, k: int, where: _FilterOptions, app_options: _AppOptions, as_json: bool
) -> None:
    """Semantic search: print the passages closest to QUERY, with their metadata."""
    from workloads.rag.app import parse_backends

    out: dict[str, list[dict[str, Any]]] = {}
    with _errors(), app_options.open() as app:
        filter_ = where.parse()
        for name in parse_backends(backend):
            out[name] = [p.to_dict() for p in app.search(name, query, k=k, filter=filter_)]
    if as_json:
        _emit({"query": query, "results": out})
        return
    for name, passages in out.items():
        click.echo(f"== {name}")
        for p in passages:
            click.echo(f"[{p['rank']}] {p['score']:.3f}  {p['source']} § {p['heading']}")
            click.echo("    " + p["text"][:240].replace("\n", " ") + ("..." if len(p["text"]) > 240 else ""))


@rag.command("eval")
@_backend_option
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
@_index_options
@_json_option
def eval_(
    backend: str,
    questions_file: Path | None,
    ks: str,
    depth: int,
    repeats: int,
    do_ingest: bool,
    out: Path | None,
    with_plot: bool,
    app_options: _AppOptions,
    as_json: bool,
) -> None:
    """Score retrieval per backend: recall@k and MRR on labelled questions, plus query latency."""
    from workloads.rag.app import DEFAULT_EVAL_OUT, parse_backends, write_eval
    from workloads.rag.evaluation import QUESTIONS_FILE

    try:
        cutoffs = tuple(sorted({int(x) for x in ks.split(",") if x.strip()}))
    except ValueError:
        raise click.BadParameter("expected comma-separated integers", param_hint="--k") from None
    backends = parse_backends(backend)
    with _errors(), app_options.open() as app:
        ingest_report = None
        if do_ingest:
            with _progress(not as_json) as progress:
                ingest_report = app.ingest(backends, app.corpus(_default_paths()), progress=progress)
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
            raise VerificationFailed(str(error)) from None
        written = write_eval(report, out or app.root / DEFAULT_EVAL_OUT, with_plot=with_plot)
    if as_json:
        _emit(report)
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


@rag.command()
@_backend_option
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
@_app_options(_embedder_option, _chunk_options)
@_json_option
def bench(backend: str, out: Path | None, repeats: int, app_options: _AppOptions, as_json: bool) -> None:
    """Measure ingestion throughput (from scratch, in throw-away stores) and query latency p50/p95.

    Uses the embedded engines; the live index is only read (and brought up to date) for the
    latency part.
    """
    from workloads.rag.app import DEFAULT_BENCH_OUT, machine_info, parse_backends

    backends = parse_backends(backend)
    with _errors(), app_options.open() as app:
        documents = app.corpus(_default_paths())
        with _progress(not as_json) as progress:
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
        _emit(report)
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


@rag.command()
@_backend_option
@_app_options(target_options)
@_json_option
def collections(backend: str, app_options: _AppOptions, as_json: bool) -> None:
    """List collections, their point counts and the aliases pointing at them."""
    from workloads.rag.app import parse_backends

    data: dict[str, Any] = {}
    with _errors(), app_options.open() as app:
        for name in parse_backends(backend):
            store = app.store(name)
            aliases = store.aliases()
            data[name] = {
                "engine": store.engine,
                "location": store.describe(),
                "collections": {c: store.count(c) for c in store.list_collections()},
                "aliases": aliases,
            }
    if as_json:
        _emit(data)
        return
    for name, info in data.items():
        click.echo(f"{name} ({info['location']})")
        for collection, count in info["collections"].items():
            pointed = [a for a, c in info["aliases"].items() if c == collection]
            click.echo(f"  {collection}: {count} points" + (f"  <- {', '.join(pointed)}" if pointed else ""))


@rag.command()
@click.argument("alias_name")
@click.argument("collection")
@_backend_option
@_app_options(target_options)
def alias(alias_name: str, collection: str, backend: str, app_options: _AppOptions) -> None:
    """Point ALIAS_NAME at COLLECTION atomically (e.g. roll back after a re-index with --keep-old)."""
    from workloads.rag.app import parse_backends

    with _errors(), app_options.open() as app:
        for name in parse_backends(backend):
            app.store(name).set_alias(alias_name, collection)
            click.echo(f"{name}: {alias_name} -> {collection}")


@rag.command()
@click.argument("collection")
@_backend_option
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@_app_options(target_options)
def drop(collection: str, backend: str, yes: bool, app_options: _AppOptions) -> None:
    """Delete COLLECTION (and aliases pointing at it)."""
    from workloads.rag.app import parse_backends

    if not yes:
        click.confirm(f"Delete collection {collection!r} ({backend})?", abort=True)
    with _errors(), app_options.open() as app:
        for name in parse_backends(backend):
            store = app.store(name)
            if store.has_collection(collection):
                store.drop_collection(collection)
                click.echo(f"{name}: dropped {collection}")
            else:
                click.echo(f"{name}: no collection {collection}")


@rag.command()
@_backend_option
@click.option("--collection", default=None, help="Collection or alias to back up (default: the index alias).")
@click.option(
    "--kind",
    type=click.Choice(["native", "logical"]),
    default="native",
    show_default=True,
    help="native: the engine's snapshot (same engine only); logical: portable points.",
)
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Directory for the archives (default: .mlp/rag/backups).",
)
@_app_options(target_options)
@_json_option
def backup(
    backend: str,
    collection: str | None,
    kind: str,
    out_dir: Path | None,
    app_options: _AppOptions,
    as_json: bool,
) -> None:
    """Write a backup archive per backend (a tar with a manifest of engine, dimension and count)."""
    import time as _time

    from workloads.rag.app import parse_backends

    written = []
    with _errors(), app_options.open() as app:
        directory = out_dir or app.settings.backups_path
        stamp = _time.strftime("%Y%m%dT%H%M%SZ", _time.gmtime())
        for name in parse_backends(backend):
            store = app.store(name)
            chosen = kind if (kind == "logical" or store.engine != "milvus-server") else "logical"
            archive = directory / f"{name}-{collection or app.settings.alias}-{stamp}-{chosen}.tar"
            manifest = store.backup(collection or app.settings.alias, archive, kind=chosen)  # type: ignore[arg-type]
            written.append({"backend": name, "archive": str(archive), **manifest.__dict__})
    if as_json:
        _emit(written)
        return
    for item in written:
        click.echo(
            f"{item['backend']}: {item['count']} points of {item['collection']} -> {item['archive']} ({item['kind']})"
        )


@rag.command()
@click.argument("archive", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--backend", type=click.Choice(["qdrant", "milvus"]), required=True, help="Store to restore into."
)
@click.option("--collection", required=True, help="New collection to create (must not exist).")
@click.option(
    "--switch-alias", is_flag=True, help="Point the index alias at the restored collection afterwards."
)
@_app_options(_alias_option, target_options)
@_json_option
def restore(
    archive: Path, backend: str, collection: str, switch_alias: bool, app_options: _AppOptions, as_json: bool
) -> None:
    """Restore ARCHIVE into a new collection and verify the point count (exit 3 on a mismatch)."""
    with _errors(), app_options.open() as app:
        store = app.store(backend)  # type: ignore[arg-type]
        report = store.restore(archive, collection)
        if switch_alias:
            store.set_alias(app.settings.alias, collection)
    data = {**report.__dict__, "ok": report.ok, "alias_switched": switch_alias}
    if as_json:
        _emit(data)
    else:
        click.echo(
            f"Restored {report.restored}/{report.expected} points into {collection} ({report.kind}) "
            f"in {report.seconds:.2f} s" + (f"; {app.settings.alias} -> {collection}" if switch_alias else "")
        )


@rag.command("crash-test")
@click.option("--backend", type=click.Choice(["qdrant", "milvus", "all"]), default="all", show_default=True)
@click.option(
    "--kills", type=click.IntRange(1, 50), default=4, show_default=True, help="SIGKILLs to deliver."
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seeds the kill times.")
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Keep the stores here for inspection (default: a temporary directory).",
)
@_json_option
def crash_test(backend: str, kills: int, seed: int, workdir: Path | None, as_json: bool) -> None:
    """Kill an ingesting writer with SIGKILL at random points; verify acknowledged points survive.

    Checks that every acknowledged point is present, with no duplicates, no phantoms and intact
    vectors, on the embedded engines (Qdrant Edge, Milvus Lite). Exit code 3 on a failure.
    """
    from workloads.rag.app import parse_backends
    from workloads.rag.crashcheck import run_crash_test

    reports = []
    with tempfile.TemporaryDirectory(prefix="mlp-rag-crash-") as scratch:
        base = workdir or Path(scratch)
        for name in parse_backends(backend):
            reports.append(run_crash_test(name, base / name, kills=kills, seed=seed))
    if as_json:
        _emit([r.to_dict() for r in reports])
    else:
        for report in reports:
            check = report.after_completion or report.after_kills
            verdict = "OK" if report.ok else "FAILED"
            click.echo(
                f"{report.engine}: {verdict} after {report.kills} kills ({report.runs} runs, "
                f"{report.after_kills.acked_points} points acknowledged before the last kill, "
                f"{check.present} present at the end) in {report.seconds:.1f} s"
            )
            if not report.ok:
                click.echo(json.dumps(report.to_dict(), indent=2), err=True)
    if not all(r.ok for r in reports):
        sys.exit(EXIT_VERIFY)
