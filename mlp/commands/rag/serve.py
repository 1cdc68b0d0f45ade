"""``mlp rag serve`` (the warm HTTP API) and ``mlp rag serve-bench`` (its latency, against cold asks)."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import click

from mlp.common import BadInput, Failed

from .options import AppOptions, backend_choice, errors, query_options

LOOPBACK = ("127.0.0.1", "localhost", "::1")
backends_option = backend_choice(
    default="qdrant", help="Backends served (the first is the default of requests)."
)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (loopback by default).")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True, help="Port to bind.")
@backends_option
@query_options
def serve(host: str, port: int, backend: str, app_options: AppOptions) -> None:
    """Serve ask/search/ingest/status over HTTP with the model and stores kept warm.

    The OpenAPI schema is at /openapi.json and interactive docs at /docs. While it runs,
    `mlp rag ask` on the same machine sends its questions here (so no process opens the
    embedded stores beside it), and ingests started with POST /ingest run inside it while
    questions keep being answered. Stop it with Ctrl-C.
    """
    import uvicorn

    from workloads.rag.app import parse_backends
    from workloads.rag.service import SERVE_FILE, create_app, warm, write_serve_file

    if host not in LOOPBACK:
        click.echo(f"warning: binding {host}: the API has no authentication", err=True)
    backends = parse_backends(backend)
    with errors(), app_options.open() as app:
        seconds = warm(app, backends[0])
        click.echo(f"warm in {seconds:.1f} s ({', '.join(backends)}; alias {app.settings.alias})", err=True)
        api = create_app(app, list(backends))
        url = f"http://{host}:{port}"
        serve_file = write_serve_file(app.settings.home, url) if app_options.target == "local" else None
        click.echo(f"serving on {url} (OpenAPI: {url}/openapi.json)", err=True)

        def stop(signum: int, frame: object) -> None:
            raise SystemExit(0)

        # uvicorn re-raises SIGTERM after its graceful shutdown; this handler turns it into an
        # exit that runs the cleanup below (the service file is removed).
        signal.signal(signal.SIGTERM, stop)
        try:
            uvicorn.run(api, host=host, port=port, log_level="warning")
        finally:
            if serve_file is not None:
                (app.settings.home / SERVE_FILE).unlink(missing_ok=True)


@click.command("serve-bench")
@click.option(
    "--repeats", type=click.IntRange(1), default=3, show_default=True, help="Rounds over the question set."
)
@click.option(
    "--cold", type=click.IntRange(0), default=3, show_default=True, help="Cold `mlp rag ask` runs to time."
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("build/rag/serve-bench.json"),
    show_default=True,
    help="Report (a PNG is written beside it).",
)
@query_options
def serve_bench(repeats: int, cold: int, out: Path, app_options: AppOptions) -> None:
    """Measure warm per-question latency through the service against cold `mlp rag ask` runs.

    Starts `mlp rag serve` in its own process on a free loopback port, asks every question of the
    evaluation set `--repeats` times over HTTP (extractive answers), then times `--cold` fresh
    `mlp rag ask` processes with no service running. Writes JSON and a latency plot.
    """
    from workloads.benchmarks import rag_serve
    from workloads.rag.evaluation import load_questions

    questions = [q.question for q in load_questions()]
    with errors(), app_options.open() as app:
        if app.store("qdrant").resolve(app.settings.alias) is None:
            raise BadInput("no index yet: run `mlp rag ingest` first")
    try:
        run = rag_serve.measure(questions, repeats, cold)
    except rag_serve.ServeBenchError as error:
        raise Failed(str(error)) from None
    report = rag_serve.report(run, len(questions), repeats)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    rag_serve.plot(run, out.with_suffix(".png"))
    click.echo(
        f"warm: p50 {report['warm_http_ms']['p50']} ms, p95 {report['warm_http_ms']['p95']} ms over "
        f"{len(run.warm_ms)} questions; cold ask median {report['cold_ask_wall_s']['median']} s; report {out}"
    )
