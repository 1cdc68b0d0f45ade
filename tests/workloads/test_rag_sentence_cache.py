"""The sentence-vector cache returns what the embedder computes, stores misses, and lets readers read."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from workloads.rag.embeddings import HashingEmbedder
from workloads.rag.sentence_cache import CachedEmbedder


class Counting(HashingEmbedder):
    def __init__(self) -> None:
        super().__init__(dim=32)
        self.embedded: list[str] = []

    def embed(self, texts):  # type: ignore[no-untyped-def]
        self.embedded.extend(texts)
        return super().embed(texts)


def test_cache_hits_equal_the_embedder_and_misses_are_stored(tmp_path: Path) -> None:
    inner = Counting()
    cache = CachedEmbedder(inner, tmp_path / "s.sqlite")
    texts = ["alpha beta gamma", "delta epsilon", "alpha beta gamma"]
    assert cache.warm(texts) == 2 and sorted(inner.embedded) == ["alpha beta gamma", "delta epsilon"]
    inner.embedded.clear()
    got = cache.embed([*texts, "new sentence here"])
    assert inner.embedded == ["new sentence here"]  # only the miss
    assert np.allclose(got, HashingEmbedder(dim=32).embed([*texts, "new sentence here"]))
    assert cache.warm(texts) == 0
    cache.close()

    reader = CachedEmbedder(Counting(), tmp_path / "s.sqlite", read_only=True)
    assert np.allclose(
        reader.embed(["delta epsilon", "never seen"]),
        HashingEmbedder(dim=32).embed(["delta epsilon", "never seen"]),
    )
    reader.close()
    again = CachedEmbedder(inner, tmp_path / "s.sqlite")
    inner.embedded.clear()
    again.embed(["never seen"])
    assert inner.embedded == ["never seen"], "a read-only reader stores nothing"
    absent = CachedEmbedder(Counting(), tmp_path / "none.sqlite", read_only=True)
    assert absent.embed(["x y z"]).shape == (1, 32) and not (tmp_path / "none.sqlite").exists()
