"""Request-log sink for KServe's ``logger``: CloudEvents in, JSON-lines objects in S3 out.

KServe's logger posts every request and response of a model server as a binary-mode CloudEvent
(``ce-*`` headers, the payload as body). The sink answers at once and appends one JSON line per
event to an in-memory batch; a background thread writes each batch as one object under
``s3://<bucket>/<prefix>/<inferenceservice>/<YYYY>/<MM>/<DD>/<HHMMSS>-<id>.jsonl`` when it holds
``--batch`` events or is ``--flush-s`` seconds old, and on shutdown. Logging therefore never
blocks the response path of the model server beyond one local HTTP round trip.

Run in the workload image: ``python -m workloads.serving.cluster.log_sink --bucket B``.
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
import time
import uuid
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

MAX_BODY = 8 * 1024 * 1024


class ObjectWriter(Protocol):
    """Where batches go: ``put(key, data)`` (an S3 bucket, or a stand-in in tests)."""

    def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key``."""


class S3Writer:
    """Writes objects to one S3 bucket with boto3 (endpoint and keys from the usual AWS_* variables)."""

    def __init__(self, bucket: str) -> None:
        import boto3

        self.bucket = bucket
        self._client = boto3.client("s3")

    def put(self, key: str, data: bytes) -> None:
        """Upload one object."""
        self._client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType="application/x-ndjson")


def event_record(headers: dict[str, str], body: bytes) -> dict[str, Any]:
    """One log line from a CloudEvent's headers (lower-cased) and body."""
    try:
        payload: Any = json.loads(body) if body else None
    except (json.JSONDecodeError, UnicodeDecodeError):
        payload = body.decode("utf-8", "replace")
    return {
        "id": headers.get("ce-id", ""),
        "type": headers.get("ce-type", ""),
        "time": headers.get("ce-time") or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "inferenceservice": headers.get("ce-inferenceservicename", "unknown"),
        "namespace": headers.get("ce-namespace", ""),
        "component": headers.get("ce-component", ""),
        "endpoint": headers.get("ce-endpoint", ""),
        "payload": payload,
    }


class Batcher:
    """Collects records per InferenceService and writes them in batches."""

    def __init__(self, writer: ObjectWriter, prefix: str, batch: int = 500, flush_s: float = 30.0) -> None:
        self.writer = writer
        self.prefix = prefix.strip("/")
        self.batch = batch
        self.flush_s = flush_s
        self._lock = threading.Lock()
        self._records: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._since = time.monotonic()
        self.written: list[str] = []

    def add(self, record: dict[str, Any]) -> None:
        """Queue one record; flush when the batch is full."""
        with self._lock:
            self._records[record["inferenceservice"]].append(record)
            full = sum(len(v) for v in self._records.values()) >= self.batch
        if full:
            self.flush()

    def due(self) -> bool:
        """Whether the oldest queued record has waited ``flush_s``."""
        return time.monotonic() - self._since >= self.flush_s

    def flush(self) -> None:
        """Write every queued record (one object per InferenceService)."""
        with self._lock:
            records, self._records = self._records, defaultdict(list)
            self._since = time.monotonic()
        now = time.gmtime()
        for service, items in records.items():
            if not items:
                continue
            key = f"{self.prefix}/{service}/{time.strftime('%Y/%m/%d/%H%M%S', now)}-{uuid.uuid4().hex[:8]}.jsonl"
            data = "".join(json.dumps(r, sort_keys=True) + "\n" for r in items).encode()
            self.writer.put(key, data)
            self.written.append(key)


def make_server(batcher: Batcher, host: str = "0.0.0.0", port: int = 8080) -> ThreadingHTTPServer:  # noqa: S104
    """The HTTP server KServe's logger posts to (``/healthz`` for probes)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self._reply(200 if self.path == "/healthz" else 404, b"ok\n" if self.path == "/healthz" else b"")

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self._reply(413, b"body too large\n")
                return
            body = self.rfile.read(length)
            batcher.add(event_record({k.lower(): v for k, v in self.headers.items()}, body))
            self._reply(202, b"")

        def _reply(self, code: int, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet access log
            return

    return ThreadingHTTPServer((host, port), Handler)


def _flusher(batcher: Batcher, stop: threading.Event) -> None:
    while not stop.wait(1.0):
        if batcher.due():
            batcher.flush()


def main(argv: list[str] | None = None) -> None:
    """Run the sink until SIGTERM/SIGINT, then write what is queued."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--prefix", default="inference-logs")
    parser.add_argument("--host", default="0.0.0.0")  # noqa: S104 - in a pod, behind a Service
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--flush-s", type=float, default=30.0)
    args = parser.parse_args(argv)
    batcher = Batcher(S3Writer(args.bucket), args.prefix, args.batch, args.flush_s)
    server = make_server(batcher, args.host, args.port)
    stop = threading.Event()
    threading.Thread(target=_flusher, args=(batcher, stop), daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        batcher.flush()


if __name__ == "__main__":
    main()
