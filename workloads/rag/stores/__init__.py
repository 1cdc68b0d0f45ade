"""Vector stores behind one interface: Qdrant (Edge or server) and Milvus (Lite or server)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from stacks import outputs as keys
from workloads.rag.settings import Backend, RagSettings
from workloads.rag.stores.base import (
    Filter,
    Hit,
    Match,
    MatchAny,
    Point,
    Range,
    Record,
    RestoreMismatchError,
    StoreError,
    VectorStore,
)

if TYPE_CHECKING:
    from workloads.target import StackOutputs

__all__ = [
    "Filter",
    "Hit",
    "Match",
    "MatchAny",
    "Point",
    "Range",
    "Record",
    "RestoreMismatchError",
    "StoreError",
    "VectorStore",
    "open_store",
]


def open_store(backend: Backend, settings: RagSettings, outputs: StackOutputs | None = None) -> VectorStore:
    """Open the store for ``backend``: the stack's server when outputs are given, embedded otherwise.

    Args:
        backend: ``qdrant`` or ``milvus``.
        settings: Where embedded engines keep their data.
        outputs: Stack outputs (:class:`workloads.target.StackOutputs`), or ``None`` for the
            embedded engines.

    Returns:
        A store; engines connect lazily on first use.

    Raises:
        workloads.target.TargetError: If the stack does not export the backend's endpoint.
    """
    if backend == "qdrant":
        if outputs is not None:
            from workloads.rag.stores.qdrant_server import QdrantServerStore

            api_key = outputs.qdrant_api_key.get_secret_value() if outputs.qdrant_api_key else None
            return QdrantServerStore(outputs.require(keys.QDRANT_URL), api_key=api_key)
        from workloads.rag.stores.qdrant_edge import QdrantEdgeStore

        return QdrantEdgeStore(settings.qdrant_path)
    if backend == "milvus":
        from workloads.rag.stores.milvus import MilvusStore

        if outputs is not None:
            token = outputs.milvus_token.get_secret_value() if outputs.milvus_token else None
            return MilvusStore(outputs.require(keys.MILVUS_URI), token=token)
        return MilvusStore(settings.milvus_path)
    raise ValueError(f"unknown backend {backend!r}")
