"""The serving transformer as a cluster runs it: ``python -m workloads.serving.transformer``.

KServe starts a transformer container with its standard arguments (``--model_name``,
``--predictor_host``, ``--http_port``); the InferenceService builders add ``--protocol`` with the
predictor's protocol (``v1`` for KServe's sklearn server, ``v2`` for MLServer's MLflow runtime).

What it does is the local path's transformer (:mod:`workloads.serving.local.server`): named feature
records in (``{"instances": [{"mean radius": 14.2, ...}, ...]}``), validated, put in the model's
column order, sent to the predictor, and class names back. For ``v2`` the records become one
``FP64`` input per feature (MLServer's pandas codec, which the MLflow runtime turns into the
DataFrame the model's signature names); the V2 answer's first output is read as the labels.

Only the V1 path is exercised end to end here (tests run it on loopback in front of the real KServe
predictor); the V2 request and response mapping is unit-tested, not run against MLServer.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from workloads.serving.local import validation

CLASS_NAMES = ("malignant", "benign")
"""Labels of the breast-cancer classifier the platform trains (``workloads.pipelines.data``)."""


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """KServe's standard transformer arguments (unknown ones, added by newer KServe versions, ignored)."""
    parser = argparse.ArgumentParser(prog="python -m workloads.serving.transformer")
    parser.add_argument("--model_name", required=True)
    parser.add_argument("--predictor_host", required=True)
    parser.add_argument("--http_port", type=int, default=8080)
    parser.add_argument("--protocol", choices=("v1", "v2"), default="v1")
    parser.add_argument("--host", default="0.0.0.0")  # noqa: S104 - a pod's container port, not a laptop
    args, _unknown = parser.parse_known_args(list(argv))
    return args


def v2_request(model_name: str, rows: list[list[float]], feature_names: Sequence[str]) -> dict[str, Any]:
    """A V2 (Open Inference Protocol) request body: one ``FP64`` column input per feature.

    The ``pd`` content type asks MLServer to decode the inputs as a DataFrame with those columns.
    """
    return {
        "parameters": {"content_type": "pd"},
        "inputs": [
            {"name": name, "shape": [len(rows)], "datatype": "FP64", "data": [row[i] for row in rows]}
            for i, name in enumerate(feature_names)
        ],
        "model_name": model_name,
    }


def v2_labels(response: Any) -> list[int]:
    """Labels from a V2 response (a dict, or KServe's ``InferResponse``): its first output's data."""
    body = response.to_rest() if hasattr(response, "to_rest") else response
    outputs = body.get("outputs") or []
    if not outputs:
        raise ValueError("the predictor's V2 response has no outputs")
    return [int(value) for value in outputs[0].get("data", [])]


def labelled(labels: Sequence[int], probabilities: Sequence[float | None] | None = None) -> dict[str, Any]:
    """The transformer's answer: class name, class index and (V1 only) the benign probability."""
    probs = list(probabilities) if probabilities is not None else [None] * len(labels)
    return {
        "predictions": [
            {"label": CLASS_NAMES[int(label)], "class": int(label), "probability_benign": p}
            for label, p in zip(labels, probs, strict=False)
        ]
    }


def build_model(name: str, predictor_host: str, protocol: str, feature_names: Sequence[str]) -> Any:
    """The ``kserve.Model`` that pre/post-processes around the predictor at ``predictor_host``.

    A predictor's 4xx (a request it rejects) is answered as a 400, anything else as a 500, so a
    client's mistake never looks like a server fault. The local path runs the same model.
    """
    import httpx
    import kserve
    from kserve.errors import InferenceError, InvalidInput

    columns = list(feature_names)

    class FeatureTransformer(kserve.Model):  # type: ignore[misc]
        """Named feature records in, the predictor's column order out; class names back."""

        def __init__(self) -> None:
            super().__init__(name)
            self.ready = True

        def preprocess(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
            if not isinstance(payload, dict) or "instances" not in payload:
                raise InvalidInput(
                    "transformer body must be {'instances': [{feature: value, ...}, ...]} (V1)"
                )
            try:
                rows = validation.named_records(payload["instances"], columns)
            except validation.RequestError as error:
                raise InvalidInput(str(error)) from None
            if protocol == "v2":
                from kserve import InferInput, InferRequest

                body = v2_request(name, rows, columns)
                inputs = [InferInput(i["name"], i["shape"], i["datatype"], i["data"]) for i in body["inputs"]]
                return InferRequest(name, inputs, parameters=body["parameters"])
            return {"instances": rows}

        async def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
            try:
                return await super().predict(payload, headers)
            except httpx.HTTPStatusError as error:
                if 400 <= error.response.status_code < 500:
                    raise InvalidInput(f"predictor rejected the request: {error.response.text}") from None
                raise InferenceError(f"predictor failed with HTTP {error.response.status_code}") from None

        def postprocess(
            self, result: Any, headers: dict[str, str] | None = None, response_headers: Any = None
        ) -> Any:
            if protocol == "v2":
                return labelled(v2_labels(result))
            answer = labelled(result.get("predictions", []), result.get("probabilities"))
            return {**answer, "model_version": result.get("model_version")}

    return FeatureTransformer()


def main(argv: Sequence[str] | None = None) -> int:
    """Start the transformer with KServe's ModelServer on ``--http_port``."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    from kserve import ModelServer
    from kserve.predictor_config import PredictorConfig

    from workloads.pipelines.data import breast_cancer_schema

    features = breast_cancer_schema().feature_names
    model = build_model(args.model_name, args.predictor_host, args.protocol, features)
    ModelServer(
        http_port=args.http_port,
        enable_grpc=False,
        predictor_config=PredictorConfig(
            predictor_host=args.predictor_host, predictor_protocol=args.protocol
        ),
    ).start([model])
    return 0


if __name__ == "__main__":
    sys.exit(main())
