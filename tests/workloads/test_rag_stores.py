"""The vector-store interface on the embedded engines, and filter/request translation for servers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.workloads.qdrant_fake import FakeQdrantServer, Recorded
from workloads.rag.stores.base import (
    Filter,
    Match,
    MatchAny,
    Point,
    Range,
    RestoreMismatchError,
    StoreError,
    VectorStore,
    decode_vector,
    encode_vector,
    matches,
)
from workloads.rag.stores.milvus import MilvusStore, milvus_expr
from workloads.rag.stores.qdrant_edge import QdrantEdgeStore
from workloads.rag.stores.qdrant_server import QdrantServerStore, qdrant_filter

DIM = 16
# Qdrant Edge runs in milliseconds and stays in the fast tier; Milvus Lite starts a gRPC server per store.
# The Qdrant server store runs through qdrant-client against the client's own local mode.
ENGINES = ["qdrant-edge", "qdrant-server", pytest.param("milvus-lite", marks=pytest.mark.slow)]


def make_store(engine: str, path: Path) -> VectorStore:
    if engine == "qdrant-server":
        from qdrant_client import QdrantClient

        return QdrantServerStore("http://local-mode", client=QdrantClient(":memory:"))
    return QdrantEdgeStore(path / "qdrant") if engine == "qdrant-edge" else MilvusStore(path / "milvus.db")


@pytest.fixture(params=ENGINES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VectorStore]:
    opened = make_store(request.param, tmp_path)
    yield opened
    opened.close()


def unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.standard_normal((n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def points(n: int = 40, seed: int = 0) -> list[Point]:
    vectors = unit(np.random.default_rng(seed), n)
    return [
        Point(
            str(uuid.UUID(int=i + 1)),
            vectors[i],
            {
                "source": f"docs/{i % 4}.md",
                "kind": "adr" if i % 5 == 0 else "doc",
                "position": i,
                "text": f"t{i}",
            },
        )
        for i in range(n)
    ]


def test_collection_lifecycle_and_points(store: VectorStore) -> None:
    data = points()
    store.create_collection("c1", DIM)
    with pytest.raises(StoreError):
        store.create_collection("c1", DIM)
    store.upsert("c1", data)
    store.finalize("c1")
    assert store.list_collections() == ["c1"] and store.has_collection("c1")
    assert store.count("c1") == 40 and store.collection_dim("c1") == DIM

    store.upsert("c1", data[:5])  # overwriting is not inserting
    assert store.count("c1") == 40

    got = store.retrieve("c1", [data[3].id, str(uuid.UUID(int=999))], with_vectors=True)
    assert len(got) == 1 and got[0].id == data[3].id
    assert got[0].payload == data[3].payload
    np.testing.assert_allclose(got[0].vector, data[3].vector, atol=1e-6)

    scrolled = list(store.scroll("c1", fields=["source"], batch_size=7))
    assert sorted(r.id for r in scrolled) == sorted(p.id for p in data)
    assert all(set(r.payload) == {"source"} and r.vector is None for r in scrolled)

    store.delete("c1", [data[0].id, data[1].id])
    assert store.count("c1") == 38
    store.drop_collection("c1")
    assert store.list_collections() == []


def test_search_is_exact_and_filtered(store: VectorStore) -> None:
    data = points()
    store.create_collection("c1", DIM)
    store.upsert("c1", data)
    store.finalize("c1")
    query = data[7].vector
    hits = store.search("c1", query, limit=3)
    assert hits[0].id == data[7].id and hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert hits[0].payload["text"] == "t7"
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)

    brute = sorted(data, key=lambda p: -float(np.dot(p.vector, query)))
    filters = [
        Filter((Match("source", "docs/1.md"),)),
        Filter((MatchAny("kind", ("adr",)),)),
        Filter((Range("position", gte=10, lt=20),)),
        Filter((Match("source", "docs/2.md"),), (Range("position", lte=15),)),
        Filter.parse(["source=docs/0.md,docs/3.md", "position>5", "kind!=adr"]),
    ]
    for filter_ in filters:
        expected = [p.id for p in brute if matches(filter_, p.payload)][:5]
        got = [h.id for h in store.search("c1", query, limit=5, filter=filter_)]
        assert got == expected, filter_


def test_aliases_switch_atomically_and_resolve(store: VectorStore) -> None:
    store.create_collection("v1", DIM)
    store.create_collection("v2", DIM)
    store.upsert("v1", points(10, seed=1))
    store.upsert("v2", points(20, seed=2))
    assert store.resolve("docs") is None
    store.set_alias("docs", "v1")
    assert store.aliases() == {"docs": "v1"} and store.resolve("docs") == "v1"
    assert store.count("docs") == 10
    store.set_alias("docs", "v2")
    assert store.resolve("docs") == "v2" and store.count("docs") == 20
    assert len(store.search("docs", points(1)[0].vector, limit=50)) == 20
    store.drop_collection("v2")  # drops aliases pointing at it
    assert store.aliases() == {} and store.resolve("docs") is None
    with pytest.raises(StoreError):
        store.set_alias("docs", "nope")
    store.set_alias("docs", "v1")
    store.drop_alias("docs")
    assert store.aliases() == {}


def test_names_are_validated(store: VectorStore) -> None:
    with pytest.raises(StoreError):
        store.create_collection("bad-name/../x", DIM)


def test_unknown_collection_is_a_clear_error(store: VectorStore) -> None:
    with pytest.raises(StoreError, match="no collection or alias"):
        store.collection_dim("missing")


def test_qdrant_edge_state_survives_reopen(tmp_path: Path) -> None:
    first = QdrantEdgeStore(tmp_path)
    first.create_collection("c1", DIM)
    first.upsert("c1", points(12))
    first.set_alias("docs", "c1")
    first.close()
    again = QdrantEdgeStore(tmp_path)
    assert again.count("docs") == 12 and again.aliases() == {"docs": "c1"}
    again.close()


def test_qdrant_edge_reports_a_busy_shard(tmp_path: Path) -> None:
    first = QdrantEdgeStore(tmp_path)
    first.create_collection("c1", DIM)
    second = QdrantEdgeStore(tmp_path)
    with pytest.raises(StoreError, match="another process"):
        second.count("c1")
    first.close()
    assert second.count("c1") == 0
    second.close()


def test_vector_encoding_is_exact() -> None:
    v = unit(np.random.default_rng(3), 1)[0]
    assert np.array_equal(np.asarray(decode_vector(encode_vector(v)), dtype=np.float32), v)


# --- filters -----------------------------------------------------------------------------------


def test_filter_parse() -> None:
    parsed = Filter.parse(["source=docs/a.md", "kind=doc,adr", "position>=3", "position<10", "kind!=result"])
    assert parsed.must == (
        Match("source", "docs/a.md"),
        MatchAny("kind", ("doc", "adr")),
        Range("position", gte=3.0),
        Range("position", lt=10.0),
    )
    assert parsed.must_not == (Match("kind", "result"),)
    assert Filter.parse(["n=3"]).must == (Match("n", 3),)
    assert not Filter.parse([])
    for bad in ["noop", "x>=abc", "bad field=1"]:
        with pytest.raises(ValueError):
            Filter.parse([bad])
    with pytest.raises(ValueError):
        Match("a;drop", "x")


def test_milvus_expression_quotes_values() -> None:
    filter_ = Filter(
        (
            Match("source", 'docs/"quoted".md'),
            MatchAny("kind", ("doc", "adr")),
            Range("position", gte=1, lt=5),
        ),
        (Match("flag", True),),
    )
    assert milvus_expr(filter_) == (
        '(source == "docs/\\"quoted\\".md") and (kind in ["doc", "adr"]) and '
        "(position >= 1 and position < 5) and not (flag == true)"
    )
    assert milvus_expr(None) == "" and milvus_expr(Filter()) == ""


def test_qdrant_client_filter() -> None:
    filter_ = Filter((Match("source", "a.md"), Range("position", gt=2)), (MatchAny("kind", ("adr",)),))
    translated = qdrant_filter(filter_)
    assert translated is not None
    assert translated.model_dump(exclude_none=True) == {
        "must": [{"key": "source", "match": {"value": "a.md"}}, {"key": "position", "range": {"gt": 2.0}}],
        "must_not": [{"key": "kind", "match": {"any": ["adr"]}}],
    }
    assert qdrant_filter(None) is None


# --- Qdrant server through qdrant-client, against a recording HTTP server on 127.0.0.1 ---------


@pytest.fixture()
def qdrant_http() -> Iterator[FakeQdrantServer]:
    with FakeQdrantServer(api_key="k") as fake:
        yield fake


def last(fake: FakeQdrantServer, prefix: str) -> Recorded:
    """The latest request whose path starts with ``prefix`` (the client also checks the server version)."""
    return [r for r in fake.requests if r.path.startswith(prefix)][-1]


def test_qdrant_server_requests(qdrant_http: FakeQdrantServer) -> None:
    server = QdrantServerStore(qdrant_http.url, api_key="k", replication_factor=2)
    server.create_collection("docs_v2", 4)
    assert all(r.headers.get("api-key") == "k" for r in qdrant_http.requests)
    create = next(
        r
        for r in qdrant_http.requests
        if r.method == "PUT" and r.path.split("?")[0] == "/collections/docs_v2"
    )
    assert (
        create.body["vectors"] == {"size": 4, "distance": "Cosine"} and create.body["replication_factor"] == 2
    )
    indexes = [r.body for r in qdrant_http.requests if r.path.startswith("/collections/docs_v2/index")]
    assert {"field_name": "source", "field_schema": "keyword"} in indexes
    assert {"field_name": "position", "field_schema": "integer"} in indexes

    qdrant_http.requests.clear()
    pid = str(uuid.UUID(int=1))
    server.upsert("docs_v2", [Point(pid, [1, 0, 0, 0], {"source": "a.md", "kind": "doc"})])
    upsert = last(qdrant_http, "/collections/docs_v2/points")
    assert upsert.path == "/collections/docs_v2/points?wait=true"
    assert upsert.body["points"][0] == {
        "id": pid,
        "vector": [1.0, 0.0, 0.0, 0.0],
        "payload": {"source": "a.md", "kind": "doc"},
    }

    server.set_alias("docs", "docs_v2")
    hits = server.search("docs", [1, 0, 0, 0], limit=3, filter=Filter((Match("kind", "doc"),)))
    assert [h.id for h in hits] == [pid] and hits[0].score == pytest.approx(1.0)
    query = last(qdrant_http, "/collections/docs/points/query")
    assert (
        query.body["filter"] == {"must": [{"key": "kind", "match": {"value": "doc"}}]}
        and query.body["limit"] == 3
    )

    server.create_collection("docs_v3", 4)
    server.set_alias("docs", "docs_v3")
    switch = last(qdrant_http, "/collections/aliases")
    assert switch.body["actions"] == [
        {"delete_alias": {"alias_name": "docs"}},
        {"create_alias": {"collection_name": "docs_v3", "alias_name": "docs"}},
    ]
    assert server.aliases() == {"docs": "docs_v3"} and server.count("docs_v2") == 1
    server.close()


def test_qdrant_server_errors_carry_the_status(qdrant_http: FakeQdrantServer) -> None:
    with pytest.raises(StoreError, match="HTTP 403"):
        QdrantServerStore(qdrant_http.url, api_key="wrong").count("x")
    with pytest.raises(StoreError, match="cannot reach"):
        QdrantServerStore("http://127.0.0.1:9", timeout=2).count("x")


def test_open_store_picks_servers_from_stack_outputs(tmp_path: Path) -> None:
    from stacks import outputs as keys
    from workloads.rag.settings import RagSettings
    from workloads.rag.stores import open_store
    from workloads.target import TargetError, parse_outputs

    settings = RagSettings(home=tmp_path)
    outputs = parse_outputs(
        {
            keys.TARGET: "aks",
            keys.QDRANT_URL: "http://qdrant.mlp-data.svc:6333",
            keys.QDRANT_API_KEY: "qk",
            keys.MILVUS_URI: "http://milvus.mlp-data.svc:19530",
            keys.MILVUS_TOKEN: "root:pw",
        }
    )
    qdrant = open_store("qdrant", settings, outputs)
    assert isinstance(qdrant, QdrantServerStore) and qdrant.url == "http://qdrant.mlp-data.svc:6333"
    assert qdrant._api_key == "qk"  # noqa: SLF001
    milvus = open_store("milvus", settings, outputs)
    assert isinstance(milvus, MilvusStore) and not milvus.lite and milvus.engine == "milvus-server"
    assert milvus.uri == "http://milvus.mlp-data.svc:19530" and milvus.index_type == "HNSW"

    local = open_store("milvus", settings, None)
    assert isinstance(local, MilvusStore) and local.lite and local.index_type == "FLAT"
    assert isinstance(open_store("qdrant", settings, None), QdrantEdgeStore)

    bare = parse_outputs({keys.TARGET: "eks"})
    with pytest.raises(TargetError, match="qdrantUrl"):
        open_store("qdrant", settings, bare)


def test_qdrant_server_backups(qdrant_http: FakeQdrantServer, tmp_path: Path) -> None:
    server = QdrantServerStore(qdrant_http.url, api_key="k")
    server.create_collection("docs_v1", DIM)
    server.upsert("docs_v1", points(30))
    server.set_alias("docs", "docs_v1")

    manifest = server.backup("docs", tmp_path / "native.tar.gz", kind="native")
    assert (manifest.engine, manifest.collection, manifest.count, manifest.dim) == (
        "qdrant-server",
        "docs_v1",
        30,
        DIM,
    )
    assert manifest.files[0]["path"] == "native/collection.snapshot"
    calls = qdrant_http.calls()
    assert ("POST", "/collections/docs_v1/snapshots") in calls
    assert qdrant_http.snapshots == {}, "the server copy of the snapshot is deleted"

    qdrant_http.requests.clear()
    report = server.restore(tmp_path / "native.tar.gz", "docs_v2")
    upload = next(r for r in qdrant_http.requests if "/snapshots/upload" in r.path)
    assert (
        upload.path.startswith("/collections/docs_v2/snapshots/upload") and "priority=snapshot" in upload.path
    )
    assert upload.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    assert report.ok and report.restored == 30 and report.files_verified == 1

    logical = server.backup("docs", tmp_path / "logical.tar.gz", kind="logical")
    assert logical.count == 30
    server.restore(tmp_path / "logical.tar.gz", "docs_v3")
    assert sorted(r.id for r in server.scroll("docs_v3")) == sorted(p.id for p in points(30))

    # A server that loses a point while loading the snapshot: refused, and the new collection is dropped.
    def lossy(record: Recorded) -> tuple[int, object] | None:
        if "/snapshots/upload" not in record.path:
            return None
        answer = qdrant_http.handle(record, record.raw)
        target = record.path.split("/")[2]
        first = qdrant_http.local.scroll(target, limit=1)[0][0]
        qdrant_http.local.delete(target, [first.id])
        return answer

    qdrant_http.fail = lossy
    with pytest.raises(RestoreMismatchError, match="29 points"):
        server.restore(tmp_path / "native.tar.gz", "docs_v4")
    assert "docs_v4" not in server.list_collections()
    qdrant_http.fail = None
    assert server.restore(tmp_path / "native.tar.gz", "docs_v4").restored == 30
    server.close()
