"""The whole ML lifecycle on the local target: tune -> compile -> pipeline -> register -> summary.

``run_lifecycle`` runs the acts in order and returns the summary ``mlp demo`` prints and writes.
Acts are named steps with a progress total; later acts (serving the registered model, for
example) join by being appended to the ``acts`` argument (see :data:`DEFAULT_ACTS` and
:class:`Act`): each receives the shared :class:`LifecycleState` and may add a section to the
summary under its name.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_OUT = Path("build") / "demo"
PIPELINE_STEPS = ("preprocess", "train", "evaluate", "register")
LOCAL_STATE = ("mlflow.db", "mlartifacts", "kfp", "checkpoints")
"""What the local target creates under its home (removed by ``reset``)."""

Progress = Callable[[str, int, str], None]
"""``progress(act, advance, note)``: ``advance`` units of the act's total done, with a short note."""


class LifecycleError(RuntimeError):
    """An act failed (target unusable, pipeline run failed); the message says which and why."""


@dataclass
class LifecycleState:
    """What the acts share: inputs, the target, and each act's results."""

    trials: int
    out: Path
    progress: Progress
    target: Any = None
    space: Any = None
    study: Any = None
    package: Path | None = None
    run: Any = None
    timings: dict[str, float] = field(default_factory=dict)
    sections: dict[str, Any] = field(default_factory=dict)
    """Extra summary sections, keyed by act name (acts beyond the default ones add theirs here)."""


@dataclass(frozen=True)
class Act:
    """One step of the lifecycle.

    Attributes:
        name: Shown in progress and used as the timing key.
        total: Progress units of the act, given the trial budget.
        run: Does the work on the shared state; raise :class:`LifecycleError` on failure.
    """

    name: str
    total: Callable[[int], int]
    run: Callable[[LifecycleState], None]


def reset_local_state(home: Path) -> None:
    """Remove the local lifecycle state (only what the local target creates under its home)."""
    for name in LOCAL_STATE:
        path = home / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def _setup(state: LifecycleState, *, reset: bool) -> None:
    import logging

    import mlflow  # noqa: F401 - imported here so its cost shows under setup

    from workloads.target import TargetError, load_target
    from workloads.tuning.space import load_space

    try:
        state.target = load_target()
    except TargetError as error:
        raise LifecycleError(str(error)) from None
    # Progress bars replace MLflow's INFO lines (database creation, registrations).
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    if reset:
        reset_local_state(state.target.home)
    state.target.prepare()
    state.out.mkdir(parents=True, exist_ok=True)
    state.space = load_space().with_budget(state.trials)
    state.progress("setup", 1, str(state.target.home))


def _tune(state: LifecycleState) -> None:
    from workloads.tuning.study import TrialRecord, run_study

    best: list[float] = []
    metric = state.space.objective.metric

    def on_trial(record: TrialRecord) -> None:
        if record.value is not None:
            best.append(record.value)
        state.progress("tune", 1, f"best {metric}={max(best):.4f}" if best else "")

    state.study = run_study(
        state.space,
        tracking_uri=state.target.mlflow_tracking_uri,
        artifact_location=state.target.artifact_location,
        on_trial=on_trial,
    )


def _compile(state: LifecycleState) -> None:
    from workloads.pipelines import pipeline as training

    state.package = training.compile_pipeline(training.DEFAULT_PACKAGE_PATH)
    state.progress("compile", 1, str(state.package))


def _pipeline(state: LifecycleState) -> None:
    from workloads.pipelines import pipeline as training

    def on_step(step: str, event: str) -> None:
        if event == "started":
            state.progress("pipeline", 0, f"{step}...")
        else:
            state.progress("pipeline", 1, f"{step} {event}")

    overrides = {k: v for k, v in state.study.best_params.items() if k in training.PIPELINE_PARAM_NAMES} | {
        "tuning_run_id": state.study.tuning_run_id
    }
    try:
        state.run = training.run_local(state.target, overrides, on_step=on_step)
    except training.PipelineRunError as error:
        raise LifecycleError(str(error)) from None
    (state.out / "pipeline.log").write_text(state.run.log)


def _registered(state: LifecycleState) -> None:
    from workloads import registry

    outputs = state.run.outputs
    model: dict[str, Any] = {"name": registry.DEFAULT_MODEL_NAME, "version": None, "aliases": []}
    metrics: dict[str, float] = {}
    lineage: dict[str, Any] = {}
    if outputs.model_version:
        found = registry.lineage(
            f"{registry.DEFAULT_MODEL_NAME}/{outputs.model_version}", state.target.mlflow_tracking_uri
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
    state.sections["summary"] = {"model": model, "metrics": metrics, "lineage": lineage}
    state.progress("summary", 1, "")


DEFAULT_ACTS: tuple[Act, ...] = (
    Act("tune", lambda trials: trials, _tune),
    Act("compile", lambda _: 1, _compile),
    Act("pipeline", lambda _: len(PIPELINE_STEPS), _pipeline),
    Act("summary", lambda _: 1, _registered),
)
"""The default acts after setup. A serving act goes after ``summary`` (it needs the registered version)."""


def act_totals(trials: int, acts: Sequence[Act] = DEFAULT_ACTS) -> dict[str, int]:
    """Progress total of every act, setup first, for a progress display."""
    return {"setup": 1, **{act.name: act.total(trials) for act in acts}}


def run_lifecycle(
    trials: int,
    *,
    out: Path = DEFAULT_OUT,
    reset: bool = False,
    progress: Progress | None = None,
    acts: Sequence[Act] = DEFAULT_ACTS,
) -> dict[str, Any]:
    """Run setup and ``acts`` on the local target, write ``out/summary.json`` and return the summary.

    Args:
        trials: Optuna trial budget.
        out: Directory for ``summary.json`` and ``pipeline.log``.
        reset: Start from empty local state (MLflow DB, artifacts, KFP cache).
        progress: Called as acts advance (see :data:`Progress`).
        acts: The acts after setup, in order; :data:`DEFAULT_ACTS` plus any added ones.

    Returns:
        The summary: model, registration decision, metrics, tuning, lineage, timings and one
        section per extra act. ``summary["registered"]`` is false when the quality gate refused it.

    Raises:
        LifecycleError: When an act fails.
    """
    started = time.perf_counter()
    state = LifecycleState(trials=trials, out=out, progress=progress or (lambda act, n, note: None))
    t0 = time.perf_counter()
    _setup(state, reset=reset)
    state.timings["setup"] = time.perf_counter() - t0
    for act in acts:
        t0 = time.perf_counter()
        act.run(state)
        state.timings[act.name] = time.perf_counter() - t0
    summary = _summary(state, started)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True, default=str) + "\n")
    return summary


def _summary(state: LifecycleState, started: float) -> dict[str, Any]:
    study, run, space = state.study, state.run, state.space
    registered = state.sections.pop("summary")
    return {
        "model": registered["model"],
        "registered": bool(run.outputs.model_version),
        "promoted": run.outputs.promoted,
        "decision": run.outputs.decision,
        "metrics": registered["metrics"],
        "best_params": study.best_params,
        "tuning": {
            "objective": f"{space.objective.direction} {space.objective.metric}",
            "best_value": study.best_value,
            "best_trial": study.best_trial,
            "trials": len(study.trials),
            "algorithm": space.algorithm,
        },
        "data_hash": study.data_hash,
        "lineage": registered["lineage"],
        "step_seconds": {
            **{k: round(v, 3) for k, v in state.timings.items()},
            **{f"pipeline.{k}": v for k, v in run.step_seconds.items()},
        },
        "cached_steps": run.cached_steps,
        "total_seconds": round(time.perf_counter() - started, 3),
        "tracking_uri": state.target.mlflow_tracking_uri,
        "pipeline_package": str(state.package),
        **state.sections,
    }
