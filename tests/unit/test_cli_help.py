"""Help text stays honest: what `mlp --help` and the README name exists, and every --help works."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from mlp.cli import COMMANDS, main

README = Path(__file__).resolve().parents[2] / "README.md"


def _walk(command: click.Command, path: tuple[str, ...]) -> list[tuple[str, ...]]:
    """Every command path under ``command`` (groups resolved through their own get_command)."""
    found = [path]
    if isinstance(command, click.Group):
        ctx = click.Context(command)
        for name in command.list_commands(ctx):
            child = command.get_command(ctx, name)
            assert child is not None, f"`mlp {' '.join((*path, name))}` is listed but does not exist"
            found += _walk(child, (*path, name))
    return found


def _all_paths() -> list[tuple[str, ...]]:
    paths: list[tuple[str, ...]] = []
    for name, (module, attr, _) in COMMANDS.items():
        paths += _walk(getattr(importlib.import_module(module), attr), (name,))
    return paths


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_top_level_listing_repeats_the_commands_own_short_help(name: str) -> None:
    module, attr, short_help = COMMANDS[name]
    command = getattr(importlib.import_module(module), attr)
    assert short_help == command.get_short_help_str(limit=300)


def test_every_command_and_subcommand_help_exits_0() -> None:
    runner = CliRunner()
    paths = _all_paths()
    assert len(paths) > len(COMMANDS)
    for path in paths:
        result = runner.invoke(main, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Usage: " in result.output


def _readme_commands() -> set[tuple[str, ...]]:
    """Command paths the README names: the command table and `mlp ...` lines in code blocks."""
    text = README.read_text(encoding="utf-8")
    names: set[tuple[str, ...]] = set()
    for row in re.findall(r"^\| `mlp ([^`]+)`(.*?)\|", text, flags=re.M):
        words = tuple(w for w in row[0].split() if re.fullmatch(r"[a-z][a-z-]*", w))
        names.add(words)
        # "`mlp rag ingest` / `ask` / `search`": siblings of the last word
        for sibling in re.findall(r"/ `([a-z][a-z-]*)`", row[1]):
            names.add((*words[:-1], sibling))
        for full in re.findall(r"/ `mlp ([a-z][a-z -]*)`", row[1]):
            names.add(tuple(full.split()))
    for line in re.findall(r"^(?:\.venv/bin/)?mlp ([^#\n]+)", text, flags=re.M):
        words: list[str] = []
        for word in line.split():
            if not re.fullmatch(r"[a-z][a-z-]*", word):
                break
            words.append(word)
        names.add(tuple(words))
    return {n for n in names if n}


def test_every_command_the_readme_names_exists() -> None:
    named = _readme_commands()
    assert ("plan",) in named and ("rag", "ask") in named
    known = set(_all_paths())
    for path in named:
        # trailing words may be arguments (`mlp gpu render smoke`): the longest known prefix must
        # cover every word that is not an argument of a leaf command
        prefixes = [path[:i] for i in range(len(path), 0, -1) if path[:i] in known]
        assert prefixes, f"README names `mlp {' '.join(path)}`, which does not exist"
        leaf = prefixes[0]
        result = CliRunner().invoke(main, [*leaf, "--help"])
        assert result.exit_code == 0, (leaf, result.output)
        if len(leaf) < len(path):
            command = _resolve(leaf)
            assert not isinstance(command, click.Group), (
                f"README names `mlp {' '.join(path)}`: no such subcommand"
            )


def _resolve(path: tuple[str, ...]) -> click.Command:
    command: click.Command = main
    for name in path:
        assert isinstance(command, click.Group)
        found = command.get_command(click.Context(command), name)
        assert found is not None
        command = found
    return command
