"""Config errors: one issue per problem, with its key path and a fix; pydantic errors translated."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from stacks.config.models import NAMESPACE, PlatformConfig


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in a stack's config.

    Attributes:
        path: Key path as written in the stack file, e.g. ``gpuPools[0].maxCount``.
        message: What is wrong.
        fix: What to change.

    """

    path: str
    message: str
    fix: str

    def __str__(self) -> str:
        return f"{NAMESPACE}:{self.path}: {self.message}. Fix: {self.fix}"


class ConfigError(ValueError):
    """Raised with every issue of a stack's config."""

    def __init__(self, issues: list[ConfigIssue], stack: str | None = None) -> None:
        self.issues = issues
        self.stack = stack
        where = f" in stack '{stack}'" if stack else ""
        lines = "\n".join(f"  - {issue}" for issue in issues)
        super().__init__(f"{len(issues)} configuration error(s){where}:\n{lines}")


def fields_by_alias(model: type[BaseModel]) -> dict[str, str]:
    """Field names of a model by the key (alias) a stack file spells them with."""
    return {(info.alias or name): name for name, info in model.model_fields.items()}


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _known_keys_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Aliases accepted at the object that holds ``loc``'s last key."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return []
        info = current.model_fields.get(fields_by_alias(current).get(part, part))
        if info is None:
            return []
        current = model_in(info.annotation)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(fields_by_alias(current))
    return []


def model_in(annotation: Any) -> Any:
    """The BaseModel class inside ``X``, ``X | None`` or ``list[X]``, if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = model_in(arg)
        if found is not None:
            return found
    return None


def issue_from_pydantic(err: Mapping[str, Any], prefix: tuple[Any, ...]) -> ConfigIssue:
    """One pydantic error as a ConfigIssue with the key path under ``prefix`` and a fix."""
    loc = prefix + tuple(err["loc"])
    path = _path(loc)
    kind = err["type"]
    if kind == "extra_forbidden":
        known = _known_keys_at(PlatformConfig, loc)
        key = str(loc[-1])
        close = difflib.get_close_matches(key, known, n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"known keys here: {', '.join(sorted(known))}"
        return ConfigIssue(path, f"unknown key '{key}'", f"remove it or correct the spelling ({hint})")
    if kind == "missing":
        return ConfigIssue(path, "required key is missing", f"set {NAMESPACE}:{path}")
    if kind in ("literal_error", "enum"):
        expected = err.get("ctx", {}).get("expected", "")
        return ConfigIssue(
            path, f"{err['msg'].rstrip('.')} (got {err.get('input')!r})", f"use one of {expected}"
        )
    if kind == "string_pattern_mismatch":
        pattern = err.get("ctx", {}).get("pattern", "")
        return ConfigIssue(path, f"{err.get('input')!r} is not valid", f"use a value matching {pattern}")
    ctx = err.get("ctx", {})
    if kind in _BOUNDS:
        sign, limit = _BOUNDS[kind], next(iter(ctx.values()), "")
        return ConfigIssue(
            path, f"must be {sign} {limit} (got {err.get('input')!r})", f"set a value {sign} {limit}"
        )
    if kind in _EXPECTED:
        wanted, example = _EXPECTED[kind]
        return ConfigIssue(
            path, f"must be {wanted} (got {err.get('input')!r})", f"write {wanted}, e.g. {example}"
        )
    return ConfigIssue(
        path, f"{err['msg'].rstrip('.')} (got {err.get('input')!r})", "correct the value's type"
    )


_BOUNDS = {"greater_than_equal": "≥", "greater_than": ">", "less_than_equal": "≤", "less_than": "<"}
"""Pydantic's numeric bound errors -> the comparison the value must satisfy (limit from ``ctx``)."""
_EXPECTED = {
    "int_parsing": ("a whole number", "2"),
    "int_type": ("a whole number", "2"),
    "int_from_float": ("a whole number", "2"),
    "float_parsing": ("a number", "0.5"),
    "float_type": ("a number", "0.5"),
    "bool_parsing": ("true or false", "true"),
    "bool_type": ("true or false", "true"),
    "string_type": ("text", '"westeurope" (quoted)'),
    "list_type": ("a list", "[a, b]"),
    "dict_type": ("a mapping of keys to values", "{key: value}"),
    "model_type": ("a mapping of keys to values", "{key: value}"),
}
"""Pydantic's type errors -> what the value must be, and an example."""
