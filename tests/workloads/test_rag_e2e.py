"""The real thing on a small corpus: all-MiniLM-L6-v2 offline, both embedded engines, cited answers."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from mlp.cli import main
from workloads.rag.embeddings import MiniLMEmbedder

pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.timeout(300)]

CORPUS = {
    "README.md": (
        "# Lab platform\n\nA GPU-ready ML platform as code.\n\n## Quick start\n\n"
        "Install the project, then run make demo: it plans every stack offline and runs the ML lifecycle.\n"
    ),
    "docs/gpu-scheduling.md": (
        "# GPU scheduling\n\nHow workloads reach GPUs on the cluster.\n\n"
        "## Sharing one GPU between pods\n\n"
        "Several pods can share a single GPU. Time-slicing advertises each physical GPU as several "
        "replicas, so the scheduler places more than one pod on it; there is no memory isolation. "
        "MPS lets processes from different pods run kernels concurrently. MIG partitions an A100 or "
        "H100 into isolated instances with dedicated memory.\n\n"
        "## Spot GPU pools\n\n"
        "GPU node pools run on spot instances and scale to zero when no pod requests a GPU.\n"
    ),
    "docs/serving.md": (
        "# Model serving\n\n## Canary rollouts\n\n"
        "A new model version receives ten percent of the traffic until its error rate is checked.\n\n"
        "## Autoscaling\n\nInference services scale on concurrent requests.\n"
    ),
    "adr/0003-vector-databases.md": (
        "# Vector databases\n\n## Decision\n\n"
        "We support Qdrant and Milvus behind one interface, embedded locally and as servers on clusters.\n"
    ),
}
QUESTIONS = """
questions:
  - id: share-gpu
    question: How do I share one GPU between pods?
    expected: [{source: docs/gpu-scheduling.md, heading: Sharing one GPU between pods}]
  - id: spot
    question: Do GPU nodes cost money when idle?
    expected: [{source: docs/gpu-scheduling.md, heading: Spot GPU pools}]
  - id: canary
    question: How is a new model version rolled out safely?
    expected: [{source: docs/serving.md, heading: Canary}]
  - id: vectordb
    question: Which vector databases are supported?
    expected: [{source: adr/0003-vector-databases.md}]
"""


def test_minilm_is_offline_normalised_and_reads_256_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    embedder = MiniLMEmbedder(precision="fp32")
    vectors = embedder.embed(
        ["How do I share one GPU between pods?", "GPU time-slicing for pods", "Canary rollout"]
    )
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2

    # The packaged tokenizer.json alone truncates at 128 tokens; the model must read 256.
    words = " ".join(f"word{i}" for i in range(400))
    assert embedder.count_tokens(words) > 256
    head = embedder._tokenizer.encode(words)  # noqa: SLF001 - checking the truncation setting
    assert len(head.ids) == 256

    # Same vectors as the reference implementation (sentence-transformers), when it is installed.
    st = pytest.importorskip("sentence_transformers")
    reference = st.SentenceTransformer(str(MiniLMEmbedder.model_path()), device="cpu")
    expected = reference.encode(["How do I share one GPU between pods?", words], normalize_embeddings=True)
    ours = embedder.embed(["How do I share one GPU between pods?", words])
    assert float(np.min(np.sum(expected * ours, axis=1))) > 0.9999
    bf16 = MiniLMEmbedder(precision="bf16").embed(["How do I share one GPU between pods?", words])
    assert float(np.min(np.sum(expected * bf16, axis=1))) > 0.999


def test_ingest_ask_eval_on_both_engines(make_rag_repo: Callable[..., Path]) -> None:
    make_rag_repo(CORPUS, QUESTIONS)  # the default embedder: MiniLM
    runner = CliRunner()

    ingest = runner.invoke(main, ["rag", "ingest", "--json"], catch_exceptions=False)
    assert ingest.exit_code == 0, ingest.output
    report = json.loads(ingest.stdout)
    assert report["embedder"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert report["points"] == {"qdrant": report["chunks"], "milvus": report["chunks"]}
    assert os.environ.get("HF_HUB_OFFLINE") == "1"  # set by the embedder before loading

    asked = runner.invoke(
        main,
        ["rag", "ask", "How do I share one GPU between pods?", "--backend", "all", "--json"],
        catch_exceptions=False,
    )
    assert asked.exit_code == 0, asked.output
    for result in json.loads(asked.stdout)["results"]:
        top = result["passages"][0]
        assert (top["source"], top["heading"]) == (
            "docs/gpu-scheduling.md",
            "GPU scheduling > Sharing one GPU between pods",
        ), result["backend"]
        assert result["mode"] == "extractive" and result["answer"].startswith("Extractive answer")
        assert 1 in [c["number"] for c in result["citations"]]
        assert any(word in result["answer"] for word in ("Time-slicing", "MIG", "MPS"))

    evaluated = runner.invoke(
        main,
        ["rag", "eval", "--questions", "questions.yaml", "--repeats", "1", "--no-plot", "--json"],
        catch_exceptions=False,
    )
    assert evaluated.exit_code == 0, evaluated.output
    scores = json.loads(evaluated.stdout)["backends"]
    for backend in ("qdrant", "milvus"):
        assert scores[backend]["recall@3"] == 1.0, scores[backend]["per_question"]
    # Both engines search exactly at this size: identical rankings.
    assert scores["qdrant"]["per_question"] == [
        {
            **q,
            "embed_ms": scores["qdrant"]["per_question"][i]["embed_ms"],
            "search_ms": scores["qdrant"]["per_question"][i]["search_ms"],
        }
        for i, q in enumerate(scores["milvus"]["per_question"])
    ]
