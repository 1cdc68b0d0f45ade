"""Crash consistency of the embedded engines: SIGKILL an ingesting writer, check acknowledged writes.

The shape of qdrant/crasher's checker: every acknowledged point present, no duplicates, no
phantoms, vectors intact; then the writer is allowed to finish and the final count must be exact.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from workloads.rag import crashcheck
from workloads.rag.crashcheck import check, run_crash_test

BATCHES = 400


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.parametrize("engine", ["qdrant", "milvus"])
def test_acknowledged_points_survive_sigkill(engine: str, tmp_path: Path) -> None:
    report = run_crash_test(engine, tmp_path, kills=4, seed=7, batches=BATCHES, size=50, dim=32)
    summary = report.to_dict()
    assert report.kills == 4, summary  # every kill hit a running writer
    assert report.after_kills.acked_points > 0, summary
    assert len(set(report.acked_at_kill)) >= 2, summary  # kills landed at different points of progress
    assert report.after_kills.ok, summary
    assert report.after_completion is not None and report.after_completion.ok, summary
    assert report.after_completion.count == BATCHES * 50


def test_the_checker_catches_loss_duplicates_phantoms_and_corruption(tmp_path: Path) -> None:
    """The checker itself must fail on each kind of damage (a checker that never fails proves nothing)."""
    size, dim = 10, 8
    store = crashcheck.open_engine("qdrant", tmp_path)
    store.create_collection(crashcheck.COLLECTION, dim)
    store.close()
    ack_log = tmp_path / "acks.log"
    crashcheck.writer("qdrant", tmp_path, ack_log, batches=3, size=size, dim=dim)
    assert check("qdrant", tmp_path, ack_log, size, dim, expected_total=30).ok

    ack_log.write_text(ack_log.read_text() + "3\n")  # claims a batch that was never written
    result = check("qdrant", tmp_path, ack_log, size, dim)
    assert not result.ok and result.missing == list(range(30, 40))
    ack_log.write_text("0\n1\n2\n")

    store = crashcheck.open_engine("qdrant", tmp_path)
    phantom = crashcheck._points([99], batch=9, dim=dim)
    store.upsert(crashcheck.COLLECTION, phantom)
    corrupt = crashcheck._points([4], batch=0, dim=dim)
    bad_vector = -np.asarray(corrupt[0].vector)
    store.upsert(crashcheck.COLLECTION, [type(corrupt[0])(corrupt[0].id, bad_vector, corrupt[0].payload)])
    store.close()
    result = check("qdrant", tmp_path, ack_log, size, dim)
    assert result.phantoms == [99] and result.corrupt == [4] and not result.ok

    assert check("qdrant", tmp_path, ack_log, size, dim, expected_total=29).ok is False


def test_torn_acknowledgement_lines_are_ignored(tmp_path: Path) -> None:
    log = tmp_path / "acks.log"
    log.write_text("0\n1\n2")  # a writer killed mid-line leaves "2" without its newline: still a digit
    assert crashcheck.read_acks(log) == [0, 1, 2]
    log.write_text("0\n1\n\n")
    assert crashcheck.read_acks(log) == [0, 1]
    assert crashcheck.rewrites(0, 50) == [] and all(n < 250 for n in crashcheck.rewrites(5, 50))
