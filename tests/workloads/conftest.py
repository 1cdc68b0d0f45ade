"""Fixtures for the workload tests; each applies only to the tests that request it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from workloads.pipelines import data

RAG_ENV = ("MLP_RAG_EMBEDDER", "MLP_RAG_LLM_URL", "MLP_TARGET", "MLP_OUTPUTS_FILE")
"""Variables that would point an `mlp rag` test at another embedder, a chat endpoint or a stack."""


@pytest.fixture
def make_rag_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Path]:
    """Factory for a repository that `mlp rag` runs in, isolated from the caller's environment.

    ``make_rag_repo(corpus, questions, embedder=None)`` writes ``corpus`` (relative path -> text)
    and ``questions.yaml`` under ``tmp_path``, makes it the working directory and ``MLP_HOME``'s
    parent (state in ``.mlp``), clears :data:`RAG_ENV`, sets ``MLP_RAG_EMBEDDER`` when
    ``embedder`` is given, and returns ``tmp_path``.
    """

    def make(corpus: dict[str, str], questions: str, *, embedder: str | None = None) -> Path:
        for rel, text in corpus.items():
            path = tmp_path / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        (tmp_path / "questions.yaml").write_text(questions)
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("MLP_HOME", str(tmp_path / ".mlp"))
        for var in RAG_ENV:
            monkeypatch.delenv(var, raising=False)
        if embedder is not None:
            monkeypatch.setenv("MLP_RAG_EMBEDDER", embedder)
        return tmp_path

    return make


@pytest.fixture(scope="module")
def train_split() -> tuple[Any, np.ndarray, str]:
    """The pipeline's training split: ``(features, labels, data_hash)``."""
    prepared = data.prepare()
    features, labels = data.features_and_target(prepared.train)
    return features, labels, prepared.data_hash
