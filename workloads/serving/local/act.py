"""The demo's serving act: serve champion + challenger, canary, shadow, drift, short benchmark.

Appended to the lifecycle's acts (``acts=(*DEFAULT_ACTS, SERVING_ACT)``) after registration. Each
part writes its own report under ``build/serve/`` (the short benchmark in ``build/serve/bench/``) and a short
section under ``serving`` in ``summary.json``.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from workloads.lifecycle import Act, LifecycleError, LifecycleState

SERVE_DIR = Path("build") / "serve"
BENCH_DIR = SERVE_DIR / "bench"
"""The demo's short benchmark (``mlp bench inference`` writes the full one to build/bench/)."""
SHIFTED_FEATURES = ("mean texture", "worst smoothness")
"""Features the demo's drifted traffic slice scales by 1.6 (the drift report must flag exactly these)."""
PARTS = 5


def _drift_slice(serving: Any, names: list[str], tracking_uri: str, model_ref: str) -> dict[str, Any]:
    import httpx

    from workloads.monitoring import drift
    from workloads.pipelines import data
    from workloads.serving.local.reqlog import read_log

    test, _ = data.features_and_target(data.prepare().test)
    traffic = drift.shifted(test, list(SHIFTED_FEATURES), scale=1.6)
    ids = set()
    endpoints = serving.endpoints
    with httpx.Client(timeout=10) as client:
        for row in traffic.to_numpy().tolist():
            rid = uuid.uuid4().hex
            ids.add(rid)
            client.post(
                endpoints.predict_url(endpoints.router),
                json={"instances": [row]},
                headers={"x-request-id": rid},
            )
    rows: list[list[float]] = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        rows = [
            line["inputs"][0]
            for variant in ("primary", "canary")
            for line in read_log(serving.request_log(variant))
            if line["request_id"] in ids and line["status"] == 200
        ]
        if len(rows) >= len(ids):
            break
        time.sleep(0.3)
    current = np.asarray(rows, dtype=float)
    import pandas as pd

    reference, ref_name = drift.default_reference(tracking_uri, model_ref)
    report = drift.compare(
        reference,
        pd.DataFrame(current, columns=names),
        reference_name=ref_name,
        current_name="logged requests (shifted slice)",
    )
    serving.write_drift_metrics(report.prometheus_text())
    out = serving.work_dir
    (out / "drift.json").write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    drift.plot(report, out / "drift.png")
    return {
        "shifted_features": sorted(SHIFTED_FEATURES),
        "flagged": sorted(report.drifted),
        "flags_exactly_the_shifted": sorted(report.drifted) == sorted(SHIFTED_FEATURES),
        "logged_rows": len(rows),
        "max_psi_unshifted": max((f.psi for f in report.features if not f.drifted), default=0.0),
        "report": str(out / "drift.json"),
    }


def run_serving_act(state: LifecycleState, serve_dir: Path = SERVE_DIR, bench_dir: Path = BENCH_DIR) -> None:
    """Serve, canary, shadow, drift, benchmark; adds ``state.sections["serving"]``.

    Raises:
        LifecycleError: When a server fails to start (nginx/prometheus missing, port clash...).
    """
    from workloads import registry
    from workloads.benchmarks import inference
    from workloads.serving import analysis
    from workloads.serving.local.stack import ServingError, from_registry

    if state.run is None or not state.run.outputs.model_version:
        state.sections["serving"] = {"skipped": "no registered model version to serve"}
        state.progress("serving", PARTS, "skipped")
        return
    tracking_uri = state.target.mlflow_tracking_uri
    model = registry.DEFAULT_MODEL_NAME
    section: dict[str, Any] = {}
    timings: dict[str, float] = {}
    rows, labels, names = analysis.labelled_replay()
    t0 = time.perf_counter()
    try:
        serving = from_registry(
            serve_dir.resolve(),
            tracking_uri=tracking_uri,
            model=model,
            aliases={
                "primary": registry.CHAMPION,
                "canary": registry.CHALLENGER,
                "shadow": registry.CHALLENGER,
            },
        )
        champion_version = serving.variants["primary"].version
        serving.start(timeout=240, on_ready=lambda name: state.progress("serving", 0, f"ready: {name}"))
    except ServingError as error:
        raise LifecycleError(f"serving act: {error}") from None
    timings["start"] = time.perf_counter() - t0
    state.progress("serving", 1, "servers up")
    try:
        t0 = time.perf_counter()
        canary = analysis.run_canary(
            serving,
            rows,
            labels,
            analysis.CanaryPolicy(steps=(20.0, 50.0), requests_per_step=80),
            tracking_uri=tracking_uri,
        )
        (serve_dir / "canary.json").write_text(json.dumps(canary, indent=2, default=str) + "\n")
        analysis.plot_canary(canary, serve_dir / "canary.png")
        section["canary"] = {
            "primary_version": canary["primary_version"],
            "canary_version": canary["canary_version"],
            "same_version": canary["primary_version"] == canary["canary_version"],
            "decision": canary["decision"],
            "reason": canary["reason"],
            "steps": [
                {
                    "percent": s["canary_percent"],
                    "canary_error_rate": s["canary"]["error_rate"],
                    "canary_p95_ms": None
                    if s["canary"]["p95_s"] is None
                    else round(s["canary"]["p95_s"] * 1000, 2),
                    "primary_p95_ms": None
                    if s["primary"]["p95_s"] is None
                    else round(s["primary"]["p95_s"] * 1000, 2),
                    "accuracy_p_value": s["checks"]["accuracy"]["p_value"],
                }
                for s in canary["steps"]
            ],
            "report": str(serve_dir / "canary.json"),
        }
        timings["canary"] = time.perf_counter() - t0
        state.progress("serving", 1, f"canary: {canary['decision']}")
        serving.set_traffic(canary_percent=0.0)
        t0 = time.perf_counter()
        shadow = analysis.run_shadow(serving, rows, labels, requests=80)
        (serve_dir / "shadow.json").write_text(json.dumps(shadow, indent=2) + "\n")
        section["shadow"] = {
            k: shadow[k]
            for k in (
                "requests",
                "responses_only_from_primary",
                "agreement_rate",
                "shadow_server_p95_ms",
                "primary_server_p95_ms",
            )
        }
        timings["shadow"] = time.perf_counter() - t0
        state.progress("serving", 1, f"shadow agreement {shadow['agreement_rate']:.0%}")
        t0 = time.perf_counter()
        section["drift"] = _drift_slice(serving, names, tracking_uri, f"{model}/{champion_version}")
        timings["drift"] = time.perf_counter() - t0
        state.progress("serving", 1, f"drift: {', '.join(section['drift']['flagged']) or 'none'}")
    finally:
        serving.stop()
    t0 = time.perf_counter()
    spec = serving.variants["primary"]
    bench = inference.run_benchmark(
        model=model,
        model_path=spec.model_dir,
        version=spec.version,
        feature_names=names,
        work_dir=bench_dir / "inference-work",
        duration_s=1.0,
        open_rate=100.0,
    )
    bench_dir.mkdir(parents=True, exist_ok=True)
    (bench_dir / "inference.json").write_text(json.dumps(bench, indent=2) + "\n")
    inference.plot(bench, bench_dir / "inference.png")
    section["benchmark"] = {
        "ratios": bench["ratios"],
        "targets_met": bench["targets_met"],
        "report": str(bench_dir / "inference.json"),
    }
    timings["benchmark"] = time.perf_counter() - t0
    state.progress("serving", 1, "benchmark done")
    section["seconds"] = {k: round(v, 2) for k, v in timings.items()}
    state.sections["serving"] = section


SERVING_ACT = Act("serving", lambda _: PARTS, run_serving_act)
"""The act to append after the default acts."""
