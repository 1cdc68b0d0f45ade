"""Helpers for the checkpointed-training tests: the model's weights, the saved epoch, the train CLI."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from workloads.pipelines import model

TRAIN_CLI = [sys.executable, "-m", "workloads.pipelines.train_cli", "--epochs=40", "--checkpoint-every=5"]
"""The train CLI for 40 epochs with a checkpoint every 5 (add ``--checkpoint-root`` / ``--json-out``)."""


def coef(result: model.TrainResult) -> np.ndarray:
    """A copy of the trained classifier's coefficients."""
    return result.model.named_steps["classifier"].coef_.copy()


def checkpoint_epoch(root: Path) -> int:
    """The epoch of the one checkpoint under ``root``."""
    [checkpoint] = list(root.glob("*/latest.ckpt"))
    return int(pickle.loads(checkpoint.read_bytes())["epoch"])


def signal_training_mid_run(
    checkpoint_root: Path, signal_number: int, at_epoch: int, timeout_s: float = 120
) -> tuple[subprocess.Popen[str], int]:
    """Start :data:`TRAIN_CLI` (0.1 s an epoch), signal it once it reports ``at_epoch``.

    Args:
        checkpoint_root: Where the run checkpoints.
        signal_number: The signal to send (SIGTERM: a drained node; SIGKILL: a node gone).
        at_epoch: The ``epoch=N`` line of stdout to wait for before the signal.
        timeout_s: How long to wait for it; the signal goes out then anyway.

    Returns:
        The signalled process (its stdout still open for the rest) and the last epoch it reported.
    """
    env = {**os.environ, model.EPOCH_DELAY_ENV: "0.1"}
    proc = subprocess.Popen(
        [*TRAIN_CLI, f"--checkpoint-root={checkpoint_root}"], stdout=subprocess.PIPE, text=True, env=env
    )
    assert proc.stdout is not None
    seen = 0
    deadline = time.monotonic() + timeout_s
    for line in proc.stdout:
        if line.startswith("epoch="):
            seen = int(line.split()[0].split("=")[1])
        if seen >= at_epoch or time.monotonic() > deadline:
            break
    os.kill(proc.pid, signal_number)
    return proc, seen


def resume_and_reference(checkpoint_root: Path, out_dir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run :data:`TRAIN_CLI` again from ``checkpoint_root`` and once from scratch; return both reports."""
    resumed_json, reference_json = out_dir / "resumed.json", out_dir / "reference.json"
    subprocess.run(
        [*TRAIN_CLI, f"--checkpoint-root={checkpoint_root}", f"--json-out={resumed_json}"],
        check=True,
        timeout=120,
    )
    subprocess.run([*TRAIN_CLI, f"--json-out={reference_json}"], check=True, timeout=120)
    return json.loads(resumed_json.read_text()), json.loads(reference_json.read_text())
