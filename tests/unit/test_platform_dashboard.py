"""The platform dashboard's Pipelines row: real panels on metrics the platform scrapes."""

from __future__ import annotations

import re
from typing import Any

from components.dashboards import load_dashboard

# Metric-name prefix -> who exposes it, as the platform declares its scraping.
SOURCES = {
    "run_server_": "KFP API server (ServiceMonitor on ml-pipeline)",
    "argo_workflows_": "Argo workflow controller bundled with KFP (ServiceMonitor on workflow-controller)",
    "kube_pod_": "kube-state-metrics (kube-prometheus-stack)",
}
PROMQL_WORDS = {"sum", "by", "max", "min", "on", "group_left", "increase", "rate", "or", "vector", "le"}


def _row(title: str) -> list[dict[str, Any]]:
    panels = sorted(
        load_dashboard("platform")["panels"], key=lambda p: (p["gridPos"]["y"], p["gridPos"]["x"])
    )
    start = next(i for i, p in enumerate(panels) if p["type"] == "row" and p["title"] == title)
    row = []
    for panel in panels[start + 1 :]:
        if panel["type"] == "row":
            break
        row.append(panel)
    return row


def test_the_pipelines_row_shows_runs_failures_and_durations() -> None:
    row = _row("Pipelines")
    assert row and all(p["type"] != "text" for p in row), "the placeholder text is gone"
    titles = " ".join(p["title"].lower() for p in row)
    for word in ("submitted", "phase", "failed", "duration"):
        assert word in titles
    assert sum(p["gridPos"]["w"] for p in row) <= 24


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression (label matchers, grouping clauses, ranges removed)."""
    bare = re.sub(r"\b(by|on|without|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    bare = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", bare)
    tokens = re.findall(r"\b[a-zA-Z_:][a-zA-Z0-9_:]*\b(?!\s*\()", bare)
    return {t for t in tokens if t not in PROMQL_WORDS}


def test_metric_names_are_read_from_promql() -> None:
    assert metric_names('sum by (phase) (increase(a_total{x="y"}[1h])) / on (pod) group_left (n) b') == {
        "a_total",
        "b",
    }


def test_every_pipelines_metric_comes_from_a_scraped_source() -> None:
    for panel in _row("Pipelines"):
        for target in panel["targets"]:
            names = metric_names(target["expr"])
            assert names, target["expr"]
            for name in names:
                assert any(name.startswith(prefix) for prefix in SOURCES), (panel["title"], name)
