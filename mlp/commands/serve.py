"""``mlp serve``: serve registered models locally (KServe + nginx + Prometheus) and on clusters.

Local subcommands live here; the cluster ones (render, deploy, status, promote, rollback) come
from ``mlp.commands.serve_cluster`` when that module is present.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import click

from mlp.common import BadInput, ExitCode, Failed, NotFound, bench_out_option, exit_with, option_group

DEFAULT_WORK = Path("build") / "serve"
FAULTS: dict[str, dict[str, Any]] = {
    "none": {},
    "errors": {"error_rate": 0.3},
    "slow": {"delay_ms": 120.0},
    "flip": {"flip": True},
}
"""Deliberate faults for a canary/B variant (for showing a rollback)."""


@click.group("serve")
def serve() -> None:
    """Serve the registry's champion and challenger: locally on loopback, or on a stack's KServe.

    Local: `mlp serve local` starts KServe model servers (primary = champion, canary and shadow =
    challenger), a KServe transformer, an nginx router (weighted split, mirror) and Prometheus,
    all on 127.0.0.1. `canary`, `ab` and `shadow` run those patterns to a report under
    build/serve/; `drift` compares feature distributions.
    """


def _tracking_uri() -> str:
    from workloads.target import TargetError, load_target

    try:
        return str(load_target().mlflow_tracking_uri)
    except TargetError as error:
        raise BadInput(str(error)) from None


def _topology(work_dir: Path, primary: str, challenger: str, fault: str, **options: Any) -> Any:
    from workloads import registry
    from workloads.serving.local.server import Injection
    from workloads.serving.local.stack import ServingError, from_registry

    try:
        return from_registry(
            work_dir,
            tracking_uri=_tracking_uri(),
            model=registry.DEFAULT_MODEL_NAME,
            aliases={"primary": primary, "canary": challenger, "shadow": challenger},
            injections={"canary": Injection(**FAULTS[fault]), "shadow": Injection(**FAULTS[fault])},
            **options,
        )
    except ServingError as error:
        raise NotFound(str(error)) from None


def _start(serving: Any) -> Any:
    from workloads.serving.local.stack import ServingError

    click.echo(f"starting {', '.join(serving.variants)} + router + transformer + prometheus ...", err=True)
    try:
        return serving.start(on_ready=lambda name: click.echo(f"  ready: {name}", err=True))
    except ServingError as error:
        raise Failed(str(error)) from None


_primary = click.option(
    "--primary", default="champion", show_default=True, help="Alias or version of the primary."
)
_challenger = click.option(
    "--challenger", default="challenger", show_default=True, help="Alias or version of the canary/B/shadow."
)
_fault = click.option(
    "--fault",
    type=click.Choice(sorted(FAULTS)),
    default="none",
    show_default=True,
    help="Deliberately break the challenger: 30 %% 5xx, +120 ms, or inverted labels.",
)
_work = click.option(
    "--work-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_WORK,
    show_default=True,
    help="Configs, logs, request logs, endpoints.json and reports.",
)
_variants = option_group(_primary, _challenger, _fault, _work)
"""The served variants, the challenger's fault and the work directory of a local topology."""


@serve.command("local")
@_variants
@click.option(
    "--canary-percent",
    type=click.FloatRange(0, 100),
    default=0.0,
    show_default=True,
    help="Share to the canary.",
)
@click.option(
    "--mirror/--no-mirror", default=False, show_default=True, help="Copy every request to the shadow."
)
@click.option("--detach", is_flag=True, help="Leave it running; `mlp serve stop` ends it.")
def local(
    primary: str,
    challenger: str,
    fault: str,
    work_dir: Path,
    canary_percent: float,
    mirror: bool,
    detach: bool,
) -> None:
    """Serve champion and challenger on 127.0.0.1 until Ctrl-C (or detached).

    Writes WORK_DIR/endpoints.json: the URL of each model server, the router, the transformer
    and Prometheus, and the PID of every process.
    """
    serving = _topology(work_dir, primary, challenger, fault, canary_percent=canary_percent, mirror=mirror)
    endpoints = _start(serving)
    path = serving.write_endpoints()
    click.echo(
        json.dumps(
            {
                "router": endpoints.router,
                "transformer": endpoints.transformer,
                "prometheus": endpoints.prometheus,
                "servers": endpoints.servers,
            },
            indent=2,
        )
    )
    click.echo(f"endpoints: {path}", err=True)
    if detach:
        # The processes outlive this command; forget them so nothing stops them on exit.
        for proc in serving.group.procs.values():
            proc.popen = None
        click.echo("detached; stop with `mlp serve stop`", err=True)
        return
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    try:
        while not stop["now"]:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        serving.stop()
        click.echo("stopped", err=True)


@serve.command("stop")
@_work
def stop_cmd(work_dir: Path) -> None:
    """Stop the processes a detached `mlp serve local` recorded in endpoints.json."""
    from workloads.serving.local.stack import ENDPOINTS_FILE, stop_recorded

    path = work_dir / ENDPOINTS_FILE
    if not path.exists():
        raise NotFound(f"{path} not found: nothing detached is running from {work_dir}")
    for line in stop_recorded(path):
        click.echo(line)


def _replay() -> Any:
    from workloads.serving.analysis import labelled_replay

    rows, labels, _ = labelled_replay()
    return rows, labels


def _write(report: dict[str, Any], work_dir: Path, name: str) -> Path:
    work_dir.mkdir(parents=True, exist_ok=True)
    path = work_dir / f"{name}.json"
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    return path


def _run_pattern(
    name: str,
    run: Callable[[Any, Any, Any], dict[str, Any]],
    work_dir: Path,
    primary: str,
    challenger: str,
    fault: str,
    **options: Any,
) -> tuple[dict[str, Any], Path]:
    """Start a topology, run one serving pattern on the labelled replay, stop it, write the report.

    Args:
        name: Report name: the report is written to WORK_DIR/<name>.json.
        run: The pattern, called as ``run(serving, rows, labels)`` while the topology is up.
        work_dir: The topology's working directory (and the report's).
        primary: Alias or version of the primary.
        challenger: Alias or version of the canary/B/shadow.
        fault: Key of :data:`FAULTS` injected into the challenger.
        **options: Passed to the topology (e.g. ``transformer=False``).

    Returns:
        The report and the path it was written to.
    """
    rows, labels = _replay()
    serving = _topology(work_dir, primary, challenger, fault, **options)
    _start(serving)
    try:
        report = run(serving, rows, labels)
    finally:
        serving.stop()
    return report, _write(report, work_dir, name)


@serve.command("canary")
@_variants
@click.option("--steps", default="10,30,60", show_default=True, help="Canary shares (%%), comma-separated.")
@click.option(
    "--requests",
    "per_step",
    type=click.IntRange(20),
    default=150,
    show_default=True,
    help="Replay requests per step.",
)
@click.option("--no-promote", is_flag=True, help="Judge only; leave the registry alone.")
@click.option("--json", "as_json", is_flag=True, help="Print the report JSON.")
def canary_cmd(
    primary: str,
    challenger: str,
    fault: str,
    work_dir: Path,
    steps: str,
    per_step: int,
    no_promote: bool,
    as_json: bool,
) -> None:
    """Canary analysis: step traffic up, judge error rate, p95 and accuracy; promote or roll back.

    Exit 0 promoted, 3 rolled back. Report: WORK_DIR/canary.json and canary.png.
    """
    from workloads.serving.analysis import CanaryPolicy, plot_canary, run_canary

    try:
        shares = tuple(float(s) for s in steps.split(","))
    except ValueError:
        raise click.BadParameter(
            f"{steps!r} is not a comma-separated list of numbers", param_hint="--steps"
        ) from None
    if not shares or any(not 0 < s <= 100 for s in shares):
        raise click.BadParameter("every step must be within (0, 100]", param_hint="--steps")
    report, path = _run_pattern(
        "canary",
        lambda serving, rows, labels: run_canary(
            serving,
            rows,
            labels,
            CanaryPolicy(steps=shares, requests_per_step=per_step),
            tracking_uri=None if no_promote else _tracking_uri(),
            on_step=lambda s: click.echo(
                f"  step {s.canary_percent:g} %: {'pass' if s.passed else 'FAIL'}", err=True
            ),
        ),
        work_dir,
        primary,
        challenger,
        fault,
    )
    plot_canary(report, work_dir / "canary.png")
    click.echo(
        json.dumps(report, indent=2, default=str)
        if as_json
        else f"{report['decision']}: {report['reason']} ({path})"
    )
    if report["decision"] != "promote":
        exit_with(ExitCode.CHECK_FAILED)


@serve.command("ab")
@_variants
@click.option("--requests", type=click.IntRange(20), default=400, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the report JSON.")
def ab_cmd(primary: str, challenger: str, fault: str, work_dir: Path, requests: int, as_json: bool) -> None:
    """A/B: 50/50 split, per-variant accuracy and latency with significance tests (WORK_DIR/ab.json)."""
    from workloads.serving.analysis import run_ab

    run = partial(run_ab, requests=requests)
    report, path = _run_pattern("ab", run, work_dir, primary, challenger, fault, transformer=False)
    click.echo(json.dumps(report, indent=2, default=str) if as_json else f"{report['verdict']} ({path})")


@serve.command("shadow")
@_variants
@click.option("--requests", type=click.IntRange(10), default=200, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the report JSON.")
def shadow_cmd(
    primary: str, challenger: str, fault: str, work_dir: Path, requests: int, as_json: bool
) -> None:
    """Shadow: mirror traffic to the challenger; agreement rate and latency (WORK_DIR/shadow.json)."""
    from workloads.serving.analysis import run_shadow

    run = partial(run_shadow, requests=requests)
    report, path = _run_pattern("shadow", run, work_dir, primary, challenger, fault, transformer=False)
    summary = (
        f"agreement {report['agreement_rate']:.1%} over {report['compared']} requests"
        if report["compared"]
        else "no shadow responses"
    )
    click.echo(json.dumps(report, indent=2, default=str) if as_json else f"{summary} ({path})")


@serve.command("drift")
@click.option(
    "--reference",
    type=click.Path(path_type=Path),
    default=None,
    help="CSV or request log (.jsonl). Default: the training split of MODEL's pipeline run.",
)
@click.option(
    "--current", type=click.Path(path_type=Path), required=True, help="CSV or request log (.jsonl)."
)
@click.option(
    "--model",
    "model_ref",
    default=None,
    help="Model for the default reference [default: <registered model>@champion].",
)
@click.option("--psi-threshold", type=click.FloatRange(0, min_open=True), default=0.2, show_default=True)
@click.option(
    "--alpha", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.01, show_default=True
)
@_work
@click.option("--json", "as_json", is_flag=True, help="Print the report JSON.")
def drift_cmd(
    reference: Path | None,
    current: Path,
    model_ref: str | None,
    psi_threshold: float,
    alpha: float,
    work_dir: Path,
    as_json: bool,
) -> None:
    """Per-feature PSI and KS test; flags drifted features; exports Prometheus gauges.

    Writes WORK_DIR/drift.json, drift.png and drift.prom (gauges in Prometheus text format;
    a running `mlp serve local` publishes them to its Prometheus, whose rules alert on PSI > 0.2).
    Exit 0 no drift, 3 drift found, 2 bad input.
    """
    from workloads import registry
    from workloads.monitoring import drift
    from workloads.pipelines.data import breast_cancer_schema
    from workloads.serving.local.stack import ENDPOINTS_FILE

    try:
        names = breast_cancer_schema().feature_names
        cur = drift.read_input(current, names)
        if reference is None:
            ref, ref_name = drift.default_reference(
                _tracking_uri(), model_ref or f"{registry.DEFAULT_MODEL_NAME}@champion"
            )
        else:
            ref, ref_name = drift.read_input(reference, names), str(reference)
        report = drift.compare(
            ref,
            cur,
            reference_name=ref_name,
            current_name=str(current),
            psi_threshold=psi_threshold,
            alpha=alpha,
        )
    except drift.DriftInputError as error:
        raise BadInput(str(error)) from None
    path = _write(report.to_dict(), work_dir, "drift")
    drift.plot(report, work_dir / "drift.png")
    (work_dir / "drift.prom").write_text(report.prometheus_text())
    endpoints = work_dir / ENDPOINTS_FILE
    if endpoints.exists():  # a detached topology: publish where its Prometheus scrapes
        nginx_dir = Path(json.loads(endpoints.read_text())["work_dir"]) / "nginx"
        (nginx_dir / "drift.prom").write_text(report.prometheus_text())
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        flagged = ", ".join(report.drifted) or "none"
        click.echo(f"{len(report.drifted)} of {len(report.features)} features drifted: {flagged} ({path})")
    if report.drifted:
        exit_with(ExitCode.CHECK_FAILED)


try:  # the cluster subcommands (render, deploy, status, promote, rollback), when present
    from mlp.commands import serve_cluster as _cluster
except ImportError:  # pragma: no cover - before the cluster module exists
    _cluster = None  # type: ignore[assignment]
if _cluster is not None:
    for _command in getattr(_cluster, "COMMANDS", ()):
        serve.add_command(_command)


@click.command("inference")
@click.option("--target", default="local", show_default=True, help="Only `local` is measured here.")
@click.option("--quick", is_flag=True, help="Short runs (1.5 s per point) for tests and the demo.")
@click.option(
    "--rounds",
    type=click.IntRange(1),
    default=3,
    show_default=True,
    help="Interleaved rounds per point (median).",
)
@click.option(
    "--duration", type=click.FloatRange(0.5), default=5.0, show_default=True, help="Seconds per point."
)
@click.option(
    "--rate", type=click.FloatRange(1), default=200.0, show_default=True, help="Open-loop request rate."
)
@click.option(
    "--model", "model_ref", default="champion", show_default=True, help="Alias or version to serve."
)
@bench_out_option
@click.option("--json", "as_json", is_flag=True, help="Print the report JSON.")
def bench_inference(
    target: str,
    quick: bool,
    rounds: int,
    duration: float,
    rate: float,
    model_ref: str,
    out_dir: Path,
    as_json: bool,
) -> None:
    """Inference latency/throughput: KServe V1/V2, nginx, transformer, logging vs a bare FastAPI baseline.

    Closed loop at concurrency 1, 8, 32 and an open-loop fixed-rate run (asyncio + aiohttp
    client). Writes OUT/inference.json and OUT/inference.png with the target ratios and whether
    each was met. Exit 0 when measured (whatever the ratios), 1 when a server failed.
    """
    from workloads import registry
    from workloads.benchmarks import inference
    from workloads.pipelines.data import breast_cancer_schema
    from workloads.serving.local.stack import ServingError, resolve_variants

    if target != "local":
        raise BadInput(f"--target {target}: only the local target is benchmarked by this command")
    work = out_dir / "inference-work"
    try:
        spec = resolve_variants(
            _tracking_uri(), registry.DEFAULT_MODEL_NAME, {"m": model_ref}, work / "models"
        )["m"]
    except ServingError as error:
        raise NotFound(str(error)) from None
    try:
        report = inference.run_benchmark(
            model=registry.DEFAULT_MODEL_NAME,
            model_path=spec.model_dir,
            version=spec.version,
            feature_names=breast_cancer_schema().feature_names,
            work_dir=work,
            duration_s=1.5 if quick else duration,
            open_rate=rate,
            rounds=rounds,
            progress=lambda text: click.echo(f"  {text}", err=True),
        )
    except ServingError as error:
        raise Failed(str(error)) from None
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "inference.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    inference.plot(report, out_dir / "inference.png")
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    for key, value in report["ratios"].items():
        met = report["targets_met"].get(key)
        mark = "" if met is None else ("  [met]" if met else "  [NOT met]")
        click.echo(f"{key:>24}: {value}{mark}")
    click.echo(f"report: {path}")
