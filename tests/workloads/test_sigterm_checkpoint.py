"""Training that checkpoints on notice: SIGTERM -> checkpoint at once -> exit 143 -> identical resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.workloads.training import (
    checkpoint_epoch,
    coef,
    resume_and_reference,
    signal_training_mid_run,
)
from workloads.pipelines import interrupt, model

DRIVER = Path(__file__).with_name("kfp_train_driver.py")


def test_stop_checkpoints_the_current_epoch_and_resume_is_identical(tmp_path: Path, train_split: Any) -> None:
    features, labels, data_hash = train_split
    params = model.TrainParams(epochs=20, checkpoint_every=5)
    key = model.run_key(data_hash, params)
    store = model.checkpoint_store(str(tmp_path), key)
    stop = interrupt.StopSignal()

    def notice_during_13(epoch: int, _loss: float) -> None:
        if epoch == 13:
            stop.request(signal.SIGTERM)

    with pytest.raises(interrupt.TrainingInterrupted) as stopped:
        model.train(features, labels, params, store=store, key=key, on_epoch=notice_during_13, stop=stop)
    assert stopped.value.epoch == 13 and stopped.value.checkpointed
    # Epoch 13 is saved, not the periodic checkpoint of epoch 10.
    assert checkpoint_epoch(tmp_path) == 13

    resumed = model.train(features, labels, params, store=store, key=key)
    uninterrupted = model.train(features, labels, params)
    assert resumed.resumed_from == 13 and resumed.epochs_run == 7
    np.testing.assert_array_equal(coef(resumed), coef(uninterrupted))
    assert resumed.history == uninterrupted.history


def test_stop_after_the_last_epoch_finishes_normally(train_split: Any) -> None:
    features, labels, _ = train_split
    stop = interrupt.StopSignal()
    params = model.TrainParams(epochs=3, checkpoint_every=0)
    result = model.train(
        features, labels, params, on_epoch=lambda e, _l: stop.request() if e == 3 else None, stop=stop
    )
    assert result.epochs_run == 3


def test_sigterm_handler_sets_the_flag_and_is_restored() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with interrupt.stop_on_sigterm() as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.sleep(5.0) and stop.signal_number == signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) == before
    assert interrupt.EXIT_ON_SIGTERM == 143


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_sigterm_mid_run_checkpoints_exits_143_and_resumes_identically(tmp_path: Path) -> None:
    """SIGTERM the train process (a drained spot node), check the checkpoint, resume, compare."""
    ckpt = tmp_path / "ckpt"
    proc, seen = signal_training_mid_run(ckpt, signal.SIGTERM, at_epoch=17)
    rest, _ = proc.communicate(timeout=30)
    assert proc.returncode == interrupt.EXIT_ON_SIGTERM
    assert 17 <= seen < 40, "the process must be stopped mid-run"
    last = max(
        [seen, *(int(x.split()[0].split("=")[1]) for x in rest.splitlines() if x.startswith("epoch="))]
    )
    # The checkpoint holds the last finished epoch (at most one more after the signal), not epoch 15.
    saved_epoch = checkpoint_epoch(ckpt)
    assert saved_epoch == last and seen <= saved_epoch <= seen + 1
    assert f"stopped on SIGTERM after epoch {saved_epoch}" in rest

    resumed, reference = resume_and_reference(ckpt, tmp_path)
    assert resumed["resumed_from"] == saved_epoch and resumed["epochs_run"] == 40 - saved_epoch
    assert resumed["coef"] == reference["coef"] and resumed["intercept"] == reference["intercept"]
    assert resumed["history"] == reference["history"] and resumed["metrics"] == reference["metrics"]


def _descendants(pid: int) -> list[int]:
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        current = frontier.pop()
        children = [child for child, parent in parents.items() if parent == current]
        found += children
        frontier += children
    return found


def _train_step_pid(driver: int) -> int | None:
    """The process running the train component (``executor_main ... --function_to_execute train``)."""
    for pid in _descendants(driver):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"-m" in argv and b"kfp.dsl.executor_main" in argv and b"--function_to_execute" in argv:
            if argv[argv.index(b"--function_to_execute") + 1] == b"train":
                return pid
    return None


@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the step's process through /proc (Linux)")
@pytest.mark.timeout(240)
def test_sigterm_on_the_real_pipeline_step_resumes_to_the_identical_model(tmp_path: Path) -> None:
    """The pipeline's own train component on kfp.local: SIGTERM mid-run, rerun, compare."""
    ckpt = tmp_path / "ckpt"
    env = {**os.environ, model.EPOCH_DELAY_ENV: "0.1"}

    def driver(name: str, epochs: int = 40) -> list[str]:
        return [
            sys.executable,
            str(DRIVER),
            str(tmp_path / name),
            str(ckpt),
            str(epochs),
            str(tmp_path / f"{name}.json"),
        ]

    proc = subprocess.Popen(
        driver("first"), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    deadline = time.monotonic() + 120
    step = None
    while time.monotonic() < deadline and proc.poll() is None:
        step = step or _train_step_pid(proc.pid)
        if step is not None and list(ckpt.glob("*/latest.ckpt")) and checkpoint_epoch(ckpt) >= 5:
            break
        time.sleep(0.05)
    assert step is not None, "the train step never started"
    os.kill(step, signal.SIGTERM)
    log, _ = proc.communicate(timeout=60)
    first = json.loads((tmp_path / "first.json").read_text())
    assert first["failed"], f"the step must fail after SIGTERM: {first}"
    saved_epoch = checkpoint_epoch(ckpt)
    assert f"train: stopped on SIGTERM after epoch {saved_epoch} (checkpoint written)" in log
    assert 5 <= saved_epoch < 40

    subprocess.run(driver("retry"), check=True, timeout=120, capture_output=True, env={**os.environ})
    retry = json.loads((tmp_path / "retry.json").read_text())
    reference_ckpt = tmp_path / "fresh"
    fresh = [
        sys.executable,
        str(DRIVER),
        str(tmp_path / "ref"),
        str(reference_ckpt),
        "40",
        str(tmp_path / "ref.json"),
    ]
    subprocess.run(fresh, check=True, timeout=120, capture_output=True)
    reference = json.loads((tmp_path / "ref.json").read_text())
    assert retry["resumed_from"] == saved_epoch and reference["resumed_from"] == 0
    assert retry["coef"] == reference["coef"] and retry["intercept"] == reference["intercept"]
    assert retry["history"] == reference["history"] and len(retry["history"]) == 40
