"""The offline plan of one stack: run under mocks, render, validate, check policy, write a report.

Files written under ``<out>/<stack>/``:

* ``resources.json``: one object per registered resource (type, name, parent, custom, inputs with
  secrets replaced by ``"[secret]"``);
* ``manifests/``: every Kubernetes object and Helm release, one YAML file each;
* ``summary.json``: counts, validation results, policy findings, timings, exit status;
* ``outputs.json``: the stack's exports for ``--outputs-file``, secret outputs left out.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from components import versions
from stacks import outputs
from stacks.config import ConfigError, parse_config, project_root, stack_file_config, without_namespace
from stacks.files import InputFileError
from stacks.plan.charts_check import chart_findings
from stacks.plan.harness import ProgramRun, clean, run_program
from stacks.plan.render import Manifest, manifests, resource_entries, secret_values
from stacks.plan.validate import Validator


@dataclass
class Finding:
    """A validation error or policy violation tied to one rendered file."""

    file: str
    rule: str
    message: str


@dataclass
class StackPlan:
    """Everything the plan found for one stack."""

    stack: str
    ok: bool = False
    config_errors: list[str] = field(default_factory=list)
    error: str | None = None
    resources: int = 0
    custom_resources: int = 0
    components: int = 0
    kubernetes_objects: int = 0
    helm_releases: int = 0
    valid: int = 0
    invalid: int = 0
    unvalidated: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    policy_advisory: list[Finding] = field(default_factory=list)
    policy_waived: list[Finding] = field(default_factory=list)
    exports: dict[str, Any] = field(default_factory=dict)
    schema_version: str = ""
    crd_dir: str = ""
    seconds: float = 0.0
    run: ProgramRun | None = field(default=None, repr=False)

    def summary(self) -> dict[str, Any]:
        """The JSON-ready summary (without the raw run)."""
        data = asdict(self)
        data.pop("run")
        return data


def _policy(manifest: Manifest, secrets: set[str]) -> list[Finding]:
    findings: list[Finding] = []
    text = yaml.safe_dump(manifest.document)
    for value in secrets:
        if value in text:
            findings.append(
                Finding(manifest.filename, "no-plaintext-secrets", "a secret value appears in plaintext")
            )
            break
    if manifest.kind == "helm-release":
        doc = manifest.document
        pins = {(pin.chart, pin.version) for pin in versions.CHARTS.values()}
        if (doc.get("chart"), doc.get("version")) not in pins:
            findings.append(
                Finding(
                    manifest.filename,
                    "pinned-charts",
                    f"chart {doc.get('chart')}@{doc.get('version')} is not pinned in components/versions.py",
                )
            )
    for image in _images(manifest.document):
        untagged = ":" not in image.rsplit("/", 1)[-1] and "@" not in image
        if untagged or image.endswith(":latest"):
            findings.append(Finding(manifest.filename, "pinned-images", f"image {image} has no fixed tag"))
    return findings


def _images(document: Any) -> list[str]:
    found: list[str] = []
    if isinstance(document, dict):
        for key, value in document.items():
            if key == "image" and isinstance(value, str):
                found.append(value)
            else:
                found.extend(_images(value))
    elif isinstance(document, list):
        for item in document:
            found.extend(_images(item))
    return found


def plan_stack(
    stack: str,
    *,
    out_dir: Path,
    crd_dir: Path | None,
    strict: bool = False,
    root: Path | None = None,
    policy: bool = False,
) -> StackPlan:
    """Plan one stack and write its report files.

    Args:
        stack: Stack name; its config is read from ``Pulumi.<stack>.yaml``.
        out_dir: Reports go to ``out_dir/<stack>/``.
        crd_dir: Directory of official CRDs for custom-resource validation.
        strict: Treat custom resources whose CRD is missing as failures.
        root: Project root holding the stack files.
        policy: Also run the policy pack's rules (policy/rules.py) over the recorded resources:
            mandatory violations are findings, advisory and waived ones are listed apart.

    Returns:
        The plan; ``ok`` says whether it passed.
    """
    from stacks.program import program

    started = time.perf_counter()
    result = StackPlan(stack=stack, crd_dir=str(crd_dir or ""))
    target = out_dir / stack
    try:
        raw = stack_file_config(stack, root)
        cfg = parse_config(without_namespace(raw), stack)
    except (ConfigError, InputFileError) as exc:
        result.config_errors = (
            [str(issue) for issue in exc.issues] if isinstance(exc, ConfigError) else [str(exc)]
        )
        result.seconds = time.perf_counter() - started
        _write(target, result, [], [])
        return result
    except FileNotFoundError as exc:
        result.error = str(exc)
        return result

    validator = Validator(cfg.kubernetes_version, crd_dir)
    result.schema_version = validator.schema_version
    try:
        run = run_program(program, stack=stack, config=raw)
    except Exception as exc:  # noqa: BLE001 - reported, not hidden
        result.error = f"{type(exc).__name__}: {exc}"
        result.seconds = time.perf_counter() - started
        _write(target, result, [], [])
        return result
    result.run = run

    entries = resource_entries(run)
    rendered = manifests(run)
    secrets = secret_values(run)
    result.resources = len(run.registrations)
    result.custom_resources = sum(1 for reg in run.registrations if reg.custom)
    result.components = result.resources - result.custom_resources
    result.kubernetes_objects = sum(1 for m in rendered if m.kind == "object")
    result.helm_releases = sum(1 for m in rendered if m.kind == "helm-release")
    result.exports = {
        key: clean(value) if key not in run.secret_exports else "[secret]"
        for key, value in run.exports.items()
    }

    for manifest in rendered:
        if manifest.kind == "object":
            checked = validator.validate(manifest.document)
            if checked.status == "valid":
                result.valid += 1
            elif checked.status == "invalid":
                result.invalid += 1
                result.findings += [Finding(manifest.filename, "schema", e) for e in checked.errors]
            else:
                result.unvalidated.append(f"{manifest.filename}: {'; '.join(checked.errors)}")
        result.findings += _policy(manifest, secrets)

    charts_found, charts_note = chart_findings(rendered, root or project_root())
    result.findings += [Finding(file, rule, message) for file, rule, message in charts_found]
    if charts_note:
        result.unvalidated.append(charts_note)

    if policy:
        from policy.offline import check_stack

        report = check_stack(entries, cfg, stack)
        result.findings += [Finding(v.resource, f"policy:{v.rule}", v.message) for v in report.mandatory]
        result.policy_advisory = [Finding(v.resource, f"policy:{v.rule}", v.message) for v in report.advisory]
        result.policy_waived = [Finding(v.resource, f"policy:{v.rule}", v.message) for v in report.waived]

    for key in outputs.SECRET_KEYS & set(run.exports):
        if key not in run.secret_exports:
            result.findings.append(
                Finding("exports", "secret-outputs", f"output {key} is not exported as a secret")
            )
    if run.unanswered_invokes:
        result.findings.append(
            Finding(
                "mocks",
                "mock-coverage",
                f"invokes without a mock answer: {sorted(set(run.unanswered_invokes))}",
            )
        )

    result.ok = not result.findings and not (strict and result.unvalidated)
    result.seconds = time.perf_counter() - started
    _write(target, result, entries, rendered)
    write_outputs_file(target / OUTPUTS_FILE, run)
    return result


OUTPUTS_FILE = "outputs.json"
REDACTED_KEY = "_redacted"
"""Key listing the secret outputs left out of ``outputs.json`` (workloads ignore unknown keys)."""


def outputs_file_content(run: ProgramRun) -> dict[str, Any]:
    """The stack's exports as a workload reads them with ``--outputs-file``, secrets left out.

    Secret outputs are omitted (not masked: a masked value is rejected by the workloads' typed view)
    and named under ``_redacted``, so target resolution works offline and a command that needs a
    secret says which output is missing.
    """
    secret = set(run.secret_exports) | (outputs.SECRET_KEYS & set(run.exports))
    content = {key: clean(value) for key, value in sorted(run.exports.items()) if key not in secret}
    content[REDACTED_KEY] = sorted(secret)
    return content


def planned_exports(stack: str, root: Path | None = None) -> dict[str, Any]:
    """The stack's exports from its offline plan (the program under mocks), as ``outputs.json`` holds them.

    No cloud and no cluster: what commands that only render objects need from a stack.

    Raises:
        FileNotFoundError: When ``Pulumi.<stack>.yaml`` does not exist.
    """
    from stacks.program import program

    run = run_program(program, stack=stack, config=stack_file_config(stack, root))
    return outputs_file_content(run)


def write_outputs_file(path: Path, run: ProgramRun) -> None:
    """Write :func:`outputs_file_content` as JSON."""
    path.write_text(json.dumps(outputs_file_content(run), indent=2, default=str) + "\n")


def _write(target: Path, result: StackPlan, entries: list[dict[str, Any]], rendered: list[Manifest]) -> None:
    manifest_dir = target / "manifests"
    manifest_dir.mkdir(parents=True, exist_ok=True)
    for old in manifest_dir.glob("*.yaml"):
        old.unlink()
    for manifest in rendered:
        (manifest_dir / manifest.filename).write_text(yaml.safe_dump(manifest.document, sort_keys=False))
    (target / "resources.json").write_text(json.dumps(entries, indent=2, default=str))
    (target / "summary.json").write_text(json.dumps(result.summary(), indent=2, default=str))


def known_stacks(root: Path | None = None) -> list[str]:
    """Stacks that have a ``Pulumi.<name>.yaml`` file."""
    root = root or project_root()
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in root.glob("Pulumi.*.yaml"))
