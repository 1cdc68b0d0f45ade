"""Answers with citations: OpenAI-compatible chat (against a local fake server) and extractive."""

from __future__ import annotations

import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest

from tests.http_fakes import reply_json, serving
from workloads.rag.embeddings import HashingEmbedder, OpenAIEmbedder, parse_embeddings_response
from workloads.rag.generation import (
    EXTRACTIVE_LABEL,
    ChatGenerator,
    ExtractiveGenerator,
    GenerationError,
    cite,
    cited_numbers,
)
from workloads.rag.retrieval import Passage

PASSAGES = [
    Passage(
        1,
        "id-1",
        0.71,
        "docs/gpu.md",
        "GPU > Sharing one GPU",
        "Time-slicing lets several pods share one GPU. It gives no memory isolation.",
        "doc",
        3,
    ),
    Passage(
        2,
        "id-2",
        0.65,
        "docs/gpu.md",
        "GPU > MIG",
        "MIG partitions an H100 into isolated instances with their own memory.\n\n```yaml\nmig: mixed\n```",
        "doc",
        4,
    ),
    Passage(3, "id-3", 0.20, "README.md", "Project", "Run make demo to see everything.", "readme", 0),
]


class FakeOpenAI(BaseHTTPRequestHandler):
    """A tiny OpenAI-compatible server: /models, /chat/completions, /embeddings."""

    received: list[dict[str, Any]] = []

    def log_message(self, *args: Any) -> None:
        return None

    def _send(self, payload: dict[str, Any]) -> None:
        reply_json(self, 200, payload)

    def do_GET(self) -> None:  # noqa: N802
        if self.path == "/v1/models":
            self._send({"data": [{"id": "tiny-llm"}]})
        else:
            self.send_error(404)

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        FakeOpenAI.received.append(
            {"path": self.path, "body": body, "auth": self.headers.get("Authorization")}
        )
        if self.path == "/v1/chat/completions":
            self._send(
                {
                    "choices": [
                        {
                            "message": {
                                "role": "assistant",
                                "content": "Use time-slicing [1] or MIG [2, 7] for isolation [2].",
                            }
                        }
                    ]
                }
            )
        elif self.path == "/v1/embeddings":
            data = [{"index": i, "embedding": [float(len(t)), 1.0, 0.0]} for i, t in enumerate(body["input"])]
            self._send({"data": list(reversed(data))})
        else:
            self.send_error(404)


@pytest.fixture
def fake_openai() -> Iterator[str]:
    FakeOpenAI.received = []
    with serving(ThreadingHTTPServer(("127.0.0.1", 0), FakeOpenAI)) as server:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"


def test_cited_numbers_and_citations() -> None:
    assert cited_numbers("a [1] b [2, 3] c [1] d [x]") == [1, 2, 3, 1]
    citations = cite(PASSAGES, [2, 9, 1, 2])
    assert [(c.number, c.source, c.chunk_id) for c in citations] == [
        (2, "docs/gpu.md", "id-2"),
        (1, "docs/gpu.md", "id-1"),
    ]


def test_chat_generator_sends_numbered_passages_and_keeps_cited_ones(fake_openai: str) -> None:
    generator = ChatGenerator(fake_openai, api_key="secret")
    answer = generator.answer("How do I share one GPU?", PASSAGES)
    assert answer.mode == "llm" and answer.model == "tiny-llm"  # model taken from /models
    assert [c.number for c in answer.citations] == [1, 2]  # [7] does not exist and is dropped
    request = FakeOpenAI.received[-1]
    assert request["auth"] == "Bearer secret"
    body = request["body"]
    assert body["model"] == "tiny-llm" and body["temperature"] == 0
    user = body["messages"][1]["content"]
    assert "[1] (docs/gpu.md § GPU > Sharing one GPU)" in user and "Question: How do I share one GPU?" in user
    assert "cite" in body["messages"][0]["content"].lower()
    assert answer.to_dict()["citations"][0]["source"] == "docs/gpu.md"


def test_chat_generator_reports_a_dead_endpoint() -> None:
    with pytest.raises(GenerationError):
        ChatGenerator("http://127.0.0.1:9/v1", "m", timeout=2).answer("q", PASSAGES)


def test_openai_embedder(fake_openai: str) -> None:
    embedder = OpenAIEmbedder(fake_openai, "embed-small", batch_size=2)
    vectors = embedder.embed(["a", "bbb", "cc"])
    assert vectors.shape == (3, 3) and embedder.dim == 3 and embedder.name == "openai:embed-small"
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-6)
    # Responses are re-ordered by index: "a" (len 1) is first.
    assert vectors[0][0] < vectors[1][0]
    assert [r["body"]["input"] for r in FakeOpenAI.received] == [["a", "bbb"], ["cc"]]
    with pytest.raises(ValueError):
        parse_embeddings_response({"data": []}, 1)


def test_extractive_answer_is_labelled_and_cited() -> None:
    generator = ExtractiveGenerator(HashingEmbedder(), max_sentences=2)
    answer = generator.answer("share one GPU between pods time-slicing", PASSAGES)
    assert answer.mode == "extractive"
    assert answer.text.startswith(EXTRACTIVE_LABEL)
    lines = answer.text.splitlines()[2:]
    assert len(lines) == 2 and all(line.startswith("- ") and line.rstrip().endswith("]") for line in lines)
    assert "mig: mixed" not in answer.text  # code is not quoted as prose
    quoted = {n for line in lines for n in cited_numbers(line)}
    assert {c.number for c in answer.citations} == quoted
    for line in lines:
        number = cited_numbers(line)[-1]
        sentence = line[2:].rsplit(" [", 1)[0]
        assert sentence in PASSAGES[number - 1].text  # verbatim from the cited passage


def test_extractive_answer_without_passages() -> None:
    answer = ExtractiveGenerator(HashingEmbedder()).answer("anything", [])
    assert answer.citations == [] and "No passage" in answer.text


def test_extractive_answer_quotes_short_experiment_facts() -> None:
    facts = Passage(
        1,
        "id-r",
        0.5,
        "build/demo/summary.json",
        "demo summary > metrics",
        "- metrics accuracy: 0.9825\n- metrics roc_auc: 0.9954",
        "result",
        4,
    )
    prose = Passage(2, "id-p", 0.3, "docs/x.md", "X", "- metrics accuracy: 0.9825", "doc", 0)
    answer = ExtractiveGenerator(HashingEmbedder(), max_sentences=3).answer(
        "metrics accuracy", [facts, prose]
    )
    assert "- metrics accuracy: 0.9825 [1]" in answer.text
    assert "[2]" not in answer.text  # a three-word fragment of prose is still not quoted
