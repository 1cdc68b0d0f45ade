"""One local serving process: a KServe predictor, a KServe transformer, or the bare baseline.

Run as ``python -m workloads.serving.local.server CONFIG.json`` (the launcher writes the file).
The configuration is read from a file, not from flags, because importing ``kserve.model_server``
parses ``sys.argv`` with abbreviation matching and would mistake our flags for its own.

- ``predictor``: the registered scikit-learn model (MLflow's ``model.skops``) in a
  ``kserve.Model`` on KServe's ModelServer, REST only (V1 and V2), bound to 127.0.0.1 (KServe
  binds 0.0.0.0 by default). Input validation raises ``InvalidInput`` (HTTP 400).
  Fault injection (``delay_ms``, ``error_rate``, ``flip``) makes a deliberately bad challenger.
- ``transformer``: a ``kserve.Model`` with ``predictor_host``: named feature records in, the
  model's column order out; labels and probabilities back out. V1 only.
- ``bare``: the same model and validation in a plain FastAPI app on uvicorn: the benchmark's
  baseline for what the KServe layer costs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import pickle
import random
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from workloads.serving.local import validation
from workloads.serving.local.reqlog import RequestLogger


@dataclass
class Injection:
    """Faults for a deliberately bad variant: added latency, a share of 500s, inverted labels."""

    delay_ms: float = 0.0
    error_rate: float = 0.0
    flip: bool = False


@dataclass
class ServerConfig:
    """What one serving process runs (written to JSON by the launcher)."""

    role: str
    name: str
    port: int
    version: str = ""
    variant: str = ""
    model_dir: str = ""
    host: str = "127.0.0.1"
    log_path: str | None = None
    max_body_bytes: int = 1 << 20
    predictor_host: str = ""
    feature_names: list[str] = field(default_factory=list)
    inject: Injection = field(default_factory=Injection)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> ServerConfig:
        """Build from the JSON the launcher wrote."""
        data = dict(raw)
        data["inject"] = Injection(**data.get("inject", {}))
        return cls(**data)


def load_estimator(model_path: str | Path) -> Any:
    """Load the scikit-learn model: a staged pickle, or MLflow's ``model.skops`` in a directory.

    The launcher stages each registry version as a pickle it wrote itself (see
    ``stack.resolve_variants``); the skops path is kept for a model directory given directly.
    """
    path = Path(model_path)
    if path.is_file():
        with path.open("rb") as handle:
            return pickle.load(handle)  # noqa: S301 - written by our own launcher from the registry
    import skops.io

    file = path / "model.skops"
    if not file.exists():
        raise FileNotFoundError(
            f"{file} not found: expected a staged pickle or an MLflow sklearn model (skops)"
        )
    trusted = skops.io.get_untrusted_types(file=str(file))
    return skops.io.load(str(file), trusted=trusted)


class Classifier:
    """The model plus validation and fault injection, shared by the KServe and bare servers."""

    def __init__(self, estimator: Any, version: str, inject: Injection, seed: int = 0) -> None:
        self.estimator = estimator
        self.version = version
        self.inject = inject
        self.n_features = int(getattr(estimator, "n_features_in_", 30))
        self._rng = random.Random(seed)
        # Fitted on a DataFrame, predicting on arrays: scikit-learn warns on every call otherwise.
        warnings.filterwarnings("ignore", message="X does not have valid feature names")

    def should_fail(self) -> bool:
        """Whether this request hits an injected fault."""
        return self.inject.error_rate > 0 and self._rng.random() < self.inject.error_rate

    def infer(self, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Labels and P(class 1) for a validated matrix."""
        labels = np.asarray(self.estimator.predict(matrix), dtype=np.int64)
        if hasattr(self.estimator, "predict_proba"):
            proba = np.asarray(self.estimator.predict_proba(matrix))[:, 1].astype(np.float64)
        else:
            proba = labels.astype(np.float64)
        if self.inject.flip:
            labels, proba = 1 - labels, 1.0 - proba
        return labels, proba


def _build_kserve_predictor(config: ServerConfig, classifier: Classifier) -> Any:
    import kserve
    from kserve.errors import InferenceError, InvalidInput
    from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse
    from kserve.utils.utils import generate_uuid

    class ClassifierModel(kserve.Model):  # type: ignore[misc]
        """The registered classifier behind KServe's V1 and V2 REST endpoints."""

        def __init__(self) -> None:
            super().__init__(config.name)
            self.ready = False

        def load(self) -> bool:
            self.ready = True
            return True

        async def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
            if classifier.inject.delay_ms:
                await asyncio.sleep(classifier.inject.delay_ms / 1000)
            if classifier.should_fail():
                raise InferenceError("injected fault (this variant is deliberately broken)")
            try:
                if isinstance(payload, InferRequest):
                    if len(payload.inputs) != 1:
                        raise validation.RequestError(
                            f"expected exactly one input tensor, got {len(payload.inputs)}"
                        )
                    tensor = payload.inputs[0]
                    matrix = validation.v2_matrix(
                        tensor.name, tensor.shape, tensor.datatype, tensor.data, classifier.n_features
                    )
                else:
                    matrix = validation.v1_matrix(payload, classifier.n_features)
            except validation.RequestError as error:
                raise InvalidInput(str(error)) from None
            labels, proba = classifier.infer(matrix)
            if isinstance(payload, InferRequest):
                outputs = []
                for name, values in (("label", labels), ("probability", proba)):
                    output = InferOutput(
                        name=name,
                        shape=list(values.shape),
                        datatype="INT64" if values.dtype == np.int64 else "FP64",
                    )
                    output.set_data_from_numpy(values, binary_data=False)
                    outputs.append(output)
                # The SDK's response carries an id: the request's, else a fresh one (a V2 response
                # without an id fails KServe's own response validation with HTTP 500).
                return InferResponse(
                    response_id=payload.id or generate_uuid(),
                    model_name=config.name,
                    model_version=config.version,
                    infer_outputs=outputs,
                )
            return {
                "predictions": labels.tolist(),
                "probabilities": [round(p, 6) for p in proba.tolist()],
                "model_version": config.version,
            }

    return ClassifierModel()


def _build_kserve_transformer(config: ServerConfig) -> Any:
    from workloads.serving.transformer import build_model

    return build_model(config.name, config.predictor_host, "v1", config.feature_names)


def _quiet_logs() -> None:
    # Per-request INFO lines (uvicorn access log, KServe's timing trace) cost throughput and are
    # replaced by the JSON request log and the metrics.
    for name in ("uvicorn.access", "kserve.trace", "kserve"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _serve_kserve(config: ServerConfig, model: Any, request_logger: RequestLogger | None) -> None:
    from kserve import ModelServer
    from kserve.constants.constants import FASTAPI_APP_IMPORT_STRING
    from kserve.model_server import app
    from kserve.protocol.rest.server import RESTServer

    from workloads.serving.local.middleware import ServingMiddleware

    app.add_middleware(
        ServingMiddleware,
        model=config.name,
        version=config.version,
        variant=config.variant,
        max_body_bytes=config.max_body_bytes,
        request_logger=request_logger,
    )

    class LoopbackModelServer(ModelServer):  # type: ignore[misc]
        """KServe's single-worker start path, REST bound to the configured host, SIGTERM honoured."""

        def start(self, models: list[Any]) -> None:
            self._register_and_check_atleast_one_model_is_ready(models)
            self._rest_server = RESTServer(
                FASTAPI_APP_IMPORT_STRING,
                self.dataplane,
                self.model_repository_extension,
                self.http_port,
                workers=1,
                grace_period=self.grace_period,
                timeout_keep_alive=self.timeout_keep_alive,
            )
            self._rest_server.config.host = config.host
            self.servers.append(self._rest_server.start())
            self.setup_event_loop()
            self.register_signal_handler()
            asyncio.run(self._serve())

        def stop(self, sig: int) -> None:
            # KServe's own stop() leaves a single-process REST server running (it only stops the
            # multi-process and gRPC servers), so SIGTERM would never end this process.
            super().stop(sig)
            if self._rest_server is not None:
                self._rest_server._server.should_exit = True

    from kserve.predictor_config import PredictorConfig

    model.load()
    predictor = (
        PredictorConfig(predictor_host=config.predictor_host, predictor_protocol="v1")
        if config.predictor_host
        else None
    )
    server = LoopbackModelServer(
        http_port=config.port,
        enable_grpc=False,
        enable_latency_logging=False,
        grace_period=2,
        predictor_config=predictor,
    )
    _quiet_logs()
    server.start([model])


def _serve_bare(config: ServerConfig, classifier: Classifier) -> None:
    import orjson
    import uvicorn
    from fastapi import FastAPI, Request, Response

    app = FastAPI()

    def reply(content: Any, status: int = 200) -> Response:
        return Response(orjson.dumps(content), status_code=status, media_type="application/json")

    async def predict(model_name: str, request: Request) -> Response:
        if model_name != config.name:
            return reply({"error": f"model {model_name!r} not found"}, 404)
        try:
            payload = orjson.loads(await request.body())
            matrix = validation.v1_matrix(payload, classifier.n_features)
        except (ValueError, validation.RequestError) as error:
            return reply({"error": str(error)}, 400)
        labels, proba = classifier.infer(matrix)
        return reply({"predictions": labels.tolist(), "probabilities": [round(p, 6) for p in proba.tolist()]})

    async def ready(model_name: str) -> Response:
        return reply({"name": model_name, "ready": True})

    # Real classes, not the postponed (string) annotations of this module, so FastAPI sees a Request.
    predict.__annotations__ = {"model_name": str, "request": Request, "return": Response}
    ready.__annotations__ = {"model_name": str, "return": Response}
    app.add_api_route("/v1/models/{model_name}:predict", predict, methods=["POST"])
    app.add_api_route("/v1/models/{model_name}", ready, methods=["GET"])
    uvicorn.run(app, host=config.host, port=config.port, log_level="warning", access_log=False)


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``python -m workloads.serving.local.server CONFIG.json``."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m workloads.serving.local.server CONFIG.json", file=sys.stderr)
        return 2
    config = ServerConfig.from_json(json.loads(Path(args[0]).read_text()))
    request_logger = RequestLogger(config.log_path) if config.log_path else None
    try:
        if config.role == "transformer":
            _serve_kserve(config, _build_kserve_transformer(config), request_logger)
            return 0
        classifier = Classifier(load_estimator(config.model_dir), config.version, config.inject)
        if config.role == "bare":
            _serve_bare(config, classifier)
        elif config.role == "predictor":
            _serve_kserve(config, _build_kserve_predictor(config, classifier), request_logger)
        else:
            print(f"unknown role {config.role!r}", file=sys.stderr)
            return 2
    finally:
        if request_logger is not None:
            request_logger.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
