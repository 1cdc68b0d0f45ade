"""The workload image (``Dockerfile``) offline: base pin, lock, user, and every command it must run.

No Docker engine here, so the image is checked by what can be read: it is built from the pinned
base in ``components/versions.py``, installs the project from ``constraints.txt`` (the lock the
tests run against), runs as a non-root user with ``mlp`` as its entry point; and every command the
cluster runs in it (collected from the builders that declare those containers, not written here)
exists in it: ``mlp`` subcommands answer ``--help`` and know their options, ``python -m`` modules
are importable and shipped by the image.
"""

from __future__ import annotations

import importlib.util
import re
import shlex
import tomllib
from collections.abc import Iterator
from importlib.metadata import packages_distributions
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from click.testing import CliRunner

from components.clusters.aks_interruption_spec import drain_command
from components.events import trigger_job
from components.vectordb.snapshot import job_command
from components.versions import IMAGES
from mlp.cli import main as mlp_main
from tests.manifests import dataset_events_args

REPO = Path(__file__).resolve().parents[2]
WORKLOAD_IMAGE = IMAGES["workloads"].ref


def _instructions() -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` of the Dockerfile, continuation lines joined, comments dropped."""
    text = (REPO / "Dockerfile").read_text()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    result = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            result.append((word.upper(), rest.strip()))
    return result


def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for word, rest in _instructions():
        if word == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((word, rest))
    return stages


def _pyproject() -> dict[str, Any]:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _locked() -> dict[str, str]:
    pins = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        name, sep, version = line.strip().partition("==")
        if sep:
            pins[_normalize(name)] = version
    return pins


def _requirement_name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    assert match, requirement
    return _normalize(match.group(0))


# --- The Dockerfile --------------------------------------------------------------------------


def test_every_stage_is_built_from_the_pinned_base() -> None:
    froms = [rest.split()[0] for word, rest in _instructions() if word == "FROM"]
    assert froms, "the Dockerfile has no FROM"
    assert set(froms) == {IMAGES["python-slim"].ref}


def test_the_project_is_installed_from_the_lock_without_dev_extras() -> None:
    runs = [rest for word, rest in _instructions() if word == "RUN"]
    installs = [run for run in runs if re.search(r"\bpip install\b", run)]
    assert installs, "no pip install in the Dockerfile"
    for run in installs:
        command = run.split("&&")[0]
        tokens = shlex.split(command)
        assert "-c" in tokens and tokens[tokens.index("-c") + 1] == "constraints.txt", command
        assert "." in tokens, f"installs something other than the project: {command}"
        assert "-e" not in tokens and "[dev]" not in command and ".[" not in command, command
    copied = " ".join(rest for word, rest in _instructions() if word == "COPY")
    assert "constraints.txt" in copied


def test_the_lock_pins_every_runtime_dependency() -> None:
    locked = _locked()
    missing = [req for req in _pyproject()["project"]["dependencies"] if _requirement_name(req) not in locked]
    assert missing == [], f"runtime dependencies with no pin in constraints.txt: {missing}"


def test_every_project_package_is_copied_into_the_image() -> None:
    packages = [p.rstrip("*") for p in _pyproject()["tool"]["setuptools"]["packages"]["find"]["include"]]
    copied = {rest.split()[0].rstrip("/") for word, rest in _instructions() if word == "COPY"}
    assert set(packages) <= copied, f"packages not copied: {set(packages) - copied}"
    ignore = (REPO / ".dockerignore").read_text().splitlines()
    for package in packages:
        assert f"!{package}/" in ignore, f".dockerignore keeps {package}/ out of the build context"


def test_the_image_runs_as_a_non_root_user_with_mlp_as_entry_point() -> None:
    final = _stages()[-1]
    args = {
        rest.split("=")[0]: rest.split("=", 1)[1] for word, rest in final if word == "ARG" and "=" in rest
    }
    users = [rest for word, rest in final if word == "USER"]
    assert users, "the final stage sets no USER"
    user = users[-1].split(":")[0]
    user = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), user)
    assert user.isdigit() and int(user) > 0, f"USER {users[-1]} is not a numeric non-root uid"
    entry = [rest for word, rest in final if word == "ENTRYPOINT"]
    assert entry and yaml.safe_load(entry[-1]) == ["mlp"]
    assert _pyproject()["project"]["scripts"]["mlp"] == "mlp.cli:main"


# --- Commands the cluster runs in the image ----------------------------------------------------


def _containers(obj: Any) -> Iterator[dict[str, Any]]:
    """Every container-like mapping (one with ``image``) in a manifest or KFP IR document."""
    if isinstance(obj, dict):
        if isinstance(obj.get("image"), str) and ("command" in obj or "args" in obj):
            yield obj
        for value in obj.values():
            yield from _containers(value)
    elif isinstance(obj, list):
        for value in obj:
            yield from _containers(value)


def _pipeline_documents(tmp: Path) -> list[Any]:
    from workloads.pipelines.pipeline import ClusterPlacement, compile_pipeline

    path = compile_pipeline(tmp / "pipeline.yaml", image=WORKLOAD_IMAGE, placement=ClusterPlacement(gpu=True))
    return list(yaml.safe_load_all(path.read_text()))


def _katib_documents() -> list[Any]:
    from workloads.tuning.katib import render_experiment
    from workloads.tuning.space import load_space

    return [render_experiment(load_space(), image=WORKLOAD_IMAGE)]


def _serving_documents() -> list[Any]:
    from workloads.serving.cluster import builders as b

    models = (
        b.ModelSource("clf", "s3://mlflow/artifacts/1/m-1/artifacts", version="1"),
        b.ModelSource("clf-next", "s3://mlflow/artifacts/1/m-2/artifacts", version="2"),
    )
    documents: list[Any] = []
    for pattern in b.PATTERNS:
        for mode in b.MODES:
            env = b.ServingEnv(
                mode=mode,
                workload_image=WORKLOAD_IMAGE,
                s3_bucket="serving-logs",
                prometheus_url="http://prometheus.monitoring.svc:9090",
            )
            mirror = "istio" if pattern == "shadow" and mode == "Serverless" else "gateway-api"
            count = 1 if pattern in ("single", "transformer") else 2
            request = b.ServeRequest(pattern=pattern, name="clf", models=models[:count], mirror=mirror)  # type: ignore[arg-type]
            documents.extend(b.render(request, env))
    return documents


def _events_documents() -> list[Any]:
    args = dataset_events_args()
    return [trigger_job(args, service_account="sensor", outputs_config_map="outputs")]


@pytest.fixture(scope="module")
def commands(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[list[str]]]:
    """``argv`` of every container that runs the workload image, by who declares it."""
    sources = {
        "kfp-pipeline": _pipeline_documents(tmp_path_factory.mktemp("kfp")),
        "katib-trial": _katib_documents(),
        "serving": _serving_documents(),
        "dataset-trigger": _events_documents(),
    }
    found: dict[str, list[list[str]]] = {}
    for source, documents in sources.items():
        found[source] = [
            [*c.get("command", []), *c.get("args", [])]
            for c in _containers(documents)
            if c["image"] == WORKLOAD_IMAGE
        ]
    found["vectordb-snapshot"] = [job_command()]
    found["aks-spot-drain"] = [drain_command()]
    return found


def _python_modules(argv: list[str]) -> set[str]:
    """Modules an ``argv`` runs with ``python -m`` directly or inside a ``sh -c`` script, and the
    project modules a KFP component's embedded source imports."""
    modules: set[str] = set()
    if len(argv) >= 3 and Path(argv[0]).name.startswith("python") and argv[1] == "-m":
        modules.add(argv[2])
    for text in argv:
        modules |= set(re.findall(r"\bpython3?\s+-m\s+([A-Za-z_][\w.]*)", text))
        modules |= set(
            re.findall(r"^\s*from\s+((?:workloads|stacks|components|mlp)[\w.]*)\s+import", text, re.M)
        )
    return modules


def _mlp_command(argv: list[str]) -> tuple[list[str], click.Command, list[str]] | None:
    """``(subcommand path, leaf command, remaining args)`` of an ``mlp ...`` argv."""
    if not argv or argv[0] != "mlp":
        return None
    path: list[str] = []
    command: click.Command = mlp_main
    rest = argv[1:]
    while isinstance(command, click.Group) and rest:
        sub = command.get_command(click.Context(command), rest[0])
        if sub is None:
            break
        command = sub
        path.append(rest.pop(0))
    return path, command, rest


def test_the_derivation_sees_every_kind_of_container(commands: dict[str, list[list[str]]]) -> None:
    # Not an empty walk: each source yields at least one command that runs the image.
    assert all(commands.values()), {k: len(v) for k, v in commands.items()}
    assert len(commands["kfp-pipeline"]) >= 4  # preprocess, train, evaluate, register


def test_every_python_module_the_cluster_runs_is_importable_from_the_image(
    commands: dict[str, list[list[str]]],
) -> None:
    project = {p.rstrip("*") for p in _pyproject()["tool"]["setuptools"]["packages"]["find"]["include"]}
    locked = _locked()
    owners = packages_distributions()
    problems = []
    seen = 0
    for source, argvs in commands.items():
        for argv in argvs:
            for module in _python_modules(argv):
                seen += 1
                top = module.split(".")[0]
                if importlib.util.find_spec(module) is None:
                    problems.append(f"{source}: module {module} is not importable")
                elif top not in project and not any(_normalize(d) in locked for d in owners.get(top, [])):
                    problems.append(f"{source}: {module} is neither the project's nor a locked dependency's")
    assert seen, "no python module found in the commands"
    assert sorted(set(problems)) == []


def test_every_mlp_command_the_cluster_runs_exists_with_its_options(
    commands: dict[str, list[list[str]]],
) -> None:
    runner = CliRunner()
    found = 0
    for source, argvs in commands.items():
        for argv in argvs:
            parsed = _mlp_command(argv)
            if parsed is None:
                continue
            found += 1
            path, command, rest = parsed
            assert not isinstance(command, click.Group), f"{source}: `mlp {' '.join(path)}` is not a command"
            result = runner.invoke(mlp_main, [*path, "--help"])
            assert result.exit_code == 0, f"{source}: mlp {' '.join(path)} --help: {result.output}"
            known = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
            given = {arg.split("=")[0] for arg in rest if arg.startswith("-")}
            assert given <= known, f"{source}: unknown options {given - known} for mlp {' '.join(path)}"
    assert found, "no mlp command found (the dataset trigger runs one)"


def test_commands_are_run_by_the_interpreter_on_the_image_path() -> None:
    # The image puts its virtualenv first on PATH: `python`, `python3` and `mlp` resolve there.
    env = " ".join(rest for word, rest in _stages()[-1] if word == "ENV")
    assert re.search(r"PATH=/opt/mlp/bin:", env), env


# --- The release workflow ----------------------------------------------------------------------


def test_the_release_workflow_pins_actions_and_publishes_the_pinned_image() -> None:
    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "release.yaml").read_text())
    steps = [step for job in workflow["jobs"].values() for step in job["steps"]]
    uses = [step["uses"] for step in steps if "uses" in step]
    assert uses, "the workflow uses no action"
    for ref in uses:
        assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", ref), f"{ref} is not pinned by full commit SHA"
    scripts = " ".join(step.get("run", "") for step in steps)
    # The tag and repository come from components/versions.py, not from the workflow.
    assert 'IMAGES["workloads"]' in scripts
    build = next(step for step in steps if step.get("uses", "").startswith("docker/build-push-action@"))
    assert build["with"]["file"] == "Dockerfile" and build["with"]["push"] is True
    assert workflow[True]["release"]["types"] == ["published"]  # YAML 1.1 reads `on` as True
