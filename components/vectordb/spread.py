"""Zone spreading of a data service's pods, as ``topologySpreadConstraints`` chart values.

Soft constraints (``ScheduleAnyway``): pods are spread over zones, then nodes, wherever the cluster
has them, and still schedule on a cluster whose pools sit in one zone.
"""

from __future__ import annotations

from typing import Any

ZONE_KEY = "topology.kubernetes.io/zone"
HOST_KEY = "kubernetes.io/hostname"


def zone_spread(selector: dict[str, str]) -> list[dict[str, Any]]:
    """Spread the pods matching ``selector`` over zones (max skew 1), then over nodes."""
    return [
        {
            "maxSkew": 1,
            "topologyKey": key,
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": dict(selector)},
        }
        for key in (ZONE_KEY, HOST_KEY)
    ]
