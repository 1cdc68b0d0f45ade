"""``mlp rag serve`` (the warm HTTP API) and ``mlp rag serve-bench`` (its latency, against cold asks)."""

from __future__ import annotations

import json
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click

from mlp.common import BadInput, Failed

from .options import AppOptions, backend_choice, errors, query_options

LOOPBACK = ("127.0.0.1", "localhost", "::1")
backends_option = backend_choice(
    default="qdrant", help="Backends served (the first is the default of requests)."
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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


def _post(client: Any, url: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(url, json=body)
    if response.status_code != 200:
        raise Failed(f"{url}: HTTP {response.status_code} {response.text[:300]}")
    result: dict[str, Any] = response.json()
    return result


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
    import httpx

    from workloads.rag.evaluation import load_questions

    questions = [q.question for q in load_questions()]
    with errors(), app_options.open() as app:
        if app.store("qdrant").resolve(app.settings.alias) is None:
            raise BadInput("no index yet: run `mlp rag ingest` first")
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    # The service in its own process, as users run it; this process is only its client.
    began = time.perf_counter()
    service = subprocess.Popen(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "mlp", "rag", "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    client = httpx.Client(timeout=60)  # one keep-alive connection, as a client application holds
    warm_ms: list[float] = []
    server_ms: list[float] = []
    try:
        while True:
            if service.poll() is not None:
                raise Failed(
                    f"mlp rag serve exited: {(service.stderr.read() if service.stderr else '')[-400:]}"
                )
            try:
                if client.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        warm_s = time.perf_counter() - began
        for _ in range(repeats):
            for question in questions:
                began = time.perf_counter()
                result = _post(client, f"{base}/ask", {"question": question, "extractive": True})
                warm_ms.append((time.perf_counter() - began) * 1000)
                server_ms.append(sum(result["timings_ms"].values()))
    finally:
        client.close()
        service.terminate()
        try:
            service.wait(timeout=20)
        except subprocess.TimeoutExpired:
            service.kill()
    cold_s: list[float] = []
    for question in questions[:cold]:
        began = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "mlp", "rag", "ask", question, "--extractive", "--no-service"],
            capture_output=True,
            text=True,
            check=False,
        )
        cold_s.append(time.perf_counter() - began)
        if done.returncode != 0:
            raise Failed(f"cold ask failed: {done.stderr.strip()[-300:]}")

    def pct(values: list[float], q: float) -> float:
        ordered = sorted(values)
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)

    report: dict[str, Any] = {
        "benchmark": "rag-serve",
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "questions": len(questions),
        "repeats": repeats,
        "service_ready_s": round(warm_s, 2),
        "warm_http_ms": {"p50": pct(warm_ms, 0.5), "p95": pct(warm_ms, 0.95), "max": round(max(warm_ms), 2)},
        "warm_server_side_ms": {"p50": pct(server_ms, 0.5), "p95": pct(server_ms, 0.95)},
        "cold_ask_wall_s": {
            "runs": [round(s, 2) for s in cold_s],
            "median": round(statistics.median(cold_s), 2) if cold_s else None,
        },
        "target": {"warm_p95_ms": 50, "cold_ask_s": 3},
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    _plot(warm_ms, cold_s, out.with_suffix(".png"))
    click.echo(
        f"warm: p50 {report['warm_http_ms']['p50']} ms, p95 {report['warm_http_ms']['p95']} ms over "
        f"{len(warm_ms)} questions; cold ask median {report['cold_ask_wall_s']['median']} s; report {out}"
    )


def _plot(warm_ms: list[float], cold_s: list[float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    axes[0].hist(warm_ms, bins=30)
    axes[0].axvline(50, color="red", linestyle="--", label="target p95 50 ms")
    axes[0].set_xlabel("warm /ask latency (ms)")
    axes[0].legend()
    axes[1].bar(range(len(cold_s)), cold_s)
    axes[1].axhline(3, color="red", linestyle="--", label="target 3 s")
    axes[1].set_ylabel("cold `mlp rag ask` wall (s)")
    axes[1].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
