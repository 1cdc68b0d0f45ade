"""AKS spot drain: Scheduled Events decisions on documents in the documented IMDS format, and
cordon + eviction through the official Kubernetes client against a fake API server on 127.0.0.1."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.http_fakes import read_json_body, reply_json, serving, token_kubeconfig
from workloads.gpu import spot_drain
from workloads.gpu.spot_drain import DocumentError, events_to_act_on, parse_document

DATA = Path(__file__).parent / "data" / "scheduled_events"
VM = "aks-t4spot-12345678-vmss_3"
NODE = "aks-t4spot-12345678-vmss000003"


def doc(name: str) -> Any:
    return json.loads((DATA / name).read_text())


def test_preempt_for_this_vm_is_acted_on_once() -> None:
    incarnation, events = parse_document(doc("preempt.json"))
    assert incarnation == 3
    (event,) = events_to_act_on(events, VM)
    assert event.event_type == "Preempt"
    assert event.not_before == datetime(2016, 9, 19, 18, 29, 47, tzinfo=UTC)
    assert events_to_act_on(events, VM, handled={event.event_id}) == []
    assert events_to_act_on(events, VM.upper()) == [event]


def test_other_vms_and_non_terminal_events_are_ignored() -> None:
    _, events = parse_document(doc("other_vm_and_freeze.json"))
    assert len(events) == 2
    assert events_to_act_on(events, VM) == []
    assert [e.event_type for e in events_to_act_on(events, "aks-t4spot-12345678-vmss_7")] == ["Preempt"]


def test_started_terminate_with_empty_not_before_drains_now() -> None:
    _, events = parse_document(doc("terminate_started.json"))
    (event,) = events_to_act_on(events, VM)
    assert event.status == "Started" and event.not_before is None


def test_empty_document_means_nothing_to_do() -> None:
    assert parse_document(doc("empty.json")) == (0, [])


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "expected an object"),
        ({"Events": []}, "DocumentIncarnation"),
        ({"DocumentIncarnation": 1, "Events": [1]}, "Events[0] is not an object"),
        ({"DocumentIncarnation": 1, "Events": [{"EventId": "x", "EventType": "Preempt"}]}, "Resources"),
        (
            {
                "DocumentIncarnation": 1,
                "Events": [{"EventId": "x", "EventType": "Preempt", "Resources": [], "NotBefore": "soon"}],
            },
            "RFC 1123",
        ),
    ],
)
def test_malformed_documents_are_refused_by_name(document: Any, message: str) -> None:
    with pytest.raises(DocumentError, match=re.escape(message)):
        parse_document(document)


def pod(
    name: str, namespace: str = "mlp-workloads", *, gpu: bool = False, owner: str = "Job", **meta: Any
) -> dict[str, Any]:
    resources = {"limits": {"nvidia.com/mig-3g.20gb": "1"}} if gpu else {"requests": {"cpu": "100m"}}
    return {
        "metadata": {
            "name": name,
            "namespace": namespace,
            "ownerReferences": [{"apiVersion": "v1", "kind": owner, "name": "o", "uid": "u"}],
            **meta,
        },
        "spec": {"nodeName": NODE, "containers": [{"name": "c", "image": "i", "resources": resources}]},
        "status": {"phase": "Running"},
    }


PODS = [
    pod("web", "mlp-serving"),
    pod("train", gpu=True),
    pod("dcgm", "gpu-operator", owner="DaemonSet"),
    pod("static", "kube-system", annotations={"kubernetes.io/config.mirror": "x"}),
    pod("guarded", "mlp-serving"),
    pod("a-train", gpu=True),
]


class FakeApi:
    """Records every request; answers node patch, pod list and evictions (``guarded`` refused once)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, str, Any]] = []
        self.refusals = {"mlp-serving/guarded": 1}
        self.imds = {"/metadata/scheduledevents": doc("preempt.json"), "/metadata/instance/compute/name": VM}
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _reply(self, status: int, body: Any) -> None:
                reply_json(self, status, body)

            def _record(self) -> tuple[str, Any]:
                body = read_json_body(self)
                fake.requests.append((self.command, self.path, self.headers.get("Content-Type", ""), body))
                return self.path, body

            def do_GET(self) -> None:  # noqa: N802
                path, _ = self._record()
                route = path.split("?")[0]
                if route in fake.imds:
                    assert self.headers.get("Metadata") == "true"
                    self._reply(200, fake.imds[route])
                elif route == "/api/v1/pods":
                    self._reply(200, {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": PODS})
                else:
                    self._reply(404, {"kind": "Status", "code": 404})

            def do_PATCH(self) -> None:  # noqa: N802
                self._record()
                self._reply(200, {"kind": "Node", "apiVersion": "v1", "metadata": {"name": NODE}})

            def do_POST(self) -> None:  # noqa: N802
                path, body = self._record()
                key = f"{body['metadata']['namespace']}/{body['metadata']['name']}"
                if fake.refusals.get(key):
                    fake.refusals[key] -= 1
                    self._reply(429, {"kind": "Status", "code": 429, "reason": "TooManyRequests"})
                else:
                    self._reply(201, {"kind": "Status", "code": 201})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def api(tmp_path: Path) -> Iterator[FakeApi]:
    fake = FakeApi()
    with serving(fake.server):
        yield fake


def kubeconfig(tmp_path: Path, server: str) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(token_kubeconfig(server))
    return path


@pytest.mark.slow
def test_once_cordons_then_evicts_gpu_pods_first_and_retries_a_budget(
    api: FakeApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(spot_drain, "RETRY_SECONDS", 0.01)
    # NotBefore in the recorded document is long past: the drain still runs each eviction once,
    # and retries only while the deadline has not passed, so give it a live event.
    live = doc("preempt.json")
    live["Events"][0]["NotBefore"] = "Fri, 01 Jan 2100 00:00:00 GMT"
    api.imds["/metadata/scheduledevents"] = live
    status = spot_drain.main(
        [
            "--once",
            "--node",
            NODE,
            "--events-url",
            f"{api.url}/metadata/scheduledevents?api-version=2020-07-01",
            "--vm-name-url",
            f"{api.url}/metadata/instance/compute/name?api-version=2021-02-01&format=text",
            "--kubeconfig",
            str(kubeconfig(tmp_path, api.url)),
        ]
    )
    assert status == 0
    k8s = [r for r in api.requests if r[1].startswith("/api/")]
    method, path, content_type, body = k8s[0]
    assert (method, path, body) == ("PATCH", f"/api/v1/nodes/{NODE}", {"spec": {"unschedulable": True}})
    assert "merge-patch+json" in content_type
    assert k8s[1][0] == "GET" and "fieldSelector=spec.nodeName%3D" + NODE in k8s[1][1]
    evictions = [(p, b) for m, p, _, b in k8s if m == "POST"]
    for path, body in evictions:
        ns, name = body["metadata"]["namespace"], body["metadata"]["name"]
        assert path == f"/api/v1/namespaces/{ns}/pods/{name}/eviction"
        assert (body["apiVersion"], body["kind"]) == ("policy/v1", "Eviction")
    order = [f"{b['metadata']['namespace']}/{b['metadata']['name']}" for _, b in evictions]
    assert order == [
        "mlp-workloads/a-train",
        "mlp-workloads/train",
        "mlp-serving/guarded",
        "mlp-serving/web",
        "mlp-serving/guarded",
    ]
    report = json.loads(capsys.readouterr().out.strip())
    assert report["evicted"] == [
        "mlp-workloads/a-train",
        "mlp-workloads/train",
        "mlp-serving/web",
        "mlp-serving/guarded",
    ]
    assert sorted(report["skipped"]) == ["gpu-operator/dcgm", "kube-system/static"]
    assert report["blocked"] == []


@pytest.mark.slow
def test_past_deadline_reports_pods_a_budget_still_protects(api: FakeApi, tmp_path: Path) -> None:
    from kubernetes import client, config

    api.refusals["mlp-serving/guarded"] = 99
    config.load_kube_config(config_file=str(kubeconfig(tmp_path, api.url)))
    drainer = spot_drain.Drainer(client.CoreV1Api(), sleep=lambda _: None)
    report = drainer.drain(NODE, datetime(2000, 1, 1, tzinfo=UTC))
    assert report.cordoned and report.blocked == ["mlp-serving/guarded"]
    assert "mlp-serving/guarded" not in report.evicted


def test_bad_arguments_exit_2_naming_the_option(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NODE_NAME", raising=False)
    with pytest.raises(SystemExit) as exc:
        spot_drain.main(["--once"])
    assert exc.value.code == 2
