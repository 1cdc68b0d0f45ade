"""The inference benchmark's code path on real servers (tiny durations; figures come from the CLI)."""

from __future__ import annotations

import pytest

from tests.workloads.serving_registry import MODEL, build_registry
from workloads.benchmarks import inference
from workloads.pipelines.data import breast_cancer_schema
from workloads.serving.local.stack import resolve_variants

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def test_every_case_answers_without_errors_and_the_report_has_the_ratios(tmp_path):
    uri = build_registry(tmp_path / "home")
    spec = resolve_variants(uri, MODEL, {"m": "1"}, tmp_path / "models")["m"]
    report = inference.run_benchmark(
        model=MODEL,
        model_path=spec.model_dir,
        version=spec.version,
        feature_names=breast_cancer_schema().feature_names,
        work_dir=tmp_path / "work",
        concurrencies=(1, 8),
        duration_s=0.4,
        open_rate=50.0,
        rounds=1,
    )
    assert set(report["results"]) == {
        "bare_v1",
        "kserve_v1",
        "kserve_v2",
        "kserve_v1_logging",
        "nginx_split_v1",
        "transformer_v1",
    }
    for name, points in report["results"].items():
        for point in points.values():
            assert point["requests"] > 0 and point["errors"] == 0, (name, point)
    for name, point in report["open_loop"].items():
        assert point["errors"] == 0 and point["requests"] == 20, (name, point)
    assert set(report["targets_met"]) == {"kserve_vs_bare_at_32", "nginx_cost", "logging_cost", "p99_ms_at_8"}
    assert (tmp_path / "work" / "requests.jsonl").stat().st_size > 0
    inference.plot(report, tmp_path / "inference.png")
