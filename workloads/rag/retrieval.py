"""Semantic search over an index: embed the question, search the alias, return passages."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from workloads.rag.embeddings import Embedder
from workloads.rag.ingest import check_compatible
from workloads.rag.stores.base import Filter, StoreError, VectorStore


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk with what a citation needs.

    Attributes:
        rank: 1-based rank in the result list (the citation number).
        id: Chunk id.
        score: Cosine similarity to the question.
        source: Source path.
        heading: Heading path.
        text: Chunk text.
        kind: Source kind.
        position: Ordinal of the chunk in its document.
    """

    rank: int
    id: str
    score: float
    source: str
    heading: str
    text: str
    kind: str
    position: int

    @property
    def citation(self) -> str:
        """``source § heading`` for display."""
        return f"{self.source} § {self.heading}" if self.heading else self.source

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        data = asdict(self)
        data["score"] = round(self.score, 4)
        return data


@dataclass(frozen=True)
class SearchTiming:
    """Milliseconds spent embedding the question and searching the store."""

    embed_ms: float
    search_ms: float


class Retriever:
    """Searches the collection behind ``alias`` in one store.

    Args:
        store: The vector store.
        embedder: Must be the embedder the index was built with (checked on first search).
        alias: Alias or collection to search.
    """

    def __init__(self, store: VectorStore, embedder: Embedder, alias: str) -> None:
        self.store = store
        self.embedder = embedder
        self.alias = alias
        self._checked = False
        self.last_timing = SearchTiming(0.0, 0.0)

    def check(self) -> str:
        """Verify the index exists and matches the embedder; return the physical collection.

        Raises:
            StoreError: If there is no index (run ``mlp rag ingest``) or it was built differently.
        """
        physical = self.store.resolve(self.alias)
        if physical is None:
            raise StoreError(
                f"no index {self.alias!r} in {self.store.describe()}; run `mlp rag ingest` first"
            )
        if not self._checked:
            check_compatible(self.store, physical, self.embedder)
            # Load the model now, so query timings measure queries, not the model's start-up.
            self.embedder.embed_query("warm-up")
            self._checked = True
        return physical

    def search(self, query: str, *, k: int = 5, filter: Filter | None = None) -> list[Passage]:
        """Return the ``k`` passages most similar to ``query`` that pass ``filter``."""
        if not self._checked:
            self.check()
        t0 = time.perf_counter()
        vector = self.embedder.embed_query(query)
        t1 = time.perf_counter()
        hits = self.store.search(self.alias, vector, limit=k, filter=filter)
        t2 = time.perf_counter()
        self.last_timing = SearchTiming((t1 - t0) * 1000, (t2 - t1) * 1000)
        return [
            Passage(
                rank=rank,
                id=hit.id,
                score=hit.score,
                source=str(hit.payload.get("source", "")),
                heading=str(hit.payload.get("heading", "")),
                text=str(hit.payload.get("text", "")),
                kind=str(hit.payload.get("kind", "")),
                position=int(hit.payload.get("position", 0) or 0),
            )
            for rank, hit in enumerate(hits, start=1)
        ]
