"""``mlp gpu``: render or apply GPU scheduling workloads (smoke Job, sharing demo, priority classes)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from mlp.common import BadInput, Failed, emit_json, json_option, stack_option, stack_outputs

if TYPE_CHECKING:
    from workloads.gpu.manifests import GpuPlacement
    from workloads.target import StackOutputs

WORKLOAD_CHOICE = click.Choice(["smoke", "sharing-demo", "priority-classes"])


def placement_for(outputs: StackOutputs, pool: str | None) -> GpuPlacement:
    """Placement on ``pool`` as the stack's ``gpuPools`` output describes it (resource, sharing)."""
    from components.clusters.base import POOL_LABEL
    from workloads.gpu.manifests import placement_from_outputs

    return placement_from_outputs(outputs, POOL_LABEL, pool)


def _objects(
    workload: str,
    stack: str,
    outputs_file: Path | None,
    pool: str | None,
    pods: int | None,
    *,
    deployed: bool,
) -> tuple[list[dict[str, Any]], StackOutputs | None]:
    from components.versions import IMAGES
    from workloads.gpu.manifests import render

    if workload == "priority-classes":
        return render(workload, None, ""), None
    outputs = stack_outputs(stack, outputs_file, deployed=deployed, plan_fallback=True)
    if workload == "sharing-demo" and pool is None:
        pool = next((p.name for p in outputs.gpu_pools if p.sharing in ("time-slicing", "mps")), None)
    placement = placement_for(outputs, pool)
    return render(workload, placement, IMAGES["cuda-sample"].ref, pods=pods), outputs


@click.group("gpu")
def gpu() -> None:
    """GPU scheduling workloads for a stack's GPU pools.

    smoke: one Job requesting one GPU with the pool's tolerations and node selector.

    sharing-demo: N pods on one physical GPU under the pool's time-slicing or MPS.

    priority-classes: mlp-serving (preempts) over mlp-batch (never preempts).
    """


_COMMON = [
    click.argument("workload", type=WORKLOAD_CHOICE),
    stack_option(help="Stack whose GPU pools to use (dev, aks, eks...)."),
    click.option(
        "--outputs-file",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="Stack outputs saved with `pulumi stack output --json --show-secrets`.",
    ),
    click.option(
        "--pool", help="GPU pool (default: the first pool; for sharing-demo the first sharing pool)."
    ),
    click.option(
        "--pods", type=click.IntRange(1), help="sharing-demo: pods on the GPU (default: its replicas)."
    ),
]


def _with_common(func: Any) -> Any:
    for decorator in reversed(_COMMON):
        func = decorator(func)
    return func


_output_option = click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to a file instead of stdout.",
)


@gpu.command("render")
@_with_common
@_output_option
@json_option
def render_cmd(
    workload: str,
    stack: str,
    outputs_file: Path | None,
    pool: str | None,
    pods: int | None,
    output: Path | None,
    as_json: bool,
) -> None:
    """Render a workload's manifests (offline: pool placement from the stack's plan or outputs file).

    Exit codes: 0 rendered, 2 bad input (unknown stack or pool, too many pods, bad outputs file).
    """
    from workloads.gpu.manifests import PlacementError, to_yaml
    from workloads.target import TargetError

    try:
        objects, _ = _objects(workload, stack, outputs_file, pool, pods, deployed=False)
    except (PlacementError, TargetError, FileNotFoundError) as exc:
        raise BadInput(str(exc)) from None
    if as_json and not output:
        emit_json(objects)
        return
    text = json.dumps(objects, indent=2) if as_json else to_yaml(objects)
    if output:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text)
        click.echo(f"wrote {len(objects)} objects to {output}", err=True)
    else:
        click.echo(text)


@gpu.command("apply")
@_with_common
@click.option(
    "--kubeconfig",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Kubeconfig file (default: the stack's kubeconfig output).",
)
@click.option("--wait/--no-wait", default=True, show_default=True, help="Wait for Jobs and print their logs.")
@click.option(
    "--timeout", "timeout_s", type=click.IntRange(1), default=1800, show_default=True, help="Seconds to wait."
)
def apply_cmd(
    workload: str,
    stack: str,
    outputs_file: Path | None,
    pool: str | None,
    pods: int | None,
    kubeconfig: Path | None,
    wait: bool,
    timeout_s: int,
) -> None:
    """Apply a workload to the stack's cluster through its kubeconfig (server-side apply).

    Exit status: 0 when applied (and, with --wait, every Job succeeded); 1 when the cluster
    refused or a Job failed; 2 on bad input (unknown stack or pool, unreadable kubeconfig).
    """
    from stacks import outputs as keys
    from stacks.files import read_text
    from workloads.gpu.apply import ApplyError, apply_objects, dynamic_client, wait_for_job
    from workloads.gpu.manifests import PlacementError
    from workloads.target import TargetError

    try:
        objects, outputs = _objects(workload, stack, outputs_file, pool, pods, deployed=True)
        if kubeconfig is not None:
            config_text = read_text(kubeconfig, what="kubeconfig")
        else:
            outputs = outputs or stack_outputs(stack, outputs_file, deployed=True, plan_fallback=True)
            config_text = outputs.require(keys.KUBECONFIG)
    except (PlacementError, TargetError, FileNotFoundError) as exc:
        raise BadInput(str(exc)) from None
    try:
        client = dynamic_client(config_text)
        for applied in apply_objects(objects, client):
            where = f" in {applied.namespace}" if applied.namespace else ""
            click.echo(
                f"applied {applied.kind} {applied.name}{where}{' (replaced)' if applied.replaced else ''}"
            )
        if wait:
            for obj in objects:
                if obj["kind"] != "Job":
                    continue
                meta = obj["metadata"]
                click.echo(f"waiting for Job {meta['name']} (GPU nodes may need minutes to scale up)...")
                wait_for_job(
                    client, meta["name"], meta["namespace"], timeout_s=timeout_s, progress=click.echo
                )
                _print_logs(client, meta["namespace"], meta["labels"]["app.kubernetes.io/name"])
    except (ApplyError, TargetError) as exc:
        raise Failed(str(exc)) from None


def _print_logs(client: Any, namespace: str, app: str) -> None:
    from kubernetes import client as k8s_client

    core = k8s_client.CoreV1Api(client.client)
    pods = core.list_namespaced_pod(namespace, label_selector=f"app.kubernetes.io/name={app}")
    for pod in pods.items:
        log = core.read_namespaced_pod_log(pod.metadata.name, namespace, tail_lines=20)
        click.echo(f"--- {pod.metadata.name} ({pod.spec.node_name})\n{log.rstrip()}")


@gpu.command("drill")
@stack_option(help="Stack whose interruption path to describe (aks, eks...).")
@_output_option
@json_option
def drill_cmd(stack: str, output: Path | None, as_json: bool) -> None:
    """Describe what happens on a spot interruption for a stack, as Markdown (or --json).

    Offline: runs the stack's program under mocks and reads what it declares (handler, queue and
    rules or scheduled-events DaemonSet, lifecycle hooks, covered pools); adds the drain order,
    grace periods and checkpoint/resume behaviour of the workloads.

    Exit codes: 0 rendered, 2 bad input (unknown stack, invalid stack file).
    """
    from stacks.config import stack_file_config
    from stacks.plan.harness import clean, run_program
    from stacks.program import program
    from workloads.gpu.drill import build_drill, to_markdown

    try:
        config = stack_file_config(stack)
    except FileNotFoundError as exc:
        raise BadInput(str(exc)) from None
    run = run_program(program, stack=stack, config=config)
    registrations = [
        {"type": r.type, "name": r.name, "inputs": clean(r.inputs), "outputs": clean(r.outputs)}
        for r in run.registrations
    ]
    drill = build_drill(stack, registrations, clean(run.exports))
    text = json.dumps(drill.to_json(), indent=2) if as_json else to_markdown(drill)
    if output:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text + "\n")
        click.echo(f"wrote the {stack} drill to {output}", err=True)
    else:
        click.echo(text)
