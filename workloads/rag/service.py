"""``mlp rag serve``: the RAG index behind a long-running HTTP API, model and stores kept warm.

Endpoints (OpenAPI schema at ``/openapi.json``, interactive docs at ``/docs``):

* ``POST /ask`` — answer a question with citations (the same :class:`~workloads.rag.app.AskResult`
  as ``mlp rag ask --json``);
* ``POST /search`` — the top-k passages;
* ``POST /ingest`` — start an incremental ingest in the background (409 while one runs);
* ``GET /status`` — per backend: alias, collection and point count; the ingest's state;
* ``GET /healthz``.

One process holds the embedded engines' handles, so questions keep being answered while an ingest
writes (the engines take concurrent reads and writes from threads of one process); other processes
reach the index through this API instead of opening the stores themselves. ``mlp rag ask`` does
that on its own when ``<home>/serve.json`` names a live service. Binds 127.0.0.1 by default.
"""

from __future__ import annotations

import json
import os
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, field_validator

if TYPE_CHECKING:
    from fastapi import FastAPI

    from workloads.rag.app import RagApp

SERVE_FILE = "serve.json"


@dataclass
class IngestState:
    """The background ingest, as ``/status`` reports it."""

    state: str = "idle"
    started_at: str | None = None
    finished_at: str | None = None
    seconds: float | None = None
    report: dict[str, Any] | None = None
    error: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def public(self) -> dict[str, Any]:
        """Plain data."""
        return {k: v for k, v in self.__dict__.items() if k != "lock"}


class Query(BaseModel):
    """What every query request carries."""

    backend: str | None = Field(None, description="Backend to query (default: the first served).")
    k: int = Field(5, ge=1, le=50, description="Passages to retrieve.")
    filters: list[str] = Field(
        default_factory=list, description="Payload filters, e.g. source=docs/a.md, kind=adr, position>=2."
    )


class AskBody(Query):
    """``POST /ask``."""

    question: str = Field(min_length=1, description="The question.")
    extractive: bool = Field(False, description="Answer extractively even when an LLM endpoint is set.")

    @field_validator("question")
    @classmethod
    def not_blank(cls, value: str) -> str:
        """Reject blank questions."""
        if not value.strip():
            raise ValueError("question is blank")
        return value


class SearchBody(Query):
    """``POST /search``."""

    query: str = Field(min_length=1, description="Search text.")


class IngestBody(BaseModel):
    """``POST /ingest``."""

    results: bool = Field(True, description="Also index the JSON reports under build/.")


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def create_app(app: RagApp, backends: list[str]) -> FastAPI:
    """The FastAPI application serving ``app`` for ``backends`` (the first is the default)."""
    from fastapi import FastAPI, HTTPException

    from workloads.rag.stores.base import Filter, StoreError

    api = FastAPI(
        title="mlp rag",
        version="1",
        description="Questions over the lab's docs and experiment results, answered with citations.",
    )
    ingest = IngestState()
    default_backend = backends[0]

    def filter_of(body: Query) -> Filter | None:
        if body.backend is not None and body.backend not in backends:
            raise HTTPException(422, f"backend must be one of {backends}")
        try:
            return Filter.parse(body.filters) or None
        except ValueError as error:
            raise HTTPException(422, str(error)) from None

    def run(call: Any) -> Any:
        try:
            return call()
        except (StoreError, ValueError) as error:
            raise HTTPException(409 if "no index" in str(error).lower() else 400, str(error)) from None

    @api.get("/healthz")
    def healthz() -> dict[str, bool]:
        """Liveness."""
        return {"ok": True}

    @api.post("/ask")
    def ask(body: AskBody) -> dict[str, Any]:
        """Answer ``question`` from the index, citing the passages used."""
        mode = "extractive" if body.extractive else "auto"
        filter_ = filter_of(body)
        backend = body.backend or default_backend
        result = run(lambda: app.ask(backend, body.question, k=body.k, filter=filter_, mode=mode))  # type: ignore[arg-type]
        return dict(result.to_dict())

    @api.post("/search")
    def search(body: SearchBody) -> dict[str, Any]:
        """The top-k passages for ``query``."""
        filter_ = filter_of(body)
        backend = body.backend or default_backend
        passages = run(lambda: app.search(backend, body.query, k=body.k, filter=filter_))  # type: ignore[arg-type]
        return {"passages": [p.to_dict() for p in passages]}

    def ingest_worker(results: bool) -> None:
        began = time.perf_counter()
        try:
            report = app.ingest(backends, app.corpus(results=results))  # type: ignore[arg-type]
            ingest.report = report.to_dict() if hasattr(report, "to_dict") else {"summary": str(report)}
            ingest.state = "done"
        except Exception as error:  # noqa: BLE001 - reported through /status
            ingest.state = "failed"
            ingest.error = f"{type(error).__name__}: {error}"
            traceback.print_exc()
        finally:
            ingest.finished_at = _now()
            ingest.seconds = round(time.perf_counter() - began, 2)
            ingest.lock.release()

    @api.post("/ingest", status_code=202)
    def start_ingest(body: IngestBody) -> dict[str, Any]:
        """Start an incremental ingest of the docs (and results) in the background."""
        if not ingest.lock.acquire(blocking=False):
            raise HTTPException(409, "an ingest is already running")
        ingest.state, ingest.started_at, ingest.finished_at = "running", _now(), None
        ingest.report = ingest.error = ingest.seconds = None
        threading.Thread(target=ingest_worker, args=(body.results,), daemon=True).start()
        return ingest.public()

    @api.get("/status")
    def status() -> dict[str, Any]:
        """Per backend: alias, collection behind it, points; and the background ingest."""
        out: dict[str, Any] = {}
        for name in backends:
            store = app.store(name)  # type: ignore[arg-type]
            collection = store.resolve(app.settings.alias)
            out[name] = {
                "engine": store.engine,
                "alias": app.settings.alias,
                "collection": collection,
                "points": store.count(collection) if collection else 0,
            }
        return {"backends": out, "ingest": ingest.public()}

    return api


def warm(app: RagApp, backend: str) -> float:
    """Load the model, open the store and answer one question; returns the seconds it took."""
    began = time.perf_counter()
    store = app.store(backend)  # type: ignore[arg-type]
    if store.resolve(app.settings.alias) is not None:
        app.ask(backend, "warm up", k=3, mode="extractive")  # type: ignore[arg-type]
    else:
        app.embedder.embed(["warm up"])
    return time.perf_counter() - began


def write_serve_file(home: Path, url: str) -> Path:
    """Record the running service (read by ``mlp rag ask``)."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / SERVE_FILE
    path.write_text(json.dumps({"url": url, "pid": os.getpid(), "started_at": _now()}))
    return path


def running_service(home: Path) -> str | None:
    """The URL of a live ``mlp rag serve`` for ``home`` (its process still exists), else ``None``."""
    try:
        info = json.loads((home / SERVE_FILE).read_text())
        os.kill(int(info["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return str(info["url"])
