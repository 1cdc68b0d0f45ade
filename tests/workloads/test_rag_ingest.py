"""Incremental ingestion by content hash and zero-downtime re-indexing, on both embedded engines."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from workloads.rag.embeddings import HashingEmbedder
from workloads.rag.ingest import Ingestor
from workloads.rag.settings import RagSettings
from workloads.rag.sources import Document, discover
from workloads.rag.stores.base import StoreError, VectorStore
from workloads.rag.stores.milvus import MilvusStore
from workloads.rag.stores.qdrant_edge import QdrantEdgeStore

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

DOCS = {
    "README.md": "# Project\n\nA platform for ML on GPUs.\n\n## Quick start\n\nRun make demo.\n",
    "docs/gpu.md": (
        "# GPU scheduling\n\n## Sharing one GPU\n\nTime-slicing shares a GPU between pods. "
        "MIG partitions it into isolated instances.\n\n## Spot pools\n\nSpot GPU pools scale to zero.\n"
    ),
    "docs/serving.md": "# Serving\n\n## Canary\n\nShift ten percent of traffic to the new model.\n",
}


class CountingEmbedder(HashingEmbedder):
    """Counts the texts it embeds."""

    def __init__(self, name: str = "hash-64") -> None:
        super().__init__(64)
        self.calls: list[int] = []
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(len(texts))
        return super().embed(texts)

    def embed_query(self, text: str) -> np.ndarray:  # queries and the warm-up are not chunks
        return HashingEmbedder.embed(self, [text])[0]

    @property
    def embedded(self) -> int:
        return sum(self.calls)


def write_corpus(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    write_corpus(root, DOCS)
    return root


def corpus(root: Path) -> list[Document]:
    return discover(root, ["README.md", "docs"], results=None)


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[dict[str, VectorStore]]:
    opened: dict[str, VectorStore] = {
        "qdrant": QdrantEdgeStore(tmp_path / "state" / "qdrant"),
        "milvus": MilvusStore(tmp_path / "state" / "milvus.db"),
    }
    yield opened
    for store in opened.values():
        store.close()


def settings(tmp_path: Path) -> RagSettings:
    return RagSettings(home=tmp_path / "state", chunk_tokens=64, overlap_tokens=8)


def snapshot(store: VectorStore, alias: str = "mlp_docs") -> dict[str, tuple[str, str]]:
    records = list(store.scroll(alias))
    ids = [r.id for r in records]
    assert len(ids) == len(set(ids)), "duplicate ids"
    assert store.count(alias) == len(ids)
    return {r.id: (r.payload["source"], r.payload["doc_hash"]) for r in records}


def test_incremental_ingestion(tmp_path: Path, repo: Path, stores: dict[str, VectorStore]) -> None:
    embedder = CountingEmbedder()
    ingestor = Ingestor(stores, embedder, settings(tmp_path))

    first = ingestor.ingest(corpus(repo))
    assert first.documents == 3 and first.changed == 3 and first.unchanged == 0
    assert first.chunks == first.embedded == embedder.embedded > 0
    assert first.points == {"qdrant": first.chunks, "milvus": first.chunks}
    qdrant, milvus = stores["qdrant"], stores["milvus"]
    assert qdrant.aliases()["mlp_docs"] == first.collections["qdrant"]
    assert snapshot(qdrant) == snapshot(milvus)

    # Nothing changed: nothing is chunked, embedded or written.
    again = ingestor.ingest(corpus(repo))
    assert again.unchanged == 3 and again.changed == 0 and embedder.embedded == first.embedded

    # One section edited: only its chunk is embedded; the rest of the file is reused.
    before = snapshot(qdrant)
    write_corpus(
        repo, {"docs/gpu.md": DOCS["docs/gpu.md"].replace("scale to zero", "scale down to zero nodes")}
    )
    edited = ingestor.ingest(corpus(repo))
    assert edited.changed == 1 and edited.unchanged == 2
    assert edited.embedded == 1 and edited.reused >= 1
    assert embedder.embedded == first.embedded + 1
    after = snapshot(qdrant)
    assert len(after) == len(before) and after == snapshot(milvus)
    gpu_hashes = {h for s, h in after.values() if s == "docs/gpu.md"}
    assert len(gpu_hashes) == 1 and gpu_hashes != {h for s, h in before.values() if s == "docs/gpu.md"}
    hits = qdrant.search("mlp_docs", embedder.embed_query("scale down to zero nodes"), limit=1)
    assert "scale down to zero nodes" in hits[0].payload["text"]

    # A file leaves the corpus: its points are pruned (or kept with prune=False).
    (repo / "docs/serving.md").unlink()
    kept = ingestor.ingest(corpus(repo), prune=False)
    assert kept.pruned_sources == [] and "docs/serving.md" in {s for s, _ in snapshot(qdrant).values()}
    pruned = ingestor.ingest(corpus(repo))
    assert pruned.pruned_sources == ["docs/serving.md"]
    for store in stores.values():
        assert "docs/serving.md" not in {s for s, _ in snapshot(store).values()}


def test_interrupted_ingestion_is_repaired_without_duplicates(
    tmp_path: Path, repo: Path, stores: dict[str, VectorStore]
) -> None:
    documents = corpus(repo)
    reference = Ingestor(stores, CountingEmbedder(), settings(tmp_path)).ingest(documents)

    class Crash(RuntimeError):
        pass

    class CrashingEmbedder(CountingEmbedder):
        def embed(self, texts: Sequence[str]) -> np.ndarray:
            if self.calls:
                raise Crash("killed mid-ingestion")
            return super().embed(texts)

    # Rewrite every document, crash after the first embedding batch.
    write_corpus(repo, {rel: text.replace("GPU", "accelerator") for rel, text in DOCS.items()})
    documents = corpus(repo)
    crashing = Ingestor(stores, CrashingEmbedder(), settings(tmp_path), batch_size=2)
    with pytest.raises(Crash):
        crashing.ingest(documents)

    repaired = Ingestor(stores, CountingEmbedder(), settings(tmp_path)).ingest(documents)
    assert repaired.changed >= 1
    clean_home = tmp_path / "clean"
    clean = {"qdrant": QdrantEdgeStore(clean_home / "qdrant")}
    fresh = Ingestor(
        clean, CountingEmbedder(), RagSettings(home=clean_home, chunk_tokens=64, overlap_tokens=8)
    )
    fresh.ingest(documents)
    try:
        expected = snapshot(clean["qdrant"])
    finally:
        clean["qdrant"].close()
    for store in stores.values():
        assert snapshot(store) == expected  # same ids, same hashes, nothing stale or doubled
    assert reference.chunks > 0


def test_reindex_switches_the_alias_and_drops_the_old_collection(
    tmp_path: Path, repo: Path, stores: dict[str, VectorStore]
) -> None:
    documents = corpus(repo)
    first = Ingestor(stores, CountingEmbedder(), settings(tmp_path)).ingest(documents)
    old = first.collections

    # A reader holding the alias keeps getting answers throughout.
    query = HashingEmbedder(64).embed_query("time-slicing")
    report = Ingestor(stores, CountingEmbedder(), settings(tmp_path)).reindex(documents, keep_old=True)
    for name, store in stores.items():
        new = report.collections[name]
        assert new != old[name]
        assert store.aliases()["mlp_docs"] == new
        assert sorted(store.list_collections()) == sorted([old[name], new])
        assert store.count("mlp_docs") == report.chunks == first.chunks
        assert store.search("mlp_docs", query, limit=1)
        store.set_alias("mlp_docs", old[name])  # rollback is one alias switch
        assert store.resolve("mlp_docs") == old[name]

    report = Ingestor(stores, CountingEmbedder(), settings(tmp_path)).reindex(documents)
    for name, store in stores.items():
        assert (
            store.list_collections() == [report.collections[name]]
            or old[name] not in store.list_collections()
        )
        assert store.resolve("mlp_docs") == report.collections[name]


def test_another_embedder_is_refused(tmp_path: Path, repo: Path, stores: dict[str, VectorStore]) -> None:
    documents = corpus(repo)
    Ingestor(stores, CountingEmbedder(), settings(tmp_path)).ingest(documents)
    with pytest.raises(StoreError, match="reindex"):
        Ingestor(stores, CountingEmbedder(name="other-model"), settings(tmp_path)).ingest(documents)
    with pytest.raises(StoreError, match="reindex"):
        Ingestor({"qdrant": stores["qdrant"]}, HashingEmbedder(32), settings(tmp_path)).ingest(documents)


def test_results_are_ingested_as_facts(tmp_path: Path, repo: Path, stores: dict[str, VectorStore]) -> None:
    write_corpus(repo, {"build/bench/vectordb.json": '{"backends": [{"name": "qdrant-edge", "qps": 4300}]}'})
    report = Ingestor(stores, CountingEmbedder(), settings(tmp_path)).ingest(
        discover(repo, ["README.md", "docs"])
    )
    assert report.documents == 4
    kinds = Counter(r.payload["kind"] for r in stores["milvus"].scroll("mlp_docs"))
    assert kinds["result"] >= 1
