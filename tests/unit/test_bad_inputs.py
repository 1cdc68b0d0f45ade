"""Every `mlp` command that reads a file, fed malformed files: a clear error, never a traceback or exit 0."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from mlp.cli import main

ROOT = Path(__file__).resolve().parents[2]

BAD_CONTENTS: dict[str, bytes] = {
    "empty": b"",
    "yaml-syntax": b"a: [1, 2\n",
    "json-syntax": b'{"a": 1,',
    "top-level-list": b"[1, 2]\n",
    "top-level-scalar": b"42\n",
    "binary": b"\x00\xff\x00\x01\x7fELF",
    "latin-1": "a: caf\xe9\n".encode("latin-1"),
    "utf-16-broken": "a: [1\n".encode("utf-16"),
    "too-deep": b"[" * 200 + b"]" * 200,
    "duplicate-key": b"a: 1\na: 2\n",
    "tab-indent": b"a:\n\tb: 1\n",
}
"""File contents that no command may accept."""

FILE_COMMANDS: dict[str, list[str]] = {
    "pipeline-params": ["pipeline", "run", "--params-file", "{f}"],
    "pipeline-outputs": ["pipeline", "compile", "--outputs-file", "{f}"],
    "tune-space": ["tune", "run", "--space", "{f}", "--trials", "1"],
    "katib-space": ["tune", "katib", "--space", "{f}", "--out", "-"],
    "gpu-outputs": ["gpu", "render", "smoke", "--stack", "dev", "--outputs-file", "{f}"],
    "lineage-outputs": ["lineage", "m@champion", "--outputs-file", "{f}"],
    "rag-outputs": ["rag", "search", "x", "--outputs-file", "{f}"],
    "rag-questions": ["rag", "eval", "--questions", "{f}", "--no-ingest", "--no-plot"],
    "vectordb-outputs": ["vectordb", "snapshots", "list", "--outputs-file", "{f}"],
}
"""Commands and where the file goes."""

STACK_COMMANDS: dict[str, list[str]] = {
    "config-check": ["config", "check", "bad"],
    "plan": ["plan", "--stack", "bad", "--no-tree", "--out", "{out}"],
    "cost": ["cost", "--stack", "bad"],
    "gpu-render": ["gpu", "render", "smoke", "--stack", "bad"],
}
"""Commands that read ``Pulumi.bad.yaml`` from the project."""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project directory (Pulumi.yaml + the dev stack) as the working directory, state in tmp."""
    for name in ("Pulumi.yaml", "Pulumi.dev.yaml"):
        shutil.copy(ROOT / name, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLP_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("MLP_DEBUG", raising=False)
    return tmp_path


def _no_crash(result: Result, case: str) -> None:
    assert result.exit_code != 0, f"{case}: accepted silently\n{result.output}"
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{case}: {type(result.exception).__name__} escaped: {result.exception}"
    )
    assert "Traceback" not in result.output, f"{case}: traceback printed\n{result.output}"
    assert result.output.strip(), f"{case}: failed without a message"


def _bad_paths(project: Path) -> dict[str, Path]:
    paths = {}
    for name, data in BAD_CONTENTS.items():
        path = project / f"bad-{name}.yaml"
        path.write_bytes(data)
        paths[name] = path
    paths["missing"] = project / "nope.json"
    paths["directory"] = project / "a-directory"
    paths["directory"].mkdir(exist_ok=True)
    if os.geteuid() != 0:  # root reads anything
        unreadable = project / "unreadable.json"
        unreadable.write_text("{}")
        unreadable.chmod(0)
        paths["unreadable"] = unreadable
    return paths


def test_file_options_refuse_malformed_files(project: Path) -> None:
    runner = CliRunner()
    tried = 0
    for label, template in FILE_COMMANDS.items():
        for name, path in _bad_paths(project).items():
            args = [a.replace("{f}", str(path)) for a in template]
            _no_crash(runner.invoke(main, args), f"{label} <- {name}")
            tried += 1
    assert tried >= len(FILE_COMMANDS) * len(BAD_CONTENTS)


def test_malformed_stack_files_are_reported_not_crashed(project: Path) -> None:
    runner = CliRunner()
    for name, data in {**BAD_CONTENTS, "config-is-a-list": b"config:\n  - a\n"}.items():
        (project / "Pulumi.bad.yaml").write_bytes(data)
        for label, template in STACK_COMMANDS.items():
            args = [a.replace("{out}", str(project / "build")) for a in template]
            result = runner.invoke(main, args)
            _no_crash(result, f"{label} <- {name}")
            assert "Pulumi.bad.yaml" in result.output or "bad" in result.output


def test_a_malformed_stack_does_not_stop_the_others(project: Path) -> None:
    (project / "Pulumi.bad.yaml").write_bytes(b"config:\n  mlplatform:target: [dev\n")
    result = CliRunner().invoke(main, ["config", "check"])
    assert result.exit_code == 3
    assert "dev: ok" in result.output and "Pulumi.bad.yaml" in result.output


def test_misspelt_namespace_and_duplicate_key_are_named(project: Path) -> None:
    stack = project / "Pulumi.bad.yaml"
    stack.write_text("config:\n  mlplatfrom:gpuPools: []\n  mlplatform:target: dev\n")
    result = CliRunner().invoke(main, ["config", "check", "bad"])
    assert result.exit_code == 3 and "did you mean 'mlplatform:gpuPools'" in result.output
    stack.write_text("config:\n  mlplatform:target: dev\n  mlplatform:target: aks\n")
    result = CliRunner().invoke(main, ["config", "check", "bad"])
    assert result.exit_code == 3 and "duplicate key 'mlplatform:target' at line 3" in result.output


def test_powershell_utf16_stack_file_is_read(project: Path) -> None:
    text = (project / "Pulumi.dev.yaml").read_text(encoding="utf-8")
    (project / "Pulumi.win.yaml").write_bytes(text.encode("utf-16"))
    result = CliRunner().invoke(main, ["config", "check", "win"])
    assert result.exit_code == 0 and "win: ok" in result.output


def test_outside_a_project_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for args in (["config", "check"], ["plan", "--no-tree"], ["cost", "--stack", "dev"]):
        result = CliRunner().invoke(main, args)
        _no_crash(result, " ".join(args))
        assert result.exit_code == 2 and "no Pulumi.yaml" in result.output


def test_unexpected_errors_are_one_line_with_a_debug_hint(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import workloads.tuning.space as space

    def boom(*_: object, **__: object) -> None:
        raise KeyError("surprise")

    monkeypatch.setattr(space, "load_space", boom)
    result = CliRunner().invoke(main, ["tune", "katib", "--out", "-"])
    assert result.exit_code == 1
    assert "unexpected KeyError" in result.output and "MLP_DEBUG=1" in result.output
    monkeypatch.setenv("MLP_DEBUG", "1")
    assert isinstance(CliRunner().invoke(main, ["tune", "katib", "--out", "-"]).exception, KeyError)


def test_unwritable_out_and_bad_values(project: Path) -> None:
    runner = CliRunner()
    blocker = project / "a-file"
    blocker.write_text("x")
    cases = [
        ["tune", "katib", "--out", str(blocker / "exp.yaml")],
        ["pipeline", "run", "--param", "alpha"],
        ["rag", "ask", ""],
        ["rag", "search", "x", "-f", "colour=red"],
        ["lineage", "not a ref"],
    ]
    for args in cases:
        _no_crash(runner.invoke(main, args), " ".join(args))
