"""``mlp bench vectordb``: the vector databases side by side, in the manner of ann-benchmarks.

One dataset (:mod:`workloads.benchmarks.vectordb_data`: real MiniLM embeddings of sentences from
installed packages, held-out queries, exact ground truth), then each engine in its own
subprocess, so its peak RSS is its own:

* ``hnswlib`` and ``faiss-hnsw``: the in-process limits (libraries, no persistence layer);
* ``qdrant-edge`` (float) and ``qdrant-edge-int8`` (scalar int8 quantisation, rescored);
* ``milvus-lite``;
* with ``--target <stack>``: ``qdrant-server`` and ``milvus-server`` of that stack.

Per engine: build (load + index) time, disk size, peak RSS, recall@10 / QPS / p50 / p99 along an
``ef`` sweep (single thread), QPS with N threads at the chosen ``ef``, filtered search at 1 % and
10 % selectivity (recall and QPS), the project's store layer against the engine's direct call
(same query, same parameters), and for the engines the project operates, the operations timed:
native backup (seconds, bytes), verified restore, re-index with alias switch.

Reports: ``build/bench/vectordb/report-<size>.json`` and ``recall-qps-<size>.png``.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from workloads.figures import save_figure

LOCAL_ENGINES = ("hnswlib", "faiss-hnsw", "qdrant-edge", "qdrant-edge-int8", "milvus-lite")
SERVER_ENGINES = ("qdrant-server", "milvus-server")
EF_SWEEP = (16, 32, 64, 128, 256)
CHOSEN_EF = 64
K = 10
M = 16
EF_CONSTRUCTION = 128
SELECTIVITY = {"1%": 1, "10%": 10}
"""Filter name -> labels allowed (labels are uniform over 0..99, so n labels select n %)."""
REPORT_DIR = Path("build/bench/vectordb")
CACHE_DIR = Path("build/cache/vectordb-bench")


def point_id(i: int) -> str:
    """The store id of base vector ``i`` (Qdrant takes UUIDs)."""
    return str(uuid.UUID(int=i + 1))


def index_of(pid: str) -> int:
    """Inverse of :func:`point_id`."""
    return uuid.UUID(pid).int - 1


def max_rss_mib() -> float:
    """Peak resident set size of this process so far, MiB.

    Reads ``VmHWM`` (reset by ``exec``) where Linux has it: ``ru_maxrss`` of a child starts at the
    parent's peak, so every engine process would report the driver's memory instead of its own.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def disk_bytes(path: Path) -> int:
    """Bytes allocated on disk under ``path`` (sparse files count what they use)."""
    if path.is_file():
        return path.stat().st_blocks * 512
    return sum(p.stat().st_blocks * 512 for p in path.rglob("*") if p.is_file())


def recall(found: Sequence[Sequence[int]], truth: np.ndarray) -> float:
    """Mean recall@k of ``found`` against ``truth``."""
    k = truth.shape[1]
    if k == 0:
        return 1.0
    return float(np.mean([len(set(f[:k]) & set(t)) / k for f, t in zip(found, truth, strict=True)]))


# --- engines -------------------------------------------------------------------------------------


class Engine:
    """One engine under test: build it, then answer ``search(query, ef, allowed)``."""

    name = ""
    store: Any = None
    collection = "bench"

    def build(self, base: np.ndarray, labels: np.ndarray, workdir: Path) -> None:
        """Load ``base`` (with a ``kind`` label ``t<label>`` per vector) and build the index under ``workdir``."""
        raise NotImplementedError

    def search(self, query: np.ndarray, ef: int, allowed: int | None) -> list[int]:
        """Ids of the top-:data:`K`; ``allowed``: labels ``< allowed`` only (None: no filter)."""
        raise NotImplementedError

    def store_search(self, query: np.ndarray, allowed: int | None) -> list[int]:
        """The same search through the project's store layer (default ``ef``)."""
        raise NotImplementedError

    def direct_default(self, query: np.ndarray, allowed: int | None) -> list[int]:
        """The engine's direct call with exactly the parameters the store layer uses."""
        raise NotImplementedError

    def disk(self, workdir: Path) -> int:
        """Bytes the engine keeps on disk."""
        return disk_bytes(workdir)


class Hnswlib(Engine):
    """hnswlib HNSW (inner product on unit vectors), filters as a Python callback."""

    name = "hnswlib"

    def build(self, base: np.ndarray, labels: np.ndarray, workdir: Path) -> None:
        """See :class:`Engine`."""
        import hnswlib

        self.labels = labels
        self.allowed_count = {n: int((labels < n).sum()) for n in SELECTIVITY.values()}
        self.index = hnswlib.Index(space="ip", dim=base.shape[1])
        self.index.init_index(max_elements=len(base), M=M, ef_construction=EF_CONSTRUCTION, random_seed=1)
        self.index.add_items(base, np.arange(len(base)), num_threads=os.cpu_count() or 1)
        workdir.mkdir(parents=True, exist_ok=True)
        self.index.save_index(str(workdir / "index.bin"))

    def search(self, query: np.ndarray, ef: int, allowed: int | None) -> list[int]:
        """See :class:`Engine`."""
        self.index.set_ef(ef)
        labels = self.labels
        flt = None if allowed is None else (lambda i: labels[i] < allowed)
        k = K if allowed is None else min(K, self.allowed_count[allowed])
        if k == 0:
            return []
        ids, _ = self.index.knn_query(query, k=k, num_threads=1, filter=flt)
        return [int(i) for i in ids[0]]


class FaissHnsw(Engine):
    """FAISS IndexHNSWFlat (inner product), filters as an id selector."""

    name = "faiss-hnsw"

    def build(self, base: np.ndarray, labels: np.ndarray, workdir: Path) -> None:
        """See :class:`Engine`."""
        import faiss

        self.faiss = faiss
        self.index = faiss.IndexHNSWFlat(base.shape[1], M * 2, faiss.METRIC_INNER_PRODUCT)
        self.index.hnsw.efConstruction = EF_CONSTRUCTION
        self.index.add(base)
        workdir.mkdir(parents=True, exist_ok=True)
        faiss.write_index(self.index, str(workdir / "index.faiss"))
        self.selectors = {
            n: faiss.IDSelectorBatch(np.flatnonzero(labels < n).astype("int64")) for n in SELECTIVITY.values()
        }
        faiss.omp_set_num_threads(1)

    def search(self, query: np.ndarray, ef: int, allowed: int | None) -> list[int]:
        """See :class:`Engine`."""
        params = self.faiss.SearchParametersHNSW(efSearch=ef)  # type: ignore[attr-defined]  # not in faiss' stubs
        if allowed is not None:
            params.sel = self.selectors[allowed]
        _, ids = self.index.search(query[None, :], K, params=params)
        return [int(i) for i in ids[0] if i >= 0]


def _kind_filter(allowed: int | None) -> Any:
    from workloads.rag.stores.base import Filter, Match, MatchAny

    if allowed is None:
        return None
    if allowed == 1:
        return Filter((Match("kind", "t0"),))
    return Filter((MatchAny("kind", tuple(f"t{i}" for i in range(allowed))),))


def _points(base: np.ndarray, labels: np.ndarray, start: int, stop: int) -> list[Any]:
    from workloads.rag.stores.base import Point

    return [Point(point_id(i), base[i], {"kind": f"t{labels[i]}", "position": i}) for i in range(start, stop)]


class StoreEngine(Engine):
    """An engine the project's store layer serves too: one direct call answers both measured searches."""

    def _direct(self, query: np.ndarray, ef: int | None, allowed: int | None) -> list[int]:
        """The engine's own search call; ``ef`` None: the parameters the store layer uses."""
        raise NotImplementedError

    def search(self, query: np.ndarray, ef: int, allowed: int | None) -> list[int]:
        """See :class:`Engine`."""
        return self._direct(query, ef, allowed)

    def store_search(self, query: np.ndarray, allowed: int | None) -> list[int]:
        """See :class:`Engine`."""
        return [
            index_of(h.id)
            for h in self.store.search(self.collection, query, limit=K, filter=_kind_filter(allowed))
        ]

    def direct_default(self, query: np.ndarray, allowed: int | None) -> list[int]:
        """See :class:`Engine`."""
        return self._direct(query, None, allowed)


class QdrantEdge(StoreEngine):
    """Qdrant Edge through the project's store (float) or directly with int8 quantisation."""

    name = "qdrant-edge"
    int8 = False

    def build(self, base: np.ndarray, labels: np.ndarray, workdir: Path) -> None:
        """See :class:`Engine`."""
        import qdrant_edge as qe

        from workloads.rag.stores.qdrant_edge import QdrantEdgeStore

        self.qe = qe
        self.store = QdrantEdgeStore(workdir)
        if self.int8:
            path = workdir / "collections" / self.collection
            path.parent.mkdir(parents=True, exist_ok=True)
            quant = qe.ScalarQuantizationConfig(qe.ScalarType.Int8, quantile=0.99, always_ram=True)
            config = qe.EdgeConfig(
                vectors=qe.EdgeVectorParams(size=base.shape[1], distance=qe.Distance.Cosine),
                quantization_config=quant,
            )
            shard = qe.EdgeShard.create(str(path), config)
            shard.update(qe.UpdateOperation.create_field_index("kind", qe.PayloadSchemaType.Keyword))
            self.store._shards[self.collection] = shard  # noqa: SLF001 - the store owns the handle
        else:
            self.store.create_collection(self.collection, base.shape[1])
        for start in range(0, len(base), 1024):
            self.store.upsert(self.collection, _points(base, labels, start, min(start + 1024, len(base))))
        self.store.finalize(self.collection)
        self.shard = self.store._shard(self.collection)  # noqa: SLF001

    def _direct(self, query: np.ndarray, ef: int | None, allowed: int | None) -> list[int]:
        """See :class:`StoreEngine`."""
        from workloads.rag.stores.qdrant_edge import edge_filter

        qe = self.qe
        quant = qe.QuantizationSearchParams(rescore=True, oversampling=2.0) if self.int8 else None
        params = qe.SearchParams(hnsw_ef=ef, quantization=quant) if ef is not None or quant else None
        request = qe.QueryRequest(
            limit=K,
            query=qe.Query.Nearest(query.tolist()),
            filter=edge_filter(_kind_filter(allowed)),
            with_payload=True,
            with_vector=False,
            params=params,
        )
        return [index_of(str(p.id)) for p in self.shard.query(request)]


class QdrantEdgeInt8(QdrantEdge):
    """Qdrant Edge with int8 scalar quantisation, rescored with the float vectors (oversampling 2)."""

    name = "qdrant-edge-int8"
    int8 = True

    def store_search(self, query: np.ndarray, allowed: int | None) -> list[int]:
        """See :class:`Engine`."""
        raise NotImplementedError  # the store layer creates float collections


class Milvus(StoreEngine):
    """Milvus Lite (``uri`` a ``.db`` path) or a Milvus server, through the project's store."""

    name = "milvus-lite"

    def __init__(self, uri: str | None = None, token: str | None = None) -> None:
        self.uri = uri
        self.token = token

    def build(self, base: np.ndarray, labels: np.ndarray, workdir: Path) -> None:
        """See :class:`Engine`."""
        from workloads.rag.stores.milvus import MilvusStore

        workdir.mkdir(parents=True, exist_ok=True)
        self.store = MilvusStore(self.uri or workdir / "milvus.db", token=self.token, index_type="HNSW")
        if self.store.has_collection(self.collection):
            self.store.drop_collection(self.collection)
        self.store.create_collection(self.collection, base.shape[1])
        for start in range(0, len(base), 1024):
            self.store.upsert(self.collection, _points(base, labels, start, min(start + 1024, len(base))))
        self.store.finalize(self.collection)
        self.store.count(self.collection)  # loads the collection

    def _direct(self, query: np.ndarray, ef: int | None, allowed: int | None) -> list[int]:
        """See :class:`StoreEngine` (the store layer searches with ``hnsw_ef``)."""
        from workloads.rag.stores.milvus import milvus_expr

        if ef is None:
            ef = self.store.hnsw_ef
        result = self.store._client.search(  # noqa: SLF001 - the engine's own call
            self.collection,
            data=[query.tolist()],
            limit=K,
            filter=milvus_expr(_kind_filter(allowed)),
            output_fields=["*"],
            search_params={"metric_type": "COSINE", "params": {"ef": max(ef, K)}},
        )
        return [index_of(str(hit["id"])) for hit in result[0]]

    def disk(self, workdir: Path) -> int:
        """See :class:`Engine`."""
        return disk_bytes(workdir) if self.uri is None or self.uri.endswith(".db") else 0


class QdrantServer(StoreEngine):
    """A stack's Qdrant server through the project's store (qdrant-client)."""

    name = "qdrant-server"

    def __init__(self, url: str, api_key: str | None) -> None:
        self.url = url
        self.api_key = api_key

    def build(self, base: np.ndarray, labels: np.ndarray, workdir: Path) -> None:
        """See :class:`Engine`."""
        from workloads.rag.stores.qdrant_server import QdrantServerStore

        self.store = QdrantServerStore(self.url, api_key=self.api_key, timeout=600)
        self.collection = f"mlp_bench_{uuid.uuid4().hex[:8]}"
        self.store.create_collection(self.collection, base.shape[1])
        for start in range(0, len(base), 512):
            self.store.upsert(self.collection, _points(base, labels, start, min(start + 512, len(base))))

    def _direct(self, query: np.ndarray, ef: int | None, allowed: int | None) -> list[int]:
        """See :class:`StoreEngine`."""
        from qdrant_client.http import models

        from workloads.rag.stores.qdrant_server import qdrant_filter

        result = self.store.client.query_points(
            self.collection,
            query=query.tolist(),
            limit=K,
            query_filter=qdrant_filter(_kind_filter(allowed)),
            search_params=models.SearchParams(hnsw_ef=ef) if ef is not None else None,
            with_payload=True,
        )
        return [index_of(str(p.id)) for p in result.points]

    def disk(self, workdir: Path) -> int:
        """See :class:`Engine`."""
        return 0  # on the server's volumes


def make_engine(name: str, target: dict[str, Any]) -> Engine:
    """The engine ``name``; servers read their endpoint from ``target`` (stack outputs)."""
    from stacks import outputs as keys

    simple: dict[str, Callable[[], Engine]] = {
        "hnswlib": Hnswlib,
        "faiss-hnsw": FaissHnsw,
        "qdrant-edge": QdrantEdge,
        "qdrant-edge-int8": QdrantEdgeInt8,
        "milvus-lite": Milvus,
    }
    if name in simple:
        return simple[name]()
    if name == "qdrant-server":
        if keys.QDRANT_URL not in target:
            raise ValueError("the stack exports no qdrantUrl")
        return QdrantServer(target[keys.QDRANT_URL], target.get(keys.QDRANT_API_KEY))
    if name == "milvus-server":
        if keys.MILVUS_URI not in target:
            raise ValueError("the stack exports no milvusUri")
        engine = Milvus(target[keys.MILVUS_URI], target.get(keys.MILVUS_TOKEN))
        engine.name = "milvus-server"
        return engine
    raise ValueError(f"unknown engine {name!r}")


# --- measuring -----------------------------------------------------------------------------------


def timed_queries(
    fn: Callable[[np.ndarray], list[int]], queries: np.ndarray
) -> tuple[list[list[int]], list[float]]:
    """Run ``fn`` per query; results and per-query seconds."""
    found, seconds = [], []
    for query in queries:
        began = time.perf_counter()
        found.append(fn(query))
        seconds.append(time.perf_counter() - began)
    return found, seconds


def latency_stats(seconds: list[float]) -> dict[str, float]:
    """QPS (single stream), p50 and p99 in milliseconds."""
    ms = np.asarray(seconds) * 1000
    return {
        "qps": round(len(seconds) / max(sum(seconds), 1e-9), 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
    }


def threaded_qps(fn: Callable[[np.ndarray], list[int]], queries: np.ndarray, threads: int) -> float:
    """Queries per second with ``threads`` concurrent callers."""
    began = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(fn, queries))
    return round(len(queries) / (time.perf_counter() - began), 1)


def operations(engine: Engine, workdir: Path, base: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """Backup, verified restore and re-index with an alias switch, timed, through the store layer."""
    store = engine.store
    out: dict[str, Any] = {}
    archive = workdir.parent / f"{engine.name}-backup.tar.gz"
    began = time.perf_counter()
    manifest = store.backup(engine.collection, archive, kind="native")
    out["backup"] = {
        "seconds": round(time.perf_counter() - began, 2),
        "archive_bytes": archive.stat().st_size,
        "store_bytes": disk_bytes(workdir),
        "files": len(manifest.files),
        "steps": 1,
        "command": "mlp rag backup --kind native",
    }
    began = time.perf_counter()
    report = store.restore(archive, "bench_restored")
    out["restore"] = {
        "seconds": round(time.perf_counter() - began, 2),
        "points": report.restored,
        "verified_files": report.files_verified,
        "steps": 1,
        "command": "mlp rag restore ARCHIVE --collection NEW --switch-alias",
    }
    store.drop_collection("bench_restored")
    began = time.perf_counter()
    store.create_collection("bench_v2", base.shape[1])
    for start in range(0, len(base), 1024):
        store.upsert("bench_v2", _points(base, labels, start, min(start + 1024, len(base))))
    store.finalize("bench_v2")
    switch = time.perf_counter()
    store.set_alias("bench_live", "bench_v2")
    out["reindex"] = {
        "seconds": round(time.perf_counter() - began, 2),
        "alias_switch_ms": round((time.perf_counter() - switch) * 1000, 2),
        "steps": 1,
        "command": "mlp rag reindex",
    }
    store.drop_collection("bench_v2")
    archive.unlink(missing_ok=True)
    return out


def run_engine(
    name: str, datafile: Path, workdir: Path, threads: int, target: dict[str, Any], ops: bool
) -> dict[str, Any]:
    """Everything measured for one engine (runs in its own process)."""
    data = np.load(datafile)
    base, queries, truth, labels = data["base"], data["queries"], data["truth"], data["labels"]
    engine = make_engine(name, target)
    rss_loaded = max_rss_mib()
    began = time.perf_counter()
    engine.build(base, labels, workdir)
    result: dict[str, Any] = {
        "engine": name,
        "build_s": round(time.perf_counter() - began, 2),
        "disk_bytes": engine.disk(workdir),
    }
    slow = name.startswith("milvus")
    sweep_queries = queries[:60] if slow else queries
    for query in sweep_queries[
        :20
    ]:  # warm-up: first-touch page faults and lazy loading stay out of the sweep
        engine.search(query, CHOSEN_EF, None)
    sweep = []
    for ef in EF_SWEEP:

        def at_ef(query: np.ndarray, ef: int = ef) -> list[int]:
            return engine.search(query, ef, None)

        found, seconds = timed_queries(at_ef, sweep_queries)
        sweep.append(
            {
                "ef": ef,
                "recall": round(recall(found, truth[: len(sweep_queries)]), 4),
                **latency_stats(seconds),
            }
        )
    result["sweep"] = sweep
    result["chosen"] = next(s for s in sweep if s["ef"] == CHOSEN_EF)
    result["qps_threads"] = {
        "threads": threads,
        "qps": threaded_qps(lambda q: engine.search(q, CHOSEN_EF, None), sweep_queries, threads),
    }
    filtered = {}
    for label, allowed in SELECTIVITY.items():

        def filtered_to(query: np.ndarray, allowed: int = allowed) -> list[int]:
            return engine.search(query, CHOSEN_EF, allowed)

        found, seconds = timed_queries(filtered_to, sweep_queries)
        ftruth = data[f"truth_{allowed}"][: len(sweep_queries)]
        filtered[label] = {"recall": round(recall(found, ftruth), 4), **latency_stats(seconds)}
    result["filtered"] = filtered
    try:
        engine.store_search(queries[0], None)
    except NotImplementedError:
        pass
    else:
        # Interleave the two calls so drift in machine load hits both alike; medians of per-query times.
        direct: list[float] = []
        layered: list[float] = []
        for query in sweep_queries:
            for fn, sink in ((engine.direct_default, direct), (engine.store_search, layered)):
                t0 = time.perf_counter()
                fn(query, None)
                sink.append(time.perf_counter() - t0)
        result["store_overhead"] = {
            "direct_median_ms": round(statistics.median(direct) * 1000, 4),
            "store_median_ms": round(statistics.median(layered) * 1000, 4),
            "ratio": round(statistics.median(layered) / statistics.median(direct), 3),
        }
    if ops and engine.store is not None and name in ("qdrant-edge", "milvus-lite"):
        result["operations"] = operations(engine, workdir, base, labels)
    result["rss_after_load_mib"] = round(rss_loaded, 1)
    result["peak_rss_mib"] = round(max_rss_mib(), 1)
    if engine.store is not None and name.endswith("server"):
        engine.store.drop_collection(engine.collection)
    if engine.store is not None:
        engine.store.close()
    return result


# --- the driver ----------------------------------------------------------------------------------


def plot(report: dict[str, Any], path: Path) -> None:
    """Recall/QPS curves and build time / RSS / disk bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    engines = [e for e in report["engines"] if "error" not in e]
    fig, axes = plt.subplots(1, 3, figsize=(16, 5))
    for e in engines:
        xs = [s["recall"] for s in e["sweep"]]
        ys = [s["qps"] for s in e["sweep"]]
        axes[0].plot(xs, ys, marker="o", label=e["engine"])
    axes[0].set_yscale("log")
    axes[0].set_xlabel("recall@10")
    axes[0].set_ylabel("QPS (1 thread, log)")
    axes[0].set_title(
        f"Recall vs QPS, ef {EF_SWEEP[0]}..{EF_SWEEP[-1]} ({report['dataset']['size']} vectors)"
    )
    axes[0].legend()
    names = [e["engine"] for e in engines]
    axes[1].bar(names, [e["build_s"] for e in engines])
    axes[1].set_ylabel("build + index (s)")
    axes[1].tick_params(axis="x", rotation=30)
    axes[2].bar(names, [e["peak_rss_mib"] for e in engines], label="peak RSS (MiB)")
    axes[2].bar(names, [e["disk_bytes"] / 2**20 for e in engines], alpha=0.6, label="disk (MiB)")
    axes[2].legend()
    axes[2].tick_params(axis="x", rotation=30)
    save_figure(fig, path, dpi=110)


def table(report: dict[str, Any]) -> str:
    """A markdown table of the chosen-ef figures."""
    rows = [
        "| engine | build s | disk MiB | peak RSS MiB | recall@10 (ef 64) | QPS 1 thr | QPS N thr | p50 ms | p99 ms "
        "| filt 1 % recall / QPS | filt 10 % recall / QPS | store/direct |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for e in report["engines"]:
        if "error" in e:
            rows.append(f"| {e['engine']} | error: {e['error'][:80]} |" + " |" * 10)
            continue
        c, f = e["chosen"], e["filtered"]
        overhead = e.get("store_overhead", {}).get("ratio", "–")
        rows.append(
            f"| {e['engine']} | {e['build_s']} | {e['disk_bytes'] / 2**20:.1f} | {e['peak_rss_mib']:.0f} | "
            f"{c['recall']:.3f} | {c['qps']:.0f} | {e['qps_threads']['qps']:.0f} | {c['p50_ms']:.2f} | {c['p99_ms']:.2f} | "
            f"{f['1%']['recall']:.3f} / {f['1%']['qps']:.0f} | {f['10%']['recall']:.3f} / {f['10%']['qps']:.0f} | {overhead} |"
        )
    return "\n".join(rows)


def prepare(size: int, queries: int, cache: Path, progress: Callable[[int, int], None] | None) -> Path:
    """Build (or load from the cache) the dataset and write it for the engine processes."""
    from workloads.benchmarks import vectordb_data as data
    from workloads.rag.embeddings import MiniLMEmbedder

    embedder = MiniLMEmbedder(batch_size=128, max_length=data.MAX_LENGTH)
    dataset = data.build(size, queries, cache, lambda t: embedder.embed(t), embedder.name, progress=progress)
    out = Path(tempfile.mkdtemp(prefix="mlp-bench-vectordb-")) / "data.npz"
    extra = {}
    for allowed in SELECTIVITY.values():
        subset = np.flatnonzero(dataset.labels < allowed)
        extra[f"truth_{allowed}"] = subset[data.exact_topk(dataset.base[subset], dataset.queries, K)]
    np.savez(
        out, base=dataset.base, queries=dataset.queries, truth=dataset.truth, labels=dataset.labels, **extra
    )
    return out


class BenchInputError(ValueError):
    """The engines or the target asked for cannot be benchmarked (unknown name, no stack outputs)."""


def choose_engines(engines: str, with_target: bool) -> list[str]:
    """The engines of a comma-separated list, with the server engines added for a stack target.

    Raises:
        BenchInputError: On an unknown engine, or a server engine without a target.
    """
    chosen = [e.strip() for e in engines.split(",") if e.strip()]
    unknown = sorted(set(chosen) - set(LOCAL_ENGINES + SERVER_ENGINES))
    if unknown:
        raise BenchInputError(
            f"--engines: unknown {unknown}; known: {', '.join(LOCAL_ENGINES + SERVER_ENGINES)}"
        )
    if with_target:
        return chosen + [e for e in SERVER_ENGINES if e not in chosen]
    if any(e in SERVER_ENGINES for e in chosen):
        raise BenchInputError("server engines need --target <stack>")
    return chosen


def server_outputs(target: str, outputs_file: Path | None) -> dict[str, Any]:
    """The stack outputs the server engines connect with (URLs and, revealed, their keys).

    Raises:
        BenchInputError: When the target cannot be read or has no stack outputs.
    """
    from stacks import outputs as keys
    from workloads.target import TargetError, load_target

    try:
        resolved = load_target(target, outputs_file=outputs_file)
    except TargetError as error:
        raise BenchInputError(str(error)) from None
    if resolved.outputs is None:
        raise BenchInputError(f"target {target!r} has no stack outputs")
    outputs: dict[str, Any] = {}
    for key in (keys.QDRANT_URL, keys.QDRANT_API_KEY, keys.MILVUS_URI, keys.MILVUS_TOKEN):
        try:
            value = resolved.outputs.require(key)
        except TargetError:
            continue
        outputs[key] = value.get_secret_value() if hasattr(value, "get_secret_value") else value
    return outputs


def _run_in_subprocess(name: str, spec: dict[str, Any], engine_timeout: int) -> dict[str, Any]:
    """One engine in its own process (its peak RSS is its own); an error or a timeout is a result."""
    try:
        done = subprocess.run(
            [sys.executable, "-m", "workloads.benchmarks.vectordb"],
            input=json.dumps({"engine": name, **spec}),
            capture_output=True,
            text=True,
            check=False,
            timeout=engine_timeout,
        )
    except subprocess.TimeoutExpired:
        return {"engine": name, "error": f"did not finish within --engine-timeout {engine_timeout} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        return {"engine": name, "error": (done.stderr.strip().splitlines() or ["no output"])[-1]}
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def summary(result: dict[str, Any]) -> str:
    """One line about one engine's result (the error, or recall, QPS, build time and RSS)."""
    if "error" in result:
        return f"error {result['error']}"
    return (
        f"recall {result['chosen']['recall']} at ef {CHOSEN_EF}, {result['chosen']['qps']} QPS, "
        f"build {result['build_s']} s, RSS {result['peak_rss_mib']} MiB"
    )


def run(
    engines: Sequence[str],
    *,
    size: int,
    queries: int,
    threads: int,
    ops: bool,
    engine_timeout: int,
    out_dir: Path,
    cache_dir: Path,
    outputs: dict[str, Any],
    on_embedding: Callable[[int, int], None] | None = None,
    on_engine: Callable[[str, dict[str, Any] | None], None] | None = None,
) -> tuple[dict[str, Any], Path, Path]:
    """Build the dataset, run every engine in its own process, write the report and its plot.

    Args:
        engines: Engines to run, in order (see :func:`choose_engines`).
        size: Base vectors.
        queries: Held-out queries.
        threads: Callers for the N-thread QPS.
        ops: Time backup, restore and re-index for the engines the project operates.
        engine_timeout: Seconds one engine may take; a slower one is reported as timed out.
        out_dir: Where ``report-<size>.json`` and ``recall-qps-<size>.png`` go.
        cache_dir: Embedding cache.
        outputs: Stack outputs for the server engines (:func:`server_outputs`), or empty.
        on_embedding: Called as ``(done, total)`` while sentences are embedded.
        on_engine: Called with ``(name, None)`` before an engine runs and ``(name, result)`` after.

    Returns:
        The report, and the paths of the JSON report and of the plot.

    Raises:
        ValueError: When the dataset cannot be built at this size.
    """
    datafile = prepare(size, queries, cache_dir, on_embedding)
    spec = {"data": str(datafile), "threads": threads, "target": outputs, "ops": ops}
    results = []
    for name in engines:
        if on_engine:
            on_engine(name, None)
        results.append(_run_in_subprocess(name, spec, engine_timeout))
        if on_engine:
            on_engine(name, results[-1])
    report = {
        "benchmark": "vectordb",
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(),
        },
        "dataset": {
            "size": size,
            "queries": queries,
            "dim": 384,
            "model": "all-MiniLM-L6-v2",
            "k": K,
            "text": "sentences of installed packages' docstrings",
        },
        "params": {
            "M": M,
            "ef_construction": EF_CONSTRUCTION,
            "ef_sweep": list(EF_SWEEP),
            "chosen_ef": CHOSEN_EF,
            "threads": threads,
        },
        "engines": results,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    report_path, plot_path = out_dir / f"report-{size}.json", out_dir / f"recall-qps-{size}.png"
    report_path.write_text(json.dumps(report, indent=2))
    plot(report, plot_path)
    Path(datafile).unlink(missing_ok=True)
    return report, report_path, plot_path


def _worker() -> None:
    spec = json.loads(sys.stdin.read())
    with tempfile.TemporaryDirectory(prefix=f"mlp-bench-{spec['engine']}-") as tmp:
        result = run_engine(
            spec["engine"],
            Path(spec["data"]),
            Path(tmp) / "data",
            spec["threads"],
            spec["target"],
            spec["ops"],
        )
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    _worker()
