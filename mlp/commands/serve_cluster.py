"""``mlp serve render|deploy|status|promote|rollback``: KServe serving patterns on a stack's cluster.

The ``serve`` group (``mlp.commands.serve``) adds these commands. Logic lives in
``workloads.serving.cluster``; this module parses options, calls it and prints.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from mlp.common import bundle, stack_outputs

if TYPE_CHECKING:
    from workloads.serving.cluster.builders import Mode, ServeRequest, ServingEnv
    from workloads.target import StackOutputs

F = TypeVar("F", bound=Callable[..., Any])
PATTERN_CHOICE = click.Choice(["single", "multi-model", "transformer", "canary", "ab", "shadow"])
MODE_CHOICE = click.Choice(["Serverless", "RawDeployment"])


class _Failure(click.ClickException):
    """A clean CLI error (exit 1, message on stderr, no traceback)."""

    def show(self, file: Any = None) -> None:  # noqa: D102
        click.echo(f"error: {self.message}", err=True)


@dataclass(frozen=True)
class ClusterTarget:
    """Where a cluster command works, as its options give it (``None``: from the stack's outputs).

    Attributes:
        stack: ``--target``: the stack whose outputs locate KServe, storage and GPU pools.
        outputs_file: ``--outputs-file``: saved stack outputs (instead of, or for, the stack).
        mode: ``--mode``: overrides the stack's kserveDeploymentMode output.
        namespace: ``--namespace``: namespace of the services.
        kubeconfig: ``--kubeconfig`` of the commands that reach the cluster.
    """

    stack: str | None = None
    outputs_file: Path | None = None
    mode: str | None = None
    namespace: str = "mlp-serving"
    kubeconfig: Path | None = None


_stack_options = bundle(
    "target",
    ClusterTarget,
    click.option("--mode", type=MODE_CHOICE, help="Override the stack's kserveDeploymentMode output."),
    click.option("--namespace", default="mlp-serving", show_default=True, help="Namespace of the services."),
    click.option(
        "--target",
        "stack",
        help="Stack name (dev, aks, eks...) whose outputs locate KServe, storage, GPU pools.",
    ),
    click.option(
        "--outputs-file",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Stack outputs saved with `pulumi stack output --json --show-secrets`.",
    ),
)
"""``--mode``, ``--namespace``, ``--target`` and ``--outputs-file``, handed over as ``target: ClusterTarget``
(with ``--kubeconfig`` where the command also has that option)."""


def _kubeconfig_option(func: F) -> F:
    return click.option(
        "--kubeconfig",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="Kubeconfig file (default: the stack's kubeconfig output).",
    )(func)


def _render_options(func: F) -> F:
    options = [
        click.argument("pattern", type=PATTERN_CHOICE),
        click.option(
            "--model",
            "models",
            multiple=True,
            required=True,
            help="NAME@alias or NAME/version from the registry, or NAME=s3://... (repeat; order matters: "
            "stable then candidate for canary, primary then shadow for shadow, one per A/B variant).",
        ),
        click.option("--name", help="Base name of the services (default: the first model's name)."),
        click.option(
            "--format", "model_format", type=click.Choice(["mlflow", "sklearn"]), help="Force the runtime."
        ),
        click.option(
            "--memory-mi", type=click.IntRange(32), default=256, show_default=True, help="Memory per model."
        ),
        click.option("--canary-percent", type=click.IntRange(1, 99), default=10, show_default=True),
        click.option("--weights", help="A/B weights, e.g. 80,20 (default: even)."),
        click.option(
            "--mirror", type=click.Choice(["gateway-api", "istio"]), default="gateway-api", show_default=True
        ),
        click.option("--mirror-percent", type=click.IntRange(1, 100), default=100, show_default=True),
        click.option("--scale-metric", type=click.Choice(["concurrency", "rps", "cpu", "gpu-utilization"])),
        click.option("--scale-target", type=int, help="Per-replica target of the scale metric."),
        click.option(
            "--min-replicas", type=int, help="Default: 0 in Serverless (scale to zero), 1 in RawDeployment."
        ),
        click.option("--max-replicas", type=int, default=3, show_default=True),
        click.option(
            "--cold-start-timeout", "cold_start_s", type=click.IntRange(30), default=600, show_default=True
        ),
        click.option(
            "--request-timeout", "request_timeout_s", type=click.IntRange(1), default=60, show_default=True
        ),
        click.option(
            "--gpu", is_flag=True, help="Run predictors on a GPU pool (tolerations + node selector)."
        ),
        click.option("--pool", help="GPU pool (default: the stack's first)."),
        click.option("--request-logging/--no-request-logging", default=True, show_default=True),
        click.option(
            "--service-account",
            help="ServiceAccount with S3 access (default: the stack's kserveServiceAccount output).",
        ),
        click.option(
            "--s3-secret", default="mlp-serving-s3", show_default=True, help="Secret with AWS_* keys (sink)."
        ),
        click.option(
            "--gateway", default="kserve/kserve-ingress-gateway", show_default=True, help="NAMESPACE/NAME."
        ),
        click.option("--tracking-uri", help="MLflow registry (default: the stack's mlflowTrackingUri)."),
        click.option(
            "--out", type=click.Path(file_okay=False, path_type=Path), help="Default: build/serve/<stack>."
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _outputs(target: ClusterTarget, *, deployed: bool) -> StackOutputs:
    """Outputs from a file; else (deploy) the deployed stack, or (render) the plan's outputs.json or the offline plan."""
    outputs_file = target.outputs_file
    if outputs_file is None and target.stack is not None and not deployed:
        plan_file = Path("build") / "plan" / target.stack / "outputs.json"
        outputs_file = plan_file if plan_file.exists() else None
    return stack_outputs(target.stack, outputs_file, deployed=deployed)


def _mode(outputs: StackOutputs, override: str | None) -> Mode:
    from stacks import outputs as keys
    from workloads.target import TargetError

    mode = override or outputs.kserve_deployment_mode
    if mode is None:
        raise TargetError(
            f"the stack exports no {keys.KSERVE_DEPLOYMENT_MODE!r} (is the serving add-on enabled?); "
            "pass --mode Serverless|RawDeployment"
        )
    return mode  # type: ignore[return-value]


def _env(outputs: StackOutputs, mode: Mode, namespace: str, opts: dict[str, Any]) -> ServingEnv:
    from components.clusters.base import POOL_LABEL
    from components.versions import IMAGES
    from workloads.gpu.manifests import placement_from_outputs
    from workloads.serving.cluster.builders import ServingEnv

    service_account = opts["service_account"] or outputs.kserve_service_account
    if not service_account:
        raise click.UsageError(
            "the stack exports no kserveServiceAccount (is serving enabled?); pass --service-account NAME"
        )
    gateway_ns, _, gateway_name = str(opts["gateway"]).partition("/")
    if not gateway_name:
        raise click.BadParameter("expected NAMESPACE/NAME", param_hint="--gateway")
    return ServingEnv(
        mode=mode,
        namespace=namespace,
        service_account=service_account,
        workload_image=outputs.workload_image or IMAGES["workloads"].ref,
        prometheus_url=outputs.prometheus_url,
        s3_bucket=outputs.s3_bucket,
        s3_endpoint=outputs.s3_endpoint,
        s3_secret=opts["s3_secret"],
        gateway=(gateway_ns, gateway_name),
        url_template=outputs.kserve_url_template,
        gpu=placement_from_outputs(outputs, POOL_LABEL, opts["pool"]) if opts["gpu"] else None,
    )


def _request(pattern: str, outputs: StackOutputs, opts: dict[str, Any]) -> ServeRequest:
    from workloads.serving.cluster import models
    from workloads.serving.cluster.builders import Scaling, ServeRequest

    # An unreachable registry should fail in seconds, not after MLflow's default retries.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "15")
    tracking = opts["tracking_uri"] or outputs.mlflow_tracking_uri
    resolved = tuple(
        models.resolve(
            m,
            tracking,
            model_format=opts["model_format"],
            memory_mi=opts["memory_mi"],
            artifacts_uri=outputs.mlflow_artifacts_uri,
        )
        for m in opts["models"]
    )
    weights: tuple[int, ...] = ()
    if opts["weights"]:
        try:
            weights = tuple(int(w) for w in str(opts["weights"]).split(","))
        except ValueError:
            raise click.BadParameter(
                "expected integers separated by commas, e.g. 80,20", param_hint="--weights"
            ) from None
    name = opts["name"] or resolved[0].name.lower().replace("_", "-").replace(".", "-")
    return ServeRequest(
        pattern=pattern,  # type: ignore[arg-type]
        name=name,
        models=resolved,
        canary_percent=opts["canary_percent"],
        weights=weights,
        mirror_percent=opts["mirror_percent"],
        mirror=opts["mirror"],
        scaling=Scaling(
            metric=opts["scale_metric"],
            target=opts["scale_target"],
            min_replicas=opts["min_replicas"],
            max_replicas=opts["max_replicas"],
            cold_start_timeout_s=opts["cold_start_s"],
            request_timeout_s=opts["request_timeout_s"],
        ),
        request_logging=opts["request_logging"],
    )


def _render(
    pattern: str, target: ClusterTarget, opts: dict[str, Any], *, deployed: bool
) -> tuple[list[dict[str, Any]], StackOutputs, ServeRequest, ServingEnv, Path]:
    from workloads.serving.cluster.builders import render

    outputs = _outputs(target, deployed=deployed)
    env = _env(outputs, _mode(outputs, target.mode), target.namespace, opts)
    request = _request(pattern, outputs, opts)
    objects = render(request, env)
    label = target.stack or (target.outputs_file.stem if target.outputs_file else "stack")
    out = opts["out"] or Path("build") / "serve" / label
    path = out / f"{request.name}-{pattern}.yaml"
    from workloads.gpu.manifests import to_yaml

    out.mkdir(parents=True, exist_ok=True)
    path.write_text(to_yaml(objects))
    return objects, outputs, request, env, path


def _errors() -> tuple[type[BaseException], ...]:
    from workloads.gpu.apply import ApplyError
    from workloads.gpu.manifests import PlacementError
    from workloads.registry import RegistryError
    from workloads.serving.cluster.builders import ServingError
    from workloads.target import TargetError

    return (ApplyError, PlacementError, RegistryError, ServingError, TargetError, OSError)


def _print_summary(
    objects: list[dict[str, Any]], request: ServeRequest, env: ServingEnv, path: Path, as_json: bool
) -> None:
    from workloads.serving.cluster.builders import effective_metric, effective_min_replicas, summary

    info: dict[str, Any] = {
        "pattern": request.pattern,
        "name": request.name,
        "mode": env.mode,
        "namespace": env.namespace,
        "models": [
            {"ref": m.ref, "storageUri": m.storage_uri, "format": m.model_format} for m in request.models
        ],
        "scaling": {
            "metric": effective_metric(request.scaling, env.mode),
            "minReplicas": effective_min_replicas(request.scaling, env.mode),
            "maxReplicas": request.scaling.max_replicas,
        },
        "gpuPool": env.gpu.pool if env.gpu else None,
        "file": str(path),
        "objects": summary(objects),
    }
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    click.echo(
        f"{request.pattern} '{request.name}' in {env.namespace} ({env.mode}), {len(objects)} objects -> {path}"
    )
    for model in info["models"]:
        click.echo(f"  model {model['ref']}: {model['storageUri']} [{model['format']}]")
    scaling = info["scaling"]
    click.echo(
        f"  scaling: {scaling['metric']}, replicas {scaling['minReplicas']}..{scaling['maxReplicas']}"
        + (f", GPU pool {env.gpu.pool}" if env.gpu else "")
    )
    for line in info["objects"]:
        click.echo(f"  {line}")


@click.command("render")
@_render_options
@_stack_options
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def render_cmd(pattern: str, target: ClusterTarget, as_json: bool, **opts: Any) -> None:
    """Render a serving pattern's manifests to build/serve/<stack>/ (offline).

    Stack outputs come from --outputs-file, else build/plan/<stack>/outputs.json, else the stack's
    offline plan. Exit 1 with a message when the pattern cannot work in the stack's mode.
    """
    try:
        objects, _, request, env, path = _render(pattern, target, opts, deployed=False)
    except _errors() as exc:
        raise _Failure(str(exc)) from None
    _print_summary(objects, request, env, path, as_json)


def _client(outputs: StackOutputs | None, kubeconfig: Path | None) -> Any:
    from stacks import outputs as keys
    from workloads.gpu.apply import dynamic_client

    if kubeconfig is not None:
        text = kubeconfig.read_text()
    else:
        assert outputs is not None
        text = outputs.require(keys.KUBECONFIG)
    return dynamic_client(text)


@click.command("deploy")
@_render_options
@_stack_options
@_kubeconfig_option
def deploy_cmd(pattern: str, target: ClusterTarget, **opts: Any) -> None:
    """Render a serving pattern and apply it to the stack's cluster (server-side apply).

    Exit status: 0 when every object was applied; 1 when the cluster cannot be reached or refuses
    an object (nothing else is changed after the first refusal).
    """
    from workloads.serving.cluster.apply import deploy

    try:
        objects, outputs, request, env, path = _render(pattern, target, opts, deployed=True)
        click.echo(f"rendered {len(objects)} objects -> {path}", err=True)
        client = _client(outputs, target.kubeconfig)
        for applied in deploy(objects, client, pattern=pattern, mode=env.mode):
            where = f" in {applied.namespace}" if applied.namespace else ""
            click.echo(f"applied {applied.kind} {applied.name}{where}")
    except _errors() as exc:
        raise _Failure(str(exc)) from None


def _cluster(target: ClusterTarget) -> tuple[Any, Mode]:
    outputs = _outputs(target, deployed=True)
    return _client(outputs, target.kubeconfig), _mode(outputs, target.mode)


@click.command("status")
@click.option("--name", required=True, help="Base name of the services.")
@_stack_options
@_kubeconfig_option
@click.option("--json", "as_json", is_flag=True)
def status_cmd(name: str, target: ClusterTarget, as_json: bool) -> None:
    """Readiness, URL, model and traffic split of the services named NAME (and NAME-*)."""
    from workloads.serving.cluster.apply import status

    try:
        client, _ = _cluster(target)
        result = status(client, target.namespace, name)
    except _errors() as exc:
        raise _Failure(str(exc)) from None
    if as_json:
        click.echo(json.dumps(result, indent=2, default=str))
        return
    for svc in result["services"]:
        state = "Ready" if svc["ready"] else f"not ready ({svc['message'] or 'no condition yet'})"
        canary = f", canary {svc['canary_percent']}%" if svc["canary_percent"] is not None else ""
        click.echo(f"{svc['name']}: {state}{canary}  {svc['url']}\n  model {svc['model']}")
        for t in svc["traffic"]:
            click.echo(
                f"  revision {t.get('revisionName')}: {t.get('percent')}%{' (latest)' if t.get('latestRevision') else ''}"
            )
    if "split" in result:
        click.echo("split: " + ", ".join(f"{k} {v}" for k, v in result["split"].items()))


def _canary_command(action: str) -> click.Command:
    @click.command(
        action,
        help=f"{action.capitalize()} the canary of NAME (Serverless: traffic percent; RawDeployment: route and services).",
    )
    @click.option("--name", required=True, help="Base name of the canary's service.")
    @_stack_options
    @_kubeconfig_option
    def command(name: str, target: ClusterTarget) -> None:
        from workloads.serving.cluster import apply

        try:
            client, resolved = _cluster(target)
            steps = getattr(apply, action)(client, resolved, target.namespace, name)
        except _errors() as exc:
            raise _Failure(str(exc)) from None
        for step in steps:
            click.echo(step)

    return command


promote_cmd = _canary_command("promote")
rollback_cmd = _canary_command("rollback")

COMMANDS: tuple[click.Command, ...] = (render_cmd, deploy_cmd, status_cmd, promote_cmd, rollback_cmd)
"""The cluster subcommands, for ``serve.add_command``."""
