"""The local serving topology on real servers: KServe, nginx, Prometheus on 127.0.0.1.

One topology per module (primary = v1, canary = shadow = v2, transformer, Prometheus); the tests
share it, in file order where one changes the traffic split.
"""

from __future__ import annotations

import json
import math
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from tests.workloads.serving_registry import MODEL, running_topology
from workloads.pipelines import data
from workloads.serving import analysis
from workloads.serving.local.reqlog import read_log

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("serve-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLP_HOME", str(home))
        with running_topology(home, aliases={"primary": "1", "canary": "2", "shadow": "2"}) as (serving, uri):
            yield {"serving": serving, "uri": uri, "home": home}


@pytest.fixture(scope="module")
def replay_data():
    rows, labels, names = analysis.labelled_replay()
    return rows, labels, names


def _row() -> list[float]:
    rows, _, _ = analysis.labelled_replay()
    return rows[0].tolist()


def test_endpoints_file_lists_every_process_on_loopback(env):
    import psutil

    serving = env["serving"]
    recorded = json.loads((serving.work_dir / "endpoints.json").read_text())
    assert set(recorded["servers"]) == {"primary", "canary", "shadow"}
    assert recorded["router"].startswith("http://127.0.0.1:")
    assert recorded["prometheus"].startswith("http://127.0.0.1:")
    assert recorded["transformer"].startswith("http://127.0.0.1:")
    for name, proc in recorded["processes"].items():
        process = psutil.Process(proc["pid"])
        connections = getattr(process, "net_connections", process.connections)()  # psutil < 6: connections
        listening = [c.laddr for c in connections if c.status == "LISTEN"]
        assert listening, name
        assert all(addr.ip == "127.0.0.1" for addr in listening), (name, listening)


def _cases(row: list[float]) -> list[tuple[str, str, bytes, str]]:
    v2 = {"inputs": [{"name": "x", "shape": [1, 30], "datatype": "FP64", "data": row}]}
    wrong_shape = {"inputs": [{"name": "x", "shape": [1, 29], "datatype": "FP64", "data": row[:29]}]}
    mismatch = {"inputs": [{"name": "x", "shape": [2, 30], "datatype": "FP64", "data": row}]}
    strings = {"inputs": [{"name": "x", "shape": [1, 30], "datatype": "FP64", "data": ["a"] * 30}]}
    bytes_type = {"inputs": [{"name": "x", "shape": [1, 30], "datatype": "BYTES", "data": ["a"] * 30}]}
    nan_v2 = json.dumps(v2).replace(str(row[0]), "NaN", 1).encode()
    return [
        ("v1", "malformed json", b'{"instances": [[1, 2', "format"),
        ("v1", "body is a list", json.dumps([row]).encode(), "JSON object"),
        ("v1", "no instances", json.dumps({"rows": [row]}).encode(), "instances"),
        ("v1", "wrong width", json.dumps({"instances": [row[:5]]}).encode(), "expects 30"),
        ("v1", "strings", json.dumps({"instances": [["x"] * 30]}).encode(), "expected a number"),
        ("v1", "booleans", json.dumps({"instances": [[True] * 30]}).encode(), "expected a number"),
        ("v1", "NaN", json.dumps({"instances": [[math.nan] + row[1:]]}).encode(), ""),
        ("v1", "infinity", json.dumps({"instances": [[math.inf] + row[1:]]}).encode(), ""),
        ("v1", "oversized", b'{"instances": [' + b"1," * 600_000 + b"1]}", "limit"),
        ("v2", "malformed json", b'{"inputs": [', ""),
        ("v2", "wrong shape", json.dumps(wrong_shape).encode(), "expects"),
        ("v2", "data/shape mismatch", json.dumps(mismatch).encode(), "needs 60"),
        ("v2", "strings", json.dumps(strings).encode(), "expected a number"),
        ("v2", "BYTES datatype", json.dumps(bytes_type).encode(), "datatype"),
        ("v2", "NaN", nan_v2, ""),
        (
            "v2",
            "oversized",
            json.dumps(
                {"inputs": [{"name": "x", "shape": [1, 30], "datatype": "FP64", "data": [1.0] * 300_000}]}
            ).encode(),
            "limit",
        ),
    ]


@pytest.mark.parametrize("via", ["server", "router"])
def test_bad_requests_get_4xx_with_a_message_and_the_server_keeps_serving(env, via):
    serving = env["serving"]
    ep = serving.endpoints
    base = ep.servers["primary"]["url"] if via == "server" else ep.router
    row = _row()
    headers = {"content-type": "application/json"}
    with httpx.Client(timeout=10) as client:
        for protocol, what, body, fragment in _cases(row):
            response = client.post(ep.predict_url(base, protocol), content=body, headers=headers)
            assert 400 <= response.status_code < 500, (protocol, what, response.status_code, response.text)
            message = response.text
            assert message and fragment in message, (protocol, what, message)
        unknown = [
            (f"{base}/v1/models/no-such-model:predict", {"instances": [row]}),
            (
                f"{base}/v2/models/no-such-model/infer",
                {"inputs": [{"name": "x", "shape": [1, 30], "datatype": "FP64", "data": row}]},
            ),
            (
                f"{base}/v2/models/{MODEL}/versions/99/infer",
                {"inputs": [{"name": "x", "shape": [1, 30], "datatype": "FP64", "data": row}]},
            ),
        ]
        for url, payload in unknown:
            response = client.post(url, json=payload)
            assert response.status_code == 404, (url, response.text)
            assert "no-such-model" in response.text or "version '99'" in response.text
        ok_v1 = client.post(ep.predict_url(base), json={"instances": [row]})
        ok_v2 = client.post(
            f"{ep.servers['primary']['url']}/v2/models/{MODEL}/versions/1/infer",
            json={"inputs": [{"name": "x", "shape": [1, 30], "datatype": "FP64", "data": row}]},
        )
    assert ok_v1.status_code == 200 and ok_v1.json()["predictions"][0] in (0, 1)
    assert ok_v2.status_code == 200
    body = ok_v2.json()
    assert body["model_version"] == "1" and body["id"]
    assert [o["name"] for o in body["outputs"]] == ["label", "probability"]


def test_no_5xx_was_counted_for_client_mistakes(env):
    text = httpx.get(env["serving"].endpoints.servers["primary"]["url"] + "/metrics").text
    counted = [line for line in text.splitlines() if line.startswith("mlp_inference_requests_total{")]
    assert any('code="400"' in line for line in counted)
    assert any('code="413"' in line for line in counted)
    assert not any('code="5' in line for line in counted), counted


def test_every_request_is_one_json_log_line(env):
    serving = env["serving"]
    ep = serving.endpoints
    rid = uuid.uuid4().hex
    row = _row()
    response = httpx.post(
        ep.predict_url(ep.servers["primary"]["url"]), json={"instances": [row]}, headers={"x-request-id": rid}
    )
    assert response.status_code == 200
    deadline = time.monotonic() + 5
    lines: list[dict] = []
    while time.monotonic() < deadline and not lines:
        lines = [x for x in read_log(serving.request_log("primary")) if x["request_id"] == rid]
        time.sleep(0.2)
    assert len(lines) == 1
    line = lines[0]
    assert line["model"] == MODEL and line["version"] == "1" and line["variant"] == "primary"
    assert line["inputs"] == [row]
    assert line["outputs"] == response.json()["predictions"]
    assert line["status"] == 200 and line["latency_ms"] > 0 and line["time"].endswith("Z")


def test_transformer_takes_named_features_and_returns_class_names(env, replay_data):
    rows, labels, names = replay_data
    ep = env["serving"].endpoints
    record = dict(zip(names, rows[0].tolist(), strict=True))
    response = httpx.post(ep.predict_url(ep.transformer), json={"instances": [record]}, timeout=10)
    assert response.status_code == 200, response.text
    prediction = response.json()["predictions"][0]
    assert prediction["label"] in ("malignant", "benign") and prediction["class"] == (
        "malignant",
        "benign",
    ).index(prediction["label"])
    bad = httpx.post(ep.predict_url(ep.transformer), json={"instances": [{"radius": 1.0}]}, timeout=10)
    assert bad.status_code == 400 and "missing features" in bad.text


def test_shadow_answers_from_primary_only_and_reports_agreement(env, replay_data):
    rows, labels, _ = replay_data
    report = analysis.run_shadow(env["serving"], rows, labels, requests=60)
    assert report["responses_only_from_primary"] is True
    assert report["responses_by_variant"] == {"primary": 60}
    assert report["shadow_received"] == 60 and report["compared"] == 60
    assert 0.8 <= report["agreement_rate"] <= 1.0
    assert report["shadow_server_p95_ms"] > 0


def test_ab_split_reports_both_variants_with_a_verdict(env, replay_data):
    rows, labels, _ = replay_data
    report = analysis.run_ab(env["serving"], rows, labels, requests=120)
    assert report["A"]["requests"] > 20 and report["B"]["requests"] > 20
    assert report["A"]["requests"] + report["B"]["requests"] == 120
    assert report["A"]["version"] == "1" and report["B"]["version"] == "2"
    assert 0 <= report["accuracy_test"]["p_value"] <= 1 and 0 <= report["latency_test"]["p_value"] <= 1
    assert "accuracy" in report["verdict"] and "latency" in report["verdict"]


def test_canary_promotes_a_good_challenger_and_moves_the_alias(env, replay_data):
    from mlflow import MlflowClient

    rows, labels, _ = replay_data
    serving = env["serving"]
    client = MlflowClient(tracking_uri=env["uri"], registry_uri=env["uri"])
    assert str(client.get_model_version_by_alias(MODEL, "champion").version) == "1"
    policy = analysis.CanaryPolicy(steps=(20.0, 50.0), requests_per_step=60)
    report = analysis.run_canary(serving, rows, labels, policy, tracking_uri=env["uri"])
    assert report["decision"] == "promote", report
    assert [s["canary_percent"] for s in report["steps"]] == [20.0, 50.0]
    for step in report["steps"]:
        assert step["canary"]["requests_prom"] == step["canary"]["requests"] > 0
        assert step["canary"]["error_rate"] == 0.0
    assert str(client.get_model_version_by_alias(MODEL, "champion").version) == "2"
    assert serving.canary_percent == 100.0
    analysis.plot_canary(report, serving.work_dir / "canary.png")
    assert (serving.work_dir / "canary.png").stat().st_size > 0


def _prom(url: str, query: str) -> list[dict]:
    q = urllib.parse.urlencode({"query": query})
    with urllib.request.urlopen(f"{url}/api/v1/query?{q}", timeout=5) as response:
        return json.loads(response.read())["data"]["result"]


def test_drift_gauges_reach_prometheus_and_fire_the_alert(env, tmp_path):
    from mlp.cli import main

    serving = env["serving"]
    prepared = data.prepare()
    test, _ = data.features_and_target(prepared.test)
    from workloads.monitoring.drift import shifted

    current = tmp_path / "current.csv"
    shifted(test, ["mean radius", "worst area"], scale=1.6).to_csv(current, index=False)
    result = CliRunner().invoke(
        main, ["serve", "drift", "--current", str(current), "--work-dir", str(serving.work_dir)]
    )
    assert result.exit_code == 3, result.output
    assert "mean radius" in result.output and "worst area" in result.output
    prom = serving.endpoints.prometheus
    deadline = time.monotonic() + 20
    alerts: list[dict] = []
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"{prom}/api/v1/alerts", timeout=5) as response:
            alerts = [
                a
                for a in json.loads(response.read())["data"]["alerts"]
                if a["labels"]["alertname"] == "FeatureDrift"
            ]
        if {a["labels"]["feature"] for a in alerts} >= {"mean radius", "worst area"}:
            break
        time.sleep(0.5)
    assert {a["labels"]["feature"] for a in alerts} == {"mean radius", "worst area"}
    gauges = _prom(prom, "mlp_feature_drift_psi > 0.2")
    assert {g["metric"]["feature"] for g in gauges} >= {"mean radius", "worst area"}


def test_stop_ends_every_process(env):
    import psutil

    serving = env["serving"]
    pids = [p["pid"] for p in serving.endpoints.processes.values()]
    serving.stop()
    assert not any(
        psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE for pid in pids
    )
    assert not Path(serving.work_dir / "endpoints.json").exists()
