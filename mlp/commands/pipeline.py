"""``mlp pipeline``: compile the training pipeline and run it locally or on a stack's KFP."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from mlp.common import BadInput, CheckFailed, Failed, emit_json, json_option, resolve_target, target_options


@click.group()
def pipeline() -> None:
    """Compile and run the training pipeline (preprocess -> train -> evaluate -> register).

    On the local target it runs with KFP's local runner and registers into the local MLflow;
    on a stack target it is submitted to the stack's Kubeflow Pipelines, with the stack's GPU
    tolerations on the train step.
    """


def _overrides(params: tuple[str, ...], params_file: Path | None) -> dict[str, Any]:
    from stacks.files import load_json
    from workloads.pipelines.pipeline import PIPELINE_PARAM_NAMES, parse_param

    values: dict[str, Any] = {}
    if params_file is not None:
        loaded = load_json(params_file, what="--params-file", expect=dict)
        # A best-params file from `mlp tune run` may hold extra keys (e.g. seed); keep the pipeline's.
        values.update({k: v for k, v in loaded.items() if k in PIPELINE_PARAM_NAMES})
    for item in params:
        name, sep, text = item.partition("=")
        if not sep:
            raise click.BadParameter(f"expected NAME=VALUE, got {item!r}", param_hint="--param")
        try:
            values[name.strip()] = parse_param(name.strip(), text.strip())
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint="--param") from None
    return values


@pipeline.command("compile")
@target_options
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="IR YAML path (default: build/pipeline/training-pipeline.yaml).",
)
@click.option("--gpu", is_flag=True, help="Request a GPU for the train step (cluster targets).")
def compile_command(target: str, outputs_file: Path | None, out: Path | None, gpu: bool) -> None:
    """Compile the pipeline to KFP IR YAML.

    For a stack target the train step carries the stack's GPU tolerations, retries and the
    object-store wiring; for the local target it is the plain pipeline.
    """
    from workloads.pipelines.pipeline import DEFAULT_PACKAGE_PATH, ClusterPlacement, compile_pipeline

    resolved = resolve_target(target, outputs_file)
    placement = None if resolved.is_local else ClusterPlacement.for_target(resolved, gpu=gpu)
    path = compile_pipeline(out or DEFAULT_PACKAGE_PATH, placement=placement)
    click.echo(f"wrote {path}")


@pipeline.command("run")
@target_options
@click.option(
    "--param", "params", multiple=True, metavar="NAME=VALUE", help="Pipeline parameter (repeatable)."
)
@click.option(
    "--params-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="JSON object of pipeline parameters, e.g. build/tune/best-params.json from `mlp tune run`.",
)
@click.option("--no-cache", is_flag=True, help="Run every step even when a cached result exists.")
@click.option("--gpu", is_flag=True, help="Request a GPU for the train step (cluster targets).")
@click.option(
    "--wait", type=int, default=0, help="Cluster targets: wait up to this many seconds for the run."
)
@click.option("--verbose", is_flag=True, help="Stream the steps' logs (local target).")
@click.option(
    "--dataset-key",
    envvar="MLP_DATASET_KEY",
    default="",
    help="Stack targets: preprocess reads s3://<datasetsBucket>/KEY instead of the bundled dataset "
    "(default $MLP_DATASET_KEY, which the dataset trigger Job sets).",
)
@json_option
def run_command(
    target: str,
    outputs_file: Path | None,
    params: tuple[str, ...],
    params_file: Path | None,
    no_cache: bool,
    gpu: bool,
    wait: int,
    verbose: bool,
    dataset_key: str,
    as_json: bool,
) -> None:
    """Run the pipeline on the target.

    Exit codes: 0 registered (or submitted), 1 failed, 2 bad parameters, 3 the model failed the
    quality gate.
    """
    from rich.console import Console

    from workloads.pipelines import pipeline as training
    from workloads.target import TargetError

    overrides = _overrides(params, params_file)
    resolved = resolve_target(target, outputs_file)
    try:
        if dataset_key:
            overrides["dataset_uri"] = training.dataset_uri(resolved, dataset_key)
        training.arguments_for(resolved, overrides)
    except ValueError as error:
        raise BadInput(str(error)) from None
    except TargetError as error:
        raise Failed(str(error)) from None
    if not resolved.is_local:
        try:
            result = training.submit(resolved, overrides, gpu=gpu, wait_timeout_s=wait or None)
        except (training.SubmitError, TargetError) as error:
            raise Failed(str(error)) from None
        if as_json:
            emit_json(result)
        else:
            click.echo(f"submitted run {result['run_id']}: {result['run_url']}")
        return
    console = Console(file=sys.stderr)  # bound now: kfp.local output is redirected later

    def on_step(step: str, event: str) -> None:
        console.print(f"  {step}: {event}")

    with console.status("running the pipeline with kfp.local"):
        try:
            run = training.run_local(
                resolved,
                overrides,
                caching=not no_cache,
                echo=sys.stderr if verbose else None,
                on_step=on_step,
            )
        except training.PipelineRunError as error:
            raise Failed(str(error)) from None
    result = {**run.outputs._asdict(), "seconds": round(run.seconds, 2), "step_seconds": run.step_seconds}
    if as_json:
        emit_json(result)
    else:
        for key, value in result.items():
            click.echo(f"{key}: {value}")
    if not run.outputs.model_version:
        raise CheckFailed(f"not registered: {run.outputs.decision}")
