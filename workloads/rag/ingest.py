"""Ingestion: documents -> chunks -> vectors -> points, incremental by content hash.

The vector store is the only state. Every point carries its document's ``source`` and
``doc_hash`` (a hash of the file's bytes, the chunker settings and the embedder) and the
document's ``chunk_count``; chunk ids are derived from content (:mod:`workloads.rag.chunking`).
An ingestion therefore:

1. reads ``(id, source, doc_hash, chunk_count)`` of every point of the live collection;
2. skips a document whose points all carry its current hash and number ``chunk_count``;
3. for a changed document, embeds only chunks whose id no store holds yet, re-writes reused
   chunks with their stored vectors (new position/hash), then deletes the document's stale ids;
4. removes points of sources that left the corpus (``prune``);
5. finalizes (Qdrant Edge optimize, Milvus flush).

Each step is idempotent and ids are deterministic, so an ingestion killed at any point leaves no
duplicates, and the next run finishes the job: a half-written document fails the hash/count
check and is processed again.

Re-indexing builds a new versioned collection (``<alias>_<UTC timestamp>``), fills it, checks it,
then switches the alias in one atomic operation and drops the old collection: readers of the alias
never see a missing or half-built index.
"""

from __future__ import annotations

import hashlib
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from workloads.rag.chunking import CHUNKER_VERSION, Chunk, chunk_document
from workloads.rag.embeddings import Embedder
from workloads.rag.settings import RagSettings
from workloads.rag.sources import Document
from workloads.rag.stores.base import Point, StoreError, VectorStore

Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``; stages are ``scan``, ``embed``, ``write``, ``finalize``."""

STATE_FIELDS = ("source", "doc_hash", "chunk_count")


def _no_progress(stage: str, done: int, total: int) -> None:
    return None


@dataclass
class SourceState:
    """What a store holds for one source."""

    ids: set[str] = field(default_factory=set)
    hashes: set[str] = field(default_factory=set)
    counts: set[int] = field(default_factory=set)

    def is_current(self, doc_hash: str) -> bool:
        """Whether the store holds exactly the complete, current version of the document."""
        return self.hashes == {doc_hash} and self.counts == {len(self.ids)}


@dataclass
class IngestReport:
    """What an ingestion did, for the CLI and the benchmark note.

    Attributes:
        collections: Backend -> physical collection written.
        documents: Documents in the corpus.
        unchanged: Documents skipped because every store was current.
        changed: Documents (re)chunked.
        chunks: Chunks of the changed documents.
        embedded: Chunks that went through the embedder.
        reused: Chunks whose stored vector was reused.
        deleted: Points deleted (stale chunks and pruned sources), summed over stores.
        pruned_sources: Sources removed because they left the corpus.
        points: Backend -> points in the collection afterwards.
        seconds: Wall time of the whole ingestion.
        write_seconds: Wall time of chunking, embedding and upserting.
        embed_seconds: Time inside the embedder, model loading excluded.
        load_seconds: Time to load the embedding model (when anything needed embedding).
        store_seconds: Backend -> time inside its upserts, deletes and finalize.
        embedder: Embedder name.
    """

    collections: dict[str, str] = field(default_factory=dict)
    documents: int = 0
    unchanged: int = 0
    changed: int = 0
    chunks: int = 0
    embedded: int = 0
    reused: int = 0
    deleted: int = 0
    pruned_sources: list[str] = field(default_factory=list)
    points: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    write_seconds: float = 0.0
    embed_seconds: float = 0.0
    load_seconds: float = 0.0
    store_seconds: dict[str, float] = field(default_factory=dict)
    embedder: str = ""

    @property
    def chunks_per_second(self) -> float:
        """Chunks written per second of the chunk/embed/upsert phase (0 when nothing was written)."""
        return self.chunks / self.write_seconds if self.chunks and self.write_seconds > 0 else 0.0

    @property
    def embed_chunks_per_second(self) -> float:
        """Chunks embedded per second of embedder time."""
        return self.embedded / self.embed_seconds if self.embedded and self.embed_seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            "collections": self.collections,
            "documents": self.documents,
            "unchanged": self.unchanged,
            "changed": self.changed,
            "chunks": self.chunks,
            "embedded": self.embedded,
            "reused": self.reused,
            "deleted": self.deleted,
            "pruned_sources": self.pruned_sources,
            "points": self.points,
            "seconds": round(self.seconds, 3),
            "write_seconds": round(self.write_seconds, 3),
            "embed_seconds": round(self.embed_seconds, 3),
            "load_seconds": round(self.load_seconds, 3),
            "chunks_per_second": round(self.chunks_per_second, 2),
            "embed_chunks_per_second": round(self.embed_chunks_per_second, 2),
            "store_seconds": {k: round(v, 3) for k, v in self.store_seconds.items()},
            "embedder": self.embedder,
        }


def new_collection_name(alias: str, existing: Sequence[str] = ()) -> str:
    """A fresh versioned collection name, ``<alias>_<UTC YYYYmmddHHMMSS>`` (suffixed if taken)."""
    base = f"{alias}_{time.strftime('%Y%m%d%H%M%S', time.gmtime())}"
    name, n = base, 1
    while name in existing:
        n += 1
        name = f"{base}_{n}"
    return name


class Ingestor:
    """Writes a corpus into one or more vector stores behind an alias, embedding each chunk once.

    Args:
        stores: Backend name -> store; every store receives the same points.
        embedder: The embedder (its name is stored with every point).
        settings: Chunk sizes and the alias.
        progress: Progress callback.
        batch_size: Chunks per embed-and-upsert batch.
    """

    def __init__(
        self,
        stores: dict[str, VectorStore],
        embedder: Embedder,
        settings: RagSettings,
        *,
        progress: Progress | None = None,
        batch_size: int = 64,
    ) -> None:
        if not stores:
            raise ValueError("at least one store is needed")
        self.stores = stores
        self.embedder = embedder
        self.settings = settings
        self.progress = progress or _no_progress
        self.batch_size = batch_size

    # --- public ------------------------------------------------------------------------------

    def doc_hash(self, doc: Document) -> str:
        """Version key of a document: its bytes, the chunker and its settings, the embedder."""
        key = (
            f"{doc.content_hash}:{CHUNKER_VERSION}:{self.settings.chunk_tokens}:"
            f"{self.settings.overlap_tokens}:{self.embedder.name}"
        )
        return hashlib.sha256(key.encode()).hexdigest()[:32]

    def chunk(self, doc: Document) -> list[Chunk]:
        """Chunk a document with the embedder's token counter."""
        return chunk_document(
            doc,
            max_tokens=self.settings.chunk_tokens,
            overlap_tokens=self.settings.overlap_tokens,
            count_tokens=self.embedder.count_tokens,
        )

    def ingest(self, documents: Sequence[Document], *, prune: bool = True) -> IngestReport:
        """Bring the alias's collections in line with ``documents``, creating them if needed.

        Args:
            documents: The corpus.
            prune: Delete points of sources that are not in ``documents``.

        Returns:
            What was done.
        """
        started = time.perf_counter()
        collections = {name: self._ensure_collection(name, store) for name, store in self.stores.items()}
        report = self._sync(documents, collections, prune=prune)
        report.seconds = time.perf_counter() - started
        return report

    def reindex(self, documents: Sequence[Document], *, keep_old: bool = False) -> IngestReport:
        """Build fresh collections, switch the alias to them atomically, drop the old ones.

        Args:
            documents: The corpus.
            keep_old: Keep the previous collections (for rollback) instead of dropping them.

        Returns:
            What was done; ``collections`` names the new collections.

        Raises:
            StoreError: If a new collection ends up with a different number of points than chunks.
        """
        started = time.perf_counter()
        alias = self.settings.alias
        old: dict[str, str | None] = {}
        new: dict[str, str] = {}
        for name, store in self.stores.items():
            old[name] = store.aliases().get(alias)
            collection = new_collection_name(alias, store.list_collections())
            store.create_collection(collection, self.embedder.dim)
            new[name] = collection
        try:
            report = self._sync(documents, new, prune=False)
            for name in self.stores:
                if report.points[name] != report.chunks:
                    raise StoreError(
                        f"{name}: new collection {new[name]} holds {report.points[name]} points "
                        f"for {report.chunks} chunks; alias left on the old collection"
                    )
        except BaseException:
            for name, store in self.stores.items():
                store.drop_collection(new[name])
            raise
        for name, store in self.stores.items():
            store.set_alias(alias, new[name])
            previous = old[name]
            if previous and previous != new[name] and not keep_old:
                store.drop_collection(previous)
        report.seconds = time.perf_counter() - started
        return report

    # --- steps -------------------------------------------------------------------------------

    def _ensure_collection(self, name: str, store: VectorStore) -> str:
        alias = self.settings.alias
        physical = store.resolve(alias)
        if physical is None:
            physical = new_collection_name(alias, store.list_collections())
            store.create_collection(physical, self.embedder.dim)
            store.set_alias(alias, physical)
            return physical
        check_compatible(store, physical, self.embedder)
        return physical

    def _scan(self, name: str, store: VectorStore, collection: str) -> dict[str, SourceState]:
        state: dict[str, SourceState] = defaultdict(SourceState)
        for record in store.scroll(collection, fields=list(STATE_FIELDS), batch_size=1024):
            source = record.payload.get("source")
            if not isinstance(source, str):
                continue
            entry = state[source]
            entry.ids.add(record.id)
            if isinstance(record.payload.get("doc_hash"), str):
                entry.hashes.add(record.payload["doc_hash"])
            if isinstance(record.payload.get("chunk_count"), int):
                entry.counts.add(record.payload["chunk_count"])
        return state

    def _payload(self, chunk: Chunk, doc_hash: str, chunk_count: int) -> dict[str, Any]:
        return {
            "source": chunk.source,
            "kind": chunk.kind,
            "title": chunk.title,
            "heading": chunk.heading,
            "text": chunk.text,
            "position": chunk.position,
            "chunk_count": chunk_count,
            "doc_hash": doc_hash,
            "embedder": self.embedder.name,
        }

    def _sync(
        self, documents: Sequence[Document], collections: dict[str, str], *, prune: bool
    ) -> IngestReport:
        report = IngestReport(
            collections=dict(collections), documents=len(documents), embedder=self.embedder.name
        )
        states: dict[str, dict[str, SourceState]] = {}
        for index, (name, store) in enumerate(self.stores.items()):
            states[name] = self._scan(name, store, collections[name])
            self.progress("scan", index + 1, len(self.stores))

        write_started = time.perf_counter()
        load_seconds = 0.0
        # Plan: which documents changed, their chunks, which vectors exist somewhere already.
        planned: list[tuple[Document, str, list[Chunk]]] = []
        for doc in documents:
            key = self.doc_hash(doc)
            if all(states[n].get(doc.source, SourceState()).is_current(key) for n in self.stores):
                report.unchanged += 1
                continue
            planned.append((doc, key, self.chunk(doc)))
        report.changed = len(planned)
        report.chunks = sum(len(chunks) for _, _, chunks in planned)

        to_embed: list[tuple[Chunk, dict[str, Any]]] = []
        reused: list[tuple[Chunk, dict[str, Any]]] = []
        for doc, key, chunks in planned:
            for chunk in chunks:
                payload = self._payload(chunk, key, len(chunks))
                held = [n for n in self.stores if chunk.id in states[n].get(doc.source, SourceState()).ids]
                (reused if held else to_embed).append((chunk, payload))

        if to_embed:
            # Load the model before timing the writes, so chunks/s measures work, not start-up.
            t0 = time.perf_counter()
            self.embedder.embed_query("warm-up")
            load_seconds = report.load_seconds = time.perf_counter() - t0
        total = report.chunks
        done = 0
        self.progress("write", 0, total)
        # Reused chunks: copy the stored vector (from any store that has it) with the new payload.
        for start in range(0, len(reused), self.batch_size):
            batch = reused[start : start + self.batch_size]
            vectors = self._stored_vectors(
                [c.id for c, _ in batch], [c.source for c, _ in batch], states, collections
            )
            points = [Point(c.id, vectors[c.id], p) for c, p in batch if c.id in vectors]
            missing = [(c, p) for c, p in batch if c.id not in vectors]
            to_embed.extend(missing)  # vanished meanwhile: embed instead
            self._write(points, collections, report)
            report.reused += len(points)
            done += len(points)
            self.progress("write", done, total)

        for start in range(0, len(to_embed), self.batch_size):
            batch = to_embed[start : start + self.batch_size]
            t0 = time.perf_counter()
            embedded = self.embedder.embed([c.embed_text for c, _ in batch])
            report.embed_seconds += time.perf_counter() - t0
            self._write(
                [Point(c.id, v, p) for (c, p), v in zip(batch, embedded, strict=True)], collections, report
            )
            report.embedded += len(batch)
            done += len(batch)
            self.progress("write", done, total)

        # Stale chunks of changed documents, then sources that left the corpus.
        for doc, _key, chunks in planned:
            keep = {c.id for c in chunks}
            for name, store in self.stores.items():
                stale = sorted(states[name].get(doc.source, SourceState()).ids - keep)
                if stale:
                    with _timed(report, name):
                        store.delete(collections[name], stale)
                    report.deleted += len(stale)
        if prune:
            current = {d.source for d in documents}
            gone: set[str] = set()
            for name, store in self.stores.items():
                for source, entry in states[name].items():
                    if source not in current and entry.ids:
                        with _timed(report, name):
                            store.delete(collections[name], sorted(entry.ids))
                        report.deleted += len(entry.ids)
                        gone.add(source)
            report.pruned_sources = sorted(gone)
        report.write_seconds = time.perf_counter() - write_started - load_seconds

        for index, (name, store) in enumerate(self.stores.items()):
            if report.changed or report.deleted:
                with _timed(report, name):
                    store.finalize(collections[name])
            report.points[name] = store.count(collections[name])
            self.progress("finalize", index + 1, len(self.stores))
        return report

    def _stored_vectors(
        self,
        ids: list[str],
        sources: list[str],
        states: dict[str, dict[str, SourceState]],
        collections: dict[str, str],
    ) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        for name, store in self.stores.items():
            wanted = [
                i
                for i, s in zip(ids, sources, strict=True)
                if i not in found and i in states[name].get(s, SourceState()).ids
            ]
            if wanted:
                for record in store.retrieve(collections[name], wanted, with_vectors=True):
                    if record.vector is not None:
                        found[record.id] = np.asarray(record.vector, dtype=np.float32)
        return found

    def _write(self, points: list[Point], collections: dict[str, str], report: IngestReport) -> None:
        if points:
            for name, store in self.stores.items():
                with _timed(report, name):
                    store.upsert(collections[name], points)


@contextmanager
def _timed(report: IngestReport, name: str) -> Iterator[None]:
    """Add the time spent in the block to ``report.store_seconds[name]``."""
    started = time.perf_counter()
    try:
        yield
    finally:
        elapsed = time.perf_counter() - started
        report.store_seconds[name] = report.store_seconds.get(name, 0.0) + elapsed


def check_compatible(store: VectorStore, collection: str, embedder: Embedder) -> None:
    """Refuse to mix embedders in one collection.

    Raises:
        StoreError: If the collection's dimension or stored embedder name differs from ``embedder``.
    """
    dim = store.collection_dim(collection)
    if dim != embedder.dim:
        raise StoreError(
            f"{store.describe()}: collection {collection!r} holds {dim}-d vectors but embedder "
            f"{embedder.name} makes {embedder.dim}-d ones; run `mlp rag reindex`"
        )
    stored = store.stored_embedder(collection)
    if stored not in (None, embedder.name):
        raise StoreError(
            f"{store.describe()}: collection {collection!r} was built with {stored}, "
            f"not {embedder.name}; run `mlp rag reindex`"
        )
