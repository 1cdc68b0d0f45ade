"""Run the pipeline's real preprocess and train components on ``kfp.local`` (used by the SIGTERM test).

``python tests/workloads/kfp_train_driver.py ROOT CHECKPOINT_ROOT EPOCHS OUT_JSON`` runs the two
steps as the training pipeline defines them (same component functions, subprocess runner) and
writes the train step's outputs (status, ``resumed_from``, history, the model's coefficients)
as JSON. No ``from __future__ import annotations``: KFP reads the annotations as real types.
"""

import json
import pickle
import sys
from pathlib import Path
from typing import NamedTuple

from kfp import dsl, local
from kfp.dsl import Model

from workloads.pipelines import components


def main(root: str, checkpoint_root: str, epochs: int, out_json: str) -> int:
    """Run preprocess -> train once; write what the train step produced."""
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=f"{root}/runs",
        workspace_root=f"{root}/workspace",
        raise_on_error=False,
        enable_caching=False,
    )
    Path(f"{root}/workspace").mkdir(parents=True, exist_ok=True)
    preprocess_op = dsl.component(components.preprocess, base_image="python:3.11", install_kfp_package=False)
    train_op = dsl.component(components.train, base_image="python:3.11", install_kfp_package=False)
    Outputs = NamedTuple("Outputs", [("model", Model), ("history_json", str), ("resumed_from", int)])  # noqa: UP014

    @dsl.pipeline(name="sigterm-train")
    def pipeline(checkpoint_root: str, epochs: int) -> Outputs:
        prepared = preprocess_op(test_size=0.2, seed=42)
        train = train_op(
            train_data=prepared.outputs["train_data"],
            data_hash=prepared.outputs["data_hash"],
            alpha=1e-4,
            l1_ratio=0.15,
            loss="log_loss",
            epochs=epochs,
            seed=0,
            checkpoint_every=5,
            checkpoint_root=checkpoint_root,
        )
        return Outputs(
            model=train.outputs["model"],
            history_json=train.outputs["history_json"],
            resumed_from=train.outputs["resumed_from"],
        )

    run = pipeline(checkpoint_root=checkpoint_root, epochs=epochs)
    result: dict[str, object] = {"failed": False}
    produced = run.outputs
    if "model" not in produced:
        # A failed local run exposes no outputs.
        result["failed"] = True
    else:
        with open(produced["model"].path, "rb") as handle:
            model = pickle.load(handle)  # noqa: S301 - written by the train step just now
        classifier = model.named_steps["classifier"]
        result.update(
            resumed_from=produced["resumed_from"],
            history=json.loads(produced["history_json"]),
            coef=classifier.coef_.ravel().tolist(),
            intercept=classifier.intercept_.ravel().tolist(),
        )
    Path(out_json).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]))
