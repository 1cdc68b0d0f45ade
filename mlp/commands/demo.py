"""``mlp demo``: the whole ML lifecycle on embedded engines, from a fresh clone.

The lifecycle itself is :func:`workloads.lifecycle.run_lifecycle`; this command parses options,
shows progress and prints the summary.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from mlp.common import CheckFailed, Failed, emit_json, json_option
from workloads.lifecycle import DEFAULT_OUT


@click.command()
@click.option("--trials", type=click.IntRange(min=1), default=10, show_default=True, help="Optuna trials.")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_OUT,
    show_default=True,
    help="Where summary.json and the pipeline log go (the IR goes to build/pipeline/).",
)
@click.option("--reset", is_flag=True, help="Start from empty local state (MLflow DB, artifacts, KFP cache).")
@click.option(
    "--serving/--no-serving",
    default=True,
    show_default=True,
    help="After registration: serve champion + challenger locally, canary, shadow, drift, short benchmark.",
)
@json_option
def demo(trials: int, out: Path, reset: bool, serving: bool, as_json: bool) -> None:
    """Run the ML lifecycle locally: tune -> pipeline -> register, then summarize.

    Uses the local target (state in ./.mlp or $MLP_HOME): an Optuna study logged to MLflow, the
    KFP training pipeline on KFP's local runner with the best parameters, registration in
    MLflow's registry as `challenger` (and `champion` if it beats the current one). Writes
    <out>/summary.json. Exit codes: 0 registered, 1 failed, 3 the model failed the quality gate.
    """
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    from workloads.lifecycle import DEFAULT_ACTS, LifecycleError, act_totals, run_lifecycle

    acts = DEFAULT_ACTS
    if serving:
        from workloads.serving.local.act import SERVING_ACT

        acts = (*DEFAULT_ACTS, SERVING_ACT)

    err = Console(file=sys.stderr)  # bound now: kfp.local output is redirected later
    bars = Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description:<10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[note]}"),
        TimeElapsedColumn(),
        console=err,
    )
    with bars:
        tasks = {
            name: bars.add_task(name, total=total, note="")
            for name, total in act_totals(trials, acts).items()
        }

        def progress(act: str, advance: int, note: str) -> None:
            bars.update(tasks[act], advance=advance, note=note)

        try:
            summary = run_lifecycle(trials, out=out, reset=reset, progress=progress, acts=acts)
        except LifecycleError as error:
            raise Failed(str(error)) from None
    summary_path = out / "summary.json"
    if as_json:
        emit_json(summary, sort_keys=True)
    else:
        _print_summary(summary, summary_path)
    if not summary["registered"]:
        raise CheckFailed(f"not registered: {summary['decision']}")


def _print_summary(summary: dict[str, Any], path: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    model = summary["model"]
    table = Table(title="ML lifecycle (local target)", show_header=False, title_justify="left")
    table.add_column("what", style="bold cyan")
    table.add_column("value", overflow="fold")
    table.add_row("model", f"{model['name']} v{model['version']}")
    table.add_row("aliases", ", ".join(model["aliases"]) or "-")
    table.add_row("decision", summary["decision"])
    table.add_row("metrics (test)", ", ".join(f"{k}={v:.4f}" for k, v in sorted(summary["metrics"].items())))
    tuning = summary["tuning"]
    table.add_row(
        "tuning",
        f"{tuning['trials']} {tuning['algorithm']} trials, best {tuning['objective']} = {tuning['best_value']:.4f}",
    )
    table.add_row(
        "best params",
        ", ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
            for k, v in sorted(summary["best_params"].items())
        ),
    )
    table.add_row("data hash", summary["data_hash"])
    for key, value in summary["lineage"].items():
        table.add_row(key.replace("_", " "), str(value))
    table.add_row("step seconds", ", ".join(f"{k}={v:.2f}" for k, v in summary["step_seconds"].items()))
    table.add_row("total seconds", f"{summary['total_seconds']:.1f}")
    console.print(table)
    console.print(f"summary: {path}   lineage: mlp lineage {model['name']}@champion")
