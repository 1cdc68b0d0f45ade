"""Progressive delivery on the local topology: canary analysis, A/B verdict, shadow comparison.

In the manner of Flagger / Argo Rollouts: the canary gets a growing share of traffic in steps; at
each step labelled replay traffic goes through the router, then the step is judged on

- **error rate** (5xx share) and **p95 latency** of canary vs primary, from PromQL over the
  ``mlp_inference_*`` metrics Prometheus scraped from each server (counter and histogram
  snapshots at the step's start and end, so a step sees exactly its own requests);
- **accuracy** on the replayed labels, with a one-sided Fisher exact test (scipy) of
  "canary accuracy < primary accuracy".

A failed check rolls back at once (canary share 0, registry untouched); passing every step
promotes (canary 100 %, the ``champion`` alias moves to the canary's version).
"""

from __future__ import annotations

import asyncio
import json
import math
import time
import urllib.parse
import urllib.request
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from workloads.figures import save_figure
from workloads.serving.local.reqlog import read_log
from workloads.serving.local.stack import LocalServing, set_alias


@dataclass(frozen=True)
class CanaryPolicy:
    """Thresholds of the canary analysis.

    Attributes:
        steps: Canary traffic shares, in order.
        requests_per_step: Replay requests sent at each step.
        max_error_rate: Highest canary 5xx share accepted.
        p95_ratio: Canary p95 may be at most this times the primary's p95 ...
        p95_slack_s: ... or the primary's p95 plus this much, whichever is larger (on a
            shared 2-core machine the p95 of two identical servers differs by tens of ms).
        alpha: Significance level of the accuracy test.
        min_requests: Fewer canary requests in a step than this make its checks inconclusive.
    """

    steps: tuple[float, ...] = (10.0, 30.0, 60.0)
    requests_per_step: int = 150
    max_error_rate: float = 0.02
    p95_ratio: float = 1.5
    p95_slack_s: float = 0.05
    alpha: float = 0.05
    min_requests: int = 15


@dataclass
class Reply:
    """One replayed request as the client saw it."""

    request_id: str
    variant: str
    status: int
    label: int
    prediction: int | None
    latency_s: float


async def _replay_async(
    url: str, rows: np.ndarray, labels: np.ndarray, n: int, concurrency: int, offset: int
) -> list[Reply]:
    import httpx

    replies: list[Reply] = []
    counter = iter(range(n))

    async def worker(client: httpx.AsyncClient) -> None:
        for i in counter:
            k = (offset + i) % len(rows)
            rid = uuid.uuid4().hex
            t0 = time.perf_counter()
            try:
                response = await client.post(
                    url, json={"instances": [rows[k].tolist()]}, headers={"x-request-id": rid}
                )
                status = response.status_code
                body = response.json() if status == 200 else {}
                variant = response.headers.get("x-variant", "")
            except httpx.HTTPError:
                status, body, variant = 599, {}, ""
            latency = time.perf_counter() - t0
            prediction = body.get("predictions", [None])[0] if body else None
            replies.append(Reply(rid, variant, status, int(labels[k]), prediction, latency))

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=10.0, limits=limits) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return replies


def replay(
    url: str, rows: np.ndarray, labels: np.ndarray, n: int, concurrency: int = 4, offset: int = 0
) -> list[Reply]:
    """Send ``n`` single-row V1 requests (rows cycled from ``offset``) with fresh request ids."""
    return asyncio.run(_replay_async(url, rows, labels, n, concurrency, offset))


class Prometheus:
    """Tiny client for Prometheus's HTTP query API."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def query(self, promql: str) -> list[dict[str, Any]]:
        """Instant query; the result vector."""
        q = urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(f"{self.url}/api/v1/query?{q}", timeout=5) as response:  # noqa: S310
            data = json.loads(response.read())
        if data.get("status") != "success":
            raise RuntimeError(f"PromQL {promql!r} failed: {data}")
        result: list[dict[str, Any]] = data["data"]["result"]
        return result

    def snapshot(self, variants: Sequence[str]) -> dict[str, Any]:
        """Request counts by variant and code, and latency buckets by variant (cumulative)."""
        sel = "|".join(variants)
        counts: dict[str, dict[str, float]] = defaultdict(dict)
        for row in self.query(f'sum by (variant, code) (mlp_inference_requests_total{{variant=~"{sel}"}})'):
            counts[row["metric"]["variant"]][row["metric"]["code"]] = float(row["value"][1])
        buckets: dict[str, dict[float, float]] = defaultdict(dict)
        for row in self.query(
            f'sum by (variant, le) (mlp_inference_request_duration_seconds_bucket{{variant=~"{sel}"}})'
        ):
            buckets[row["metric"]["variant"]][float(row["metric"]["le"])] = float(row["value"][1])
        return {"counts": dict(counts), "buckets": dict(buckets)}

    def wait_for(
        self, variants: Sequence[str], totals: dict[str, int], timeout: float = 10.0
    ) -> dict[str, Any]:
        """Snapshot once Prometheus has scraped at least ``totals`` requests per variant."""
        deadline = time.monotonic() + timeout
        while True:
            snap = self.snapshot(variants)
            seen = {v: sum(snap["counts"].get(v, {}).values()) for v in variants}
            if all(seen[v] >= totals.get(v, 0) for v in variants) or time.monotonic() > deadline:
                return snap
            time.sleep(0.3)


def server_totals(servers: dict[str, dict[str, Any]], variants: Sequence[str]) -> dict[str, int]:
    """Inference requests each server has counted so far, read from its own ``/metrics``."""
    from prometheus_client.parser import text_string_to_metric_families

    totals: dict[str, int] = {}
    for variant in variants:
        with urllib.request.urlopen(f"{servers[variant]['url']}/metrics", timeout=5) as response:  # noqa: S310
            text = response.read().decode()
        total = 0.0
        for family in text_string_to_metric_families(text):
            if family.name == "mlp_inference_requests":
                total += sum(s.value for s in family.samples if s.name == "mlp_inference_requests_total")
        totals[variant] = int(total)
    return totals


def histogram_quantile(q: float, buckets: dict[float, float]) -> float | None:
    """Prometheus's ``histogram_quantile`` on cumulative buckets ``{le: count}`` (linear within a bucket)."""
    if not buckets:
        return None
    edges = sorted(buckets)
    total = buckets[edges[-1]]
    if total <= 0:
        return None
    rank = q * total
    lower_edge, lower_count = 0.0, 0.0
    for edge in edges:
        count = buckets[edge]
        if count >= rank:
            if math.isinf(edge):
                return lower_edge
            width = count - lower_count
            return lower_edge + (edge - lower_edge) * ((rank - lower_count) / width if width else 1.0)
        lower_edge, lower_count = edge, count
    return lower_edge


def _delta(
    end: dict[str, Any], start: dict[str, Any], variant: str
) -> tuple[dict[str, float], dict[float, float]]:
    c1, c0 = end["counts"].get(variant, {}), start["counts"].get(variant, {})
    counts = {code: c1[code] - c0.get(code, 0.0) for code in c1}
    b1, b0 = end["buckets"].get(variant, {}), start["buckets"].get(variant, {})
    buckets = {le: b1[le] - b0.get(le, 0.0) for le in b1}
    return counts, buckets


def accuracy_test(correct_a: int, n_a: int, correct_b: int, n_b: int) -> float:
    """One-sided Fisher exact p-value of "B's accuracy is lower than A's" (1.0 when a side is empty)."""
    from scipy.stats import fisher_exact

    if n_a == 0 or n_b == 0:
        return 1.0
    table = [[correct_b, n_b - correct_b], [correct_a, n_a - correct_a]]
    return float(fisher_exact(table, alternative="less").pvalue)


def _variant_stats(replies: list[Reply], variant: str) -> dict[str, Any]:
    mine = [r for r in replies if r.variant == variant]
    answered = [r for r in mine if r.status == 200 and r.prediction is not None]
    correct = sum(1 for r in answered if r.prediction == r.label)
    latencies = [r.latency_s for r in mine]
    return {
        "requests": len(mine),
        "answered": len(answered),
        "correct": correct,
        "accuracy": correct / len(answered) if answered else None,
        "client_p50_ms": float(np.percentile(latencies, 50) * 1000) if latencies else None,
        "client_p95_ms": float(np.percentile(latencies, 95) * 1000) if latencies else None,
    }


@dataclass
class StepResult:
    """Everything measured at one canary step and what it decided."""

    canary_percent: float
    requests: int
    primary: dict[str, Any]
    canary: dict[str, Any]
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)
    passed: bool = True
    seconds: float = 0.0


def _judge(step: StepResult, policy: CanaryPolicy) -> None:
    p, c = step.primary, step.canary
    enough = c["requests_prom"] >= policy.min_requests
    checks: dict[str, dict[str, Any]] = {}
    checks["error_rate"] = {
        "canary": c["error_rate"],
        "primary": p["error_rate"],
        "threshold": policy.max_error_rate,
        "passed": (c["error_rate"] or 0.0) <= policy.max_error_rate if enough else None,
    }
    limit = None
    if p["p95_s"] is not None:
        limit = max(p["p95_s"] * policy.p95_ratio, p["p95_s"] + policy.p95_slack_s)
    checks["p95_latency"] = {
        "canary_s": c["p95_s"],
        "primary_s": p["p95_s"],
        "limit_s": limit,
        "passed": (c["p95_s"] is None or limit is None or c["p95_s"] <= limit) if enough else None,
    }
    pvalue = accuracy_test(p["correct"], p["answered"], c["correct"], c["answered"])
    checks["accuracy"] = {
        "canary": c["accuracy"],
        "primary": p["accuracy"],
        "test": "one-sided Fisher exact, H1: canary accuracy < primary accuracy",
        "p_value": pvalue,
        "alpha": policy.alpha,
        "passed": pvalue >= policy.alpha if c["answered"] else None,
    }
    step.checks = checks
    step.passed = all(check["passed"] is not False for check in checks.values())


def _measure(
    prom: Prometheus, replies: list[Reply], start: dict[str, Any], end: dict[str, Any], variant: str
) -> dict[str, Any]:
    stats = _variant_stats(replies, variant)
    counts, buckets = _delta(end, start, variant)
    total = sum(counts.values())
    errors = sum(v for code, v in counts.items() if code.startswith("5"))
    stats.update(
        requests_prom=total,
        error_rate=errors / total if total else None,
        p95_s=histogram_quantile(0.95, buckets),
    )
    return stats


def run_canary(
    serving: LocalServing,
    rows: np.ndarray,
    labels: np.ndarray,
    policy: CanaryPolicy,
    *,
    tracking_uri: str | None = None,
    alias: str = "champion",
    on_step: Callable[[StepResult], None] | None = None,
) -> dict[str, Any]:
    """Step the canary's share up, judge every step, then promote or roll back.

    Args:
        serving: A started topology with ``primary`` and ``canary`` servers and Prometheus.
        rows: Replay features (model column order).
        labels: True labels of ``rows``.
        policy: Steps and thresholds.
        tracking_uri: Registry to update on promotion (None: leave the registry alone).
        alias: Alias that moves to the canary's version on promotion.
        on_step: Called after each judged step.

    Returns:
        The report: decision, reason, every step's measurements and checks.
    """
    endpoints = serving.endpoints
    if endpoints is None or endpoints.prometheus is None or "canary" not in serving.variants:
        raise ValueError("canary analysis needs a started topology with a canary and Prometheus")
    prom = Prometheus(endpoints.prometheus)
    url = endpoints.predict_url(endpoints.router)
    variants = ("primary", "canary")
    steps: list[StepResult] = []
    decision, reason = "promote", "every step passed"
    # The baseline is what the servers have counted (earlier traffic included), once Prometheus
    # has scraped all of it; otherwise a late scrape would put earlier requests into step 1.
    seen = server_totals(endpoints.servers, variants)
    start = prom.wait_for(variants, seen)
    for i, share in enumerate(policy.steps):
        t0 = time.perf_counter()
        serving.set_traffic(canary_percent=share)
        replies = replay(url, rows, labels, policy.requests_per_step, offset=i * policy.requests_per_step)
        seen = server_totals(endpoints.servers, variants)
        end = prom.wait_for(variants, seen)
        step = StepResult(
            canary_percent=share,
            requests=len(replies),
            primary=_measure(prom, replies, start, end, "primary"),
            canary=_measure(prom, replies, start, end, "canary"),
        )
        _judge(step, policy)
        step.seconds = round(time.perf_counter() - t0, 3)
        steps.append(step)
        start = end
        if on_step:
            on_step(step)
        if not step.passed:
            failed = [name for name, check in step.checks.items() if check["passed"] is False]
            decision, reason = "rollback", f"step {i + 1} ({share:g} %) failed: {', '.join(failed)}"
            break
    canary_version = serving.variants["canary"].version
    primary_version = serving.variants["primary"].version
    if decision == "promote":
        serving.set_traffic(canary_percent=100.0)
        if tracking_uri:
            set_alias(tracking_uri, serving.model, alias, canary_version)
    else:
        serving.set_traffic(canary_percent=0.0)
    return {
        "pattern": "canary",
        "decision": decision,
        "reason": reason,
        "model": serving.model,
        "primary_version": primary_version,
        "canary_version": canary_version,
        "registry_alias": {
            alias: canary_version if decision == "promote" and tracking_uri else primary_version
        },
        "registry_updated": bool(decision == "promote" and tracking_uri),
        "policy": asdict(policy),
        "steps": [asdict(s) for s in steps],
        "final_canary_percent": serving.canary_percent,
    }


def run_ab(
    serving: LocalServing, rows: np.ndarray, labels: np.ndarray, requests: int = 400, alpha: float = 0.05
) -> dict[str, Any]:
    """50/50 split of labelled traffic; per-variant accuracy and latency with significance tests.

    Accuracy: two-sided Fisher exact test; latency: two-sided Mann-Whitney U on the client-side
    latencies (scipy). The verdict names a winner only when a test is significant at ``alpha``.
    """
    from scipy.stats import fisher_exact, mannwhitneyu

    endpoints = serving.endpoints
    if endpoints is None or "canary" not in serving.variants:
        raise ValueError("A/B needs a started topology with a 'canary' (variant B)")
    serving.set_traffic(canary_percent=50.0, mirror=False)
    replies = replay(endpoints.predict_url(endpoints.router), rows, labels, requests)
    a, b = _variant_stats(replies, "primary"), _variant_stats(replies, "canary")
    table = [[a["correct"], a["answered"] - a["correct"]], [b["correct"], b["answered"] - b["correct"]]]
    acc_p = float(fisher_exact(table).pvalue) if a["answered"] and b["answered"] else 1.0
    lat_a = [r.latency_s for r in replies if r.variant == "primary"]
    lat_b = [r.latency_s for r in replies if r.variant == "canary"]
    lat_p = float(mannwhitneyu(lat_a, lat_b).pvalue) if lat_a and lat_b else 1.0
    verdict = []
    if acc_p < alpha:
        better = "B" if (b["accuracy"] or 0) > (a["accuracy"] or 0) else "A"
        verdict.append(f"{better} is more accurate (p={acc_p:.3g})")
    else:
        verdict.append(f"no significant accuracy difference (p={acc_p:.3g})")
    if lat_p < alpha:
        faster = "B" if np.median(lat_b) < np.median(lat_a) else "A"
        verdict.append(f"{faster} has lower latency (p={lat_p:.3g})")
    else:
        verdict.append(f"no significant latency difference (p={lat_p:.3g})")
    serving.set_traffic(canary_percent=0.0)
    return {
        "pattern": "ab",
        "split_percent": 50,
        "requests": len(replies),
        "A": {"variant": "primary", "version": serving.variants["primary"].version, **a},
        "B": {"variant": "canary", "version": serving.variants["canary"].version, **b},
        "accuracy_test": {"test": "two-sided Fisher exact", "p_value": acc_p},
        "latency_test": {"test": "two-sided Mann-Whitney U (client latency)", "p_value": lat_p},
        "alpha": alpha,
        "verdict": "; ".join(verdict),
    }


def run_shadow(
    serving: LocalServing, rows: np.ndarray, labels: np.ndarray, requests: int = 200
) -> dict[str, Any]:
    """Mirror live traffic to the shadow; answers come from the primary only.

    The shadow's answers are compared with the primary's through the request logs of both
    servers, joined on the request id the router forwards to both.
    """
    endpoints = serving.endpoints
    if endpoints is None or "shadow" not in serving.variants:
        raise ValueError("shadow needs a started topology with a 'shadow' server")
    serving.set_traffic(canary_percent=0.0, mirror=True)
    replies = replay(endpoints.predict_url(endpoints.router), rows, labels, requests)
    ids = {r.request_id for r in replies}
    deadline = time.monotonic() + 10
    while True:  # the mirror is asynchronous and both logs are flushed by background threads
        shadow_log = {
            x["request_id"]: x for x in read_log(serving.request_log("shadow")) if x["request_id"] in ids
        }
        primary_log = {
            x["request_id"]: x for x in read_log(serving.request_log("primary")) if x["request_id"] in ids
        }
        if min(len(shadow_log), len(primary_log)) >= len(ids) or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    serving.set_traffic(mirror=False)
    joined = [(primary_log[i], shadow_log[i]) for i in ids if i in primary_log and i in shadow_log]
    agree = sum(1 for p, s in joined if p["outputs"] == s["outputs"])
    from_variants: defaultdict[str, int] = defaultdict(int)
    for r in replies:
        from_variants[r.variant or "none"] += 1
    shadow_correct = sum(
        1
        for r in replies
        if r.request_id in shadow_log and (shadow_log[r.request_id]["outputs"] or [None])[0] == r.label
    )
    shadow_lat = [s["latency_ms"] for _, s in joined]
    primary_lat = [p["latency_ms"] for p, _ in joined]
    return {
        "pattern": "shadow",
        "requests": len(replies),
        "responses_by_variant": dict(from_variants),
        "responses_only_from_primary": set(from_variants) == {"primary"},
        "shadow_received": len(shadow_log),
        "compared": len(joined),
        "agreement_rate": agree / len(joined) if joined else None,
        "primary_accuracy": _variant_stats(replies, "primary")["accuracy"],
        "shadow_accuracy": shadow_correct / len(shadow_log) if shadow_log else None,
        "shadow_server_p50_ms": float(np.percentile(shadow_lat, 50)) if shadow_lat else None,
        "shadow_server_p95_ms": float(np.percentile(shadow_lat, 95)) if shadow_lat else None,
        "primary_server_p50_ms": float(np.percentile(primary_lat, 50)) if primary_lat else None,
        "primary_server_p95_ms": float(np.percentile(primary_lat, 95)) if primary_lat else None,
        "primary_version": serving.variants["primary"].version,
        "shadow_version": serving.variants["shadow"].version,
    }


def plot_canary(report: dict[str, Any], path: Path) -> Path:
    """Per step: canary share, error rates, p95 latencies and accuracies of both variants."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = report["steps"]
    x = [s["canary_percent"] for s in steps]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    for variant, style in (("primary", "o-"), ("canary", "s--")):
        axes[0].plot(x, [(s[variant]["error_rate"] or 0) * 100 for s in steps], style, label=variant)
        axes[1].plot(x, [(s[variant]["p95_s"] or 0) * 1000 for s in steps], style, label=variant)
        axes[2].plot(x, [(s[variant]["accuracy"] or 0) * 100 for s in steps], style, label=variant)
    for ax, title in zip(
        axes, ("5xx rate (%)", "p95 latency (ms, Prometheus)", "accuracy on replay (%)"), strict=True
    ):
        ax.set_title(title)
        ax.set_xlabel("canary share (%)")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(
        f"canary v{report['canary_version']} vs v{report['primary_version']}: {report['decision']} ({report['reason']})",
        fontsize=9,
    )
    return save_figure(fig, path)


def labelled_replay(test_size: float = 0.2, seed: int = 42) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Held-out rows of the training data (the pipeline's split) as replay traffic with labels."""
    from workloads.pipelines import data

    prepared = data.prepare(test_size=test_size, seed=seed)
    features, target = data.features_and_target(prepared.test)
    return features.to_numpy(dtype=np.float64), target, list(features.columns)
