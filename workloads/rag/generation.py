"""Answers with citations: from an OpenAI-compatible chat endpoint, or extractive without one.

The LLM sees the retrieved passages numbered ``[1]..[k]`` and is told to answer only from them
and cite by number; the citations returned are the passages it actually cited. Without an LLM
endpoint (no package here ships a generative model's weights), the answer is *extractive*: the
sentences of the retrieved passages closest to the question, quoted verbatim with their citation
numbers, and labelled as extractive so nobody mistakes it for a generated answer.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from workloads.rag.embeddings import Embedder
from workloads.rag.retrieval import Passage

EXTRACTIVE_LABEL = "Extractive answer (no LLM endpoint configured): sentences quoted from the cited passages."

SYSTEM_PROMPT = (
    "You answer questions about an ML platform's documentation and experiment results. "
    "Use only the numbered passages provided. Cite every claim with the passage number in square "
    "brackets, like [2]. If the passages do not contain the answer, say so plainly."
)


class GenerationError(RuntimeError):
    """The chat endpoint failed or answered in an unexpected shape."""


@dataclass(frozen=True)
class Citation:
    """A passage an answer relies on."""

    number: int
    source: str
    heading: str
    chunk_id: str
    score: float


@dataclass(frozen=True)
class Answer:
    """An answer and where it comes from.

    Attributes:
        text: The answer text, with ``[n]`` markers.
        mode: ``llm`` or ``extractive``.
        citations: Passages cited, by number.
        passages: Every retrieved passage (the context).
        model: Chat model used, for ``llm`` answers.
    """

    text: str
    mode: Literal["llm", "extractive"]
    citations: list[Citation]
    passages: list[Passage] = field(default_factory=list)
    model: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            "answer": self.text,
            "mode": self.mode,
            "model": self.model,
            "citations": [c.__dict__ for c in self.citations],
            "passages": [p.to_dict() for p in self.passages],
        }


def cite(passages: Sequence[Passage], numbers: Sequence[int]) -> list[Citation]:
    """Citations for the given passage numbers, in order of first use, ignoring unknown numbers."""
    by_rank = {p.rank: p for p in passages}
    seen: list[int] = []
    for n in numbers:
        if n in by_rank and n not in seen:
            seen.append(n)
    return [
        Citation(n, by_rank[n].source, by_rank[n].heading, by_rank[n].id, round(by_rank[n].score, 4))
        for n in seen
    ]


def cited_numbers(text: str) -> list[int]:
    """Numbers cited as ``[n]`` or ``[n, m]`` in ``text``, in order."""
    numbers: list[int] = []
    for group in re.findall(r"\[(\d+(?:\s*,\s*\d+)*)\]", text):
        numbers += [int(n) for n in re.split(r"\s*,\s*", group)]
    return numbers


# --- LLM ---------------------------------------------------------------------------------------


class ChatGenerator:
    """Answers through ``POST {base_url}/chat/completions`` of an OpenAI-compatible server.

    Args:
        base_url: Endpoint base, e.g. ``http://llm.kserve.svc/openai/v1`` or a vLLM ``/v1``.
        model: Model name; ``None`` uses the first model ``GET {base_url}/models`` lists.
        api_key: Bearer token, if needed.
        timeout: Seconds per request.
        max_tokens: Answer length bound.
    """

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        *,
        api_key: str | None = None,
        timeout: float = 120.0,
        max_tokens: int = 512,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._model = model
        self._api_key = api_key
        self.timeout = timeout
        self.max_tokens = max_tokens

    def _http(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        request = urllib.request.Request(
            self.base_url + path,
            data=json.dumps(body).encode() if body is not None else None,
            headers=headers,
            method=method,
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                return dict(json.loads(response.read()))
        except (urllib.error.URLError, json.JSONDecodeError, TimeoutError) as exc:
            raise GenerationError(f"chat endpoint {self.base_url} failed: {exc}") from exc

    @property
    def model(self) -> str:
        """The chat model (asked from the endpoint when not configured)."""
        if self._model is None:
            listed = self._http("GET", "/models").get("data") or []
            if not listed:
                raise GenerationError(f"{self.base_url}/models lists no model; set MLP_RAG_LLM_MODEL")
            self._model = str(listed[0]["id"])
        return self._model

    def request_body(self, question: str, passages: Sequence[Passage]) -> dict[str, Any]:
        """The chat-completions body: system rules, then the question and numbered passages."""
        context = "\n\n".join(f"[{p.rank}] ({p.citation})\n{p.text}" for p in passages)
        return {
            "model": self.model,
            "temperature": 0,
            "max_tokens": self.max_tokens,
            "messages": [
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": f"Passages:\n\n{context}\n\nQuestion: {question}"},
            ],
        }

    def answer(self, question: str, passages: Sequence[Passage]) -> Answer:
        """Ask the model; citations are the passage numbers it cites."""
        response = self._http("POST", "/chat/completions", self.request_body(question, passages))
        try:
            text = str(response["choices"][0]["message"]["content"]).strip()
        except (KeyError, IndexError, TypeError) as exc:
            raise GenerationError(f"unexpected chat response: {str(response)[:300]}") from exc
        return Answer(text, "llm", cite(passages, cited_numbers(text)), list(passages), self.model)


# --- extractive --------------------------------------------------------------------------------

_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9`\"'(\[*_])")
_ITEM = re.compile(r"^([-*+]|\d+[.)])\s+")


def _sentences(text: str, min_words: int = 4) -> list[str]:
    """Prose sentences of a Markdown chunk, list items included; code, tables and headings skipped.

    Hard-wrapped lines are joined first, so a sentence is never cut at a line break. Sentences
    shorter than ``min_words`` are dropped (fragments), except where the caller allows short facts.
    """
    units: list[str] = []
    current: list[str] = []
    in_code = False

    def flush() -> None:
        if current:
            units.append(" ".join(current))
            current.clear()

    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith(("```", "~~~")):
            flush()
            in_code = not in_code
            continue
        if in_code:
            continue
        if not stripped or stripped.startswith(("|", "#")):
            flush()
            continue
        item = _ITEM.match(stripped)
        if item:
            flush()
            stripped = stripped[item.end() :]
        current.append(stripped)
    flush()
    sentences = [s.strip() for unit in units for s in _SENTENCE.split(unit)]
    return [s for s in sentences if len(s.split()) >= min_words]


def answer_sentences(text: str, kind: str) -> list[str]:
    """The sentences of a passage an extractive answer chooses from (short facts kept in results)."""
    return _sentences(text, min_words=2 if kind == "result" else 4)


class ExtractiveGenerator:
    """Quotes the retrieved sentences most similar to the question.

    Args:
        embedder: Scores sentences against the question.
        max_sentences: Sentences in the answer.
    """

    def __init__(self, embedder: Embedder, *, max_sentences: int = 4) -> None:
        self.embedder = embedder
        self.max_sentences = max_sentences

    def answer(self, question: str, passages: Sequence[Passage]) -> Answer:
        """Select, order and cite sentences."""
        # Experiment-result facts are short "metrics accuracy: 0.98" lines: keep them whole.
        candidates = [(p, i, s) for p in passages for i, s in enumerate(answer_sentences(p.text, p.kind))]
        if not candidates:
            text = EXTRACTIVE_LABEL + "\n\nNo passage matched the question."
            return Answer(text, "extractive", [], list(passages))
        vectors = self.embedder.embed([question, *[s for _, _, s in candidates]])
        scores = vectors[1:] @ vectors[0]
        # A sentence's own similarity, nudged by its passage's retrieval score and rank.
        boosted = [
            float(sc) + 0.25 * p.score - 0.01 * p.rank
            for sc, (p, _, _) in zip(scores, candidates, strict=True)
        ]
        chosen = sorted(
            np.argsort(boosted)[::-1][: self.max_sentences],
            key=lambda j: (candidates[j][0].rank, candidates[j][1]),
        )
        lines = [f"- {candidates[j][2]} [{candidates[j][0].rank}]" for j in chosen]
        numbers = [candidates[j][0].rank for j in chosen]
        text = EXTRACTIVE_LABEL + "\n\n" + "\n".join(lines)
        return Answer(text, "extractive", cite(passages, numbers), list(passages))
