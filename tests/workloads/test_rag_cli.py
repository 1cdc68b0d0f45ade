"""``mlp rag`` end to end on a fixture repository, with the model-free hashing embedder (fast)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from mlp.cli import main

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

CORPUS = {
    "README.md": "# Lab\n\nAn ML platform.\n\n## Quick start\n\nRun make demo to plan and run everything locally.\n",
    "docs/gpu-scheduling.md": (
        "# GPU scheduling\n\n## Sharing one GPU between pods\n\n"
        "Time-slicing lets several pods share one GPU by advertising replicas. "
        "MIG partitions a GPU into isolated instances.\n\n"
        "## Spot pools\n\nSpot GPU pools scale to zero when idle.\n"
    ),
    "adr/0001-vector-databases.md": "# Vector databases\n\n## Decision\n\nQdrant and Milvus behind one interface.\n",
}
QUESTIONS = """
questions:
  - id: sharing
    question: share one GPU between pods time-slicing
    expected: [{source: docs/gpu-scheduling.md, heading: Sharing one GPU}]
  - id: spot
    question: spot GPU pools scale to zero idle
    expected: [{source: docs/gpu-scheduling.md, heading: Spot pools}]
  - id: decision
    question: Qdrant and Milvus behind one interface
    expected: [{source: adr/0001-vector-databases.md}]
"""


@pytest.fixture
def repo(make_rag_repo: Callable[..., Path]) -> Path:
    return make_rag_repo(CORPUS, QUESTIONS, embedder="hash")


def run(*args: str) -> Result:
    result = CliRunner().invoke(main, ["rag", *args], catch_exceptions=False)
    return result


def json_out(result: Result) -> object:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_ingest_ask_search_on_both_backends(repo: Path) -> None:
    report = json_out(run("ingest", "--json"))
    assert (
        report["documents"] == 3
        and report["points"]["qdrant"] == report["points"]["milvus"] == report["chunks"]
    )
    assert (repo / ".mlp" / "rag" / "qdrant").is_dir() and (repo / ".mlp" / "rag" / "milvus.db").is_dir()

    again = json_out(run("ingest", "--json"))
    assert again["unchanged"] == 3 and again["embedded"] == 0

    answer = json_out(run("ask", "How do I share one GPU between pods?", "--backend", "all", "--json"))
    assert [r["backend"] for r in answer["results"]] == ["qdrant", "milvus"]
    for result in answer["results"]:
        assert result["mode"] == "extractive" and result["answer"].startswith("Extractive answer")
        assert result["citations"] and result["passages"][0]["source"] == "docs/gpu-scheduling.md"
        assert set(result["timings_ms"]) == {"embed", "search", "generate"}

    human = run("ask", "How do I share one GPU between pods?")
    assert (
        human.exit_code == 0 and "docs/gpu-scheduling.md § GPU scheduling > Sharing one GPU" in human.output
    )

    found = json_out(run("search", "Qdrant Milvus", "--backend", "milvus", "--kind", "adr", "--json"))
    assert {p["source"] for p in found["results"]["milvus"]} == {"adr/0001-vector-databases.md"}
    found = json_out(run("search", "GPU", "-f", "source!=docs/gpu-scheduling.md", "-k", "10", "--json"))
    assert "docs/gpu-scheduling.md" not in {p["source"] for p in found["results"]["qdrant"]}


def test_eval_writes_recall_and_mrr_per_backend(repo: Path) -> None:
    out = repo / "build" / "rag" / "eval.json"
    report = json_out(run("eval", "--questions", "questions.yaml", "--repeats", "1", "--json"))
    written = json.loads(out.read_text())
    assert written["backends"].keys() == report["backends"].keys() == {"qdrant", "milvus"}
    assert out.with_suffix(".png").is_file()
    for result in written["backends"].values():
        assert {"recall@1", "recall@3", "recall@5", "mrr", "latency_ms", "per_question"} <= set(result)
        assert 0.0 <= result["recall@1"] <= result["recall@3"] <= result["recall@5"] <= 1.0
        assert result["latency_ms"]["query_end_to_end"]["n"] == 3
    assert written["questions"] == 3 and written["ingest"]["documents"] == 3

    (repo / "questions.yaml").write_text(QUESTIONS.replace("Spot pools", "Preemptible pools"))
    stale = run("eval", "--questions", "questions.yaml", "--no-ingest", "--no-plot")
    assert stale.exit_code == 3 and "Preemptible pools" in stale.output


def test_reindex_backup_restore_and_collections(repo: Path) -> None:
    first = json_out(run("ingest", "--json", "--backend", "qdrant"))
    reindexed = json_out(run("reindex", "--json", "--backend", "qdrant", "--keep-old"))
    listing = json_out(run("collections", "--backend", "qdrant", "--json"))
    qdrant = listing["qdrant"]
    assert qdrant["aliases"] == {"mlp_docs": reindexed["collections"]["qdrant"]}
    assert set(qdrant["collections"]) == {first["collections"]["qdrant"], reindexed["collections"]["qdrant"]}

    rollback = run("alias", "mlp_docs", first["collections"]["qdrant"], "--backend", "qdrant")
    assert rollback.exit_code == 0
    assert run("drop", reindexed["collections"]["qdrant"], "--backend", "qdrant", "--yes").exit_code == 0

    backups = json_out(run("backup", "--backend", "qdrant", "--json", "--out-dir", str(repo / "bk")))
    archive = backups[0]["archive"]
    data = Path(archive).read_bytes()
    damaged = repo / "bk" / "damaged.tar.gz"
    damaged.write_bytes(
        data[: len(data) // 2] + bytes(b ^ 0xFF for b in data[len(data) // 2 : len(data) // 2 + 4096])
    )
    refused = run(
        "restore", str(damaged), "--backend", "qdrant", "--collection", "restored", "--switch-alias"
    )
    assert refused.exit_code == 3 and "Traceback" not in refused.output, refused.output
    assert "damaged" in refused.output or "checksum" in refused.output
    after = json_out(run("collections", "--backend", "qdrant", "--json"))["qdrant"]
    assert "restored" not in after["collections"] and after["aliases"] == {
        "mlp_docs": first["collections"]["qdrant"]
    }
    restored = json_out(
        run("restore", archive, "--backend", "qdrant", "--collection", "restored", "--switch-alias", "--json")
    )
    assert restored["ok"] and restored["restored"] == first["chunks"]
    assert json_out(run("collections", "--backend", "qdrant", "--json"))["qdrant"]["aliases"] == {
        "mlp_docs": "restored"
    }


def test_errors_have_meaningful_exit_codes(repo: Path) -> None:
    no_index = run("ask", "anything")
    assert no_index.exit_code == 1 and "mlp rag ingest" in no_index.output
    bad_filter = run("search", "x", "-f", "nonsense")
    assert bad_filter.exit_code == 2 and "cannot parse filter" in bad_filter.output
    unknown_field = run("search", "x", "-f", "colour=red")
    assert unknown_field.exit_code == 2 and "unknown payload field 'colour'" in unknown_field.output
    assert run("ask").exit_code == 2
    empty = run("ask", "  ")
    assert empty.exit_code == 2 and "must not be empty" in empty.output
    assert run("ingest", "--backend", "qdrant").exit_code == 0
    dead_llm = run("ask", "x", "--llm-url", "http://127.0.0.1:9/v1", "--llm-model", "m")
    assert dead_llm.exit_code == 1 and "chat endpoint" in dead_llm.output
    extractive = run("ask", "x", "--llm-url", "http://127.0.0.1:9/v1", "--extractive")
    assert extractive.exit_code == 0 and "Extractive answer" in extractive.output


def test_help_lists_the_subcommands() -> None:
    result = CliRunner().invoke(main, ["rag", "--help"])
    assert result.exit_code == 0
    for command in ("ingest", "ask", "search", "eval", "bench", "reindex", "backup", "restore", "crash-test"):
        assert command in result.output
