"""``mlplatform:platform``: the services a stack runs, and combinations that could not work."""

from __future__ import annotations

from typing import Any

import pytest

from stacks.config import ConfigError, load_stack_file, parse_config
from stacks.config.platform import PlatformServicesConfig


def _issues(platform: Any) -> dict[str, str]:
    with pytest.raises(ConfigError) as caught:
        parse_config({"target": "dev", "platform": platform}, "test")
    return {issue.path: f"{issue.message} | {issue.fix}" for issue in caught.value.issues}


def test_defaults_run_every_service() -> None:
    cfg = parse_config({"target": "dev"})
    assert cfg.platform == PlatformServicesConfig()
    assert all(
        s.enabled for s in (cfg.platform.kfp, cfg.platform.katib, cfg.platform.mlflow, cfg.platform.events)
    )


def test_every_unworkable_combination_is_reported_at_once_with_key_and_fix() -> None:
    issues = _issues({"kfp": {"enabled": False}, "mlflow": {"enabled": False}, "events": {"enabled": True}})
    assert set(issues) == {"platform.events.enabled"}
    assert "set platform.kfp.enabled: true" in issues["platform.events.enabled"]
    issues = _issues({"mlflow": {"enabled": False}, "events": {"enabled": False}})
    assert set(issues) == {"platform.kfp.enabled"}
    assert "registers its model in MLflow" in issues["platform.kfp.enabled"]


def test_bad_values_and_unknown_keys_name_their_path() -> None:
    issues = _issues({"mlflow": {"replicas": 0, "postgresStorage": 5}})
    assert any(path.startswith("platform.mlflow.replicas") for path in issues), issues
    assert any("postgresStorage" in path for path in issues), issues


def test_only_katib_or_only_mlflow_are_workable() -> None:
    for platform in (
        {"kfp": {"enabled": False}, "events": {"enabled": False}, "mlflow": {"enabled": False}},
        {"kfp": {"enabled": False}, "events": {"enabled": False}, "katib": {"enabled": False}},
    ):
        parse_config({"target": "dev", "platform": platform})


@pytest.mark.parametrize("stack", ["dev", "aks", "eks"])
def test_shipped_stacks_run_the_whole_chain(stack: str) -> None:
    platform = load_stack_file(stack).platform
    assert (
        platform.kfp.enabled
        and platform.mlflow.enabled
        and platform.events.enabled
        and platform.katib.enabled
    )
