"""Crash-consistency check of the embedded engines (after the shape of qdrant/crasher).

A *writer* process upserts batches of points whose vectors are a pure function of their id, and
after each upsert returns appends the batch number to an acknowledgement log (``fsync``-ed). Some
batches also re-write points acknowledged earlier, so an engine that duplicates on overwrite
gets caught. The *parent* kills the writer with ``SIGKILL`` at seeded random points (mid-ingestion,
or during start-up and WAL recovery), restarts it (it resumes after the last acknowledged batch),
and finally a *checker* reopens the store and verifies that:

- every acknowledged point is present (durability of acknowledged writes);
- no id appears twice and the exact count equals the number of distinct ids (no duplicates);
- no point exists that was never attempted (no phantoms);
- every vector equals the one its id determines, and payloads are intact (no corruption).

Run it with ``mlp rag crash-test`` or through :func:`run_crash_test`; the writer is this module
run as ``python -m workloads.rag.crashcheck writer ...``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

COLLECTION = "crash"
ENGINES = ("qdrant", "milvus")


def point_id(n: int) -> str:
    """UUID string of point number ``n`` (Qdrant needs UUIDs or integers)."""
    return str(uuid.UUID(int=n + 1))


def point_number(pid: str) -> int:
    """Inverse of :func:`point_id`."""
    return uuid.UUID(pid).int - 1


def vector_for(n: int, dim: int) -> np.ndarray:
    """The unit vector point ``n`` must hold."""
    v = np.random.default_rng(n).standard_normal(dim).astype(np.float32)
    return v / np.float32(np.linalg.norm(v))


def batch_numbers(batch: int, size: int) -> range:
    """Point numbers written by batch ``batch``."""
    return range(batch * size, (batch + 1) * size)


def rewrites(batch: int, size: int) -> list[int]:
    """Earlier points re-written by batch ``batch`` (deterministic, so the checker knows them)."""
    if batch == 0:
        return []
    rng = random.Random(batch)
    return sorted({rng.randrange(0, batch * size) for _ in range(max(1, size // 10))})


def open_engine(engine: str, path: Path) -> Any:
    """Open the embedded store of ``engine`` at ``path``."""
    if engine == "qdrant":
        from workloads.rag.stores.qdrant_edge import QdrantEdgeStore

        return QdrantEdgeStore(path / "qdrant")
    if engine == "milvus":
        from workloads.rag.stores.milvus import MilvusStore

        return MilvusStore(path / "milvus.db")
    raise ValueError(f"unknown engine {engine!r}")


def _points(numbers: list[int], batch: int, dim: int) -> list[Any]:
    from workloads.rag.stores.base import Point

    return [Point(point_id(n), vector_for(n, dim), {"n": n, "batch": batch}) for n in numbers]


def read_acks(ack_log: Path) -> list[int]:
    """Acknowledged batch numbers; a torn last line (killed mid-write) is ignored."""
    if not ack_log.exists():
        return []
    acked = []
    for line in ack_log.read_text().splitlines():
        if line.strip().isdigit():
            acked.append(int(line))
    return acked


def writer(engine: str, path: Path, ack_log: Path, batches: int, size: int, dim: int) -> None:
    """Upsert batches after the last acknowledged one, acknowledging each after the engine does."""
    store = open_engine(engine, path)
    acked = read_acks(ack_log)
    start = max(acked) + 1 if acked else 0
    with ack_log.open("a") as log:
        for batch in range(start, batches):
            numbers = [*batch_numbers(batch, size), *rewrites(batch, size)]
            store.upsert(COLLECTION, _points(numbers, batch, dim))
            log.write(f"{batch}\n")
            log.flush()
            os.fsync(log.fileno())
    store.close()


@dataclass
class CheckResult:
    """Verdict of one check of the store against the acknowledgement log."""

    engine: str
    acked_batches: int
    acked_points: int
    present: int
    count: int
    missing: list[int] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    phantoms: list[int] = field(default_factory=list)
    corrupt: list[int] = field(default_factory=list)
    expected_total: int | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Whether the store passed every check."""
        complete = self.expected_total is None or self.present == self.expected_total
        return (
            not (self.missing or self.duplicates or self.phantoms or self.corrupt)
            and self.count == self.present
            and complete
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form, lists truncated."""
        data = asdict(self)
        for key in ("missing", "duplicates", "phantoms", "corrupt"):
            data[key] = data[key][:20]
        data["ok"] = self.ok
        return data


def check(
    engine: str, path: Path, ack_log: Path, size: int, dim: int, *, expected_total: int | None = None
) -> CheckResult:
    """Reopen the store (recovering its WAL) and verify it against the acknowledgement log.

    Args:
        engine: ``qdrant`` or ``milvus``.
        path: The crash test's working directory.
        ack_log: The writer's acknowledgement log.
        size: Points per batch.
        dim: Vector dimension.
        expected_total: When set, the exact number of distinct points required (after completion).
    """
    started = time.perf_counter()
    acked = sorted(set(read_acks(ack_log)))
    acked_points = {n for b in acked for n in batch_numbers(b, size)}
    attempted_batch = (max(acked) + 1) if acked else 0
    allowed = acked_points | set(batch_numbers(attempted_batch, size))
    store = open_engine(engine, path)
    try:
        ids: list[str] = []
        corrupt: list[int] = []
        for record in store.scroll(COLLECTION, with_vectors=True, batch_size=1024):
            ids.append(record.id)
            n = point_number(record.id)
            vector = np.asarray(record.vector, dtype=np.float32)
            if (
                vector.shape != (dim,)
                or not np.allclose(vector, vector_for(n, dim), atol=1e-6)
                or record.payload.get("n") != n
            ):
                corrupt.append(n)
        count = store.count(COLLECTION)
    finally:
        store.close()
    unique = set(ids)
    duplicates = sorted(i for i, c in Counter(ids).items() if c > 1)
    present = {point_number(i) for i in unique}
    return CheckResult(
        engine=engine,
        acked_batches=len(acked),
        acked_points=len(acked_points),
        present=len(unique),
        count=count,
        missing=sorted(acked_points - present),
        duplicates=duplicates,
        phantoms=sorted(present - allowed),
        corrupt=sorted(corrupt),
        expected_total=expected_total,
        seconds=round(time.perf_counter() - started, 3),
    )


@dataclass
class CrashTestReport:
    """Outcome of a crash test: kills delivered, and the checks after the kills and after completion."""

    engine: str
    kills: int
    runs: int
    after_kills: CheckResult
    after_completion: CheckResult | None
    seconds: float
    acked_at_kill: list[int] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether every check passed."""
        return self.after_kills.ok and (self.after_completion is None or self.after_completion.ok)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            "engine": self.engine,
            "kills": self.kills,
            "runs": self.runs,
            "acked_at_kill": self.acked_at_kill,
            "ok": self.ok,
            "after_kills": self.after_kills.to_dict(),
            "after_completion": self.after_completion.to_dict() if self.after_completion else None,
            "seconds": round(self.seconds, 2),
        }


def run_crash_test(
    engine: str,
    workdir: Path,
    *,
    kills: int = 4,
    seed: int = 0,
    batches: int = 400,
    size: int = 50,
    dim: int = 32,
    max_batches_between_kills: int = 60,
    early_kill_share: float = 0.25,
    complete: bool = True,
    timeout: float = 120.0,
) -> CrashTestReport:
    """Kill a writer ``kills`` times at seeded random points of its progress, then check the store.

    Kill points are drawn in *write progress*, not wall time, so they land mid-ingestion on a
    slow machine and on a fast one alike: the parent waits until a random number of further
    batches (1 to ``max_batches_between_kills``) is acknowledged, waits a random few milliseconds
    more (so the kill falls anywhere in the upsert/acknowledge cycle), then sends ``SIGKILL``. A
    share of the kills instead lands at a random moment of start-up, during imports or the
    engine's WAL recovery.

    Args:
        engine: ``qdrant`` (Qdrant Edge) or ``milvus`` (Milvus Lite).
        workdir: Empty directory for the store and the acknowledgement log.
        kills: SIGKILLs to deliver (fewer if the writer finishes first).
        seed: Seeds the kill points.
        batches: Batches the writer must write in total.
        size: Points per batch.
        dim: Vector dimension.
        max_batches_between_kills: Upper bound of the random progress between two kills.
        early_kill_share: Share of kills aimed at start-up instead of progress.
        complete: After the kills, let a writer finish and check again (exact final count).
        timeout: Bound on each writer run, in seconds.

    Returns:
        The report; ``report.ok`` is the verdict.

    Raises:
        RuntimeError: If a writer fails on its own, or makes no progress within ``timeout``.
    """
    started = time.perf_counter()
    workdir.mkdir(parents=True, exist_ok=True)
    ack_log = workdir / "acks.log"
    store = open_engine(engine, workdir)
    if not store.has_collection(COLLECTION):
        store.create_collection(COLLECTION, dim)
    store.close()

    rng = random.Random(seed)
    command = [
        sys.executable, "-m", "workloads.rag.crashcheck", "writer", "--engine", engine,
        "--path", str(workdir), "--ack-log", str(ack_log),
        "--batches", str(batches), "--size", str(size), "--dim", str(dim),
    ]  # fmt: skip
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(_repo_root()), os.environ.get("PYTHONPATH")])),
    }
    delivered = runs = 0
    acked_at_kill: list[int] = []
    errors = workdir / "writer.stderr"
    while delivered < kills:
        acked = len(set(read_acks(ack_log)))
        early = rng.random() < early_kill_share
        goal = acked + rng.randint(1, max_batches_between_kills)
        early_at = time.monotonic() + rng.uniform(0.05, 0.6)
        jitter = rng.uniform(0.0, 0.02)
        with errors.open("wb") as stderr:
            process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
            runs += 1
            deadline = time.monotonic() + timeout
            while process.poll() is None:
                now = time.monotonic()
                if (early and now >= early_at) or (not early and len(read_acks(ack_log)) >= goal):
                    time.sleep(jitter)
                    break
                if now > deadline:
                    process.kill()
                    process.wait()
                    raise RuntimeError(f"{engine} writer made no progress in {timeout} s")
                time.sleep(0.002)
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                process.wait()
                delivered += 1
                acked_at_kill.append(len(set(read_acks(ack_log))))
                continue
        if process.returncode != 0:
            raise RuntimeError(
                f"{engine} writer failed after {delivered} kills:\n{errors.read_text()[-3000:]}"
            )
        break  # finished before the next kill
    after_kills = check(engine, workdir, ack_log, size, dim)
    after_completion = None
    if complete:
        done = subprocess.run(command, env=env, capture_output=True, timeout=timeout, check=False)
        runs += 1
        if done.returncode != 0:
            raise RuntimeError(
                f"{engine} final writer failed:\n{done.stderr.decode(errors='replace')[-3000:]}"
            )
        after_completion = check(engine, workdir, ack_log, size, dim, expected_total=batches * size)
    return CrashTestReport(
        engine, delivered, runs, after_kills, after_completion, time.perf_counter() - started, acked_at_kill
    )


def _repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> int:
    """Entry point of the writer subprocess (and a standalone crash test)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("writer", help="write batches, acknowledging each (the process that gets killed)")
    w.add_argument("--engine", choices=ENGINES, required=True)
    w.add_argument("--path", type=Path, required=True)
    w.add_argument("--ack-log", type=Path, required=True)
    w.add_argument("--batches", type=int, required=True)
    w.add_argument("--size", type=int, required=True)
    w.add_argument("--dim", type=int, required=True)
    t = sub.add_parser("run", help="run a whole crash test and print its report as JSON")
    t.add_argument("--engine", choices=ENGINES, required=True)
    t.add_argument("--path", type=Path, required=True)
    t.add_argument("--kills", type=int, default=4)
    t.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.command == "writer":
        writer(args.engine, args.path, args.ack_log, args.batches, args.size, args.dim)
        return 0
    report = run_crash_test(args.engine, args.path, kills=args.kills, seed=args.seed)
    print(json.dumps(report.to_dict(), indent=2))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
