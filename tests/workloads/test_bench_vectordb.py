"""``mlp bench vectordb`` end to end at a tiny size (cached stand-in vectors; the real run embeds)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from mlp.commands.bench_vectordb import bench_vectordb
from workloads.benchmarks import vectordb as bench
from workloads.benchmarks import vectordb_data as data

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def seed_cache(cache: Path, n: int) -> None:
    """A pool of ``n`` sentences whose cached 'embeddings' are clustered unit vectors (no model run)."""
    pool = [f"sentence number {i} about topic {i % 17}" for i in range(n)]
    cache.mkdir(parents=True, exist_ok=True)
    (cache / f"corpus-{data.CORPUS_CAP}.json").write_text(json.dumps(pool))
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((17, 384)).astype(np.float32)

    def fake_embed(texts: list[str]) -> np.ndarray:
        ids = np.array([int(t.split()[2]) for t in texts])
        return centers[ids % 17] + 0.6 * rng.standard_normal((len(texts), 384)).astype(np.float32)

    data.embed_cached(pool, cache, fake_embed, "sentence-transformers/all-MiniLM-L6-v2")


def test_bench_vectordb_writes_a_report_and_a_plot(tmp_path: Path) -> None:
    cache, out = tmp_path / "cache", tmp_path / "out"
    seed_cache(cache, 420)
    result = CliRunner().invoke(
        bench_vectordb,
        [
            "--size",
            "400",
            "--queries",
            "20",
            "--threads",
            "2",
            "--cache-dir",
            str(cache),
            "--out-dir",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report-400.json").read_text())
    assert (out / "recall-qps-400.png").stat().st_size > 10_000
    engines = {e["engine"]: e for e in report["engines"]}
    assert set(engines) == set(bench.LOCAL_ENGINES)
    for name, e in engines.items():
        assert "error" not in e, (name, e)
        assert [s["ef"] for s in e["sweep"]] == list(bench.EF_SWEEP)
        assert all(
            0.0 <= s["recall"] <= 1.0 and s["qps"] > 0 and s["p99_ms"] >= s["p50_ms"] for s in e["sweep"]
        )
        assert e["build_s"] > 0 and e["peak_rss_mib"] > e["rss_after_load_mib"] * 0.5
        assert set(e["filtered"]) == {"1%", "10%"}
    # At 400 vectors an ef of 256 searches nearly everything: every engine finds the true neighbours.
    assert all(e["sweep"][-1]["recall"] >= 0.95 for e in engines.values())
    for name in ("qdrant-edge", "milvus-lite"):
        assert engines[name]["store_overhead"]["ratio"] > 0
        ops = engines[name]["operations"]
        assert ops["backup"]["archive_bytes"] > 0 and ops["restore"]["points"] == 400
    assert "| qdrant-edge |" in result.output


def test_unknown_engines_and_servers_without_a_target_are_bad_input(tmp_path: Path) -> None:
    unknown = CliRunner().invoke(bench_vectordb, ["--engines", "weaviate"])
    assert unknown.exit_code == 2 and "unknown ['weaviate']" in unknown.output
    server = CliRunner().invoke(bench_vectordb, ["--engines", "qdrant-server"])
    assert server.exit_code == 2 and "--target" in server.output
