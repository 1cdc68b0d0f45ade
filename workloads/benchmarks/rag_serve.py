"""Warm RAG service latency against cold ``mlp rag ask`` processes (``mlp rag serve-bench``).

The service runs as users run it: ``mlp rag serve`` in its own process on a free loopback port,
this process only its HTTP client (one keep-alive connection, as a client application holds).
Every question of the evaluation set is asked ``repeats`` times with extractive answers; then
``cold`` fresh ``mlp rag ask --no-service`` processes are timed with no service running.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workloads.figures import save_figure
from workloads.serving.local.stack import free_port

TARGET_WARM_P95_MS = 50
TARGET_COLD_ASK_S = 3


class ServeBenchError(RuntimeError):
    """The service did not start, answered an error, or a cold ask failed."""


@dataclass(frozen=True)
class ServeBenchRun:
    """What one run measured.

    Attributes:
        ready_s: Seconds from starting ``mlp rag serve`` to its first healthy answer.
        warm_ms: Client-side latency of every warm ``/ask`` (ms).
        server_ms: The service's own timings of the same requests (ms).
        cold_s: Wall time of each cold ``mlp rag ask`` process (s).
    """

    ready_s: float
    warm_ms: list[float]
    server_ms: list[float]
    cold_s: list[float]


def _ask(client: Any, url: str, question: str) -> dict[str, Any]:
    response = client.post(url, json={"question": question, "extractive": True})
    if response.status_code != 200:
        raise ServeBenchError(f"{url}: HTTP {response.status_code} {response.text[:300]}")
    result: dict[str, Any] = response.json()
    return result


def _wait_ready(service: subprocess.Popen[str], client: Any, base: str) -> None:
    import httpx

    while True:
        if service.poll() is not None:
            stderr = service.stderr.read() if service.stderr else ""
            raise ServeBenchError(f"mlp rag serve exited: {stderr[-400:]}")
        try:
            if client.get(f"{base}/healthz").status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)


def _warm(questions: list[str], repeats: int) -> tuple[float, list[float], list[float]]:
    import httpx

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    began = time.perf_counter()
    service = subprocess.Popen(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "mlp", "rag", "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    client = httpx.Client(timeout=60)
    warm_ms: list[float] = []
    server_ms: list[float] = []
    try:
        _wait_ready(service, client, base)
        ready_s = time.perf_counter() - began
        for _ in range(repeats):
            for question in questions:
                began = time.perf_counter()
                result = _ask(client, f"{base}/ask", question)
                warm_ms.append((time.perf_counter() - began) * 1000)
                server_ms.append(sum(result["timings_ms"].values()))
    finally:
        client.close()
        service.terminate()
        try:
            service.wait(timeout=20)
        except subprocess.TimeoutExpired:
            service.kill()
    return ready_s, warm_ms, server_ms


def _cold(questions: list[str]) -> list[float]:
    cold_s: list[float] = []
    for question in questions:
        began = time.perf_counter()
        done = subprocess.run(  # noqa: S603 - our own CLI
            [sys.executable, "-m", "mlp", "rag", "ask", question, "--extractive", "--no-service"],
            capture_output=True,
            text=True,
            check=False,
        )
        cold_s.append(time.perf_counter() - began)
        if done.returncode != 0:
            raise ServeBenchError(f"cold ask failed: {done.stderr.strip()[-300:]}")
    return cold_s


def measure(questions: list[str], repeats: int, cold: int) -> ServeBenchRun:
    """Time the warm service over ``questions`` ``repeats`` times, then ``cold`` cold asks.

    Args:
        questions: The questions asked (the evaluation set).
        repeats: Rounds over the questions through the warm service.
        cold: How many of the questions are also asked by a fresh process each.

    Returns:
        The raw timings.

    Raises:
        ServeBenchError: The service exited or answered an error, or a cold ask failed.
    """
    ready_s, warm_ms, server_ms = _warm(questions, repeats)
    return ServeBenchRun(ready_s, warm_ms, server_ms, _cold(questions[:cold]))


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


def report(run: ServeBenchRun, questions: int, repeats: int) -> dict[str, Any]:
    """The JSON report of a run: percentiles, the cold medians and the targets they are read against."""
    return {
        "benchmark": "rag-serve",
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "questions": questions,
        "repeats": repeats,
        "service_ready_s": round(run.ready_s, 2),
        "warm_http_ms": {
            "p50": _percentile(run.warm_ms, 0.5),
            "p95": _percentile(run.warm_ms, 0.95),
            "max": round(max(run.warm_ms), 2),
        },
        "warm_server_side_ms": {
            "p50": _percentile(run.server_ms, 0.5),
            "p95": _percentile(run.server_ms, 0.95),
        },
        "cold_ask_wall_s": {
            "runs": [round(s, 2) for s in run.cold_s],
            "median": round(statistics.median(run.cold_s), 2) if run.cold_s else None,
        },
        "target": {"warm_p95_ms": TARGET_WARM_P95_MS, "cold_ask_s": TARGET_COLD_ASK_S},
    }


def plot(run: ServeBenchRun, path: Path) -> Path:
    """Warm latency histogram and cold ask bars, each with its target line, as a PNG at ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    axes[0].hist(run.warm_ms, bins=30)
    axes[0].axvline(TARGET_WARM_P95_MS, color="red", linestyle="--", label="target p95 50 ms")
    axes[0].set_xlabel("warm /ask latency (ms)")
    axes[0].legend()
    axes[1].bar(range(len(run.cold_s)), run.cold_s)
    axes[1].axhline(TARGET_COLD_ASK_S, color="red", linestyle="--", label="target 3 s")
    axes[1].set_ylabel("cold `mlp rag ask` wall (s)")
    axes[1].legend()
    return save_figure(fig, path, dpi=110)
