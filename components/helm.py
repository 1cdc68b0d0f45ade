"""Helm releases of charts pinned in :mod:`components.versions`, declared one way everywhere.

Every add-on installs its chart through :func:`pinned_release`, so chart, version and repository
always come from one :class:`~components.versions.ChartPin` and never drift apart. Charts from an
OCI registry carry the registry in the chart reference itself (``oci://host/path/chart``); Helm and
``helm.v3.Release`` take that reference as ``chart`` with no ``repository_opts`` at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import pulumi
import pulumi_kubernetes as k8s

from components.versions import ChartPin

OCI_PREFIX: Final = "oci://"


def is_oci(pin: ChartPin) -> bool:
    """Whether the pinned chart lives in an OCI registry (its ``chart`` is the full reference)."""
    return pin.chart.startswith(OCI_PREFIX)


def repository_opts(pin: ChartPin) -> dict[str, str] | None:
    """The ``repository_opts`` of a pinned chart: its Helm repository, or None for an OCI chart.

    Raises:
        ValueError: When an OCI pin also names a repository (it would be ignored), or a
            repository chart names none (Helm could not find it).

    """
    if is_oci(pin):
        if pin.repository:
            raise ValueError(
                f"chart {pin.chart} is an {OCI_PREFIX} reference, so its repository must be empty "
                f"(got {pin.repository!r}); put the registry in the chart reference"
            )
        return None
    if not pin.repository:
        raise ValueError(
            f"chart {pin.chart} has no repository; pin its Helm repository URL or use a full "
            f"{OCI_PREFIX} reference"
        )
    return {"repo": pin.repository}


def pinned_release(
    resource_name: str,
    pin: ChartPin,
    *,
    release_name: pulumi.Input[str],
    namespace: pulumi.Input[str],
    values: pulumi.Input[Mapping[str, Any]],
    opts: pulumi.ResourceOptions,
) -> k8s.helm.v3.Release:
    """Declare a Helm release of a pinned chart.

    Args:
        resource_name: Pulumi logical name, derived from the calling component's name.
        pin: The chart, version and repository to install.
        release_name: Helm release name.
        namespace: Namespace to install into (it must exist).
        values: Helm values.
        opts: Resource options; give ``parent`` (and ``depends_on`` where the chart reads a
            Secret or ConfigMap declared beside it). The Kubernetes provider comes from the parent.

    Returns:
        The ``helm.v3.Release``.

    """
    return k8s.helm.v3.Release(
        resource_name,
        name=release_name,
        chart=pin.chart,
        version=pin.version,
        repository_opts=repository_opts(pin),
        namespace=namespace,
        values=values,
        opts=opts,
    )
