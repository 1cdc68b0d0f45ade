"""Loading a stack's config: from the Pulumi runtime, or from a ``Pulumi.<stack>.yaml`` file.

Loading happens in two passes so that a user sees every mistake at once:

1. each top-level key is parsed on its own by a strict pydantic model (unknown keys, wrong types,
   closed sets), so one bad section does not hide errors in another;
2. cross-field rules (:mod:`stacks.config.checks`) run over every section that parsed.

All problems are raised together as ``ConfigError`` before any resource is declared.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from stacks.config.checks import cross_checks
from stacks.config.errors import ConfigError, ConfigIssue, fields_by_alias, issue_from_pydantic
from stacks.config.models import NAMESPACE, GpuPoolConfig, PlatformConfig


def _decode(value: Any) -> Any:
    """Pulumi passes structured config as JSON strings; scalars stay strings."""
    if isinstance(value, str):
        stripped = value.strip()
        if stripped[:1] in ("{", "[") or stripped in ("true", "false"):
            try:
                return json.loads(stripped)
            except json.JSONDecodeError:
                return value
        if re.fullmatch(r"-?\d+", stripped):
            return int(stripped)
    return value


def parse_config(raw: Mapping[str, Any], stack: str | None = None) -> PlatformConfig:
    """Validate a stack's ``mlplatform:*`` values and return the typed config.

    Args:
        raw: Keys without the ``mlplatform:`` prefix, as in the stack file's ``config:`` block.
        stack: The stack name, for messages.

    Returns:
        The validated configuration.

    Raises:
        ConfigError: With every problem found, structural and cross-field.

    """
    data = {key: _decode(value) for key, value in raw.items()}
    if "kubernetesVersion" in data and not isinstance(data["kubernetesVersion"], str):
        data["kubernetesVersion"] = str(data["kubernetesVersion"])
    issues: list[ConfigIssue] = []
    fields = fields_by_alias(PlatformConfig)
    parsed: dict[str, Any] = {}
    parsed_pools: dict[int, GpuPoolConfig] = {}
    failed: set[str] = set()
    for key, value in data.items():
        if key not in fields:
            close = difflib.get_close_matches(key, list(fields), n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"known keys: {', '.join(sorted(fields))}"
            issues.append(
                ConfigIssue(key, f"unknown key '{key}'", f"remove it or correct the spelling ({hint})")
            )
            continue
        if key == "gpuPools" and isinstance(value, list):
            pools: dict[int, GpuPoolConfig] = {}
            for i, item in enumerate(value):
                try:
                    pools[i] = GpuPoolConfig.model_validate(item)
                except ValidationError as exc:
                    failed.add(key)
                    issues.extend(issue_from_pydantic(err, ("gpuPools", i)) for err in exc.errors())
            parsed_pools = pools
            parsed[key] = list(pools.values())
            continue
        try:
            # Validate the single key in isolation so every section reports its own errors.
            one = PlatformConfig.model_validate({"target": "dev", key: value})
            parsed[key] = getattr(one, fields[key])
        except ValidationError as exc:
            failed.add(key)
            issues.extend(
                issue_from_pydantic(err, ())
                for err in exc.errors()
                if not (err["loc"] and err["loc"][0] == "target" and key != "target")
            )
    if "target" not in data:
        issues.append(
            ConfigIssue("target", "required key is missing", f"set {NAMESPACE}:target to dev, aks or eks")
        )
    config: PlatformConfig | None = None
    if not issues:
        config = PlatformConfig.model_validate(data)
    partial = PlatformConfig.model_construct(**{fields[k]: v for k, v in parsed.items()})
    issues.extend(cross_checks(partial, set(parsed), failed, parsed_pools))
    if issues:
        raise ConfigError(issues, stack)
    assert config is not None
    return config


def load_config() -> PlatformConfig:
    """Read the running stack's config from Pulumi and validate it (see ``parse_config``)."""
    import pulumi
    from pulumi.runtime import config as runtime_config

    prefix = f"{NAMESPACE}:"
    merged: dict[str, Any] = dict(runtime_config.get_config_env())
    merged.update(runtime_config.CONFIG.get())
    raw = {key[len(prefix) :]: value for key, value in merged.items() if key.startswith(prefix)}
    return parse_config(raw, pulumi.get_stack())


def project_root(start: Path | None = None) -> Path:
    """The directory holding ``Pulumi.yaml``: ``start`` (default: the working directory) or its nearest parent.

    Pulumi finds its project the same way.

    Raises:
        InputFileError: When no directory from ``start`` upward holds a ``Pulumi.yaml``.
    """
    from stacks.files import InputFileError

    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        if (directory / "Pulumi.yaml").is_file():
            return directory
    raise InputFileError(
        here,
        "no Pulumi.yaml here or in any parent directory (not inside a Pulumi project)",
        "run mlp from the project directory or one below it",
    )


def stack_file_config(stack: str, root: Path | None = None) -> dict[str, Any]:
    """The raw ``mlplatform:*`` values of ``Pulumi.<stack>.yaml``, with full key names.

    Raises:
        FileNotFoundError: When the stack file does not exist (the message lists the stacks that do).
        stacks.files.InputFileError: When it is unreadable, not YAML, holds a duplicate key, a key
            without a namespace or a misspelt ``mlplatform`` namespace.

    """
    from stacks.files import InputFileError, load_yaml

    root = root or project_root()
    path = root / f"Pulumi.{stack}.yaml"
    if not path.exists():
        known = sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in root.glob("Pulumi.*.yaml"))
        raise FileNotFoundError(f"no stack file {path.name}; stacks here: {', '.join(known)}")
    data = load_yaml(path, what="stack file")
    values = data.get("config") or {}
    if not isinstance(values, dict):
        raise InputFileError(path, "'config' must be a mapping of keys to values", "see Pulumi.dev.yaml")
    for key in values:
        namespace, sep, name = str(key).partition(":")
        if not sep:
            raise InputFileError(
                path, f"config key {key!r} has no namespace", f"write it as '{NAMESPACE}:{key}'"
            )
        if namespace != NAMESPACE and difflib.get_close_matches(namespace, [NAMESPACE], n=1, cutoff=0.75):
            raise InputFileError(
                path,
                f"unknown config namespace {namespace!r} in {key!r}",
                f"did you mean '{NAMESPACE}:{name}'?",
            )
    return {key: value for key, value in values.items() if key.startswith(f"{NAMESPACE}:")}


def load_stack_file(stack: str, root: Path | None = None) -> PlatformConfig:
    """Validate a stack file's config without Pulumi (for ``mlp cost``, ``mlp config check``)."""
    return parse_config(without_namespace(stack_file_config(stack, root)), stack)


def without_namespace(values: Mapping[str, Any]) -> dict[str, Any]:
    """``{"mlplatform:target": ...}`` -> ``{"target": ...}``, the form ``parse_config`` takes."""
    return {key.split(":", 1)[1]: value for key, value in values.items()}
