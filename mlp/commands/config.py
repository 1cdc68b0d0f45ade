"""``mlp config``: validate a stack's configuration and list every key."""

from __future__ import annotations

import json as _json
from typing import Any

import click
from pydantic import BaseModel

from mlp.common import ExitCode, emit_json, exit_with, json_option


def describe_keys(model: type[BaseModel], prefix: str = "") -> list[dict[str, Any]]:
    """Every config key under ``model`` with its type, default and description, depth first."""
    from stacks.config import model_in as _model_in

    rows: list[dict[str, Any]] = []
    for name, info in model.model_fields.items():
        key = f"{prefix}{info.alias or name}"
        nested = _model_in(info.annotation)
        default = None if info.is_required() else info.get_default(call_default_factory=True)
        if isinstance(default, BaseModel):
            default = default.model_dump(by_alias=True)
        elif isinstance(default, list) and default and isinstance(default[0], BaseModel):
            default = [item.model_dump(by_alias=True) for item in default]
        annotation = getattr(info.annotation, "__name__", None) or str(info.annotation)
        rows.append(
            {
                "key": key,
                "type": annotation.replace("typing.", ""),
                "default": default,
                "description": info.description or "",
            }
        )
        if nested is not None:
            suffix = "[]." if "list" in str(info.annotation) else "."
            rows.extend(describe_keys(nested, f"{key}{suffix}"))
    return rows


@click.group("config")
def config() -> None:
    """Check stack configuration without Pulumi."""


@config.command("check")
@click.argument("stacks", nargs=-1)
def check(stacks: tuple[str, ...]) -> None:
    """Validate Pulumi.<stack>.yaml files; print every error with its key and a fix.

    Every stack is checked even when one fails. Exit codes: 0 every stack valid, 2 a named stack
    has no file, 3 a stack file is invalid (syntax, types, cross-field rules).
    """
    from stacks.config import ConfigError, load_stack_file
    from stacks.files import InputFileError
    from stacks.plan.plan import known_stacks

    invalid = missing = False
    for stack in stacks or known_stacks():
        try:
            cfg = load_stack_file(stack)
        except (ConfigError, InputFileError) as exc:
            invalid = True
            click.echo(str(exc), err=True)
        except FileNotFoundError as exc:
            missing = True
            click.echo(f"error: {exc}", err=True)
        else:
            click.echo(f"{stack}: ok (target {cfg.target}, {len(cfg.gpu_pools)} GPU pools)")
    exit_with(ExitCode.CHECK_FAILED if invalid else ExitCode.BAD_INPUT if missing else ExitCode.OK)


@config.command("keys")
@json_option
def keys(as_json: bool) -> None:
    """List every mlplatform:* key with its type, default and description."""
    from stacks.config import NAMESPACE, PlatformConfig

    rows = describe_keys(PlatformConfig)
    if as_json:
        emit_json(rows)
        return
    for row in rows:
        default = _json.dumps(row["default"], default=str)
        click.echo(
            f"{NAMESPACE}:{row['key']:44} {row['type'][:28]:28} default={default[:40]}  {row['description']}"
        )
