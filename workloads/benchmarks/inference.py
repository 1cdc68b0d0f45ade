"""Inference benchmark of the local serving path, with a bare FastAPI baseline in the same run.

Servers (each one process on 127.0.0.1, same model, same validation):

- ``bare``: FastAPI + uvicorn, no KServe (the baseline);
- ``kserve``: the KServe model server, no request log (V1 and V2 measured on it);
- ``kserve+log``: the KServe model server writing the JSON request log;
- ``nginx``: the generated router, 50/50 ``split_clients`` over two upstream entries that both
  point at ``kserve`` (so the difference to ``kserve`` is the router alone);
- ``transformer``: the KServe transformer calling ``kserve`` through the router.

Load generator: an asyncio + aiohttp client in this process. Closed loop: ``c`` workers, each
sends its next request when the previous one is answered. Open loop: sends are scheduled on a
fixed timeline (``i / rate``) whatever the responses do, and latency is measured from the
*intended* send time, so queueing delay is not hidden (no coordinated omission). Chosen over wrk
because wrk (Debian) has no open-loop mode and wrk2 is not packaged; one client for both modes
keeps the numbers comparable. The client shares the machine's cores with the servers: absolute
figures are lower than on a separate load machine, ratios between configurations are what count.
"""

from __future__ import annotations

import asyncio
import json
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from workloads.figures import save_figure
from workloads.serving.local import config_render
from workloads.serving.local.server import ServerConfig
from workloads.serving.local.stack import ProcessGroup, free_port, require_binary, worker_user

if TYPE_CHECKING:
    import aiohttp

TARGETS = {"kserve_vs_bare_at_32": 0.8, "nginx_cost": 0.10, "logging_cost": 0.10, "p99_ms_at_8": 50.0}
_JSON_HEADERS = {"content-type": "application/json"}


@dataclass(frozen=True)
class Case:
    """One measured configuration: where requests go and what they look like."""

    name: str
    url: str
    body: bytes


def _bodies(names: list[str], model: str) -> dict[str, bytes]:
    row = [
        14.1,
        19.3,
        91.9,
        654.9,
        0.096,
        0.104,
        0.089,
        0.049,
        0.181,
        0.063,
        0.405,
        1.217,
        2.866,
        40.3,
        0.007,
        0.025,
        0.032,
        0.012,
        0.021,
        0.004,
        16.3,
        25.7,
        107.3,
        880.6,
        0.132,
        0.254,
        0.272,
        0.115,
        0.290,
        0.084,
    ]
    v1 = json.dumps({"instances": [row]}).encode()
    v2 = json.dumps({"inputs": [{"name": "x", "shape": [1, 30], "datatype": "FP64", "data": row}]}).encode()
    named = json.dumps({"instances": [dict(zip(names, row, strict=True))]}).encode()
    return {"v1": v1, "v2": v2, "named": named}


async def _post(session: aiohttp.ClientSession, url: str, body: bytes) -> bool:
    """POST one JSON request and read the whole answer; False on a non-200 status or a client error."""
    import aiohttp

    try:
        async with session.post(url, data=body, headers=_JSON_HEADERS) as response:
            await response.read()
            return response.status == 200
    except aiohttp.ClientError:
        return False


async def _closed(url: str, body: bytes, concurrency: int, duration: float) -> dict[str, Any]:
    import aiohttp

    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + duration

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal errors
        while time.perf_counter() < stop_at:
            t0 = time.perf_counter()
            if not await _post(session, url, body):
                errors += 1
            latencies.append(time.perf_counter() - t0)

    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return _stats(latencies, errors, elapsed)


async def _open(
    url: str, body: bytes, rate: float, duration: float, max_connections: int = 256
) -> dict[str, Any]:
    import aiohttp

    latencies: list[float] = []
    errors = 0

    async def one(session: aiohttp.ClientSession, intended: float) -> None:
        nonlocal errors
        if not await _post(session, url, body):
            errors += 1
        latencies.append(time.perf_counter() - intended)  # from the intended send time

    connector = aiohttp.TCPConnector(limit=max_connections)
    async with aiohttp.ClientSession(connector=connector) as session:
        n = int(rate * duration)
        start = time.perf_counter() + 0.05
        tasks = []
        for i in range(n):
            intended = start + i / rate
            delay = intended - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(session, intended)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    result = _stats(latencies, errors, elapsed)
    result["offered_rate"] = rate
    return result


def _stats(latencies: list[float], errors: int, elapsed: float) -> dict[str, Any]:
    arr = np.asarray(latencies) * 1000 if latencies else np.asarray([np.nan])
    return {
        "requests": len(latencies),
        "errors": errors,
        "seconds": round(elapsed, 3),
        "throughput_rps": round(len(latencies) / elapsed, 1) if elapsed > 0 else 0.0,
        "p50_ms": round(float(np.percentile(arr, 50)), 3),
        "p95_ms": round(float(np.percentile(arr, 95)), 3),
        "p99_ms": round(float(np.percentile(arr, 99)), 3),
    }


def _median_point(points: list[dict[str, Any]]) -> dict[str, Any]:
    """Median of each figure over the rounds; requests and errors summed."""
    merged: dict[str, Any] = {
        k: round(float(np.median([p[k] for p in points])), 3)
        for k in ("throughput_rps", "p50_ms", "p95_ms", "p99_ms")
    }
    merged["requests"] = sum(p["requests"] for p in points)
    merged["errors"] = sum(p["errors"] for p in points)
    merged["seconds"] = round(sum(p["seconds"] for p in points), 3)
    merged["rounds"] = len(points)
    merged["throughput_rps_per_round"] = [p["throughput_rps"] for p in points]
    return merged


def _start_servers(
    work_dir: Path,
    model: str,
    model_path: str,
    version: str,
    names: list[str],
    on_ready: Callable[[str], None],
) -> tuple[ProcessGroup, dict[str, str]]:
    nginx = require_binary("nginx")
    group = ProcessGroup(work_dir)
    ports = {k: free_port() for k in ("bare", "kserve", "kserve_log", "router", "transformer")}
    common: dict[str, Any] = {"name": model, "version": version, "model_dir": model_path}
    group.spawn_server(ServerConfig(role="bare", port=ports["bare"], variant="bare", **common))
    group.spawn_server(ServerConfig(role="predictor", port=ports["kserve"], variant="kserve", **common))
    group.spawn_server(
        ServerConfig(
            role="predictor",
            port=ports["kserve_log"],
            variant="kserve_log",
            log_path=str(work_dir / "requests.jsonl"),
            **common,
        )
    )
    nginx_dir = work_dir / "nginx"
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (nginx_dir / "tmp" / sub).mkdir(parents=True, exist_ok=True)
    (nginx_dir / "logs").mkdir(exist_ok=True)
    conf = nginx_dir / "nginx.conf"
    conf.write_text(
        config_render.nginx_conf(
            directory=nginx_dir,
            listen_port=ports["router"],
            upstreams={"primary": ports["kserve"], "canary": ports["kserve"]},
            canary_percent=50,
            run_as=worker_user(),
        )
    )
    router = f"http://127.0.0.1:{ports['router']}"
    group.spawn("router", [nginx, "-c", str(conf), "-p", str(nginx_dir)], router, f"{router}/router-health")
    group.spawn_server(
        ServerConfig(
            role="transformer",
            name=model,
            port=ports["transformer"],
            variant="transformer",
            predictor_host=f"127.0.0.1:{ports['router']}",
            feature_names=names,
        )
    )
    try:
        group.wait_ready(180, on_ready)
    except BaseException:
        group.stop()
        raise
    return group, {k: f"http://127.0.0.1:{p}" for k, p in ports.items()}


def run_benchmark(
    *,
    model: str,
    model_path: str,
    version: str,
    feature_names: list[str],
    work_dir: Path,
    concurrencies: tuple[int, ...] = (1, 8, 32),
    duration_s: float = 5.0,
    open_rate: float = 200.0,
    rounds: int = 3,
    progress: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Start the servers, run every case at every concurrency plus the open-loop run, stop them.

    Returns:
        The report: per-case results, the target ratios and whether each was met.
    """
    work_dir = work_dir.resolve()  # nginx resolves -c against its -p prefix
    work_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    group, urls = _start_servers(
        work_dir, model, model_path, version, feature_names, lambda n: progress(f"ready: {n}")
    )
    startup_s = time.perf_counter() - started
    bodies = _bodies(feature_names, model)
    v1 = f"/v1/models/{model}:predict"
    cases = [
        Case("bare_v1", urls["bare"] + v1, bodies["v1"]),
        Case("kserve_v1", urls["kserve"] + v1, bodies["v1"]),
        Case("kserve_v2", urls["kserve"] + f"/v2/models/{model}/infer", bodies["v2"]),
        Case("kserve_v1_logging", urls["kserve_log"] + v1, bodies["v1"]),
        Case("nginx_split_v1", urls["router"] + v1, bodies["v1"]),
        Case("transformer_v1", urls["transformer"] + v1, bodies["named"]),
    ]
    results: dict[str, dict[str, Any]] = {}
    segments: dict[tuple[str, int], list[dict[str, Any]]] = {
        (case.name, c): [] for case in cases for c in concurrencies
    }
    try:
        for case in cases:
            asyncio.run(_closed(case.url, case.body, 4, min(1.0, duration_s / 2)))  # warm-up, not recorded
        # Rounds interleave the cases, so a burst of background load hits all of them alike; each
        # point is the median over the rounds.
        for r in range(rounds):
            for c in concurrencies:
                for case in cases:
                    progress(f"round {r + 1}/{rounds} c={c} {case.name}")
                    segments[(case.name, c)].append(
                        asyncio.run(_closed(case.url, case.body, c, duration_s / rounds))
                    )
        for case in cases:
            results[case.name] = {f"c{c}": _median_point(segments[(case.name, c)]) for c in concurrencies}
        open_loop = {}
        for name in ("bare_v1", "kserve_v1"):
            case = next(c for c in cases if c.name == name)
            progress(f"{name} open loop {open_rate:g}/s")
            open_loop[name] = asyncio.run(_open(case.url, case.body, open_rate, duration_s))
    finally:
        group.stop()
    top = f"c{max(concurrencies)}"
    mid = "c8" if "c8" in results["kserve_v1"] else top

    def thr(name: str) -> float:
        return float(results[name][top]["throughput_rps"])

    ratios = {
        "kserve_vs_bare_at_32": round(thr("kserve_v1") / thr("bare_v1"), 3),
        "nginx_cost": round(1 - thr("nginx_split_v1") / thr("kserve_v1"), 3),
        "logging_cost": round(1 - thr("kserve_v1_logging") / thr("kserve_v1"), 3),
        "p99_ms_at_8": results["kserve_v1"][mid]["p99_ms"],
        "v2_vs_v1": round(thr("kserve_v2") / thr("kserve_v1"), 3),
        "transformer_vs_nginx": round(thr("transformer_v1") / thr("nginx_split_v1"), 3),
    }
    met = {
        "kserve_vs_bare_at_32": ratios["kserve_vs_bare_at_32"] >= TARGETS["kserve_vs_bare_at_32"],
        "nginx_cost": ratios["nginx_cost"] <= TARGETS["nginx_cost"],
        "logging_cost": ratios["logging_cost"] <= TARGETS["logging_cost"],
        "p99_ms_at_8": ratios["p99_ms_at_8"] < TARGETS["p99_ms_at_8"],
    }
    import os

    return {
        "benchmark": "inference",
        "target": "local",
        "load_generator": "asyncio + aiohttp, closed loop and open loop (latency from intended send time)",
        "duration_s": duration_s,
        "rounds": rounds,
        "aggregation": "median over interleaved rounds of duration_s / rounds each",
        "concurrencies": list(concurrencies),
        "startup_s": round(startup_s, 2),
        "results": results,
        "open_loop": open_loop,
        "ratios": ratios,
        "targets": TARGETS,
        "targets_met": met,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_avg_at_end": os.getloadavg(),
        },
        "model": {"name": model, "version": version},
    }


def plot(report: dict[str, Any], path: Path) -> Path:
    """Throughput per case and concurrency, and p99 latency, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases = list(report["results"])
    conc = report["concurrencies"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4))
    width = 0.8 / len(conc)
    for k, c in enumerate(conc):
        xs = [i + k * width for i in range(len(cases))]
        ax1.bar(xs, [report["results"][n][f"c{c}"]["throughput_rps"] for n in cases], width, label=f"c={c}")
        ax2.bar(xs, [report["results"][n][f"c{c}"]["p99_ms"] for n in cases], width, label=f"c={c}")
    for ax, title in ((ax1, "throughput (req/s)"), (ax2, "p99 latency (ms)")):
        ax.set_xticks([i + width for i in range(len(cases))], cases, rotation=25, fontsize=8)
        ax.set_title(title)
        ax.legend()
        ax.grid(axis="y", alpha=0.3)
    ax2.axhline(50, color="k", linestyle="--", linewidth=1)
    r = report["ratios"]
    fig.suptitle(
        f"KServe/bare at 32: {r['kserve_vs_bare_at_32']}x, nginx cost {r['nginx_cost']:.0%},"
        f" logging cost {r['logging_cost']:.0%}, p99 at 8: {r['p99_ms_at_8']} ms",
        fontsize=9,
    )
    return save_figure(fig, path)
