"""ServiceMonitors the platform declares itself (so the offline plan validates them against the CRD).

Charts that can create their own ServiceMonitor leave it off; the platform declares one here
instead, with the selector of the chart's Service and, where the endpoint needs it, the bearer
token from a Secret in the same namespace (Prometheus Operator reads it there).
"""

from __future__ import annotations

from typing import Any, TypedDict, Unpack

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
    scheme: str | None = "http",
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
        scheme: ``http`` or ``https``; ``None`` leaves it unset (Prometheus Operator then uses ``http``).
        insecure_tls: Skip certificate verification (endpoints with a self-signed certificate).

    """
    endpoint: dict[str, Any] = {"port": port, "path": path, "interval": interval}
    if scheme is not None:
        endpoint["scheme"] = scheme
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


class ScrapeOptions(TypedDict, total=False):
    """Optional endpoint settings of :func:`service_monitor`, as :func:`service_monitor_spec` takes them."""

    path: str
    interval: str
    bearer_secret: tuple[str, str] | None
    scheme: str | None
    insecure_tls: bool


def service_monitor(
    name: str,
    *,
    namespace: pulumi.Input[str],
    selector: dict[str, str],
    port: str,
    labels: dict[str, str] | None = None,
    opts: pulumi.ResourceOptions,
    **endpoint: Unpack[ScrapeOptions],
) -> k8s.apiextensions.CustomResource:
    """Declare a ServiceMonitor named ``name`` in ``namespace``.

    Args:
        name: Name of the resource and of the ServiceMonitor.
        namespace: Namespace of the Services (and of the ServiceMonitor).
        selector: Labels of the Services to scrape.
        port: Name of the Service port.
        labels: Labels of the ServiceMonitor.
        opts: Resource options.
        **endpoint: Any of :class:`ScrapeOptions`, passed to :func:`service_monitor_spec`.

    Returns:
        The ``monitoring.coreos.com/v1`` ServiceMonitor custom resource.

    """
    spec = pulumi.Output.from_input(namespace).apply(
        lambda ns: service_monitor_spec(namespace=ns, selector=selector, port=port, **endpoint)
    )
    return k8s.apiextensions.CustomResource(
        name,
        api_version=API_VERSION,
        kind="ServiceMonitor",
        metadata={"name": name, "namespace": namespace, "labels": labels or {}},
        spec=spec,
        opts=opts,
    )
