"""Scenario walkthroughs stay runnable: every ``mlp`` command a scenario README shows exists.

For each command line in a fenced block of ``experiments/scenarios/*/README.md``, the test walks
the real click tree to the subcommand it names, checks every ``--option`` it passes is one that
subcommand declares, and runs ``<subcommand> --help``, which must exit 0.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from mlp.cli import main

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "experiments" / "scenarios"
EXPECTED = ("kubeflow-tutorial", "kserve-tutorial", "vector-db-tutorial", "gpu-scheduling")
FENCE = re.compile(r"```(?:bash|sh|console)?\n(.*?)```", re.DOTALL)


def scenario_commands() -> list[tuple[str, str]]:
    """``(scenario, command line)`` for every ``mlp`` line in the scenario READMEs."""
    found = []
    for readme in sorted(SCENARIOS.glob("*/README.md")):
        for block in FENCE.findall(readme.read_text()):
            for raw in block.splitlines():
                line = raw.split(" #", 1)[0].strip()
                for prefix in (".venv/bin/mlp ", "mlp "):
                    if line.startswith(prefix):
                        found.append((readme.parent.name, line[len(prefix) :]))
    return found


def resolve(words: list[str]) -> tuple[click.Command, list[str]]:
    """The subcommand ``words`` name, walking the real (lazy) click groups, and its path."""
    command: click.Command = main
    path: list[str] = []
    ctx = click.Context(main)
    for word in words:
        if not isinstance(command, click.Group) or word.startswith("-"):
            break
        sub = command.get_command(ctx, word)
        if sub is None:
            break
        command, path = sub, [*path, word]
        ctx = click.Context(command, parent=ctx)
    return command, path


def test_every_scenario_folder_has_a_readme() -> None:
    for name in EXPECTED:
        readme = SCENARIOS / name / "README.md"
        assert readme.is_file(), f"missing {readme.relative_to(ROOT)}"
        text = readme.read_text()
        for heading in (
            "## What it shows",
            "## Run it locally",
            "## Against a stack",
            "## Without a cluster",
        ):
            assert heading in text, f"{name}: no '{heading}' section"


COMMANDS = scenario_commands()


def test_scenarios_show_commands() -> None:
    scenarios = {name for name, _ in COMMANDS}
    assert scenarios == set(EXPECTED), f"scenarios without an mlp command: {set(EXPECTED) - scenarios}"


@pytest.mark.parametrize(("scenario", "line"), COMMANDS, ids=[f"{s}:{c}" for s, c in COMMANDS])
def test_scenario_command_exists(scenario: str, line: str) -> None:
    words = shlex.split(line)
    command, path = resolve(words)
    assert path, f"{scenario}: 'mlp {line}' names no mlp command"
    assert not isinstance(command, click.Group) or len(path) == len(words), (
        f"{scenario}: 'mlp {line}' stops at the group 'mlp {' '.join(path)}'"
    )
    declared = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
    declared |= {"--help", "-h"}
    for word in words[len(path) :]:
        if word.startswith("--"):
            option = word.split("=", 1)[0]
            assert option in declared, f"{scenario}: 'mlp {' '.join(path)}' has no option {option}"
    result = CliRunner().invoke(main, [*path, "--help"])
    assert result.exit_code == 0, f"{scenario}: 'mlp {' '.join(path)} --help' failed:\n{result.output}"
