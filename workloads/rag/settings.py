"""Settings of the RAG workload: where local state lives and which endpoints to use.

Everything configurable is read here, once, from the environment; the CLI overrides fields
with its flags. Endpoints of the platform's own vector databases come from the stack outputs
(:mod:`workloads.target`), never from here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Backend = Literal["qdrant", "milvus"]
"""The vector-store engines the workload supports."""

BACKENDS: tuple[Backend, ...] = ("qdrant", "milvus")

DEFAULT_ALIAS = "mlp_docs"
"""Name readers use for the live index; the physical collection behind it changes on re-index."""


class RagSettings(BaseModel):
    """Validated settings of one RAG session.

    Attributes:
        home: Directory of the embedded engines' data and of backups (``$MLP_HOME/rag``).
        alias: Name of the live index (an alias onto a versioned collection).
        chunk_tokens: Largest chunk body, in embedder tokens; all-MiniLM-L6-v2 reads 256 tokens,
            and the heading line prefixed at embedding time needs room.
        overlap_tokens: Tokens repeated from the end of one chunk at the start of the next one
            of the same section.
        embedder: ``minilm`` (local, offline), ``openai`` (an OpenAI-compatible endpoint) or
            ``hash`` (deterministic, no model; for tests and smoke runs).
        embeddings_url: Base URL of the OpenAI-compatible embeddings endpoint (``.../v1``).
        embeddings_model: Model name to request from that endpoint.
        embeddings_api_key: Bearer token for that endpoint, if it needs one.
        llm_url: Base URL of an OpenAI-compatible chat endpoint; unset means extractive answers.
        llm_model: Chat model name; unset means the first model the endpoint lists.
        llm_api_key: Bearer token for the chat endpoint, if it needs one.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    home: Path
    alias: str = Field(DEFAULT_ALIAS, pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,200}$")
    chunk_tokens: int = Field(200, ge=32, le=2048)
    overlap_tokens: int = Field(40, ge=0, le=512)
    embedder: Literal["minilm", "openai", "hash"] = "minilm"
    embeddings_url: str | None = None
    embeddings_model: str | None = None
    embeddings_api_key: str | None = Field(None, repr=False)
    llm_url: str | None = None
    llm_model: str | None = None
    llm_api_key: str | None = Field(None, repr=False)

    @classmethod
    def from_env(cls, **overrides: object) -> RagSettings:
        """Build settings from the environment, then apply non-``None`` overrides.

        Environment variables: ``MLP_HOME``, ``MLP_RAG_CHUNK_TOKENS``, ``MLP_RAG_OVERLAP_TOKENS``, ``MLP_RAG_EMBEDDER``, ``MLP_RAG_EMBEDDINGS_URL``,
        ``MLP_RAG_EMBEDDINGS_MODEL``, ``MLP_RAG_EMBEDDINGS_API_KEY``, ``MLP_RAG_LLM_URL``,
        ``MLP_RAG_LLM_MODEL``, ``MLP_RAG_LLM_API_KEY`` (falling back to ``OPENAI_API_KEY`` only
        when an LLM URL is set, so a global key never sends questions anywhere by itself).

        Args:
            **overrides: Field values that win over the environment; ``None`` values are ignored.

        Returns:
            The validated settings.
        """
        env = os.environ
        values: dict[str, object] = {"home": default_home()}
        mapping = {
            "chunk_tokens": "MLP_RAG_CHUNK_TOKENS",
            "overlap_tokens": "MLP_RAG_OVERLAP_TOKENS",
            "embedder": "MLP_RAG_EMBEDDER",
            "embeddings_url": "MLP_RAG_EMBEDDINGS_URL",
            "embeddings_model": "MLP_RAG_EMBEDDINGS_MODEL",
            "embeddings_api_key": "MLP_RAG_EMBEDDINGS_API_KEY",
            "llm_url": "MLP_RAG_LLM_URL",
            "llm_model": "MLP_RAG_LLM_MODEL",
            "llm_api_key": "MLP_RAG_LLM_API_KEY",
        }
        for field, var in mapping.items():
            if env.get(var):
                values[field] = env[var]
        values.update({k: v for k, v in overrides.items() if v is not None})
        if values.get("llm_url") and not values.get("llm_api_key") and env.get("OPENAI_API_KEY"):
            values["llm_api_key"] = env["OPENAI_API_KEY"]
        return cls.model_validate(values)

    @property
    def qdrant_path(self) -> Path:
        """Root of the embedded Qdrant Edge shards and their alias table."""
        return self.home / "qdrant"

    @property
    def milvus_path(self) -> Path:
        """Milvus Lite data directory (a directory despite the ``.db`` suffix pymilvus wants)."""
        return self.home / "milvus.db"

    @property
    def backups_path(self) -> Path:
        """Default directory for backup archives."""
        return self.home / "backups"


def default_home() -> Path:
    """Return the RAG state directory: ``rag/`` under the project state directory (``$MLP_HOME`` or ``./.mlp``)."""
    from workloads.target import default_home as project_home

    return project_home() / "rag"
