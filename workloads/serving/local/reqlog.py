"""Request logging off the response path: a bounded queue and one background writer thread.

The serving middleware hands over raw request and response bytes plus timings
(:meth:`RequestLogger.submit` is a non-blocking ``put_nowait``); the writer thread decodes them and
appends one JSON line per request. When the queue is full the record is dropped and counted, so a
slow disk can never slow a response down; the drop count is in every ``stats()`` and on shutdown.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_STOP = object()


@dataclass
class LogRecord:
    """What the middleware knows about one finished request (decoded later, in the writer)."""

    request_id: str
    started: float
    latency_s: float
    method: str
    path: str
    status: int
    model: str
    version: str
    variant: str
    protocol: str
    request_body: bytes
    response_body: bytes
    extra: dict[str, Any] = field(default_factory=dict)


def _decode(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return {"undecodable_bytes": len(raw)}


def _payload(body: Any, keys: tuple[str, str]) -> Any:
    """The value under the first of ``keys`` (V1 key, V2 key) in a JSON object; the body itself otherwise."""
    if isinstance(body, dict):
        for key in keys:
            if key in body:
                return body[key]
    return body


def to_line(record: LogRecord) -> dict[str, Any]:
    """The JSON object written for one request."""
    request = _decode(record.request_body)
    response = _decode(record.response_body)
    line: dict[str, Any] = {
        "request_id": record.request_id,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.started))
        + f".{int(record.started * 1000) % 1000:03d}Z",
        "model": record.model,
        "version": record.version,
        "variant": record.variant,
        "protocol": record.protocol,
        "method": record.method,
        "path": record.path,
        "status": record.status,
        "latency_ms": round(record.latency_s * 1000, 3),
        "inputs": _payload(request, ("instances", "inputs")),
        "outputs": _payload(response, ("predictions", "outputs")) if record.status < 400 else None,
    }
    if record.status >= 400:
        line["error"] = response.get("error") if isinstance(response, dict) else response
    if isinstance(request, dict) and request.get("id"):
        line["inference_id"] = request["id"]
    line.update(record.extra)
    return line


class RequestLogger:
    """Append one JSON line per request to ``path`` from a background thread.

    Args:
        path: JSONL file (appended to; parent directories are created).
        max_queue: Records held in memory before new ones are dropped.
        flush_every_s: How often the writer flushes the file.
    """

    def __init__(self, path: str | Path, max_queue: int = 10_000, flush_every_s: float = 0.2) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max_queue)
        self._flush_every_s = flush_every_s
        self.written = 0
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name="request-logger", daemon=True)
        self._thread.start()

    def submit(self, record: LogRecord) -> None:
        """Queue a record; never blocks (a full queue drops the record and counts it)."""
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            self.dropped += 1

    def stats(self) -> dict[str, int]:
        """Lines written, records dropped, records waiting."""
        return {"written": self.written, "dropped": self.dropped, "pending": self._queue.qsize()}

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued, then stop the thread."""
        self._queue.put(_STOP)
        self._thread.join(timeout)

    def _run(self) -> None:
        with self.path.open("a", encoding="utf-8") as handle:
            last_flush = time.monotonic()
            while True:
                try:
                    item = self._queue.get(timeout=self._flush_every_s)
                except queue.Empty:
                    item = None
                if item is _STOP:
                    handle.flush()
                    return
                if item is not None:
                    handle.write(json.dumps(to_line(item), separators=(",", ":")) + "\n")
                    self.written += 1
                if time.monotonic() - last_flush >= self._flush_every_s:
                    handle.flush()
                    last_flush = time.monotonic()


def read_log(path: str | Path) -> list[dict[str, Any]]:
    """Every line of a request log (a missing file is an empty log)."""
    file = Path(path)
    if not file.exists():
        return []
    return [json.loads(line) for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]
