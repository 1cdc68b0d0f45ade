"""mlp serve deploy/status/promote/rollback against a fake Kubernetes API server on 127.0.0.1.

The fake serves discovery for the kinds the serving patterns use and stores objects, so the
official client runs unchanged; the tests assert on the HTTP requests it actually received.
"""

from __future__ import annotations

import json
import socket
import tempfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from click.testing import CliRunner

from components.serving.kserve import S3_SERVICE_ACCOUNT
from mlp.commands.serve_cluster import deploy_cmd, promote_cmd, rollback_cmd, status_cmd
from tests.http_fakes import read_json_body, reply_json, serving, token_kubeconfig

# (group, version, kind, plural, namespaced)
KINDS = [
    ("", "v1", "Namespace", "namespaces", False),
    ("", "v1", "Service", "services", True),
    ("apps", "v1", "Deployment", "deployments", True),
    ("serving.kserve.io", "v1beta1", "InferenceService", "inferenceservices", True),
    ("serving.kserve.io", "v1alpha1", "InferenceGraph", "inferencegraphs", True),
    ("serving.kserve.io", "v1alpha1", "TrainedModel", "trainedmodels", True),
    ("monitoring.coreos.com", "v1", "PodMonitor", "podmonitors", True),
    ("monitoring.coreos.com", "v1", "PrometheusRule", "prometheusrules", True),
    ("keda.sh", "v1alpha1", "ScaledObject", "scaledobjects", True),
    ("gateway.networking.k8s.io", "v1", "HTTPRoute", "httproutes", True),
    ("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", True),
]


def _merge(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = _merge(out.get(key), value)
    return out


class FakeApi:
    """Records requests; stores objects by path."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.objects: dict[str, dict[str, Any]] = {}
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def writes(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["method"] != "GET"]

    def _discovery(self, path: str) -> Any:
        if path == "/version":
            return {"major": "1", "minor": "33", "gitVersion": "v1.33.0"}
        if path == "/api":
            return {"kind": "APIVersions", "versions": ["v1"]}
        if path == "/apis":
            groups: dict[str, list[str]] = {}
            for group, version, *_ in KINDS:
                if group and version not in groups.setdefault(group, []):
                    groups[group].append(version)
            return {
                "kind": "APIGroupList",
                "groups": [
                    {
                        "name": g,
                        "versions": [{"groupVersion": f"{g}/{v}", "version": v} for v in vs],
                        "preferredVersion": {"groupVersion": f"{g}/{vs[0]}", "version": vs[0]},
                    }
                    for g, vs in groups.items()
                ],
            }
        for group, version in {(g, v) for g, v, *_ in KINDS}:
            prefix = f"/apis/{group}/{version}" if group else f"/api/{version}"
            if path == prefix:
                return {
                    "kind": "APIResourceList",
                    "groupVersion": f"{group}/{version}" if group else version,
                    "resources": [
                        {
                            "name": p,
                            "singularName": k.lower(),
                            "namespaced": ns,
                            "kind": k,
                            "verbs": ["get", "list", "patch", "delete"],
                        }
                        for g, v, k, p, ns in KINDS
                        if (g, v) == (group, version)
                    ],
                }
        return None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def _send(self, code: int, body: Any) -> None:
                reply_json(self, code, body)

            def _record(self) -> tuple[str, Any]:
                url = urlparse(self.path)
                body = read_json_body(self)
                api.requests.append(
                    {
                        "method": self.command,
                        "path": url.path,
                        "query": parse_qs(url.query),
                        "contentType": self.headers.get("Content-Type", ""),
                        "body": body,
                    }
                )
                return url.path, body

            def _missing(self, path: str) -> None:
                self._send(
                    404,
                    {
                        "kind": "Status",
                        "apiVersion": "v1",
                        "status": "Failure",
                        "reason": "NotFound",
                        "code": 404,
                        "message": f"{path} not found",
                    },
                )

            def do_GET(self) -> None:  # noqa: N802
                path, _ = self._record()
                found = api._discovery(path)
                if found is not None:
                    self._send(200, found)
                elif path in api.objects:
                    self._send(200, api.objects[path])
                elif any(p.startswith(path + "/") for p in api.objects) or path.endswith("s"):
                    items = [o for p, o in api.objects.items() if p.rsplit("/", 1)[0] == path]
                    self._send(200, {"kind": "List", "apiVersion": "v1", "metadata": {}, "items": items})
                else:
                    self._missing(path)

            def do_PATCH(self) -> None:  # noqa: N802
                path, body = self._record()
                if "apply-patch" in self.headers.get("Content-Type", ""):
                    api.objects[path] = body
                elif path in api.objects:
                    api.objects[path] = _merge(api.objects[path], body)
                else:
                    self._missing(path)
                    return
                self._send(200, api.objects[path])

            def do_DELETE(self) -> None:  # noqa: N802
                path, _ = self._record()
                if api.objects.pop(path, None) is None:
                    self._missing(path)
                else:
                    self._send(200, {"kind": "Status", "apiVersion": "v1", "status": "Success"})

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

        return Handler


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeApi]:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the client's discovery cache
    fake = FakeApi()
    with serving(fake.server):
        yield fake


def outputs_file(tmp_path: Path, server: str, mode: str) -> Path:
    path = tmp_path / f"outputs-{mode}.json"
    path.write_text(
        json.dumps(
            {
                "target": "aks",
                "kubeconfig": token_kubeconfig(server),
                "s3Bucket": "mlplatform",
                "prometheusUrl": "http://prometheus.monitoring.svc:9090",
                "kserveDeploymentMode": mode,
                "kserveServiceAccount": S3_SERVICE_ACCOUNT,
            }
        )
    )
    return path


STABLE = "s3://mlplatform/models/m-1/artifacts"
CANDIDATE = "s3://mlplatform/models/m-2/artifacts"
ISVCS = "/apis/serving.kserve.io/v1beta1/namespaces/mlp-serving/inferenceservices"
ROUTES = "/apis/gateway.networking.k8s.io/v1/namespaces/mlp-serving/httproutes"


def run(command: Any, args: list[str]) -> Any:
    done = CliRunner().invoke(command, args)
    assert "Traceback" not in done.output
    return done


def deploy(tmp_path: Path, outputs: Path, pattern: str, *models: str) -> Any:
    args = [pattern, "--outputs-file", str(outputs), "--out", str(tmp_path / "out")]
    for model in models:
        args += ["--model", f"clf={model}"]
    return run(deploy_cmd, args)


@pytest.mark.slow
def test_raw_deployment_canary_deploy_status_promote(api: FakeApi, tmp_path: Path) -> None:
    outputs = outputs_file(tmp_path, api.url, "RawDeployment")
    done = deploy(tmp_path, outputs, "canary", STABLE, CANDIDATE)
    assert done.exit_code == 0, done.output
    applies = [r for r in api.writes() if r["method"] == "PATCH"]
    assert all(r["contentType"].startswith("application/apply-patch") for r in applies)
    assert all(r["query"]["fieldManager"] == ["mlp"] for r in applies)
    paths = [r["path"] for r in applies]
    assert f"{ISVCS}/clf" in paths and f"{ISVCS}/clf-canary" in paths and f"{ROUTES}/clf-split" in paths
    assert paths[0] == "/api/v1/namespaces/mlp-serving"
    canary_body = next(r["body"] for r in applies if r["path"] == f"{ISVCS}/clf-canary")
    assert canary_body["spec"]["predictor"]["model"]["storageUri"] == CANDIDATE

    status = run(status_cmd, ["--name", "clf", "--outputs-file", str(outputs), "--json"])
    assert status.exit_code == 0, status.output
    result = json.loads(status.output)
    assert {s["name"] for s in result["services"]} == {"clf", "clf-canary"}
    assert result["split"] == {"clf-predictor": 90, "clf-canary-predictor": 10}

    before = len(api.requests)
    promoted = run(promote_cmd, ["--name", "clf", "--outputs-file", str(outputs)])
    assert promoted.exit_code == 0, promoted.output
    writes = [r for r in api.requests[before:] if r["method"] != "GET"]
    assert [(r["method"], r["path"]) for r in writes] == [
        ("PATCH", f"{ISVCS}/clf"),
        ("PATCH", f"{ROUTES}/clf-split"),
        ("DELETE", f"{ISVCS}/clf-canary"),
        ("DELETE", "/apis/keda.sh/v1alpha1/namespaces/mlp-serving/scaledobjects/clf-canary-predictor"),
        ("DELETE", "/apis/policy/v1/namespaces/mlp-serving/poddisruptionbudgets/clf-canary-predictor"),
    ]
    assert all(r["contentType"] == "application/merge-patch+json" for r in writes if r["method"] == "PATCH")
    assert writes[0]["body"]["spec"]["predictor"]["model"]["storageUri"] == CANDIDATE
    assert writes[1]["body"]["spec"]["rules"][0]["backendRefs"] == [
        {"name": "clf-predictor", "port": 80, "weight": 100}
    ]
    assert api.objects[f"{ISVCS}/clf"]["spec"]["predictor"]["model"]["storageUri"] == CANDIDATE


@pytest.mark.slow
def test_raw_deployment_rollback_keeps_the_stable_model(api: FakeApi, tmp_path: Path) -> None:
    outputs = outputs_file(tmp_path, api.url, "RawDeployment")
    assert deploy(tmp_path, outputs, "canary", STABLE, CANDIDATE).exit_code == 0
    before = len(api.requests)
    done = run(rollback_cmd, ["--name", "clf", "--outputs-file", str(outputs)])
    assert done.exit_code == 0, done.output
    writes = [(r["method"], r["path"]) for r in api.requests[before:] if r["method"] != "GET"]
    assert ("PATCH", f"{ROUTES}/clf-split") in writes and ("DELETE", f"{ISVCS}/clf-canary") in writes
    assert ("PATCH", f"{ISVCS}/clf") not in writes
    assert api.objects[f"{ISVCS}/clf"]["spec"]["predictor"]["model"]["storageUri"] == STABLE
    again = run(rollback_cmd, ["--name", "clf", "--outputs-file", str(outputs)])
    assert again.exit_code == 1 and "no canary" in again.output


@pytest.mark.slow
def test_serverless_canary_promote_and_rollback(api: FakeApi, tmp_path: Path) -> None:
    outputs = outputs_file(tmp_path, api.url, "Serverless")
    first = deploy(tmp_path, outputs, "canary", STABLE, CANDIDATE)
    assert first.exit_code == 1 and "deploy the stable model first" in first.output
    assert not any(r["path"].startswith(ISVCS) for r in api.writes())

    assert deploy(tmp_path, outputs, "single", STABLE).exit_code == 0
    assert deploy(tmp_path, outputs, "canary", STABLE, CANDIDATE).exit_code == 0
    body = [r for r in api.writes() if r["path"] == f"{ISVCS}/clf"][-1]["body"]
    assert body["spec"]["predictor"]["canaryTrafficPercent"] == 10
    assert body["spec"]["predictor"]["model"]["storageUri"] == CANDIDATE

    before = len(api.requests)
    assert run(rollback_cmd, ["--name", "clf", "--outputs-file", str(outputs)]).exit_code == 0
    (patch,) = [r for r in api.requests[before:] if r["method"] == "PATCH"]
    assert patch["contentType"] == "application/merge-patch+json"
    assert patch["body"]["spec"]["predictor"] == {"canaryTrafficPercent": 0, "model": {"storageUri": STABLE}}

    assert deploy(tmp_path, outputs, "canary", STABLE, CANDIDATE).exit_code == 0
    before = len(api.requests)
    assert run(promote_cmd, ["--name", "clf", "--outputs-file", str(outputs)]).exit_code == 0
    (patch,) = [r for r in api.requests[before:] if r["method"] == "PATCH"]
    assert patch["body"] == {"spec": {"predictor": {"canaryTrafficPercent": None}}}
    assert "canaryTrafficPercent" not in api.objects[f"{ISVCS}/clf"]["spec"]["predictor"]
    none_left = run(promote_cmd, ["--name", "clf", "--outputs-file", str(outputs)])
    assert none_left.exit_code == 1 and "has no canary" in none_left.output


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_no_cluster_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    outputs = outputs_file(tmp_path, f"http://127.0.0.1:{_closed_port()}", "RawDeployment")
    done = deploy(tmp_path, outputs, "single", STABLE)
    assert done.exit_code == 1
    assert "cannot reach the cluster's API server" in done.output
    status = run(status_cmd, ["--name", "clf", "--outputs-file", str(outputs)])
    assert status.exit_code == 1 and "cannot reach" in status.output
    no_kubeconfig = tmp_path / "bare.json"
    no_kubeconfig.write_text(json.dumps({"target": "aks", "kserveDeploymentMode": "Serverless"}))
    missing = run(promote_cmd, ["--name", "clf", "--outputs-file", str(no_kubeconfig)])
    assert missing.exit_code == 1 and "'kubeconfig' is missing" in missing.output
