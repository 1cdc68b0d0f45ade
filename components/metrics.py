"""ServiceMonitors the platform declares itself (so the offline plan validates them against the CRD).

Charts that can create their own ServiceMonitor leave it off; the platform declares one here
instead, with the selector of the chart's Service and, where the endpoint needs it, the bearer
token from a Secret in the same namespace (Prometheus Operator reads it there).
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

API_VERSION = "monitoring.coreos.com/v1"


def service_monitor_spec(
    *,
    namespace: str,
    selector: dict[str, str],
    port: str,
    path: str = "/metrics",
    interval: str = "30s",
    bearer_secret: tuple[str, str] | None = None,
    scheme: str = "http",
    insecure_tls: bool = False,
) -> dict[str, Any]:
    """ServiceMonitor spec scraping ``port``/``path`` of the Services matching ``selector``.

    Args:
        namespace: Namespace of the Services (and of the ServiceMonitor).
        selector: Labels of the Services to scrape.
        port: Name of the Service port.
        path: Metrics path.
        interval: Scrape interval.
        bearer_secret: ``(secret name, key)`` of a bearer token the endpoint requires.
        scheme: ``http`` or ``https``.
        insecure_tls: Skip certificate verification (endpoints with a self-signed certificate).

    """
    endpoint: dict[str, Any] = {"port": port, "path": path, "interval": interval, "scheme": scheme}
    if insecure_tls:
        endpoint["tlsConfig"] = {"insecureSkipVerify": True}
    if bearer_secret is not None:
        endpoint["authorization"] = {
            "type": "Bearer",
            "credentials": {"name": bearer_secret[0], "key": bearer_secret[1]},
        }
    return {
        "selector": {"matchLabels": dict(selector)},
        "namespaceSelector": {"matchNames": [namespace]},
        "endpoints": [endpoint],
    }


def service_monitor(
    name: str,
    *,
    namespace: pulumi.Input[str],
    selector: dict[str, str],
    port: str,
    path: str = "/metrics",
    interval: str = "30s",
    bearer_secret: tuple[str, str] | None = None,
    scheme: str = "http",
    insecure_tls: bool = False,
    labels: dict[str, str] | None = None,
    opts: pulumi.ResourceOptions,
) -> k8s.apiextensions.CustomResource:
    """Declare a ServiceMonitor (see :func:`service_monitor_spec`)."""
    spec = pulumi.Output.from_input(namespace).apply(
        lambda ns: service_monitor_spec(
            namespace=ns,
            selector=selector,
            port=port,
            path=path,
            interval=interval,
            bearer_secret=bearer_secret,
        )
    )
    return k8s.apiextensions.CustomResource(
        name,
        api_version=API_VERSION,
        kind="ServiceMonitor",
        metadata={"name": name, "namespace": namespace, "labels": labels or {}},
        spec=spec,
        opts=opts,
    )
