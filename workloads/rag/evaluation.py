"""Retrieval evaluation: recall@k and MRR against a labelled question set, plus query latency.

A question is labelled with the source file(s) that answer it and, optionally, a heading; a
retrieved passage is relevant when its source matches and the expected heading occurs in its
heading path (case-insensitive). With one relevant section per question, recall@k is the share of
questions with a relevant passage in the top k, and MRR averages 1/rank of the first relevant
passage (0 when none is in the top ``depth``).

Quality is a benchmark figure written to ``build/rag/eval.json``; the tests check that these
numbers are computed correctly, not what they are.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from workloads.figures import save_figure
from workloads.rag.retrieval import Passage
from workloads.rag.sources import first_heading

DEFAULT_KS: tuple[int, ...] = (1, 3, 5)
QUESTIONS_FILE = Path(__file__).with_name("eval_questions.yaml")


@dataclass(frozen=True)
class Expected:
    """A relevant location: a source path and, optionally, a heading in it."""

    source: str
    heading: str | None = None

    def matches(self, source: str, heading: str) -> bool:
        """Whether a passage at ``source``/``heading`` is relevant."""
        if source != self.source:
            return False
        return self.heading is None or _norm(self.heading) in _norm(heading)


@dataclass(frozen=True)
class Question:
    """A labelled question."""

    id: str
    question: str
    expected: tuple[Expected, ...]
    tags: tuple[str, ...] = ()


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("`", "").replace("*", "")).strip().lower()


def load_questions(path: Path = QUESTIONS_FILE) -> list[Question]:
    """Load a question set.

    Raises:
        ValueError: On a malformed file or duplicate ids.
    """
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("questions"), list):
        raise ValueError(f"{path}: expected a mapping with a 'questions' list")
    questions: list[Question] = []
    for index, raw in enumerate(data["questions"]):
        try:
            expected = tuple(Expected(str(e["source"]), e.get("heading")) for e in raw["expected"])
            questions.append(
                Question(str(raw["id"]), str(raw["question"]), expected, tuple(raw.get("tags", ())))
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"{path}: question #{index + 1} is malformed ({exc})") from exc
        if not expected:
            raise ValueError(f"{path}: question {raw['id']!r} has no expected source")
    ids = [q.id for q in questions]
    if len(ids) != len(set(ids)):
        raise ValueError(f"{path}: duplicate question ids")
    return questions


def markdown_headings(text: str) -> list[str]:
    """Every ATX heading of a Markdown text (outside code fences), cleaned like the chunker does."""
    headings: list[str] = []
    fence: str | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith(("```", "~~~")):
            fence = None if fence else stripped[:3]
            continue
        match = re.match(r"^#{1,6}\s+(.*?)(?:\s+#+)?\s*$", stripped)
        if fence is None and match:
            headings.append(re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", match.group(1)))
    return headings


def check_questions(questions: Sequence[Question], root: Path) -> list[str]:
    """Problems with a question set against the repository: missing files or headings.

    Returns:
        One message per problem; empty when every expected source and heading exists.
    """
    problems: list[str] = []
    for question in questions:
        for exp in question.expected:
            path = root / exp.source
            if not path.is_file():
                problems.append(f"{question.id}: {exp.source} does not exist")
                continue
            if exp.heading is None:
                continue
            text = path.read_text(encoding="utf-8", errors="replace")
            headings = [*markdown_headings(text), first_heading(text) or ""]
            if not any(_norm(exp.heading) in _norm(h) for h in headings):
                problems.append(f"{question.id}: no heading containing {exp.heading!r} in {exp.source}")
    return problems


@dataclass
class QuestionResult:
    """Where the first relevant passage ranked for one question (``None``: not in the top ``depth``)."""

    id: str
    rank: int | None
    top: list[str] = field(default_factory=list)
    embed_ms: float = 0.0
    search_ms: float = 0.0


def first_relevant_rank(question: Question, passages: Sequence[Passage]) -> int | None:
    """1-based rank of the first relevant passage, or ``None``."""
    for position, passage in enumerate(passages, start=1):
        if any(e.matches(passage.source, passage.heading) for e in question.expected):
            return position
    return None


def recall_at_k(ranks: Sequence[int | None], k: int) -> float:
    """Share of questions whose first relevant passage ranks within ``k``."""
    if not ranks:
        return 0.0
    return sum(1 for r in ranks if r is not None and r <= k) / len(ranks)


def mean_reciprocal_rank(ranks: Sequence[int | None]) -> float:
    """Mean of 1/rank, counting misses as 0."""
    if not ranks:
        return 0.0
    return sum(1.0 / r for r in ranks if r is not None) / len(ranks)


def percentiles(values_ms: Sequence[float]) -> dict[str, float]:
    """p50/p95/mean of a latency sample, in milliseconds."""
    if not values_ms:
        return {"p50": 0.0, "p95": 0.0, "mean": 0.0, "n": 0}
    arr = np.asarray(values_ms, dtype=float)
    return {
        "p50": round(float(np.percentile(arr, 50)), 3),
        "p95": round(float(np.percentile(arr, 95)), 3),
        "mean": round(float(arr.mean()), 3),
        "n": len(arr),
    }


SearchFn = Callable[[str, int], tuple[list[Passage], float, float]]
"""``search(question, depth) -> (passages, embed_ms, search_ms)``."""


def evaluate(
    search: SearchFn,
    questions: Sequence[Question],
    *,
    ks: Sequence[int] = DEFAULT_KS,
    depth: int = 10,
    latency_repeats: int = 3,
) -> dict[str, Any]:
    """Run every question, score the rankings and time the queries.

    Args:
        search: The retrieval function under test.
        questions: The labelled questions.
        ks: Cut-offs for recall@k.
        depth: Passages retrieved per question (MRR counts ranks up to it).
        latency_repeats: Extra timed runs of every question after the scored one (warm caches).

    Returns:
        ``{"recall@k": ..., "mrr": ..., "questions": n, "latency_ms": {...}, "per_question": [...]}``.
    """
    depth = max(depth, *ks)
    results: list[QuestionResult] = []
    embed_ms: list[float] = []
    search_ms: list[float] = []
    total_ms: list[float] = []
    for question in questions:
        passages, e_ms, s_ms = search(question.question, depth)
        results.append(
            QuestionResult(
                question.id,
                first_relevant_rank(question, passages),
                [f"{p.source} § {p.heading}" for p in passages[: max(ks)]],
                round(e_ms, 3),
                round(s_ms, 3),
            )
        )
    for _ in range(latency_repeats):
        for question in questions:
            t0 = time.perf_counter()
            _, e_ms, s_ms = search(question.question, depth)
            total_ms.append((time.perf_counter() - t0) * 1000)
            embed_ms.append(e_ms)
            search_ms.append(s_ms)
    ranks = [r.rank for r in results]
    report: dict[str, Any] = {f"recall@{k}": round(recall_at_k(ranks, k), 4) for k in ks}
    report["mrr"] = round(mean_reciprocal_rank(ranks), 4)
    report["questions"] = len(questions)
    report["depth"] = depth
    report["latency_ms"] = {
        "query_end_to_end": percentiles(total_ms),
        "embed": percentiles(embed_ms),
        "search": percentiles(search_ms),
    }
    report["per_question"] = [r.__dict__ for r in results]
    return report


def plot(report: dict[str, Any], path: Path) -> Path:
    """Bar chart of recall@k and MRR per backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    backends = list(report["backends"])
    metrics = [m for m in next(iter(report["backends"].values())) if m.startswith("recall@")] + ["mrr"]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    width = 0.8 / max(len(backends), 1)
    for i, backend in enumerate(backends):
        values = [report["backends"][backend][m] for m in metrics]
        ax.bar(np.arange(len(metrics)) + i * width, values, width, label=backend)
    ax.set_xticks(np.arange(len(metrics)) + width * (len(backends) - 1) / 2, metrics)
    ax.set_ylim(0, 1.05)
    ax.set_title(f"RAG retrieval on {report['questions']} labelled questions ({report['embedder']})")
    ax.legend()
    return save_figure(fig, path, dpi=120)
