"""``mlp demo``: the whole ML lifecycle on embedded engines, from a fresh clone."""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import click

DEFAULT_OUT = Path("build") / "demo"
_STEPS = ("setup", "tune", "compile", "pipeline", "summary")
_PIPELINE_STEPS = ("preprocess", "train", "evaluate", "register")


def _reset(home: Path) -> None:
    """Remove the local lifecycle state (only what the local target creates under its home)."""
    for name in ("mlflow.db", "mlartifacts", "kfp", "checkpoints"):
        path = home / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


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
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON instead of a table.")
def demo(trials: int, out: Path, reset: bool, as_json: bool) -> None:
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

    started = time.perf_counter()
    err = Console(file=sys.stderr)  # bound now: kfp.local output is redirected later
    timings: dict[str, float] = {}
    progress = Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description:<10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[note]}"),
        TimeElapsedColumn(),
        console=err,
    )
    with progress:
        tasks = {
            "setup": progress.add_task("setup", total=1, note=""),
            "tune": progress.add_task("tune", total=trials, note=""),
            "compile": progress.add_task("compile", total=1, note=""),
            "pipeline": progress.add_task("pipeline", total=len(_PIPELINE_STEPS), note=""),
            "summary": progress.add_task("summary", total=1, note=""),
        }

        # setup
        t0 = time.perf_counter()
        import logging

        import mlflow  # noqa: F401 - imported here so its cost shows under setup

        from workloads import registry
        from workloads.pipelines import pipeline as training
        from workloads.target import TargetError, load_target
        from workloads.tuning.space import load_space
        from workloads.tuning.study import TrialRecord, run_study

        try:
            target = load_target()
        except TargetError as error:
            raise click.ClickException(str(error)) from None
        # Progress bars replace MLflow's INFO lines (database creation, registrations).
        logging.getLogger("mlflow").setLevel(logging.WARNING)
        if reset:
            _reset(target.home)
        target.prepare()
        out.mkdir(parents=True, exist_ok=True)
        space = load_space().with_budget(trials)
        timings["setup"] = time.perf_counter() - t0
        progress.update(tasks["setup"], completed=1, note=str(target.home))

        # tune
        t0 = time.perf_counter()
        best: list[float] = []

        def on_trial(record: TrialRecord) -> None:
            if record.value is not None:
                best.append(record.value)
            note = f"best {space.objective.metric}={max(best):.4f}" if best else ""
            progress.update(tasks["tune"], advance=1, note=note)

        study = run_study(
            space,
            tracking_uri=target.mlflow_tracking_uri,
            artifact_location=target.artifact_location,
            on_trial=on_trial,
        )
        timings["tune"] = time.perf_counter() - t0

        # compile
        t0 = time.perf_counter()
        package = training.compile_pipeline(training.DEFAULT_PACKAGE_PATH)
        timings["compile"] = time.perf_counter() - t0
        progress.update(tasks["compile"], completed=1, note=str(package))

        # pipeline
        t0 = time.perf_counter()

        def on_step(step: str, event: str) -> None:
            if event == "started":
                progress.update(tasks["pipeline"], note=f"{step}...")
            else:
                progress.update(tasks["pipeline"], advance=1, note=f"{step} {event}")

        overrides = {k: v for k, v in study.best_params.items() if k in training.PIPELINE_PARAM_NAMES} | {
            "tuning_run_id": study.tuning_run_id
        }
        try:
            run = training.run_local(target, overrides, on_step=on_step)
        except training.PipelineRunError as error:
            raise click.ClickException(str(error)) from None
        timings["pipeline"] = time.perf_counter() - t0
        (out / "pipeline.log").write_text(run.log)

        # summary
        t0 = time.perf_counter()
        outputs = run.outputs
        model: dict[str, Any] = {"name": registry.DEFAULT_MODEL_NAME, "version": None, "aliases": []}
        metrics: dict[str, float] = {}
        lineage: dict[str, Any] = {}
        if outputs.model_version:
            found = registry.lineage(
                f"{registry.DEFAULT_MODEL_NAME}/{outputs.model_version}", target.mlflow_tracking_uri
            )
            model = {"name": found.model_name, "version": found.version, "aliases": found.aliases}
            metrics = {k: v for k, v in found.metrics.items() if k != "train_log_loss"}
            lineage = {
                "mlflow_run_id": found.run_id,
                "pipeline_run_id": found.pipeline_run_id,
                "pipeline_run_name": found.pipeline_run_name,
                "tuning_run_id": found.tuning_run_id,
                "git_commit": found.git_commit,
            }
        timings["summary"] = time.perf_counter() - t0
        progress.update(tasks["summary"], completed=1)

    summary = {
        "model": model,
        "registered": bool(outputs.model_version),
        "promoted": outputs.promoted,
        "decision": outputs.decision,
        "metrics": metrics,
        "best_params": study.best_params,
        "tuning": {
            "objective": f"{space.objective.direction} {space.objective.metric}",
            "best_value": study.best_value,
            "best_trial": study.best_trial,
            "trials": len(study.trials),
            "algorithm": space.algorithm,
        },
        "data_hash": study.data_hash,
        "lineage": lineage,
        "step_seconds": {
            **{k: round(v, 3) for k, v in timings.items()},
            **{f"pipeline.{k}": v for k, v in run.step_seconds.items()},
        },
        "cached_steps": run.cached_steps,
        "total_seconds": round(time.perf_counter() - started, 3),
        "tracking_uri": target.mlflow_tracking_uri,
        "pipeline_package": str(package),
    }
    summary_path = out / "summary.json"
    summary_path.write_text(json.dumps(summary, indent=2, sort_keys=True, default=str) + "\n")
    if as_json:
        click.echo(json.dumps(summary, indent=2, sort_keys=True, default=str))
    else:
        _print_summary(summary, summary_path)
    if not outputs.model_version:
        err.print(f"[red]not registered:[/] {outputs.decision}")
        sys.exit(3)


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
