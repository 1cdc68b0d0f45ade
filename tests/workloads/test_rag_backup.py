"""Backup and restore on the embedded engines: identical search results, equal counts, loud mismatches."""

from __future__ import annotations

import io
import json
import tarfile
import uuid
from pathlib import Path

import numpy as np
import pytest

from workloads.rag.stores.base import (
    BackupManifest,
    BackupVerificationError,
    Filter,
    Point,
    RestoreMismatchError,
    StoreError,
    VectorStore,
    read_manifest,
)
from workloads.rag.stores.milvus import MilvusStore
from workloads.rag.stores.qdrant_edge import QdrantEdgeStore

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

DIM = 24
N = 600


def make_store(engine: str, path: Path) -> VectorStore:
    return QdrantEdgeStore(path / "qdrant") if engine == "qdrant-edge" else MilvusStore(path / "milvus.db")


def dataset(seed: int = 0) -> tuple[list[Point], np.ndarray]:
    rng = np.random.default_rng(seed)
    # Clustered vectors, like real embeddings, rather than isotropic noise.
    centers = rng.standard_normal((12, DIM))
    vectors = centers[rng.integers(0, 12, N)] + 0.35 * rng.standard_normal((N, DIM))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    points = [
        Point(
            str(uuid.UUID(int=i + 1)),
            vectors[i],
            {"source": f"docs/{i % 7}.md", "position": i, "text": f"chunk {i}"},
        )
        for i in range(N)
    ]
    queries = (centers[:8] / np.linalg.norm(centers[:8], axis=1, keepdims=True)).astype(np.float32)
    return points, queries


def results(store: VectorStore, collection: str, queries: np.ndarray) -> list[list[tuple[str, float, str]]]:
    out = []
    for i, query in enumerate(queries):
        filter_ = Filter.parse([f"source=docs/{i % 7}.md"]) if i % 2 else None
        hits = store.search(collection, query, limit=10, filter=filter_)
        out.append([(h.id, round(h.score, 5), h.payload["text"]) for h in hits])
    return out


@pytest.mark.parametrize("kind", ["native", "logical"])
@pytest.mark.parametrize("engine", ["qdrant-edge", "milvus-lite"])
def test_backup_then_restore_gives_identical_results(engine: str, kind: str, tmp_path: Path) -> None:
    points, queries = dataset()
    source = make_store(engine, tmp_path / "source")
    try:
        source.create_collection("docs_v1", DIM)
        for start in range(0, N, 100):
            source.upsert("docs_v1", points[start : start + 100])
        source.delete("docs_v1", [points[5].id, points[6].id])  # deletes must survive the round trip too
        source.finalize("docs_v1")
        source.set_alias("docs", "docs_v1")
        before = results(source, "docs", queries)
        archive = tmp_path / f"{engine}-{kind}.tar"
        manifest = source.backup("docs", archive, kind=kind)  # type: ignore[arg-type]
        assert manifest == read_manifest(archive)
        assert (manifest.kind, manifest.engine, manifest.collection, manifest.dim, manifest.count) == (
            kind,
            source.engine,
            "docs_v1",
            DIM,
            N - 2,
        )

        # Into the same store under a new name...
        report = source.restore(archive, "docs_restored")
        assert report.ok and report.restored == report.expected == N - 2
        assert results(source, "docs_restored", queries) == before
        assert results(source, "docs", queries) == before  # the source is untouched
        with pytest.raises(StoreError, match="already exists"):
            source.restore(archive, "docs_restored")
    finally:
        source.close()

    # ...and into an empty store.
    empty = make_store(engine, tmp_path / "empty")
    try:
        report = empty.restore(archive, "docs_v1")
        assert report.restored == N - 2 == empty.count("docs_v1")
        assert results(empty, "docs_v1", queries) == before
    finally:
        empty.close()


def test_logical_backups_cross_engines(tmp_path: Path) -> None:
    points, queries = dataset(1)
    qdrant = make_store("qdrant-edge", tmp_path)
    milvus = make_store("milvus-lite", tmp_path)
    try:
        qdrant.create_collection("docs_v1", DIM)
        qdrant.upsert("docs_v1", points)
        archive = tmp_path / "q.tar"
        qdrant.backup("docs_v1", archive, kind="logical")
        assert milvus.restore(archive, "docs_v1").ok
        ids = lambda rs: [[r[0] for r in q] for q in rs]  # noqa: E731 - scores differ in the last digits
        assert ids(results(milvus, "docs_v1", queries)) == ids(results(qdrant, "docs_v1", queries))
        qdrant.backup("docs_v1", tmp_path / "n.tar", kind="native")
        with pytest.raises(StoreError, match="cannot restore into milvus-lite"):
            milvus.restore(tmp_path / "n.tar", "other")
    finally:
        qdrant.close()
        milvus.close()


def tamper(archive: Path, out: Path, **changes: object) -> None:
    with tarfile.open(archive) as src, tarfile.open(out, "w:gz") as dst:
        for member in src.getmembers():
            data = src.extractfile(member).read()  # type: ignore[union-attr]
            if member.name == "manifest.json":
                manifest = {**json.loads(data), **changes}
                data = json.dumps(manifest).encode()
                member.size = len(data)
            dst.addfile(member, io.BytesIO(data))


@pytest.mark.parametrize("engine", ["qdrant-edge", "milvus-lite"])
def test_a_restore_with_missing_rows_fails_loudly(engine: str, tmp_path: Path) -> None:
    points, _ = dataset(2)
    store = make_store(engine, tmp_path)
    try:
        store.create_collection("docs_v1", DIM)
        store.upsert("docs_v1", points[:50])
        archive = tmp_path / "b.tar"
        store.backup("docs_v1", archive, kind="logical")
        lying = tmp_path / "lying.tar"
        tamper(archive, lying, count=51)  # the archive holds fewer points than its manifest promises
        with pytest.raises(RestoreMismatchError, match="50 points"):
            store.restore(lying, "docs_restored")
        foreign = tmp_path / "foreign.tar"
        tamper(archive, foreign, format="something-else")
        with pytest.raises(StoreError, match="not an mlp rag backup"):
            store.restore(foreign, "docs_other")
    finally:
        store.close()
    assert BackupManifest.from_json(read_manifest(archive).to_json()).count == 50


def test_a_damaged_milvus_lite_archive_is_refused_and_the_retry_works(tmp_path: Path) -> None:
    points, queries = dataset(3)
    store = make_store("milvus-lite", tmp_path)
    try:
        store.create_collection("docs_v1", DIM)
        store.upsert("docs_v1", points)
        store.finalize("docs_v1")
        archive = tmp_path / "m.tar.gz"
        manifest = store.backup("docs_v1", archive, kind="native")
        assert manifest.files and all(len(f["sha256"]) == 64 for f in manifest.files)
        with tarfile.open(archive) as src:
            members = [(m, src.extractfile(m).read()) for m in src.getmembers()]  # type: ignore[union-attr]
        i = max(range(1, len(members)), key=lambda k: len(members[k][1]))
        data = members[i][1]
        members[i] = (members[i][0], data[:100] + bytes(b ^ 0xFF for b in data[100:4196]) + data[4196:])
        damaged = tmp_path / "damaged.tar.gz"
        with tarfile.open(damaged, "w:gz") as dst:
            for info, blob in members:
                dst.addfile(info, io.BytesIO(blob))
        with pytest.raises(BackupVerificationError, match="checksum mismatch"):
            store.restore(damaged, "docs_restored")
        assert store.list_collections() == ["docs_v1"]
        assert store.restore(archive, "docs_restored").restored == N
        assert results(store, "docs_restored", queries) == results(store, "docs_v1", queries)
    finally:
        store.close()
