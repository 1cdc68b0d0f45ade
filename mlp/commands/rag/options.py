"""What the ``mlp rag`` commands share.

The app and filter option bundles, error mapping, the progress display and the option decorators.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from mlp.common import (
    BadInput,
    CheckFailed,
    Failed,
    bundle,
    emit_json,
    json_option,
    option_group,
    resolve_target,
    target_options,
)
from workloads.target import LOCAL

if TYPE_CHECKING:
    from workloads.rag.app import RagApp
    from workloads.rag.stores.base import Filter

F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["emit_json", "json_option", "option_group", "target_options"]


@dataclass(frozen=True)
class AppOptions:
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
class FilterOptions:
    """The payload filter flags as given: ``--filter`` expressions, ``--source`` and ``--kind``."""

    filters: tuple[str, ...] = ()
    source: tuple[str, ...] = ()
    kind: tuple[str, ...] = ()

    def parse(self) -> Filter | None:
        """One filter from all the flags, or ``None`` when none was given.

        Raises:
            BadInput: On a malformed ``--filter`` expression or one on a field that is not
                filterable (exit 2).
        """
        from workloads.rag.stores.base import PAYLOAD_INDEXES, Filter

        expressions = list(self.filters)
        if self.source:
            expressions.append("source=" + ",".join(self.source))
        if self.kind:
            expressions.append("kind=" + ",".join(self.kind))
        if not expressions:
            return None
        try:
            parsed = Filter.parse(expressions)
        except ValueError as error:
            raise BadInput(f"--filter: {error}") from None
        known = [name for name, _ in PAYLOAD_INDEXES]
        for condition in (*parsed.must, *parsed.must_not):
            if condition.field not in known:
                raise BadInput(
                    f"--filter: unknown payload field {condition.field!r}; filterable fields: {', '.join(known)}"
                )
        return parsed


@contextmanager
def errors() -> Iterator[None]:
    """Turn the workload's expected failures into clean CLI errors."""
    from workloads.rag.generation import GenerationError
    from workloads.rag.stores.base import BackupVerificationError, StoreError
    from workloads.target import TargetError

    try:
        yield
    except BackupVerificationError as error:  # damaged/forged archive, count or content mismatch
        raise CheckFailed(str(error)) from None
    except (StoreError, TargetError, GenerationError, ValueError, OSError) as error:
        raise Failed(str(error)) from None


def stderr_console() -> Any:
    """A rich console on stderr (stdout stays for results)."""
    from rich.console import Console

    return Console(stderr=True)


@contextmanager
def progress_display(enabled: bool) -> Iterator[Callable[[str, int, int], None] | None]:
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
        console=stderr_console(),
        transient=False,
    ) as bar:
        tasks: dict[str, Any] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(labels.get(stage, stage), total=max(total, 1))
            bar.update(tasks[stage], completed=done if total else 1, total=max(total, 1))

        yield update


def app_options(*options: Callable[[F], F]) -> Callable[[F], F]:
    """``options`` (target and settings flags) handed to the command as ``app_options: AppOptions``."""
    return bundle("app_options", AppOptions, *options)


def backend_choice(*, default: str, help: str) -> Callable[[F], F]:
    """``--backend``: ``qdrant``, ``milvus`` or ``all`` (both), read with ``workloads.rag.app.parse_backends``.

    Args:
        default: The choice when the flag is not given.
        help: What the choice means to the command.
    """
    return click.option(
        "--backend",
        type=click.Choice(["qdrant", "milvus", "all"]),
        default=default,
        show_default=True,
        help=help,
    )


backend_option = backend_choice(
    default="all",
    help="Vector database: Qdrant (Edge locally, the stack's server otherwise), Milvus (Lite or server), or both.",
)
one_backend_option = backend_choice(
    default="qdrant", help="Vector database to query (`all` asks each in turn)."
)
alias_option = click.option("--alias", default=None, help="Index alias (default: mlp_docs).")
embedder_option = click.option(
    "--embedder",
    type=click.Choice(["minilm", "openai", "hash"]),
    default=None,
    help="minilm (offline all-MiniLM-L6-v2, default), openai (MLP_RAG_EMBEDDINGS_URL/_MODEL), hash (no model; smoke tests).",
)
chunk_options = option_group(
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
index_options = app_options(alias_option, embedder_option, chunk_options, target_options)
"""Target and index settings of the commands that (re)build the index: ingest, reindex, eval."""
query_options = app_options(alias_option, embedder_option, target_options)
"""Target and index settings of the commands that only query it: ask, search."""

corpus_options = option_group(
    click.argument("paths", nargs=-1, type=click.Path(path_type=Path)),
    backend_option,
    click.option(
        "--results/--no-results",
        default=True,
        show_default=True,
        help="Also ingest the JSON experiment reports under build/ (as text facts).",
    ),
)
"""The corpus and the backends of ingest and reindex."""


def default_paths() -> list[str]:
    """The corpus paths used when none are given: README.md, docs/, adr/."""
    from workloads.rag.sources import DEFAULT_DOC_PATHS

    return list(DEFAULT_DOC_PATHS)


retrieval_options = option_group(
    click.option(
        "-k",
        "--top-k",
        "k",
        type=click.IntRange(1, 100),
        default=5,
        show_default=True,
        help="Passages to retrieve.",
    ),
    bundle(
        "where",
        FilterOptions,
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
"""``-k`` and the payload filter flags of ask and search (the filter as ``where: FilterOptions``)."""
