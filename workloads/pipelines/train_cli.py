"""Run the train step as a plain process: ``python -m workloads.pipelines.train_cli``.

Katib trials run this (``--cv-folds`` scores a parameter set on folds of the training split and
prints ``name=value`` lines for Katib's stdout metrics collector). With ``--checkpoint-root`` it
trains on the whole training split with checkpoints, exactly like the pipeline's train step, and a
killed process started again resumes from the last checkpoint. On SIGTERM it finishes the current
epoch, writes a checkpoint at once and exits with status 143.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from workloads.pipelines import data, interrupt, model


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line arguments (hyperparameter defaults come from ``TrainParams``)."""
    defaults = model.TrainParams()
    parser = argparse.ArgumentParser(prog="python -m workloads.pipelines.train_cli", description=__doc__)
    parser.add_argument("--alpha", type=float, default=defaults.alpha)
    parser.add_argument("--l1-ratio", type=float, default=defaults.l1_ratio)
    parser.add_argument("--loss", default=defaults.loss, choices=["log_loss", "modified_huber"])
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--checkpoint-every", type=int, default=defaults.checkpoint_every)
    parser.add_argument("--test-size", type=float, default=0.2)
    parser.add_argument("--split-seed", type=int, default=42)
    parser.add_argument("--cv-folds", type=int, default=0, help="score on this many folds (tuning trials)")
    parser.add_argument(
        "--checkpoint-root", default="", help="directory or s3://bucket/prefix for checkpoints"
    )
    parser.add_argument("--model-out", default="", help="write the fitted model (pickle) here")
    parser.add_argument("--json-out", default="", help="write the result as JSON here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run one trial or one checkpointed training; print metrics as ``name=value`` lines.

    Returns:
        0, or 143 when SIGTERM stopped a checkpointed training (a checkpoint was written).
    """
    args = parse_args(argv)
    params = model.TrainParams(
        alpha=args.alpha,
        l1_ratio=args.l1_ratio,
        loss=args.loss,
        epochs=args.epochs,
        seed=args.seed,
        checkpoint_every=args.checkpoint_every,
    )
    prepared = data.prepare(test_size=args.test_size, seed=args.split_seed)
    features, labels = data.features_and_target(prepared.train)
    result: dict[str, object] = {"data_hash": prepared.data_hash, "params": params.model_params()}
    if args.cv_folds:
        metrics = model.cross_validate(features, labels, params, folds=args.cv_folds)
    else:
        key = model.run_key(prepared.data_hash, params)
        store = model.checkpoint_store(args.checkpoint_root, key) if args.checkpoint_root else None
        try:
            with interrupt.stop_on_sigterm() as stop:
                trained = model.train(
                    features,
                    labels,
                    params,
                    store=store,
                    key=key,
                    on_epoch=lambda epoch, loss: print(
                        f"epoch={epoch} train_log_loss={loss:.6f}", flush=True
                    ),
                    stop=stop,
                )
        except interrupt.TrainingInterrupted as stopped:
            print(f"interrupted: {stopped}", flush=True)
            return interrupt.EXIT_ON_SIGTERM
        test_features, test_labels = data.features_and_target(prepared.test)
        metrics = model.evaluate(trained.model, test_features, test_labels)
        classifier = trained.model.named_steps["classifier"]
        result.update(
            resumed_from=trained.resumed_from,
            epochs_run=trained.epochs_run,
            history=trained.history,
            run_key=key,
            coef=classifier.coef_.ravel().tolist(),
            intercept=classifier.intercept_.ravel().tolist(),
        )
        if args.model_out:
            import pickle

            Path(args.model_out).write_bytes(pickle.dumps(trained.model))
    result["metrics"] = metrics
    for name, value in metrics.items():
        print(f"{name}={value:.6f}", flush=True)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
