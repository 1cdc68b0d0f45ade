"""``mlp rag serve``: the HTTP API answers, searches, reports status, ingests in the background while
questions keep being answered, publishes an OpenAPI schema, and `mlp rag ask` routes through it."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from mlp.cli import main
from workloads.rag.app import RagApp
from workloads.rag.service import create_app, running_service, write_serve_file
from workloads.rag.settings import RagSettings

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

CORPUS = {
    "docs/gpu-scheduling.md": (
        "# GPU scheduling\n\n## Sharing one GPU between pods\n\n"
        "Time-slicing lets several pods share one GPU by advertising replicas. "
        "MIG partitions a GPU into isolated instances.\n\n"
        "## Spot pools\n\nSpot GPU pools scale to zero when idle.\n"
    ),
    "docs/backups.md": "# Backups\n\n## Restore\n\nRestores verify every checksum before switching the alias.\n",
}
QUESTIONS = "questions: []\n"


@pytest.fixture
def app(make_rag_repo: Callable[..., Path]) -> Iterator[RagApp]:
    repo = make_rag_repo(CORPUS, QUESTIONS, embedder="hash")
    rag = RagApp(RagSettings.from_env(home=repo / ".mlp" / "rag"), root=repo)
    rag.ingest(["qdrant"], rag.corpus(results=False))
    yield rag
    rag.close()


def test_ask_search_status_and_schema(app: RagApp) -> None:
    client = TestClient(create_app(app, ["qdrant"]))
    answer = client.post("/ask", json={"question": "How do I share one GPU between pods?"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (
        body["mode"] == "extractive"
        and body["citations"]
        and body["passages"][0]["source"] == "docs/gpu-scheduling.md"
    )
    found = client.post(
        "/search", json={"query": "checksum restore", "k": 1, "filters": ["source=docs/backups.md"]}
    )
    assert [p["source"] for p in found.json()["passages"]] == ["docs/backups.md"]
    status = client.get("/status").json()
    assert status["backends"]["qdrant"]["points"] >= 3 and status["ingest"]["state"] == "idle"
    schema = client.get("/openapi.json").json()
    assert {"/ask", "/search", "/ingest", "/status", "/healthz"} <= set(schema["paths"])
    assert client.post("/ask", json={"question": "   "}).status_code == 422
    assert client.post("/ask", json={"question": "x", "backend": "weaviate"}).status_code == 422
    assert client.post("/search", json={"query": "x", "filters": ["nonsense"]}).status_code == 422


def test_questions_are_answered_while_an_ingest_runs(app: RagApp, monkeypatch: pytest.MonkeyPatch) -> None:
    embed = app.embedder.embed

    def slow_bulk(texts):  # type: ignore[no-untyped-def]
        if len(texts) > 1:  # the ingest's batches, not the questions
            time.sleep(0.5)
        return embed(texts)

    monkeypatch.setattr(app.embedder, "embed", slow_bulk)
    (app.root / "docs" / "more.md").write_text(
        "# More\n\n" + "\n\n".join(f"## Part {i}\n\nText about topic {i} and GPUs." for i in range(60))
    )
    client = TestClient(create_app(app, ["qdrant"]))
    started = client.post("/ingest", json={"results": False})
    assert started.status_code == 202 and started.json()["state"] == "running"
    assert client.post("/ingest", json={}).status_code == 409
    answered = 0
    deadline = time.monotonic() + 120
    while client.get("/status").json()["ingest"]["state"] == "running" and time.monotonic() < deadline:
        reply = client.post("/ask", json={"question": "share one GPU between pods"})
        assert reply.status_code == 200, reply.text
        answered += 1
    final = client.get("/status").json()
    assert final["ingest"]["state"] == "done", final
    assert answered >= 1, "a question was answered while the ingest ran"
    assert (
        client.post("/search", json={"query": "topic 59", "k": 3}).json()["passages"][0]["source"]
        == "docs/more.md"
    )


def test_ask_goes_through_a_running_service(app: RagApp) -> None:
    import uvicorn

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(app, ["qdrant"]), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        write_serve_file(app.settings.home, f"http://127.0.0.1:{port}")
        assert running_service(app.settings.home) == f"http://127.0.0.1:{port}"
        routed = CliRunner().invoke(main, ["rag", "ask", "How do I share one GPU between pods?"])
        assert routed.exit_code == 0, routed.output
        assert f"via http://127.0.0.1:{port}" in routed.output and "docs/gpu-scheduling.md" in routed.output
        # Opening the embedded store beside the service is what routing avoids: a clean refusal.
        direct = CliRunner().invoke(main, ["rag", "ask", "share one GPU", "--no-service"])
        assert (
            direct.exit_code == 1 and "another process" in direct.output and "Traceback" not in direct.output
        )
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        (app.settings.home / "serve.json").unlink(missing_ok=True)
    assert running_service(app.settings.home) is None


def test_serve_bench_times_the_warm_service_against_cold_asks(
    make_rag_repo: Callable[..., Path], tmp_path: Path
) -> None:
    import json

    from workloads.rag.evaluation import load_questions

    repo = make_rag_repo(CORPUS, QUESTIONS, embedder="hash")
    rag = RagApp(RagSettings.from_env(home=repo / ".mlp" / "rag"), root=repo)
    rag.ingest(["qdrant"], rag.corpus(results=False))
    rag.close()  # the benchmark's service opens the embedded store in its own process
    out = tmp_path / "bench" / "serve-bench.json"
    done = CliRunner().invoke(
        main, ["rag", "serve-bench", "--repeats", "2", "--cold", "1", "--out", str(out)]
    )
    assert done.exit_code == 0, done.output
    report = json.loads(out.read_text())
    asked = len(load_questions())
    assert report["questions"] == asked and report["repeats"] == 2
    warm = report["warm_http_ms"]
    assert 0 < warm["p50"] <= warm["p95"] <= warm["max"]
    assert report["warm_server_side_ms"]["p50"] > 0
    assert len(report["cold_ask_wall_s"]["runs"]) == 1 and report["cold_ask_wall_s"]["median"] > 0
    assert out.with_suffix(".png").stat().st_size > 0
    assert f"over {2 * asked} questions" in done.output
    assert running_service(repo / ".mlp" / "rag") is None  # the service it started is gone


def test_serve_bench_without_an_index_is_refused(make_rag_repo: Callable[..., Path], tmp_path: Path) -> None:
    make_rag_repo(CORPUS, QUESTIONS, embedder="hash")
    done = CliRunner().invoke(main, ["rag", "serve-bench", "--out", str(tmp_path / "r.json")])
    assert done.exit_code == 2 and "mlp rag ingest" in done.output and "Traceback" not in done.output
    assert not (tmp_path / "r.json").exists()
