"""Cordon and drain an AKS spot node when Azure schedules its preemption.

Azure announces a spot eviction through Scheduled Events in the instance metadata service (IMDS):
an event of type ``Preempt`` (``Terminate`` when the VM is deleted) naming the VM, with a
``NotBefore`` time at least 30 seconds ahead. One pod of this program runs on every spot GPU node
(a DaemonSet, see ``components/clusters/aks_interruption.py``) and

1. polls ``/metadata/scheduledevents`` (header ``Metadata: true``) every ``--interval`` seconds;
2. keeps the events that are ``Scheduled``, of a draining type, and name this VM (the VM name
   comes from IMDS ``compute/name``, which is what ``Resources`` lists);
3. cordons the node (``spec.unschedulable``), then evicts its pods through the Eviction API so
   PodDisruptionBudgets and each pod's ``terminationGracePeriodSeconds`` hold: pods that request
   GPUs first (training needs the notice to checkpoint), then the rest; DaemonSet pods, mirror
   pods and pods already terminating are left alone. An eviction refused by a budget (429) is
   retried until ``NotBefore``.

It does not acknowledge the event (Azure preempts at ``NotBefore`` either way) and does not
uncordon: a preempted spot VM does not come back, its replacement is a new node.

Run: ``python -m workloads.gpu.spot_drain`` (``--node`` or ``$NODE_NAME``; ``--once`` for one poll).
"""

from __future__ import annotations

import argparse
import email.utils
import json
import logging
import os
import signal
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import FrameType
from typing import Any, Final

LOG = logging.getLogger("spot-drain")

IMDS: Final = "http://169.254.169.254"
EVENTS_URL: Final = f"{IMDS}/metadata/scheduledevents?api-version=2020-07-01"
VM_NAME_URL: Final = f"{IMDS}/metadata/instance/compute/name?api-version=2021-02-01&format=text"
DRAIN_EVENT_TYPES: Final = frozenset({"Preempt", "Terminate"})
"""Events after which the VM is gone; Freeze, Reboot and Redeploy keep or move it."""
GPU_RESOURCE_PREFIX: Final = "nvidia.com/"
MIRROR_ANNOTATION: Final = "kubernetes.io/config.mirror"
DEFAULT_INTERVAL_SECONDS: Final = 2.0
RETRY_SECONDS: Final = 3.0


class DocumentError(ValueError):
    """The IMDS answer is not a Scheduled Events document."""


@dataclass(frozen=True)
class ScheduledEvent:
    """One entry of ``Events`` in a Scheduled Events document.

    Attributes:
        event_id: ``EventId``.
        event_type: ``EventType`` (``Preempt``, ``Terminate``, ``Reboot``, ``Redeploy``, ``Freeze``).
        resources: ``Resources``: the VM names the event applies to.
        status: ``EventStatus`` (``Scheduled`` or ``Started``).
        not_before: ``NotBefore`` as an aware datetime; None when empty (the event has started).

    """

    event_id: str
    event_type: str
    resources: tuple[str, ...]
    status: str
    not_before: datetime | None


@dataclass
class DrainReport:
    """What one drain did.

    Attributes:
        node: The node.
        cordoned: Whether the cordon patch succeeded.
        evicted: ``namespace/name`` of each pod evicted, in order.
        skipped: ``namespace/name`` of each pod left alone (DaemonSet, mirror, terminating).
        blocked: Pods still refused (disruption budget) when the deadline passed.

    """

    node: str
    cordoned: bool = False
    evicted: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)


def _not_before(value: Any, event_id: str) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(str(value))
    except (TypeError, ValueError):
        raise DocumentError(f"event {event_id}: NotBefore {value!r} is not an RFC 1123 date") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_document(document: Any) -> tuple[int, list[ScheduledEvent]]:
    """``(DocumentIncarnation, events)`` of a Scheduled Events document.

    Raises:
        DocumentError: When the document is not an object with ``DocumentIncarnation`` and an
            ``Events`` list of objects carrying ``EventId``, ``EventType`` and ``Resources``.

    """
    if not isinstance(document, Mapping) or not isinstance(document.get("Events"), list):
        raise DocumentError("not a Scheduled Events document: expected an object with an 'Events' list")
    incarnation = document.get("DocumentIncarnation")
    if not isinstance(incarnation, int):
        raise DocumentError("'DocumentIncarnation' must be an integer")
    events = []
    for index, raw in enumerate(document["Events"]):
        if not isinstance(raw, Mapping):
            raise DocumentError(f"Events[{index}] is not an object")
        missing = [k for k in ("EventId", "EventType", "Resources") if k not in raw]
        if missing or not isinstance(raw["Resources"], list):
            raise DocumentError(f"Events[{index}] lacks {missing or ['Resources (a list)']}")
        event_id = str(raw["EventId"])
        events.append(
            ScheduledEvent(
                event_id=event_id,
                event_type=str(raw["EventType"]),
                resources=tuple(str(r) for r in raw["Resources"]),
                status=str(raw.get("EventStatus", "Scheduled")),
                not_before=_not_before(raw.get("NotBefore"), event_id),
            )
        )
    return incarnation, events


def events_to_act_on(
    events: Iterable[ScheduledEvent], vm_name: str, handled: Iterable[str] = ()
) -> list[ScheduledEvent]:
    """The events that mean "this VM goes away" and have not been acted on yet.

    Args:
        events: Parsed events.
        vm_name: This VM's name (IMDS ``compute/name``), as ``Resources`` spells it.
        handled: Event ids already drained for.

    """
    done = set(handled)
    return [
        e
        for e in events
        if e.event_type in DRAIN_EVENT_TYPES
        and vm_name.lower() in (r.lower() for r in e.resources)
        and e.event_id not in done
    ]


def fetch(url: str, *, timeout: float = 5.0) -> str:
    """GET an IMDS endpoint (``Metadata: true``, no proxy) and return the body."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(url, headers={"Metadata": "true"})
    with opener.open(request, timeout=timeout) as response:
        return str(response.read().decode())


def _pod_key(pod: Any) -> str:
    return f"{pod.metadata.namespace}/{pod.metadata.name}"


def skip_reason(pod: Any) -> str | None:
    """Why a pod is not evicted (``daemonset``, ``mirror``, ``terminating``, ``finished``), or None."""
    meta = pod.metadata
    if any(ref.kind == "DaemonSet" for ref in meta.owner_references or ()):
        return "daemonset"
    if MIRROR_ANNOTATION in (meta.annotations or {}):
        return "mirror"
    if meta.deletion_timestamp is not None:
        return "terminating"
    if pod.status is not None and pod.status.phase in ("Succeeded", "Failed"):
        return "finished"
    return None


def requests_gpu(pod: Any) -> bool:
    """Whether any container asks for an NVIDIA resource (whole GPU, shared GPU or MIG slice)."""
    for container in pod.spec.containers or ():
        resources = container.resources
        wanted = {
            **((resources.limits if resources else None) or {}),
            **((resources.requests if resources else None) or {}),
        }
        if any(name.startswith(GPU_RESOURCE_PREFIX) for name in wanted):
            return True
    return False


def drain_order(pods: Sequence[Any]) -> tuple[list[Any], list[Any]]:
    """``(to_evict, skipped)``: GPU pods first, then the rest, each by namespace and name."""
    skipped = [p for p in pods if skip_reason(p)]
    evict = [p for p in pods if not skip_reason(p)]
    evict.sort(key=lambda p: (not requests_gpu(p), p.metadata.namespace, p.metadata.name))
    return evict, skipped


class Drainer:
    """Cordon and evict through the official Kubernetes client."""

    def __init__(self, core: Any, *, sleep: Callable[[float], None] = time.sleep) -> None:
        """Args: core: a ``kubernetes.client.CoreV1Api``; sleep: waits between refused evictions."""
        self.core = core
        self.sleep = sleep

    def drain(self, node: str, deadline: datetime | None) -> DrainReport:
        """Cordon ``node`` and evict its pods; retry pods a budget protects until ``deadline``."""
        from kubernetes.client import V1Eviction, V1ObjectMeta
        from kubernetes.client.exceptions import ApiException

        report = DrainReport(node)
        self.core.patch_node(node, {"spec": {"unschedulable": True}})
        report.cordoned = True
        pods = self.core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={node}").items
        pending, skipped = drain_order(pods)
        report.skipped = [_pod_key(p) for p in skipped]
        while pending:
            refused = []
            for pod in pending:
                body = V1Eviction(
                    api_version="policy/v1",
                    kind="Eviction",
                    metadata=V1ObjectMeta(name=pod.metadata.name, namespace=pod.metadata.namespace),
                )
                try:
                    self.core.create_namespaced_pod_eviction(pod.metadata.name, pod.metadata.namespace, body)
                except ApiException as exc:
                    if exc.status == 404:  # gone already
                        continue
                    if exc.status != 429:
                        raise
                    refused.append(pod)
                    continue
                report.evicted.append(_pod_key(pod))
                LOG.info("evicted %s", _pod_key(pod))
            pending = refused
            if pending and (deadline is None or datetime.now(UTC) >= deadline):
                break
            if pending:
                self.sleep(RETRY_SECONDS)
        report.blocked = [_pod_key(p) for p in pending]
        return report


def poll_once(
    drainer: Drainer, node: str, vm_name: str, handled: set[str], *, events_url: str = EVENTS_URL
) -> list[DrainReport]:
    """One poll: fetch the document, drain for each new event naming this VM, remember it."""
    _, events = parse_document(json.loads(fetch(events_url)))
    reports = []
    for event in events_to_act_on(events, vm_name, handled):
        LOG.warning(
            "%s %s for %s not before %s: draining %s",
            event.event_type,
            event.event_id,
            vm_name,
            event.not_before,
            node,
        )
        reports.append(drainer.drain(node, event.not_before))
        handled.add(event.event_id)
    return reports


def _kubernetes_core(kubeconfig: str | None) -> Any:
    from kubernetes import client, config

    if kubeconfig:
        config.load_kube_config(config_file=kubeconfig)
    else:
        config.load_incluster_config()
    return client.CoreV1Api()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: poll until SIGTERM; exit 2 on bad arguments, 1 on a failed poll with ``--once``."""
    parser = argparse.ArgumentParser(
        prog="python -m workloads.gpu.spot_drain", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--node", default=os.environ.get("NODE_NAME"), help="This node's name (default $NODE_NAME)."
    )
    parser.add_argument("--vm-name", help="This VM's name in Scheduled Events (default: IMDS compute/name).")
    parser.add_argument(
        "--interval", type=float, default=DEFAULT_INTERVAL_SECONDS, help="Seconds between polls."
    )
    parser.add_argument("--events-url", default=EVENTS_URL, help="Scheduled Events endpoint.")
    parser.add_argument("--vm-name-url", default=VM_NAME_URL, help="IMDS endpoint of the VM name.")
    parser.add_argument("--kubeconfig", help="Kubeconfig file (default: the in-cluster service account).")
    parser.add_argument("--once", action="store_true", help="Poll once and exit.")
    args = parser.parse_args(argv)
    if not args.node:
        parser.error("--node (or $NODE_NAME from the downward API) is required")
    if args.interval <= 0:
        parser.error("--interval must be positive")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    stop = threading.Event()

    def on_term(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_term)
    drainer = Drainer(_kubernetes_core(args.kubeconfig))
    handled: set[str] = set()
    vm_name = args.vm_name
    while not stop.is_set():
        try:
            vm_name = vm_name or fetch(args.vm_name_url).strip()
            for report in poll_once(drainer, args.node, vm_name, handled, events_url=args.events_url):
                print(json.dumps(report.__dict__), flush=True)
        except Exception as exc:  # noqa: BLE001 - a failed poll is logged and retried, never fatal
            LOG.error("poll failed: %s", exc)
            if args.once:
                return 1
        if args.once:
            return 0
        stop.wait(args.interval)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
