"""Deploy rendered serving objects, read their status, promote or roll back a canary.

Talks to the cluster through the official ``kubernetes`` client's dynamic client (server-side
apply for deploy, JSON merge patches for promote and rollback), built from the stack's kubeconfig
by :func:`workloads.gpu.apply.dynamic_client`.

Canary mechanics:

* **Serverless**: one InferenceService; the candidate's revision gets ``canaryTrafficPercent``.
  Promote removes the field (100 % to the latest revision); rollback sets it to 0 (100 % back to
  the previous revision at once) and restores the stable model URI in the spec.
* **RawDeployment**: ``<name>`` (stable) and ``<name>-canary`` behind the HTTPRoute
  ``<name>-split``. Promote moves the candidate's model into the stable service, sends 100 % to
  it and deletes the canary; rollback sends 100 % to the stable service and deletes the canary.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from workloads.gpu.apply import Applied, ApplyError, apply_objects
from workloads.serving.cluster.builders import (
    CANDIDATE_URI_ANNOTATION,
    KSERVE_ALPHA_API,
    KSERVE_API,
    STABLE_URI_ANNOTATION,
    Mode,
    predictor_service,
)

_MERGE = "application/merge-patch+json"
_ABSENT = object()
"""What :func:`_on_existing` returns for an object that does not exist."""


class _NotServed(LookupError):
    """The cluster does not serve this kind (its CRD is not installed)."""


def _resource(client: Any, api_version: str, kind: str) -> Any:
    from kubernetes.dynamic.exceptions import ResourceNotFoundError

    try:
        return client.resources.get(api_version=api_version, kind=kind)
    except ResourceNotFoundError:
        raise _NotServed(f"the cluster serves no {api_version} {kind} (is its CRD installed?)") from None


def _on_existing(
    client: Any, verb: Literal["get", "delete"], api_version: str, kind: str, name: str, namespace: str
) -> Any:
    """``client.get`` or ``client.delete`` of one object; :data:`_ABSENT` when it does not exist.

    An object of a kind the cluster does not serve does not exist either.

    Raises:
        ApplyError: When the cluster refuses the call for any other reason.
    """
    from kubernetes.client.exceptions import ApiException

    try:
        return getattr(client, verb)(_resource(client, api_version, kind), name=name, namespace=namespace)
    except _NotServed:
        return _ABSENT
    except ApiException as exc:
        if exc.status == 404:
            return _ABSENT
        raise ApplyError(f"{kind} {namespace}/{name}: {exc.status} {exc.reason}") from None


def _get(client: Any, api_version: str, kind: str, name: str, namespace: str) -> dict[str, Any] | None:
    found = _on_existing(client, "get", api_version, kind, name, namespace)
    if found is _ABSENT:
        return None
    result: dict[str, Any] = found.to_dict()
    return result


def _patch(client: Any, api_version: str, kind: str, name: str, namespace: str, body: dict[str, Any]) -> None:
    from kubernetes.client.exceptions import ApiException

    try:
        client.patch(
            _resource(client, api_version, kind),
            body=body,
            name=name,
            namespace=namespace,
            content_type=_MERGE,
        )
    except ApiException as exc:
        raise ApplyError(f"{kind} {namespace}/{name}: {exc.status} {exc.reason}: {exc.body}") from None


def _patch_isvc(client: Any, name: str, namespace: str, body: dict[str, Any]) -> None:
    _patch(client, KSERVE_API, "InferenceService", name, namespace, body)


def _delete(client: Any, api_version: str, kind: str, name: str, namespace: str) -> bool:
    return _on_existing(client, "delete", api_version, kind, name, namespace) is not _ABSENT


def deploy(objects: Sequence[dict[str, Any]], client: Any, *, pattern: str, mode: Mode) -> list[Applied]:
    """Server-side apply the objects; a Serverless canary needs its service running first.

    Raises:
        ApplyError: When the cluster refuses an object, or the canary has nothing to split from.
    """
    if pattern == "canary" and mode == "Serverless":
        isvc = next(o for o in objects if o["kind"] == "InferenceService")
        meta = isvc["metadata"]
        if _get(client, KSERVE_API, "InferenceService", meta["name"], meta["namespace"]) is None:
            raise ApplyError(
                f"InferenceService {meta['namespace']}/{meta['name']} does not exist: a Serverless canary "
                "is a new revision of a running service; deploy the stable model first "
                f"(`mlp serve deploy single --name {meta['name']} ...`)"
            )
    return apply_objects(objects, client)


@dataclass
class ServiceStatus:
    """What one InferenceService reports."""

    name: str
    ready: bool
    url: str
    model: str
    canary_percent: int | None
    traffic: list[dict[str, Any]] = field(default_factory=list)
    message: str = ""


def status(client: Any, namespace: str, name: str) -> dict[str, Any]:
    """InferenceServices ``name`` and ``name-*``, the InferenceGraph and routes of that name.

    Raises:
        ApplyError: When nothing of that name exists or the cluster cannot be read.
    """
    from kubernetes.client.exceptions import ApiException

    try:
        listed = client.get(_resource(client, KSERVE_API, "InferenceService"), namespace=namespace).to_dict()
    except _NotServed as exc:
        raise ApplyError(f"{exc}: KServe is not installed on this cluster") from None
    except ApiException as exc:
        raise ApplyError(f"cannot list InferenceServices in {namespace}: {exc.status} {exc.reason}") from None
    services = []
    for item in listed.get("items") or []:
        item_name = item["metadata"]["name"]
        if item_name != name and not item_name.startswith(f"{name}-"):
            continue
        st = item.get("status") or {}
        conditions = {c.get("type"): c for c in st.get("conditions") or []}
        ready = conditions.get("Ready", {})
        predictor = item["spec"]["predictor"]
        services.append(
            ServiceStatus(
                name=item_name,
                ready=ready.get("status") == "True",
                url=st.get("url", ""),
                model=(predictor.get("model") or {}).get("storageUri", "(multi-model server)"),
                canary_percent=predictor.get("canaryTrafficPercent"),
                traffic=((st.get("components") or {}).get("predictor") or {}).get("traffic") or [],
                message=ready.get("message", "") or ready.get("reason", ""),
            ).__dict__
        )
    result: dict[str, Any] = {"namespace": namespace, "name": name, "services": services}
    graph = _get(client, KSERVE_ALPHA_API, "InferenceGraph", name, namespace)
    if graph is not None:
        steps = graph["spec"]["nodes"]["root"].get("steps") or []
        result["split"] = {s.get("serviceName"): s.get("weight") for s in steps}
    route = _get(client, "gateway.networking.k8s.io/v1", "HTTPRoute", f"{name}-split", namespace)
    if route is not None:
        refs = route["spec"]["rules"][0].get("backendRefs") or []
        result["split"] = {r["name"]: r.get("weight", 1) for r in refs}
    if not services and graph is None:
        raise ApplyError(f"no InferenceService or InferenceGraph named {name!r} in namespace {namespace}")
    return result


def _require(client: Any, name: str, namespace: str) -> dict[str, Any]:
    found = _get(client, KSERVE_API, "InferenceService", name, namespace)
    if found is None:
        raise ApplyError(f"InferenceService {namespace}/{name} does not exist")
    return found


def _serverless_canary(client: Any, name: str, namespace: str) -> dict[str, Any]:
    """The InferenceService of a running Serverless canary (``canaryTrafficPercent`` set)."""
    isvc = _require(client, name, namespace)
    if isvc["spec"]["predictor"].get("canaryTrafficPercent") is None:
        raise ApplyError(f"InferenceService {namespace}/{name} has no canary (no canaryTrafficPercent)")
    return isvc


def promote(client: Any, mode: Mode, namespace: str, name: str) -> list[str]:
    """Send all traffic to the canary's model; returns what was done, one line per step.

    Raises:
        ApplyError: When no canary is running under ``name``.
    """
    if mode == "Serverless":
        _serverless_canary(client, name, namespace)
        _patch_isvc(client, name, namespace, {"spec": {"predictor": {"canaryTrafficPercent": None}}})
        return [f"InferenceService {name}: canaryTrafficPercent removed, 100% to the latest revision"]
    canary_name = f"{name}-canary"
    canary = _get(client, KSERVE_API, "InferenceService", canary_name, namespace)
    if canary is None:
        raise ApplyError(f"no canary InferenceService {namespace}/{canary_name} to promote")
    _require(client, name, namespace)
    model = canary["spec"]["predictor"]["model"]
    uri = model.get("storageUri", "")
    _patch_isvc(
        client,
        name,
        namespace,
        {
            "metadata": {"annotations": {STABLE_URI_ANNOTATION: uri}},
            "spec": {
                "predictor": {
                    "model": {
                        k: model[k]
                        for k in ("modelFormat", "runtime", "protocolVersion", "storageUri")
                        if k in model
                    }
                }
            },
        },
    )
    steps = [f"InferenceService {name}: model set to {uri}"]
    steps += _route_all_to(client, namespace, name)
    steps += _remove_canary(client, namespace, canary_name)
    return steps


def rollback(client: Any, mode: Mode, namespace: str, name: str) -> list[str]:
    """Send all traffic back to the stable model; returns what was done, one line per step.

    Raises:
        ApplyError: When no canary is running under ``name``.
    """
    if mode == "Serverless":
        isvc = _serverless_canary(client, name, namespace)
        stable = (isvc["metadata"].get("annotations") or {}).get(STABLE_URI_ANNOTATION)
        patch: dict[str, Any] = {"spec": {"predictor": {"canaryTrafficPercent": 0}}}
        steps = [f"InferenceService {name}: canaryTrafficPercent 0, 100% to the previous revision"]
        if stable:
            patch["spec"]["predictor"]["model"] = {"storageUri": stable}
            patch["metadata"] = {"annotations": {CANDIDATE_URI_ANNOTATION: None}}
            steps.append(f"InferenceService {name}: spec restored to the stable model {stable}")
        _patch_isvc(client, name, namespace, patch)
        return steps
    canary_name = f"{name}-canary"
    if _get(client, KSERVE_API, "InferenceService", canary_name, namespace) is None:
        raise ApplyError(f"no canary InferenceService {namespace}/{canary_name} to roll back")
    return _route_all_to(client, namespace, name) + _remove_canary(client, namespace, canary_name)


def _route_all_to(client: Any, namespace: str, name: str) -> list[str]:
    route_name = f"{name}-split"
    route = _get(client, "gateway.networking.k8s.io/v1", "HTTPRoute", route_name, namespace)
    if route is None:
        return [f"HTTPRoute {route_name}: not found, nothing to re-weight"]
    rules = route["spec"]["rules"]
    rules[0]["backendRefs"] = [{"name": predictor_service(name), "port": 80, "weight": 100}]
    _patch(
        client, "gateway.networking.k8s.io/v1", "HTTPRoute", route_name, namespace, {"spec": {"rules": rules}}
    )
    return [f"HTTPRoute {route_name}: 100% to {predictor_service(name)}"]


def _remove_canary(client: Any, namespace: str, canary_name: str) -> list[str]:
    steps = []
    if _delete(client, KSERVE_API, "InferenceService", canary_name, namespace):
        steps.append(f"InferenceService {canary_name}: deleted")
    if _delete(client, "keda.sh/v1alpha1", "ScaledObject", predictor_service(canary_name), namespace):
        steps.append(f"ScaledObject {predictor_service(canary_name)}: deleted")
    # The canary's PodDisruptionBudget (builders.predictor_disruption_budgets) goes with it.
    if _delete(client, "policy/v1", "PodDisruptionBudget", predictor_service(canary_name), namespace):
        steps.append(f"PodDisruptionBudget {predictor_service(canary_name)}: deleted")
    return steps
