"""The evaluation computes recall@k, MRR and latency percentiles correctly; the question set is current."""

from __future__ import annotations

from pathlib import Path

import pytest

from workloads.rag.evaluation import (
    QUESTIONS_FILE,
    Expected,
    Question,
    check_questions,
    evaluate,
    first_relevant_rank,
    load_questions,
    markdown_headings,
    mean_reciprocal_rank,
    percentiles,
    recall_at_k,
)
from workloads.rag.retrieval import Passage


def passage(rank: int, source: str, heading: str = "Doc") -> Passage:
    return Passage(rank, f"id{rank}", 1.0 - rank / 10, source, heading, "text", "doc", 0)


def test_recall_and_mrr_by_hand() -> None:
    ranks = [1, 3, None, 2, 6]
    assert recall_at_k(ranks, 1) == pytest.approx(1 / 5)
    assert recall_at_k(ranks, 3) == pytest.approx(3 / 5)
    assert recall_at_k(ranks, 5) == pytest.approx(3 / 5)
    assert recall_at_k(ranks, 10) == pytest.approx(4 / 5)
    assert mean_reciprocal_rank(ranks) == pytest.approx((1 + 1 / 3 + 0 + 1 / 2 + 1 / 6) / 5)
    assert recall_at_k([], 1) == 0.0 and mean_reciprocal_rank([]) == 0.0


def test_relevance_needs_source_and_heading() -> None:
    question = Question("q", "?", (Expected("docs/gpu.md", "sharing one GPU"),))
    ranked = [
        passage(1, "docs/other.md", "Sharing one GPU"),
        passage(2, "docs/gpu.md", "GPU scheduling > Spot pools"),
        passage(3, "docs/gpu.md", "GPU scheduling > Sharing `one` GPU between pods > MIG"),
    ]
    assert first_relevant_rank(question, ranked) == 3
    assert first_relevant_rank(Question("q", "?", (Expected("docs/gpu.md"),)), ranked) == 2
    assert first_relevant_rank(question, ranked[:2]) is None
    either = Question("q", "?", (Expected("docs/x.md"), Expected("docs/other.md")))
    assert first_relevant_rank(either, ranked) == 1


def test_evaluate_scores_a_scripted_retriever() -> None:
    questions = [
        Question("a", "alpha", (Expected("a.md"),)),
        Question("b", "beta", (Expected("b.md"),)),
        Question("c", "gamma", (Expected("c.md"),)),
        Question("d", "delta", (Expected("d.md"),)),
    ]
    rankings = {
        "alpha": ["a.md", "x.md", "y.md"],
        "beta": ["x.md", "y.md", "b.md"],
        "gamma": ["x.md", "y.md", "z.md", "w.md", "v.md", "u.md", "c.md"],
        "delta": ["x.md"] * 10,
    }
    calls: list[tuple[str, int]] = []

    def search(query: str, depth: int) -> tuple[list[Passage], float, float]:
        calls.append((query, depth))
        return [passage(i + 1, s) for i, s in enumerate(rankings[query][:depth])], 2.0, 0.5

    report = evaluate(search, questions, ks=(1, 3, 5), depth=10, latency_repeats=2)
    assert report["recall@1"] == 0.25 and report["recall@3"] == 0.5 and report["recall@5"] == 0.5
    assert report["mrr"] == pytest.approx(round((1 + 1 / 3 + 1 / 7 + 0) / 4, 4))
    assert [q["rank"] for q in report["per_question"]] == [1, 3, 7, None]
    assert report["questions"] == 4 and len(calls) == 4 * 3 and all(d == 10 for _, d in calls)
    assert report["latency_ms"]["embed"]["p50"] == 2.0 and report["latency_ms"]["search"]["n"] == 8


def test_percentiles() -> None:
    result = percentiles([float(x) for x in range(1, 101)])
    assert (
        result["p50"] == pytest.approx(50.5) and result["p95"] == pytest.approx(95.05) and result["n"] == 100
    )
    assert percentiles([])["n"] == 0


def test_markdown_headings_skip_code() -> None:
    text = "# Title\n\n```bash\n# comment\n```\n\n## [Linked](x.md) section ##\n"
    assert markdown_headings(text) == ["Title", "Linked section"]


def test_check_questions_reports_missing_files_and_headings(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs/a.md").write_text("# A\n\n## Real heading\n")
    questions = [
        Question("ok", "?", (Expected("docs/a.md", "real heading"),)),
        Question("no-file", "?", (Expected("docs/b.md"),)),
        Question("no-heading", "?", (Expected("docs/a.md", "Imaginary"),)),
    ]
    problems = check_questions(questions, tmp_path)
    assert len(problems) == 2
    assert problems[0].startswith("no-file") and problems[1].startswith("no-heading")


def test_load_questions_rejects_malformed_sets(tmp_path: Path) -> None:
    bad = tmp_path / "q.yaml"
    bad.write_text("questions:\n  - id: a\n    question: x\n")
    with pytest.raises(ValueError, match="malformed"):
        load_questions(bad)
    bad.write_text(
        "questions:\n  - {id: a, question: x, expected: [{source: a.md}]}\n"
        "  - {id: a, question: y, expected: [{source: a.md}]}\n"
    )
    with pytest.raises(ValueError, match="duplicate"):
        load_questions(bad)


def test_the_packaged_question_set_matches_the_repository(repo_root: Path) -> None:
    questions = load_questions(QUESTIONS_FILE)
    assert len(questions) >= 20
    assert check_questions(questions, repo_root) == []
