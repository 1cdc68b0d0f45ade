"""Apply rendered GPU workloads to a cluster through a kubeconfig (server-side apply).

Jobs are immutable once created, so an existing Job of the same name is deleted first; other
objects are applied in place. ``wait_for_job`` polls a Job to completion.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

FIELD_MANAGER = "mlp"


class ApplyError(RuntimeError):
    """The cluster rejected an object or a Job failed."""


@dataclass(frozen=True)
class Applied:
    """One object sent to the cluster."""

    kind: str
    name: str
    namespace: str | None
    replaced: bool


def dynamic_client(kubeconfig: str) -> Any:
    """A Kubernetes dynamic client for a kubeconfig document (YAML or JSON text).

    Raises:
        ApplyError: When the kubeconfig is unusable or the API server cannot be reached (the
            client reads the server's API list on creation).

    """
    import yaml
    from kubernetes import config, dynamic
    from kubernetes.client.exceptions import ApiException
    from kubernetes.config.config_exception import ConfigException
    from urllib3.exceptions import HTTPError

    try:
        api_client = config.new_client_from_config_dict(yaml.safe_load(kubeconfig))
    except (ConfigException, yaml.YAMLError, TypeError) as exc:
        raise ApplyError(f"the kubeconfig is not usable: {exc}") from None
    try:
        return dynamic.DynamicClient(api_client)
    except (ApiException, HTTPError, OSError) as exc:
        raise ApplyError(f"cannot reach the cluster's API server: {exc}") from None


def apply_objects(
    objects: Sequence[dict[str, Any]],
    client: Any,
    *,
    wait_deleted: Callable[[Any, Any, str, str | None], None] | None = None,
) -> list[Applied]:
    """Server-side apply each object in order.

    Args:
        objects: Rendered manifests (namespace first).
        client: A ``kubernetes.dynamic.DynamicClient`` (or a stand-in with the same methods).
        wait_deleted: ``(client, resource, name, namespace)`` waiting until a deleted Job is gone
            (defaults to polling the API).

    Raises:
        ApplyError: When the API server rejects an object.

    """
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    done: list[Applied] = []
    for obj in objects:
        meta = obj["metadata"]
        name, ns = meta["name"], meta.get("namespace")
        try:
            resource = client.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
            replaced = False
            if obj["kind"] == "Job":
                try:
                    client.delete(resource, name=name, namespace=ns, body={"propagationPolicy": "Background"})
                    replaced = True
                    (wait_deleted or _wait_deleted)(client, resource, name, ns)
                except ApiException as exc:
                    if exc.status != 404:
                        raise
            client.server_side_apply(
                resource, body=obj, name=name, namespace=ns, field_manager=FIELD_MANAGER, force_conflicts=True
            )
        except ApiException as exc:
            raise ApplyError(f"{obj['kind']} {name}: {exc.status} {exc.reason}: {exc.body}") from None
        except (HTTPError, OSError) as exc:
            raise ApplyError(f"cannot reach the cluster's API server: {exc}") from None
        done.append(Applied(obj["kind"], name, ns, replaced))
    return done


def _wait_deleted(
    client: Any, resource: Any, name: str, namespace: str | None, timeout_s: float = 60
) -> None:
    from kubernetes.client.exceptions import ApiException

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            client.get(resource, name=name, namespace=namespace)
        except ApiException as exc:
            if exc.status == 404:
                return
            raise
        time.sleep(1)
    raise ApplyError(f"{name} was not deleted within {timeout_s:.0f} s")


def wait_for_job(
    client: Any,
    name: str,
    namespace: str,
    *,
    timeout_s: float = 1800,
    poll_s: float = 5,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Poll a Job until it succeeds or fails; returns its status.

    Raises:
        ApplyError: When the Job fails or does not finish within ``timeout_s``.

    """
    resource = client.resources.get(api_version="batch/v1", kind="Job")
    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        status = client.get(resource, name=name, namespace=namespace).to_dict().get("status") or {}
        summary = f"active={status.get('active', 0)} succeeded={status.get('succeeded', 0)} failed={status.get('failed', 0)}"
        if progress and summary != last:
            progress(summary)
            last = summary
        for condition in status.get("conditions") or []:
            if condition.get("status") == "True" and condition.get("type") == "Complete":
                return status
            if condition.get("status") == "True" and condition.get("type") == "Failed":
                raise ApplyError(f"Job {name} failed: {condition.get('reason')}: {condition.get('message')}")
        time.sleep(poll_s)
    raise ApplyError(f"Job {name} did not finish within {timeout_s:.0f} s")
