"""The vector-database benchmark's dataset: real MiniLM embeddings of sentences from installed packages.

Text: the docstrings of the Python packages installed beside this project (read with ``ast``,
never imported), split into sentences of 40-240 characters, de-duplicated and shuffled with a
fixed seed. Short passages keep embedding affordable on a CPU; the same sentences always come out
in the same order, so a 10k dataset is the prefix of a 100k one and shares its cache.

Embeddings are computed once, in blocks of :data:`BLOCK` sentences, each stored as
``<cache>/<model>-<max_length>/<sha256 of the block's text>.npy``; an interrupted run resumes
where it stopped. Queries are held-out sentences (never in the base set); ground truth is exact
(numpy inner products of unit vectors).
"""

from __future__ import annotations

import ast
import hashlib
import json
import random
import re
import sys
import sysconfig
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

BLOCK = 2048
MAX_LENGTH = 64
CORPUS_CAP = 130_000
"""Sentences collected (in package order) before shuffling: every dataset size draws from the same pool."""
SEED = 11
PACKAGES = (
    "numpy",
    "scipy",
    "pandas",
    "sklearn",
    "torch",
    "transformers",
    "mlflow",
    "pulumi",
    "pulumi_kubernetes",
    "pulumi_aws",
    "pulumi_azure_native",
    "boto3",
    "botocore",
    "pydantic",
    "click",
    "rich",
    "matplotlib",
    "sqlalchemy",
    "kfp",
    "pymilvus",
    "qdrant_client",
    "faiss",
    "fastapi",
    "starlette",
    "httpx",
    "tokenizers",
    "jinja2",
    "yaml",
    "networkx",
    "sympy",
)
"""Packages whose docstrings make the corpus, in this order (missing ones are skipped)."""

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
_WORDS = re.compile(r"[A-Za-z]{3,}")


def site_packages() -> Path:
    """The running interpreter's site-packages."""
    return Path(sysconfig.get_paths()["purelib"])


def _docstrings(path: Path) -> Iterator[str]:
    try:
        tree = ast.parse(path.read_text(encoding="utf-8", errors="ignore"))
    except (SyntaxError, ValueError, RecursionError):
        return
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            doc = ast.get_docstring(node, clean=True)
            if doc:
                yield doc


def sentences_of(doc: str) -> Iterator[str]:
    """Prose sentences of a docstring (paragraphs of code, tables and parameter lists dropped)."""
    for paragraph in re.split(r"\n\s*\n", doc):
        lines = paragraph.strip().splitlines()
        if not lines or any(line.startswith((" ", ">>>", "..", "|", "-", "=", ":")) for line in lines):
            continue
        text = " ".join(line.strip() for line in lines)
        for sentence in _SENTENCE_END.split(text):
            sentence = sentence.strip()
            if 40 <= len(sentence) <= 240 and len(_WORDS.findall(sentence)) >= 6 and "`" not in sentence:
                yield sentence


def collect(root: Path | None = None, cap: int = CORPUS_CAP) -> list[str]:
    """The sentence pool: the first ``cap`` distinct sentences in package order, then shuffled."""
    base = root or site_packages()
    seen: set[str] = set()
    out: list[str] = []
    for package in PACKAGES:
        folder = base / package
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*.py")):
            for doc in _docstrings(path):
                for sentence in sentences_of(doc):
                    key = sentence.lower()
                    if key not in seen:
                        seen.add(key)
                        out.append(sentence)
            if len(out) >= cap:
                break
        if len(out) >= cap:
            break
    random.Random(SEED).shuffle(out)
    return out


def corpus(limit: int, cache: Path | None = None) -> list[str]:
    """Up to ``limit`` distinct sentences, the same ones in the same order on every call.

    The pool is read once (parsing the packages takes minutes) and kept as
    ``<cache>/corpus-<cap>.json``.

    Raises:
        ValueError: If the installed packages hold fewer sentences than ``limit``.
    """
    pool: list[str] | None = None
    file = cache / f"corpus-{CORPUS_CAP}.json" if cache else None
    if file is not None and file.is_file():
        pool = json.loads(file.read_text())
    if pool is None:
        pool = collect()
        if file is not None:
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_text(json.dumps(pool))
    if len(pool) < limit:
        raise ValueError(
            f"the installed packages hold {len(pool)} sentences, fewer than the {limit} asked for"
        )
    return pool[:limit]


@dataclass(frozen=True)
class Dataset:
    """Base vectors, held-out queries and exact top-k ground truth."""

    texts: list[str]
    base: np.ndarray
    queries: np.ndarray
    query_texts: list[str]
    truth: np.ndarray
    """``(queries, k)`` indices into ``base`` of the exact nearest neighbours, best first."""
    labels: np.ndarray
    """A ``tenant`` label per base vector (0..99), for filtered search at 1 % and 10 %."""


def embed_cached(
    texts: list[str],
    cache: Path,
    embed: Callable[[list[str]], np.ndarray],
    model: str,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Embeddings of ``texts``, computed block by block and cached under ``cache``."""
    folder = cache / f"{re.sub(r'[^A-Za-z0-9]+', '-', model)}-{MAX_LENGTH}"
    folder.mkdir(parents=True, exist_ok=True)
    parts = []
    for start in range(0, len(texts), BLOCK):
        block = texts[start : start + BLOCK]
        digest = hashlib.sha256("\n".join(block).encode()).hexdigest()[:24]
        file = folder / f"{digest}.npy"
        if file.is_file():
            vectors = np.load(file)
        else:
            vectors = np.asarray(embed(block), dtype=np.float32)
            tmp = file.with_suffix(".tmp.npy")
            np.save(tmp, vectors)
            tmp.replace(file)
        parts.append(vectors)
        if progress:
            progress(min(start + BLOCK, len(texts)), len(texts))
    return np.concatenate(parts) if parts else np.zeros((0, 384), dtype=np.float32)


def _pool_prefix(limit: int, cache: Path) -> list[str]:
    """The pool's first ``limit`` sentences rounded up to whole blocks (as far as the pool goes)."""
    rounded = -(-limit // BLOCK) * BLOCK
    try:
        return corpus(rounded, cache)
    except ValueError:
        return corpus(limit, cache)


def exact_topk(base: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Exact top-``k`` by inner product (cosine on unit vectors), best first (fewer if ``base`` is smaller)."""
    k = min(k, len(base))
    out = np.zeros((len(queries), k), dtype=np.int64)
    if k == 0:
        return out
    for start in range(0, len(queries), 256):
        scores = queries[start : start + 256] @ base.T
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        order = np.take_along_axis(scores, top, axis=1).argsort(axis=1)[:, ::-1]
        out[start : start + 256] = np.take_along_axis(top, order, axis=1)
    return out


def build(
    size: int,
    queries: int,
    cache: Path,
    embed: Callable[[list[str]], np.ndarray],
    model: str,
    k: int = 10,
    progress: Callable[[int, int], None] | None = None,
) -> Dataset:
    """The dataset of ``size`` base vectors and ``queries`` held-out queries.

    Queries are the *first* sentences of the corpus and the base the ones after them, so every
    size shares its queries and the prefix of its base (and their cached embeddings).
    """
    texts = corpus(queries + size, cache)
    # Whole blocks of the pool, so every size shares the cached blocks of a larger one.
    pool = corpus(len(texts), cache) if len(texts) % BLOCK == 0 else _pool_prefix(len(texts), cache)
    vectors = embed_cached(pool, cache, embed, model, progress)[: len(texts)]
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors = vectors / np.maximum(norms, 1e-12)
    query_vectors, base = vectors[:queries], vectors[queries:]
    labels = np.random.default_rng(SEED).integers(0, 100, size=len(base))
    return Dataset(
        texts[queries:], base, query_vectors, texts[:queries], exact_topk(base, query_vectors, k), labels
    )


def main() -> None:
    """Fill the cache for ``sys.argv[1]`` vectors (+200 queries), printing progress."""
    from workloads.rag.embeddings import MiniLMEmbedder

    size = int(sys.argv[1])
    cache = Path(sys.argv[2])
    embedder = MiniLMEmbedder(batch_size=128, max_length=MAX_LENGTH)
    build(
        size,
        200,
        cache,
        lambda t: embedder.embed(t),
        embedder.name,
        progress=lambda done, total: print(f"{done}/{total}", flush=True),
    )


if __name__ == "__main__":
    main()
