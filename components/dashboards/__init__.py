"""Grafana dashboards kept as code: one JSON file per dashboard, loaded by the observability component.

Edit a dashboard in Grafana, export it as JSON ("Export for sharing externally" off), and replace the
file here; keep ``uid`` stable and the data source as the ``${datasource}`` variable. Later work adds
its own files (``serving.json``, ``pipelines.json``) and lists them in ``DASHBOARDS``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

DIRECTORY: Final = Path(__file__).resolve().parent
DASHBOARDS: Final = ("gpu", "platform")
"""Dashboards installed by default, by file stem."""


def dashboard_text(name: str) -> str:
    """The JSON text of dashboard ``name`` (file stem).

    Raises:
        FileNotFoundError: When no ``<name>.json`` exists here.

    """
    return (DIRECTORY / f"{name}.json").read_text()


def load_dashboard(name: str) -> dict[str, Any]:
    """Dashboard ``name`` parsed."""
    data: dict[str, Any] = json.loads(dashboard_text(name))
    return data
