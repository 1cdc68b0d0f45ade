"""Sentence vectors kept on disk, so an extractive answer embeds only the question.

An extractive answer ranks the ~50 sentences of the retrieved passages against the question.
Embedding them at question time cost seconds on a CPU (≈30 GFLOP through MiniLM); ingestion
embeds them once, in bulk, and this cache (SQLite, one row per sentence: sha256 of embedder name
and text → float32 vector) serves them afterwards. Misses are embedded and stored, so the cache
also fills itself as questions are asked. SQLite's WAL lets any number of readers (``mlp rag ask``
processes, the ``rag serve`` API) read while an ingest writes.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from workloads.rag.embeddings import Embedder


class CachedEmbedder:
    """An :class:`Embedder` whose results are cached by text in a SQLite file.

    Args:
        inner: The embedder computing misses.
        path: The SQLite file (created on first write).
        read_only: Never write (readers that must not contend with an ingest's writes).
    """

    def __init__(self, inner: Embedder, path: Path, *, read_only: bool = False) -> None:
        self.inner = inner
        self.path = Path(path)
        self.read_only = read_only
        self._local = threading.local()

    @property
    def name(self) -> str:
        """The inner embedder's name."""
        return self.inner.name

    @property
    def dim(self) -> int:
        """The inner embedder's dimension."""
        return self.inner.dim

    def count_tokens(self, text: str) -> int:
        """Token count by the inner embedder."""
        return self.inner.count_tokens(text)

    def _db(self) -> sqlite3.Connection | None:
        db = getattr(self._local, "db", None)
        if db is None:
            if not self.path.exists() and self.read_only:
                return None
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=30)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, vector BLOB NOT NULL)")
            self._local.db = db
        return db

    def _key(self, text: str) -> str:
        return hashlib.sha256(f"{self.inner.name}\n{text}".encode()).hexdigest()[:32]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors of ``texts``: cached ones read, the rest embedded (and stored unless read-only)."""
        out = np.zeros((len(texts), self.inner.dim), dtype=np.float32)
        db = self._db()
        keys = [self._key(t) for t in texts]
        found: dict[str, bytes] = {}
        if db is not None:
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                found.update(db.execute(f"SELECT key, vector FROM vectors WHERE key IN ({marks})", chunk))  # noqa: S608
        missing = [i for i, key in enumerate(keys) if key not in found]
        for i, key in enumerate(keys):
            if key in found:
                out[i] = np.frombuffer(found[key], dtype=np.float32)
        if missing:
            vectors = np.asarray(self.inner.embed([texts[i] for i in missing]), dtype=np.float32)
            out[missing] = vectors
            if db is not None and not self.read_only:
                with db:
                    db.executemany(
                        "INSERT OR REPLACE INTO vectors (key, vector) VALUES (?, ?)",
                        [(keys[i], vectors[j].tobytes()) for j, i in enumerate(missing)],
                    )
        return out

    def embed_query(self, text: str) -> np.ndarray:
        """One text (questions are not cached: they rarely repeat)."""
        vector: np.ndarray = np.asarray(self.inner.embed([text]), dtype=np.float32)[0]
        return vector

    def warm(self, texts: Sequence[str], batch: int = 256) -> int:
        """Embed and store the texts not cached yet; returns how many were embedded."""
        db = self._db()
        if db is None:
            return 0
        unique = list(dict.fromkeys(texts))
        keys = {self._key(t): t for t in unique}
        have: set[str] = set()
        key_list = list(keys)
        for start in range(0, len(key_list), 500):
            chunk = key_list[start : start + 500]
            marks = ",".join("?" * len(chunk))
            have.update(k for (k,) in db.execute(f"SELECT key FROM vectors WHERE key IN ({marks})", chunk))  # noqa: S608
        todo = [t for k, t in keys.items() if k not in have]
        for start in range(0, len(todo), batch):
            self.embed(todo[start : start + batch])
        return len(todo)

    def close(self) -> None:
        """Close this thread's connection."""
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None
