"""The cluster path's output contract, derived from the workloads' code, on every shipped stack.

* Every output key the workloads and the CLI read (``stacks.outputs`` constants used in
  ``workloads/`` and ``mlp/``, found by walking their syntax trees) is exported by each stack.
* The ``outputs.json`` the plan writes parses with the workloads' typed view, holds no secret, and
  the workload commands given it get past target resolution: they then fail to connect (no
  cluster here) with a clear message and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from stacks import outputs
from stacks.config import parse_config, stack_file_config, without_namespace
from stacks.plan.harness import ProgramRun, clean, run_program
from stacks.plan.plan import REDACTED_KEY, outputs_file_content
from stacks.plan.render import secret_values
from workloads.target import parse_outputs

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

STACKS = ("dev", "aks", "eks")
REPO = Path(__file__).resolve().parents[2]
CONSTANTS = {name for name in dir(outputs) if name.isupper() and getattr(outputs, name) in outputs.ALL_KEYS}


def _aliases(tree: ast.Module) -> set[str]:
    """Local names under which a module imports ``stacks.outputs``."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "stacks":
            names |= {alias.asname or alias.name for alias in node.names if alias.name == "outputs"}
        elif isinstance(node, ast.Import):
            names |= {alias.asname or alias.name for alias in node.names if alias.name == "stacks.outputs"}
    return names


def required_keys() -> dict[str, set[str]]:
    """Output keys the code reads, with the files that read them.

    A constant counts when it is used anywhere except as a field ``alias=`` of the typed view (which
    declares every key as optional, and so requires none).
    """
    found: dict[str, set[str]] = {}
    for root in ("workloads", "mlp"):
        for path in sorted((REPO / root).rglob("*.py")):
            tree = ast.parse(path.read_text())
            aliases = _aliases(tree)
            if not aliases:
                continue
            declared = {
                id(kw.value)
                for node in ast.walk(tree)
                if isinstance(node, ast.Call)
                for kw in node.keywords
                if kw.arg == "alias"
            }
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.Attribute)
                    and isinstance(node.value, ast.Name)
                    and node.value.id in aliases
                    and node.attr in CONSTANTS
                    and id(node) not in declared
                ):
                    found.setdefault(getattr(outputs, node.attr), set()).add(str(path.relative_to(REPO)))
    return found


def run_mlp(
    args: list[str], tmp_path: Path, env: dict[str, str]
) -> tuple[subprocess.CompletedProcess[str], str]:
    """Run ``python -m mlp ARGS`` in ``tmp_path`` (``MLP_HOME`` below it) with ``env`` added.

    Returns:
        The finished process and its stdout followed by its stderr.
    """
    done = subprocess.run(
        [sys.executable, "-m", "mlp", *args],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "MLP_HOME": str(tmp_path / "home"), **env},
        cwd=tmp_path,
        check=False,
    )
    return done, done.stdout + done.stderr


@pytest.fixture(scope="module")
def runs() -> dict[str, ProgramRun]:
    from stacks.program import program

    result = {}
    for stack in STACKS:
        raw = stack_file_config(stack, REPO)
        parse_config(without_namespace(raw), stack)
        result[stack] = run_program(program, stack=stack, config=raw)
    return result


def test_required_keys_are_found() -> None:
    keys = required_keys()
    # The derivation itself must see the cluster-path reads (not an empty or trivial set).
    assert outputs.KFP_ENDPOINT in keys and outputs.MLFLOW_TRACKING_URI in keys
    assert outputs.WORKLOAD_IMAGE in keys


@pytest.mark.parametrize("stack", STACKS)
def test_every_required_key_is_exported(runs: dict[str, ProgramRun], stack: str) -> None:
    exports = runs[stack].exports
    missing = {key: sorted(files) for key, files in required_keys().items() if key not in exports}
    assert missing == {}, f"{stack} does not export keys the workloads read: {missing}"


@pytest.mark.parametrize("stack", STACKS)
def test_outputs_file_parses_and_holds_no_secret(runs: dict[str, ProgramRun], stack: str) -> None:
    run = runs[stack]
    content = outputs_file_content(run)
    text = json.dumps(content)
    assert not [value for value in secret_values(run) if value in text]
    assert set(content[REDACTED_KEY]) >= outputs.SECRET_KEYS & set(run.exports)
    parsed = parse_outputs(content)
    assert parsed.kfp_endpoint and parsed.mlflow_tracking_uri and parsed.katib_namespace


COMMANDS = {
    "pipeline-run": ["pipeline", "run"],
    "lineage": ["lineage", "breast-cancer-classifier@champion"],
    "tune-katib": ["tune", "katib", "--out", "{tmp}/experiment.yaml"],
    "snapshots-list": ["vectordb", "snapshots", "list"],
    "rag-search": ["rag", "search", "spot interruptions"],
}


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize(
    "command",
    sorted(COMMANDS),
)
def test_workload_commands_get_past_target_resolution(
    runs: dict[str, ProgramRun], stack: str, command: str, tmp_path: Path
) -> None:
    outputs_file = tmp_path / "outputs.json"
    outputs_file.write_text(json.dumps(outputs_file_content(runs[stack])))
    args = [arg.format(tmp=tmp_path) for arg in COMMANDS[command]]
    done, text = run_mlp(
        [*args, "--outputs-file", str(outputs_file)],
        tmp_path,
        {
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
            "MLFLOW_HTTP_REQUEST_TIMEOUT": "3",
            # The plan's outputs.json redacts secrets; a user supplies the S3 key as for any S3 client.
            "AWS_SECRET_ACCESS_KEY": "placeholder-secret-from-the-environment",
        },
    )
    assert "Traceback" not in text, text[-3000:]
    assert "invalid outputs file" not in text and "is masked" not in text, text[-2000:]
    assert "is missing: the" not in text, f"stopped at a missing output: {text[-2000:]}"
    if command == "tune-katib":
        assert done.returncode == 0, text[-2000:]
        experiment = (tmp_path / "experiment.yaml").read_text()
        assert runs[stack].exports[outputs.WORKLOAD_IMAGE] in experiment
    else:
        assert done.returncode != 0, text[-2000:]
        assert text.strip(), "a failure must say why"


@pytest.mark.parametrize("stack", STACKS)
def test_the_dataset_trigger_job_can_run_the_pipeline_on_the_landed_object(
    runs: dict[str, ProgramRun], stack: str, tmp_path: Path
) -> None:
    """The outputs file the Sensor's Job mounts is enough for `mlp pipeline run` with a dataset key."""
    from components.events import DATASET_KEY_ENV, OUTPUTS_FILE

    [config_map] = [
        clean(r.inputs)
        for r in runs[stack].registrations
        if r.type == "kubernetes:core/v1:ConfigMap" and r.name.endswith("-stack-outputs")
    ]
    outputs_file = tmp_path / OUTPUTS_FILE
    outputs_file.write_text(config_map["data"][OUTPUTS_FILE])
    parsed = parse_outputs(json.loads(outputs_file.read_text()))
    assert parsed.datasets_bucket and parsed.kfp_endpoint and parsed.workload_image
    done, text = run_mlp(
        ["pipeline", "run", "--outputs-file", str(outputs_file), "--json"],
        tmp_path,
        {DATASET_KEY_ENV: "incoming/batch-1.csv"},
    )
    assert "Traceback" not in text, text[-3000:]
    # Past target and dataset-key resolution: it fails only at the KFP API (no cluster here).
    assert done.returncode != 0 and "could not submit to Kubeflow Pipelines" in text, text[-2000:]


@pytest.mark.parametrize("stack", STACKS)
def test_every_container_the_stack_runs_from_the_workload_image_has_its_command(
    runs: dict[str, ProgramRun], stack: str
) -> None:
    """Whatever the program declares (now or later) with the workload image runs a command it has."""
    import importlib.util

    from click.testing import CliRunner

    from components.versions import IMAGES
    from tests.unit.test_workload_image import _containers, _mlp_command, _python_modules

    argvs = [
        [*c.get("command", []), *c.get("args", [])]
        for reg in runs[stack].registrations
        for c in _containers(clean(reg.inputs))
        if c["image"] == IMAGES["workloads"].ref
    ]
    # At least the dataset trigger Job (mlp) and the Qdrant snapshot CronJob (python -m) use it.
    assert any(_mlp_command(a) for a in argvs) and any(_python_modules(a) for a in argvs), argvs
    for argv in argvs:
        parsed = _mlp_command(argv)
        if parsed is not None:
            from mlp.cli import main

            path, _, _ = parsed
            assert CliRunner().invoke(main, [*path, "--help"]).exit_code == 0, argv
        for module in _python_modules(argv):
            assert importlib.util.find_spec(module) is not None, (argv, module)
        assert parsed is not None or _python_modules(argv), f"unrecognised command {argv}"
