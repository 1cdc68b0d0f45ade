"""``mlp plan``: the offline plan of one or more stacks."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.text import Text
from rich.tree import Tree

from mlp.common import BadInput, ExitCode, emit_json, exit_with, json_option, stack_option
from stacks.plan.harness import ProgramRun


def _tree(stack: str, run: ProgramRun) -> Tree:
    """A ``pulumi preview``-like tree: components with their children, custom resources as leaves."""
    root = Tree(f"[bold]pulumi:pulumi:Stack[/] mlplatform-{stack}")
    nodes: dict[str, Tree] = {}
    for reg in run.registrations:
        parent = nodes.get(reg.parent_urn, root)
        style = "cyan" if not reg.custom else "green"
        nodes[reg.urn] = parent.add(f"[{style}]+ {reg.type}[/] {reg.name}")
    return root


@click.command("plan")
@stack_option(multiple=True, help="Stack to plan (repeatable). Default: every Pulumi.<name>.yaml.")
@click.option(
    "--crd-dir",
    type=click.Path(path_type=Path, file_okay=False),
    envvar="MLP_CRD_DIR",
    help="Official CRD schemas for custom resources [env MLP_CRD_DIR; default: the cache `mlp crds fetch` fills].",
)
@click.option("--strict", is_flag=True, help="Fail when a custom resource has no CRD to validate against.")
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("build/plan"),
    show_default=True,
    help="Report directory; each stack writes <out>/<stack>/.",
)
@click.option("--tree/--no-tree", default=True, show_default=True, help="Print the resource tree.")
@click.option(
    "--policy/--no-policy",
    default=True,
    show_default=True,
    help="Run the policy pack (policy/rules.py): mandatory violations fail, advisory and waived are listed.",
)
@json_option
def plan(
    stacks: tuple[str, ...],
    crd_dir: Path | None,
    strict: bool,
    out: Path,
    tree: bool,
    policy: bool,
    as_json: bool,
) -> None:
    """Run a stack's real program under Pulumi mocks, render and validate every object.

    For each stack: validate its config (every error at once), run the program with realistic
    mock outputs, write resources.json, one YAML per Kubernetes object or Helm release, and
    summary.json under --out, validate built-in objects strictly against the stack's Kubernetes
    version and custom resources against their official CRDs, and check policy (no plaintext
    secrets, pinned charts and images, secret outputs).

    Every stack is planned even when one fails. Exit status: 0 when every stack passes; 3 when
    any stack has config errors, invalid objects, policy findings, or (with --strict) unvalidated
    custom resources; 2 when a named stack has no file (or no stack file exists); 1 when the
    program itself failed.
    """
    from stacks.plan.plan import known_stacks, plan_stack
    from stacks.plan.validate import default_crd_dir

    console = Console(stderr=as_json)
    chosen = list(stacks) or known_stacks()
    if not chosen:
        raise BadInput("no Pulumi.<stack>.yaml beside Pulumi.yaml: nothing to plan")
    crd_dir = crd_dir or default_crd_dir()
    if not crd_dir.is_dir():
        console.print(
            f"[yellow]CRD directory {crd_dir} not found: custom resources will be unvalidated. "
            "Run `mlp crds fetch` or pass --crd-dir.[/]"
        )
    summaries = []
    codes = {ExitCode.OK}
    for stack in chosen:
        result = plan_stack(
            stack, out_dir=out, crd_dir=crd_dir if crd_dir.is_dir() else None, strict=strict, policy=policy
        )
        summaries.append(result.summary())
        if result.error and result.error.startswith("no stack file"):
            codes.add(ExitCode.BAD_INPUT)
        elif result.error:
            codes.add(ExitCode.FAILED)
        elif not result.ok:
            codes.add(ExitCode.CHECK_FAILED)
        if as_json:
            continue
        console.rule(f"stack {stack}")
        if result.config_errors:
            console.print(f"[red]{len(result.config_errors)} configuration error(s):[/]")
            for line in result.config_errors:
                console.print(Text(f"  - {line}"))
            continue
        if result.error:
            console.print(Text.assemble(("plan failed: ", "red"), result.error))
            continue
        if tree and result.run is not None:
            console.print(_tree(stack, result.run))
        for finding in result.findings:
            console.print(Text.assemble(("✗ ", "red"), f"{finding.file} [{finding.rule}] {finding.message}"))
        for line in result.unvalidated:
            console.print(Text.assemble(("? unvalidated ", "yellow"), line))
        for finding in result.policy_advisory + result.policy_waived:
            label = "advisory" if finding in result.policy_advisory else "waived (policy/waivers.yaml)"
            console.print(
                Text.assemble((f"! {label} ", "yellow"), f"{finding.file} [{finding.rule}] {finding.message}")
            )
        verdict = "[green]PASS[/]" if result.ok else "[red]FAIL[/]"
        console.print(
            f"{verdict} {stack}: {result.resources} resources ({result.components} components), "
            f"{result.kubernetes_objects} Kubernetes objects ({result.valid} valid, {result.invalid} invalid, "
            f"{len(result.unvalidated)} unvalidated; schemas k8s {result.schema_version}), "
            f"{result.helm_releases} Helm releases, {len(result.findings)} findings, "
            f"{result.seconds:.1f}s -> {out / stack}"
        )
    if as_json:
        emit_json(summaries)
    # One code for the run: a failure outranks bad input, which outranks a failed check.
    exit_with(
        next(c for c in (ExitCode.FAILED, ExitCode.BAD_INPUT, ExitCode.CHECK_FAILED) if c in codes)
        if len(codes) > 1
        else ExitCode.OK
    )
