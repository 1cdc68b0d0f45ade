"""The policy pack's rules run offline over one planned stack (``mlp plan --policy``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from policy.rules import PolicyConfig, Report, Resource, Waiver, config_from_stack, evaluate

WAIVERS_FILE = Path(__file__).resolve().parent / "waivers.yaml"


class WaiverFileError(ValueError):
    """The waivers file is malformed (the message names the file and the entry)."""


def load_waivers(path: Path = WAIVERS_FILE) -> list[Waiver]:
    """Read the reasoned waivers; every entry needs ``rule``, ``stacks`` and a non-empty ``reason``.

    Raises:
        WaiverFileError: When the file does not parse or an entry lacks a field.

    """
    if not path.is_file():
        return []
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise WaiverFileError(f"{path}: not valid YAML ({exc})") from exc
    waivers = []
    for index, entry in enumerate(doc.get("waivers") or [] if isinstance(doc, dict) else []):
        if not isinstance(entry, dict) or not all(entry.get(k) for k in ("rule", "stacks", "reason")):
            raise WaiverFileError(f"{path}: waivers[{index}] needs rule, stacks and a reason")
        waivers.append(
            Waiver(str(entry["rule"]), tuple(str(s) for s in entry["stacks"]), str(entry["reason"]))
        )
    return waivers


def check_stack(resources: Sequence[Resource], cfg: Any, stack: str) -> Report:
    """Run every rule over a stack's recorded resources with its config and waivers."""
    config = config_from_stack(cfg) if cfg is not None else PolicyConfig()
    return evaluate(resources, config, stack=stack, waivers=load_waivers())
