"""The numpy MiniLM (cold query path) matches the torch MiniLM the index was built with."""

from __future__ import annotations

import numpy as np
import pytest

from workloads.rag.embeddings import MiniLMEmbedder
from workloads.rag.minilm_numpy import NumpyMiniLM

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

TEXTS = [
    "How do I share one GPU between pods?",
    "x",
    "Spot GPU pools scale to zero when idle and come back when a pod asks for them.",
    " ".join(f"Sentence {i} about Qdrant snapshots, Milvus backups and restore checks." for i in range(40)),
]


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_numpy_path_matches_torch(precision: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLP_RAG_EMBED_BACKEND", "torch")
    reference = MiniLMEmbedder(precision=precision).embed(TEXTS)  # type: ignore[arg-type]
    ours = NumpyMiniLM(MiniLMEmbedder.model_path()).embed(TEXTS)
    cosine = (reference * ours).sum(1)
    assert cosine.min() >= 0.9999, cosine
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_small_batches_take_the_numpy_path_until_torch_is_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    embedder = MiniLMEmbedder()
    monkeypatch.delenv("MLP_RAG_EMBED_BACKEND", raising=False)
    monkeypatch.setitem(__import__("sys").modules, "torch", None)  # as if torch were loaded
    assert not embedder._use_numpy(1)  # noqa: SLF001
    monkeypatch.delitem(__import__("sys").modules, "torch")
    assert embedder._use_numpy(1) and not embedder._use_numpy(embedder.numpy_max_batch + 1)  # noqa: SLF001
    monkeypatch.setenv("MLP_RAG_EMBED_BACKEND", "torch")
    assert not embedder._use_numpy(1)  # noqa: SLF001
