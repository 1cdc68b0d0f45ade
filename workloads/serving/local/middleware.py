"""ASGI middleware in front of the KServe (and baseline) apps: limits, versions, metrics, logging.

KServe 0.21's REST server gives a model no body-size limit, answers a V2 path with a version with
501 ("not supported yet"), and exports only per-stage latency histograms with no HTTP status. This
middleware, added to KServe's FastAPI app before the server starts, fills those gaps for the
inference paths (``/v1/models/<m>:predict``, ``/v2/models/<m>[/versions/<v>]/infer``):

- bodies larger than ``max_body_bytes`` get 413 with a JSON message, before the model sees them;
- ``/v2/models/<m>/versions/<v>/infer`` is served when ``v`` is the loaded version, else 404;
- ``mlp_inference_requests_total{model,version,protocol,code}`` and
  ``mlp_inference_request_duration_seconds{model,version,protocol}`` (whole request, any status);
- one request-log record per request, handed to a background writer (see ``reqlog``).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from workloads.serving.local.reqlog import LogRecord, RequestLogger

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_V1 = re.compile(r"^/v1/models/(?P<model>[^/:]+):predict$")
_V2 = re.compile(r"^/v2/models/(?P<model>[^/]+)(?:/versions/(?P<version>[^/]+))?/infer$")
LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.02,
    0.03,
    0.05,
    0.075,
    0.1,
    0.15,
    0.2,
    0.3,
    0.5,
    1.0,
    2.5,
)


def _metrics() -> tuple[Any, Any]:
    from prometheus_client import REGISTRY, Counter, Histogram

    # Idempotent: the baseline app and KServe share one process-wide registry in tests.
    existing = getattr(REGISTRY, "_names_to_collectors", {})
    if "mlp_inference_requests_total" in existing:
        return existing["mlp_inference_requests_total"], existing["mlp_inference_request_duration_seconds"]
    counter = Counter(
        "mlp_inference_requests_total",
        "Inference requests by HTTP status code.",
        ["model", "version", "protocol", "code"],
    )
    histogram = Histogram(
        "mlp_inference_request_duration_seconds",
        "Whole-request latency of inference requests (any status).",
        ["model", "version", "protocol"],
        buckets=LATENCY_BUCKETS,
    )
    return counter, histogram


async def _json_response(
    send: Send, status: int, message: str, extra_headers: list[tuple[bytes, bytes]]
) -> bytes:
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers + extra_headers})
    await send({"type": "http.response.body", "body": body})
    return body


class ServingMiddleware:
    """Body limit, V2 version routing, status-labelled metrics and request logging.

    Args:
        app: The ASGI app (KServe's FastAPI app or the baseline).
        model: Served model name.
        version: Served registry version.
        variant: Role of this server in the topology (primary, canary, shadow...), logged.
        max_body_bytes: Largest accepted request body.
        request_logger: Where request records go; None disables logging.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        model: str,
        version: str,
        variant: str = "",
        max_body_bytes: int = 1 << 20,
        request_logger: RequestLogger | None = None,
    ) -> None:
        self.app = app
        self.model = model
        self.version = version
        self.variant = variant
        self.max_body_bytes = max_body_bytes
        self.request_logger = request_logger
        self._counter, self._histogram = _metrics()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:  # noqa: D102
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        v1 = _V1.match(path)
        v2 = None if v1 else _V2.match(path)
        if not (v1 or v2):
            await self.app(scope, receive, send)
            return
        started_wall = time.time()
        started = time.perf_counter()
        protocol = "v1" if v1 else "v2"
        headers = dict(scope.get("headers") or [])
        request_id = headers.get(b"x-request-id", b"").decode("latin-1") or uuid.uuid4().hex
        extra = [(b"x-request-id", request_id.encode("latin-1")), (b"x-model-version", self.version.encode())]
        status_box = [500]
        response_chunks: list[bytes] = []
        body = b""

        async def finish() -> None:
            elapsed = time.perf_counter() - started
            code = str(status_box[0])
            self._counter.labels(self.model, self.version, protocol, code).inc()
            self._histogram.labels(self.model, self.version, protocol).observe(elapsed)
            if self.request_logger is not None:
                self.request_logger.submit(
                    LogRecord(
                        request_id=request_id,
                        started=started_wall,
                        latency_s=elapsed,
                        method="POST",
                        path=path,
                        status=status_box[0],
                        model=self.model,
                        version=self.version,
                        variant=self.variant,
                        protocol=protocol,
                        request_body=body,
                        response_body=b"".join(response_chunks),
                    )
                )

        async def reply(status: int, message: str) -> None:
            status_box[0] = status
            response_chunks.append(await _json_response(send, status, message, extra))
            await finish()

        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            await reply(413, f"request body is {int(declared)} bytes, the limit is {self.max_body_bytes}")
            return
        if v2 and v2["version"] is not None:
            if v2["version"] != self.version:
                await reply(
                    404,
                    f"model {v2['model']!r} has no version {v2['version']!r} here"
                    f" (this server serves version {self.version!r})",
                )
                return
            # KServe answers versioned paths with 501; the loaded version is served unversioned.
            new_path = f"/v2/models/{v2['model']}/infer"
            scope = dict(scope, path=new_path, raw_path=new_path.encode())
        # Read the whole body here: it is needed for the size check of chunked uploads and the log.
        parts: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await reply(413, f"request body exceeds the limit of {self.max_body_bytes} bytes")
                return
            parts.append(chunk)
            if not message.get("more_body"):
                break
        body = b"".join(parts)
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_box[0] = int(message["status"])
                message = dict(message, headers=list(message.get("headers", [])) + extra)
            elif message["type"] == "http.response.body":
                response_chunks.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, replay, capture)
        finally:
            await finish()
