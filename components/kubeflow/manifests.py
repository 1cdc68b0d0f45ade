"""Where the pinned upstream kustomize bundles live, and how a ServiceMonitor is declared."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s


def github_kustomization(repo: str, ref: str, path: str) -> str:
    """URL of a kustomization directory in a GitHub repository at a pinned tag."""
    return f"https://github.com/{repo}/tree/{ref}/{path}"


def service_monitor(
    name: str,
    *,
    namespace: pulumi.Input[str],
    selector: dict[str, str],
    port: str,
    path: str = "/metrics",
    interval: str = "30s",
    opts: pulumi.ResourceOptions,
) -> k8s.apiextensions.CustomResource:
    """Declare a ServiceMonitor scraping ``port``/``path`` of the Services matching ``selector``."""
    spec: dict[str, Any] = {
        "selector": {"matchLabels": selector},
        "namespaceSelector": {"matchNames": [namespace]},
        "endpoints": [{"port": port, "path": path, "interval": interval}],
    }
    return k8s.apiextensions.CustomResource(
        name,
        api_version="monitoring.coreos.com/v1",
        kind="ServiceMonitor",
        metadata={"name": name, "namespace": namespace},
        spec=spec,
        opts=opts,
    )
