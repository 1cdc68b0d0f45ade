"""A deliberately broken challenger (30 % 5xx, +120 ms) is rolled back on the real servers."""

from __future__ import annotations

import pytest

from tests.workloads.serving_registry import MODEL, running_topology
from workloads.serving import analysis
from workloads.serving.local.server import Injection

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory):
    with running_topology(
        tmp_path_factory.mktemp("serve-rollback"),
        aliases={"primary": "1", "canary": "2"},
        injections={"canary": Injection(delay_ms=120.0, error_rate=0.3)},
        transformer=False,
        log_requests=False,
    ) as started:
        yield started


def test_canary_rolls_back_a_broken_challenger_and_leaves_the_registry(broken):
    from mlflow import MlflowClient

    serving, uri = broken
    rows, labels, _ = analysis.labelled_replay()
    policy = analysis.CanaryPolicy(steps=(30.0, 60.0), requests_per_step=60)
    report = analysis.run_canary(serving, rows, labels, policy, tracking_uri=uri)
    assert report["decision"] == "rollback", report
    failed = [name for name, check in report["steps"][-1]["checks"].items() if check["passed"] is False]
    assert "error_rate" in failed and "p95_latency" in failed
    last = report["steps"][-1]
    assert last["canary"]["error_rate"] > 0.02 and last["primary"]["error_rate"] == 0.0
    assert last["canary"]["p95_s"] > last["primary"]["p95_s"]
    assert serving.canary_percent == 0.0
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    assert str(client.get_model_version_by_alias(MODEL, "champion").version) == "1"
