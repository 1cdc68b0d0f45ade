"""Every `mlp` command that reads a file, fed malformed files: a clear error, never a traceback or exit 0."""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from mlp.cli import main
from mlp.common import OUTPUT_OPTIONS
from stacks import outputs as keys

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
    """Every malformed file is bad input: exit 2 with a message naming the file, no traceback."""
    runner = CliRunner()
    tried = 0
    problems: dict[str, str] = {}
    for label, template in FILE_COMMANDS.items():
        for name, path in _bad_paths(project).items():
            args = [a.replace("{f}", str(path)) for a in template]
            result = runner.invoke(main, args)
            verdict = _verdict(result, 2) or ("" if path.name in result.output else "file not named")
            if verdict:
                problems[f"{label} <- {name}"] = verdict
            tried += 1
    assert tried >= len(FILE_COMMANDS) * len(BAD_CONTENTS)
    _report(tried, problems)


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


# --- Runtime inputs: output paths, unreachable services, damaged local state ------------------


def _walk(
    command: click.Command, path: tuple[str, ...], parent: click.Context | None
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    if isinstance(command, click.Group):
        ctx = click.Context(command, parent=parent, info_name=path[-1] if path else "mlp")
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None:
                yield from _walk(sub, (*path, name), ctx)
    else:
        yield path, command


def output_options() -> list[tuple[tuple[str, ...], str, bool | None]]:
    """Every (command path, option, must-be-a-directory) under which an ``mlp`` command writes."""
    found = []
    for path, command in _walk(main, (), None):
        for param in command.params:
            names = OUTPUT_OPTIONS.intersection(getattr(param, "opts", ()))
            if isinstance(param, click.Option) and names:
                kind = param.type if isinstance(param.type, click.Path) else None
                directory = None if kind is None or kind.file_okay == kind.dir_okay else kind.dir_okay
                found.append((path, sorted(names, key=len)[-1], directory))
    return found


def _verdict(result: Result, expected: int) -> str:
    """'' when the command failed cleanly with ``expected``; else what went wrong."""
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        return f"traceback ({type(result.exception).__name__})"
    if "Traceback" in result.output:
        return "traceback printed"
    if result.exit_code == 0:
        return "exit 0"
    if result.exit_code != expected:
        return f"exit {result.exit_code}, expected {expected}"
    if not result.output.strip():
        return "no message"
    if "unexpected" in result.output:
        return "an 'unexpected' error instead of a reason"
    return ""


def _report(tried: int, problems: dict[str, str]) -> None:
    counts: dict[str, int] = {}
    for verdict in problems.values():
        counts[verdict.split(" (")[0].split(",")[0]] = counts.get(verdict.split(" (")[0].split(",")[0], 0) + 1
    lines = "\n".join(f"  {case}: {verdict}" for case, verdict in sorted(problems.items()))
    assert not problems, f"{len(problems)} of {tried} inputs mishandled {counts}:\n{lines}"


def test_every_output_option_refuses_an_unwritable_path(project: Path) -> None:
    options = output_options()
    assert len(options) >= 16, options  # the walk found the writing commands
    blocker = project / "a-file"
    blocker.write_text("x")
    existing_dir = project / "a-dir"
    existing_dir.mkdir()
    runner = CliRunner()
    problems: dict[str, str] = {}
    tried = 0
    for path, option, directory in options:
        bad = [blocker / "below" / "out"]
        if directory is True:
            bad.append(blocker)
        elif directory is False:
            bad.append(existing_dir)
        if os.geteuid() != 0:  # root writes anywhere
            locked = project / "locked"
            locked.mkdir(mode=0o500, exist_ok=True)
            bad.append(locked / "out")
        for target in bad:
            tried += 1
            result = runner.invoke(main, [*path, option, str(target)])
            case = f"mlp {' '.join(path)} {option} {target.relative_to(project)}"
            verdict = _verdict(result, 2) or ("" if option in result.output else "option not named")
            if verdict:
                problems[case] = verdict
    _report(tried, problems)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow  # ~3 s: imports boto3 and qdrant-client
def test_unreachable_services_are_named(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # botocore: one try, no backoff
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "user")  # for --s3-endpoint without stack outputs
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "password")
    for name in ("MLP_TARGET", "MLP_OUTPUTS_FILE"):
        monkeypatch.delenv(name, raising=False)
    nowhere = f"http://127.0.0.1:{_closed_port()}"
    outputs = project / "outputs.json"
    outputs.write_text(
        json.dumps(
            {
                keys.TARGET: "dev",
                keys.S3_ENDPOINT: nowhere,
                keys.S3_BUCKET: "pipelines",
                keys.S3_ACCESS_KEY_ID: "user",
                keys.S3_SECRET_ACCESS_KEY: "password",
                keys.QDRANT_URL: nowhere,
                keys.QDRANT_API_KEY: "key",
            }
        )
    )
    base = ["--outputs-file", str(outputs)]
    cases = {
        "vectordb snapshots list": ["vectordb", "snapshots", "list", *base],
        "vectordb restore": ["vectordb", "restore", "--yes", *base],
        "vectordb snapshots list --s3-endpoint": ["vectordb", "snapshots", "list", "--s3-endpoint", nowhere],
        "rag search": ["rag", "search", "gpu pools", "--backend", "qdrant", "--embedder", "hash", *base],
        "rag collections": ["rag", "collections", "--backend", "qdrant", *base],
    }
    runner = CliRunner()
    problems = {}
    for case, args in cases.items():
        result = runner.invoke(main, args)
        verdict = _verdict(result, 1) or (
            "" if "reach" in result.output else "does not say what is unreachable"
        )
        if verdict:
            problems[case] = f"{verdict} ({result.output.strip()[-200:]})"
    _report(len(cases), problems)


@pytest.mark.slow  # ~6 s: imports MLflow
def test_a_truncated_mlflow_database_is_reported(project: Path) -> None:
    state = project / "state"
    state.mkdir()
    whole = project / "whole.db"
    with sqlite3.connect(whole) as db:
        db.execute("CREATE TABLE runs (id TEXT, payload TEXT)")
        db.executemany("INSERT INTO runs VALUES (?, ?)", [(str(i), "x" * 400) for i in range(300)])
    (state / "mlflow.db").write_bytes(whole.read_bytes()[:3000])  # cut mid-file, as by a full disk
    cases = {
        "lineage": ["lineage", "breast-cancer-classifier@champion"],
        "demo": ["demo", "--trials", "1", "--out", str(project / "demo")],
        "tune run": ["tune", "run", "--trials", "1", "--out", str(project / "best.json")],
        "pipeline run": ["pipeline", "run"],
    }
    runner = CliRunner()
    problems = {}
    for case, args in cases.items():
        result = runner.invoke(main, args)
        verdict = _verdict(result, 1) or ("" if "mlflow.db" in result.output else "does not name mlflow.db")
        if verdict:
            problems[case] = f"{verdict} ({result.output.strip()[-200:]})"
    _report(len(cases), problems)
