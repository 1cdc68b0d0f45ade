"""``mlp tune``: one search space, Optuna on the local target, Katib on clusters."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from mlp.common import BadInput, CheckFailed, emit_json, json_option, resolve_target, target_options

if TYPE_CHECKING:
    from workloads.tuning.space import SearchSpace
    from workloads.tuning.study import TrialRecord

DEFAULT_BEST_PARAMS = Path("build") / "tune" / "best-params.json"
DEFAULT_EXPERIMENT = Path("build") / "tune" / "katib-experiment.yaml"

_space_option = click.option(
    "--space",
    "space_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Search-space YAML (default: the packaged workloads/tuning/search-space.yaml).",
)
_trials_option = click.option(
    "--trials", type=click.IntRange(min=1), help="Override the space's trial budget."
)


@click.group()
def tune() -> None:
    """Hyperparameter tuning from one search-space definition.

    `mlp tune run` runs an Optuna study on the local target (trials logged to MLflow as child
    runs) and writes the best parameters for `mlp pipeline run --params-file`. On a cluster
    target it renders the Katib Experiment instead (`mlp tune katib`).
    """


def _load(space_file: Path | None, trials: int | None) -> SearchSpace:
    from pydantic import ValidationError

    from stacks.files import InputFileError, load_yaml
    from workloads.tuning.space import load_space

    try:
        if space_file is not None:
            load_yaml(space_file, what="search space")  # encoding, syntax, duplicate keys, shape
        return load_space(space_file).with_budget(trials)
    except InputFileError as error:
        raise BadInput(str(error)) from None
    except (ValidationError, OSError, ValueError) as error:
        where = space_file or "(the packaged default)"
        raise BadInput(f"invalid search space {where}: {error}") from None


@tune.command("run")
@target_options
@_space_option
@_trials_option
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_BEST_PARAMS,
    show_default=True,
    help="Where the best parameters are written (local target).",
)
@json_option
@click.pass_context
def run(
    ctx: click.Context,
    target: str,
    outputs_file: Path | None,
    space_file: Path | None,
    trials: int | None,
    out: Path,
    as_json: bool,
) -> None:
    """Run the study: Optuna locally; on a cluster target, render the Katib Experiment."""
    resolved = resolve_target(target, outputs_file)
    if not resolved.is_local:
        ctx.invoke(
            katib,
            target=target,
            outputs_file=outputs_file,
            space_file=space_file,
            trials=trials,
            out=DEFAULT_EXPERIMENT,
            image=None,
            namespace=None,
            gpu=False,
        )
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from workloads.tuning.study import run_study

    space = _load(space_file, trials)
    resolved.prepare()
    console = Console(file=sys.stderr)
    with Progress(
        TextColumn("[bold]tune[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[best]}"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("tune", total=space.budget.max_trials, best="")
        best: list[float] = []

        def on_trial(record: TrialRecord) -> None:
            if record.value is not None:
                best.append(record.value)
            label = f"best {space.objective.metric}={max(best):.4f}" if best else ""
            progress.update(task, advance=1, best=label)

        result = run_study(
            space,
            tracking_uri=resolved.mlflow_tracking_uri,
            artifact_location=resolved.artifact_location,
            on_trial=on_trial,
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {**result.best_params, "tuning_run_id": result.tuning_run_id}
    out.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    if as_json:
        emit_json(result.to_dict())
        return
    console = Console()
    console.print(f"best {space.objective.metric} = {result.best_value:.4f} (trial {result.best_trial})")
    console.print(f"best parameters: {result.best_params}")
    console.print(f"study run: {result.tuning_run_id}; {len(result.trials)} trials in {result.seconds:.1f} s")
    console.print(f"wrote {out}  ->  mlp pipeline run --params-file {out}")


@tune.command()
@target_options
@_space_option
@_trials_option
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_EXPERIMENT,
    show_default=True,
    help="Where the Experiment manifest is written ('-' for stdout).",
)
@click.option("--image", help="Trial image (default: the workload image, or $MLP_WORKLOAD_IMAGE).")
@click.option("--namespace", help="Experiment namespace (default: the stack's Katib namespace, or kubeflow).")
@click.option("--gpu", is_flag=True, help="Request one GPU per trial.")
def katib(
    target: str,
    outputs_file: Path | None,
    space_file: Path | None,
    trials: int | None,
    out: Path,
    image: str | None,
    namespace: str | None,
    gpu: bool,
) -> None:
    """Render the search space as a Katib Experiment and validate it.

    On a stack target the trials get its GPU tolerations (when it has GPU pools) and its Katib
    namespace. Apply the result with `kubectl apply -f <out>`. Exit 3 if validation fails.
    """
    import yaml

    from workloads.pipelines.pipeline import workload_image
    from workloads.tuning.katib import render_experiment, validate_experiment

    space = _load(space_file, trials)
    resolved = resolve_target(target, outputs_file)
    stack_namespace = resolved.outputs.katib_namespace if resolved.outputs else None
    manifest = render_experiment(
        space,
        image=image or workload_image(resolved),
        namespace=namespace or stack_namespace or "kubeflow",
        tolerations=resolved.gpu_tolerations,
        gpu=gpu,
    )
    problems = validate_experiment(manifest)
    if problems:
        raise CheckFailed("invalid Experiment:\n  - " + "\n  - ".join(problems))
    text = yaml.safe_dump(manifest, sort_keys=False)
    if str(out) == "-":
        click.echo(text, nl=False)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    click.echo(f"wrote {out} (Experiment {manifest['metadata']['name']}, {space.budget.max_trials} trials)")
    click.echo(f"apply with: kubectl apply -f {out}")
