"""Corpus discovery and the rendering of JSON experiment reports to text facts."""

from __future__ import annotations

import json
from pathlib import Path

from workloads.rag.sources import discover, kind_of, render_result


def write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_discover_finds_docs_and_results_with_relative_sources(tmp_path: Path) -> None:
    write(tmp_path, "README.md", "# Project\n\nHello.\n")
    write(tmp_path, "docs/a.md", "# A\n\nText.\n")
    write(tmp_path, "docs/sub/b.txt", "Plain text.\n")
    write(tmp_path, "docs/.hidden/c.md", "# Hidden\n")
    write(tmp_path, "docs/empty.md", "   \n")
    write(tmp_path, "docs/image.png", "not text")
    write(tmp_path, "adr/0001-x.md", "# Decision\n")
    write(tmp_path, "build/bench/r.json", json.dumps({"qps": 12.5}))
    write(tmp_path, "build/rag/eval.json", json.dumps({"mrr": 0.5}))  # the RAG's own report
    write(tmp_path, "build/bad.json", "{not json")

    docs = discover(tmp_path, ["README.md", "docs", "adr", "missing-dir"])
    by_source = {d.source: d for d in docs}
    assert sorted(by_source) == [
        "README.md",
        "adr/0001-x.md",
        "build/bench/r.json",
        "docs/a.md",
        "docs/sub/b.txt",
    ]
    assert by_source["README.md"].kind == "readme" and by_source["README.md"].title == "Project"
    assert by_source["adr/0001-x.md"].kind == "adr"
    assert by_source["docs/sub/b.txt"].markdown is False and by_source["docs/sub/b.txt"].title == "B"
    assert by_source["build/bench/r.json"].kind == "result"
    assert "- qps: 12.5" in by_source["build/bench/r.json"].text

    assert [d.source for d in discover(tmp_path, ["docs"], results=None)] == ["docs/a.md", "docs/sub/b.txt"]


def test_content_hash_changes_with_the_bytes(tmp_path: Path) -> None:
    write(tmp_path, "docs/a.md", "# A\n\nOne.\n")
    first = discover(tmp_path, ["docs"], results=None)[0].content_hash
    write(tmp_path, "docs/a.md", "# A\n\nTwo.\n")
    assert discover(tmp_path, ["docs"], results=None)[0].content_hash != first


def test_kind_of() -> None:
    assert kind_of("README.md") == "readme"
    assert kind_of("docs/README.md") == "doc"
    assert kind_of("adr/0003-x.md") == "adr"
    assert kind_of("build/eval.json") == "result"


def test_results_render_to_labelled_facts_under_headings() -> None:
    report = {
        "created_at": "2026-11-01",
        "backends": [
            {"name": "qdrant-edge", "qps": 4321.123456, "recall@10": 0.993},
            {"name": "milvus-lite", "qps": 23, "ok": True},
        ],
        "latency_ms": list(range(100)),
        "config": {"ef": 64, "tags": ["a", "b"], "note": None},
    }
    text = render_result("build/bench/vectordb.json", report)
    assert text is not None
    assert text.startswith("# Experiment results: bench vectordb\n")
    assert "`build/bench/vectordb.json`" in text
    assert "## Summary" in text and "- created_at: 2026-11-01" in text
    assert "## backends" in text
    assert "- backends qdrant-edge qps: 4321" in text
    assert "- backends qdrant-edge recall@10: 0.993" in text
    assert "- backends milvus-lite ok: true" in text
    assert "- latency_ms: 100 values, min 0, mean 49.5, max 99" in text
    assert "- config tags: a, b" in text and "- config note: null" in text


def test_results_without_facts_are_skipped() -> None:
    assert render_result("build/x.json", {}) is None
    assert render_result("build/x.json", []) is None


def test_fact_budget_bounds_huge_reports() -> None:
    report = {"runs": [{"name": f"run{i}", "a": i, "b": i} for i in range(1000)]}
    text = render_result("build/x.json", report)
    assert text is not None and text.count("\n- ") <= 400
