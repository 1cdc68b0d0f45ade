"""``mlp rag ask`` and ``search``: query the index."""

from __future__ import annotations

from typing import Any

import click

from mlp.common import NON_BLANK

from .options import (
    AppOptions,
    FilterOptions,
    emit_json,
    errors,
    json_option,
    one_backend_option,
    query_options,
    retrieval_options,
)


@click.command()
@click.argument("question", type=NON_BLANK)
@one_backend_option
@retrieval_options
@click.option(
    "--llm-url", default=None, help="OpenAI-compatible chat endpoint base URL (overrides MLP_RAG_LLM_URL)."
)
@click.option(
    "--llm-model", default=None, help="Chat model (default: MLP_RAG_LLM_MODEL, else the endpoint's first)."
)
@click.option(
    "--extractive", is_flag=True, help="Answer extractively even when an LLM endpoint is configured."
)
@click.option(
    "--service/--no-service",
    default=True,
    show_default=True,
    help="Send the question to a running `mlp rag serve` of this project, if there is one.",
)
@query_options
@json_option
def ask(
    question: str,
    backend: str,
    k: int,
    where: FilterOptions,
    llm_url: str | None,
    llm_model: str | None,
    extractive: bool,
    service: bool,
    app_options: AppOptions,
    as_json: bool,
) -> None:
    """Answer QUESTION from the index, citing the passages used.

    When `mlp rag serve` runs for this project (local target, default alias and embedder), the
    question goes to it: answered warm, and never blocked by an ingest the service is running.
    """
    from workloads.rag.app import AnswerMode, parse_backends

    url = _service_url(app_options) if service and not (llm_url or llm_model) else None
    if url is not None:
        results = [
            _ask_service(url, question, name, k, where, extractive) for name in parse_backends(backend)
        ]
        if as_json:
            emit_json({"question": question, "results": [r.raw for r in results]})
        else:
            _print_answers(question, results)
        return
    results = []
    with errors(), app_options.open(llm_url=llm_url, llm_model=llm_model) as app:
        filter_ = where.parse()
        mode: AnswerMode = "extractive" if extractive else "auto"
        for name in parse_backends(backend):
            results.append(app.ask(name, question, k=k, filter=filter_, mode=mode))
    if as_json:
        emit_json({"question": question, "results": [r.to_dict() for r in results]})
        return
    _print_answers(question, results)


def _service_url(app_options: AppOptions) -> str | None:
    from mlp.common import resolve_target
    from workloads.rag.service import running_service
    from workloads.target import LOCAL

    if app_options.target != LOCAL or app_options.alias or app_options.embedder:
        return None
    return running_service(resolve_target(LOCAL).home / "rag")


def _ask_service(
    url: str, question: str, backend: str, k: int, where: FilterOptions, extractive: bool
) -> Any:
    """Ask the running service; the answer in the shape :func:`_print_answers` reads."""
    from types import SimpleNamespace

    import httpx

    from mlp.common import Failed

    expressions = list(where.filters)
    if where.source:
        expressions.append("source=" + ",".join(where.source))
    if where.kind:
        expressions.append("kind=" + ",".join(where.kind))
    body = {
        "question": question,
        "backend": backend,
        "k": k,
        "filters": expressions,
        "extractive": extractive,
    }
    try:
        response = httpx.post(f"{url}/ask", json=body, timeout=120)
    except httpx.HTTPError as error:
        raise Failed(f"the rag service at {url} did not answer ({error}); retry with --no-service") from None
    if response.status_code != 200:
        raise Failed(f"rag service: HTTP {response.status_code} {response.text[:300]}")
    data = response.json()
    passages = [
        SimpleNamespace(
            rank=p["rank"],
            score=p["score"],
            citation=f"{p['source']} § {p['heading']}" if p.get("heading") else p["source"],
        )
        for p in data["passages"]
    ]
    answer = SimpleNamespace(
        text=data["answer"],
        mode=data["mode"],
        model=data.get("model"),
        citations=[SimpleNamespace(number=c["number"]) for c in data["citations"]],
        passages=passages,
    )
    return SimpleNamespace(
        raw=data,
        answer=answer,
        timings_ms=data["timings_ms"],
        engine=f"{data['engine']} via {url}",
        collection=data["collection"],
    )


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


@click.command()
@click.argument("query", type=NON_BLANK)
@one_backend_option
@retrieval_options
@query_options
@json_option
def search(
    query: str, backend: str, k: int, where: FilterOptions, app_options: AppOptions, as_json: bool
) -> None:
    """Semantic search: print the passages closest to QUERY, with their metadata."""
    from workloads.rag.app import parse_backends

    out: dict[str, list[dict[str, Any]]] = {}
    with errors(), app_options.open() as app:
        filter_ = where.parse()
        for name in parse_backends(backend):
            out[name] = [p.to_dict() for p in app.search(name, query, k=k, filter=filter_)]
    if as_json:
        emit_json({"query": query, "results": out})
        return
    for label, passages in out.items():
        click.echo(f"== {label}")
        for p in passages:
            click.echo(f"[{p['rank']}] {p['score']:.3f}  {p['source']} § {p['heading']}")
            click.echo("    " + p["text"][:240].replace("\n", " ") + ("..." if len(p["text"]) > 240 else ""))
