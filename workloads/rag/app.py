"""The RAG workload's use cases, wired from settings and a target; the CLI is a thin layer on top.

:class:`RagApp` owns the open stores (Qdrant Edge shards and Milvus Lite directories admit one
process at a time, so it closes them on exit) and the embedder (loaded once, on first use).
"""

from __future__ import annotations

import os
import platform
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from workloads.rag.embeddings import Embedder, make_embedder
from workloads.rag.evaluation import (
    DEFAULT_KS,
    QUESTIONS_FILE,
    check_questions,
    evaluate,
    load_questions,
    plot,
)
from workloads.rag.generation import Answer, ChatGenerator, ExtractiveGenerator, answer_sentences
from workloads.rag.ingest import Ingestor, IngestReport, Progress
from workloads.rag.retrieval import Passage, Retriever
from workloads.rag.sentence_cache import CachedEmbedder
from workloads.rag.settings import BACKENDS, Backend, RagSettings
from workloads.rag.sources import DEFAULT_DOC_PATHS, DEFAULT_RESULTS_PATH, Document, discover
from workloads.rag.stores import VectorStore, open_store
from workloads.rag.stores.base import Filter

if TYPE_CHECKING:
    from workloads.target import StackOutputs

AnswerMode = Literal["auto", "llm", "extractive"]
DEFAULT_EVAL_OUT = Path("build") / "rag" / "eval.json"
DEFAULT_BENCH_OUT = Path("build") / "rag" / "bench.json"


@dataclass
class AskResult:
    """An answer from one backend, with timings."""

    backend: str
    engine: str
    collection: str
    answer: Answer
    timings_ms: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            "backend": self.backend,
            "engine": self.engine,
            "collection": self.collection,
            **self.answer.to_dict(),
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
        }


class RagApp:
    """Ingest, ask, evaluate and operate the index for one target.

    Args:
        settings: Settings (state directory, alias, chunking, endpoints).
        outputs: Stack outputs for server backends; ``None`` for embedded engines.
        root: Corpus root (the repository checkout).
        embedder: Injected embedder (tests); built from the settings otherwise.
    """

    def __init__(
        self,
        settings: RagSettings,
        *,
        outputs: StackOutputs | None = None,
        root: Path | None = None,
        embedder: Embedder | None = None,
    ) -> None:
        self.settings = settings
        self.outputs = outputs
        self.root = (root or Path.cwd()).resolve()
        self._embedder = embedder
        self._stores: dict[str, VectorStore] = {}

    def __enter__(self) -> RagApp:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every store this app opened (and the sentence cache)."""
        for store in self._stores.values():
            store.close()
        self._stores.clear()
        if "sentence_embedder" in self.__dict__:
            self.sentence_embedder.close()

    @cached_property
    def embedder(self) -> Embedder:
        """The embedder (loaded on first use)."""
        return self._embedder or make_embedder(self.settings)

    def store(self, backend: Backend) -> VectorStore:
        """The store of ``backend`` (opened once)."""
        if backend not in self._stores:
            self._stores[backend] = open_store(backend, self.settings, self.outputs)
        return self._stores[backend]

    def stores(self, backends: Sequence[Backend]) -> dict[str, VectorStore]:
        """Stores of several backends, by name."""
        return {b: self.store(b) for b in backends}

    # --- ingestion ---------------------------------------------------------------------------

    def corpus(self, paths: Sequence[str] = DEFAULT_DOC_PATHS, *, results: bool = True) -> list[Document]:
        """Documents under ``paths`` and, with ``results``, the JSON reports under ``build/``."""
        return discover(self.root, paths, results=DEFAULT_RESULTS_PATH if results else None)

    def ingestor(self, backends: Sequence[Backend], progress: Progress | None = None) -> Ingestor:
        """An ingestor writing to ``backends``."""
        return Ingestor(self.stores(backends), self.embedder, self.settings, progress=progress)

    def ingest(
        self,
        backends: Sequence[Backend],
        documents: Sequence[Document],
        *,
        prune: bool = True,
        progress: Progress | None = None,
    ) -> IngestReport:
        """Incremental ingestion into the alias of every backend, then the sentence cache."""
        report = self.ingestor(backends, progress).ingest(documents, prune=prune)
        self.warm_sentences(backends[0])
        return report

    @cached_property
    def sentence_embedder(self) -> CachedEmbedder:
        """The embedder behind extractive answers, caching sentence vectors (see :mod:`.sentence_cache`)."""
        return CachedEmbedder(self.embedder, self.settings.home / "sentences.sqlite")

    def warm_sentences(self, backend: Backend) -> int:
        """Embed (in bulk) every answer sentence of the indexed passages not cached yet.

        Returns:
            Sentences embedded now (0 when all were cached, or the index is empty).
        """
        store = self.store(backend)
        if store.resolve(self.settings.alias) is None:
            return 0
        texts: list[str] = []
        for record in store.scroll(self.settings.alias, fields=["text", "kind"]):
            texts.extend(
                answer_sentences(str(record.payload.get("text", "")), str(record.payload.get("kind", "")))
            )
        return self.sentence_embedder.warm(texts)

    def reindex(
        self,
        backends: Sequence[Backend],
        documents: Sequence[Document],
        *,
        keep_old: bool = False,
        progress: Progress | None = None,
    ) -> IngestReport:
        """Full rebuild into new collections and an atomic alias switch, then the sentence cache."""
        report = self.ingestor(backends, progress).reindex(documents, keep_old=keep_old)
        self.warm_sentences(backends[0])
        return report

    # --- questions ---------------------------------------------------------------------------

    def retriever(self, backend: Backend) -> Retriever:
        """A retriever on the alias of ``backend``."""
        return Retriever(self.store(backend), self.embedder, self.settings.alias)

    def search(
        self, backend: Backend, query: str, *, k: int = 5, filter: Filter | None = None
    ) -> list[Passage]:
        """Top-``k`` passages for ``query``."""
        return self.retriever(backend).search(query, k=k, filter=filter)

    def generator(self, mode: AnswerMode) -> ChatGenerator | ExtractiveGenerator:
        """The LLM generator when an endpoint is configured (or required), else the extractive one.

        Raises:
            ValueError: If ``llm`` is required but no endpoint is configured.
        """
        if mode == "llm" and not self.settings.llm_url:
            raise ValueError("no LLM endpoint: set MLP_RAG_LLM_URL or pass --llm-url")
        if mode != "extractive" and self.settings.llm_url:
            return ChatGenerator(
                self.settings.llm_url, self.settings.llm_model, api_key=self.settings.llm_api_key
            )
        return ExtractiveGenerator(self.sentence_embedder)

    def ask(
        self,
        backend: Backend,
        question: str,
        *,
        k: int = 5,
        filter: Filter | None = None,
        mode: AnswerMode = "auto",
    ) -> AskResult:
        """Retrieve passages for ``question`` and answer with citations."""
        retriever = self.retriever(backend)
        collection = retriever.check()
        passages = retriever.search(question, k=k, filter=filter)
        timing = retriever.last_timing
        t0 = time.perf_counter()
        answer = self.generator(mode).answer(question, passages)
        generate_ms = (time.perf_counter() - t0) * 1000
        store = self.store(backend)
        return AskResult(
            backend,
            store.engine,
            collection,
            answer,
            {"embed": timing.embed_ms, "search": timing.search_ms, "generate": generate_ms},
        )

    # --- evaluation --------------------------------------------------------------------------

    def evaluate(
        self,
        backends: Sequence[Backend],
        *,
        questions_file: Path = QUESTIONS_FILE,
        ks: Sequence[int] = DEFAULT_KS,
        depth: int = 10,
        latency_repeats: int = 3,
        ingest_report: IngestReport | None = None,
    ) -> dict[str, Any]:
        """Score retrieval of every backend on the labelled questions.

        Raises:
            ValueError: If the question set references files or headings that do not exist.
        """
        questions = load_questions(questions_file)
        problems = check_questions(questions, self.root)
        if problems:
            raise ValueError("question set is out of date:\n  " + "\n  ".join(problems))
        report: dict[str, Any] = {
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "embedder": self.embedder.name,
            "question_set": _display_path(questions_file, self.root),
            "questions": len(questions),
            "ks": list(ks),
            "alias": self.settings.alias,
            "chunking": {
                "max_tokens": self.settings.chunk_tokens,
                "overlap_tokens": self.settings.overlap_tokens,
            },
            "machine": machine_info(),
            "backends": {},
        }
        if ingest_report is not None:
            report["ingest"] = ingest_report.to_dict()
        for backend in backends:
            retriever = self.retriever(backend)
            collection = retriever.check()

            def run(
                query: str, n: int, retriever: Retriever = retriever
            ) -> tuple[list[Passage], float, float]:
                passages = retriever.search(query, k=n)
                return passages, retriever.last_timing.embed_ms, retriever.last_timing.search_ms

            result = evaluate(run, questions, ks=ks, depth=depth, latency_repeats=latency_repeats)
            store = self.store(backend)
            result = {
                "engine": store.engine,
                "collection": collection,
                "points": store.count(collection),
                **result,
            }
            report["backends"][backend] = result
        return report

    def bench_ingest(
        self, backends: Sequence[Backend], documents: Sequence[Document], *, progress: Progress | None = None
    ) -> IngestReport:
        """Time a from-scratch ingestion into throw-away embedded stores (the live index is untouched)."""
        scratch = Path(tempfile.mkdtemp(prefix="mlp-rag-bench-"))
        try:
            settings = self.settings.model_copy(update={"home": scratch})
            bench = RagApp(settings, root=self.root, embedder=self.embedder)
            with bench:
                return bench.ingest(backends, documents, progress=progress)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)


def machine_info() -> dict[str, Any]:
    """Where a benchmark ran: CPU count, platform, Python, bf16 support."""
    from workloads.rag.embeddings import cpu_has_bf16

    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_bf16": cpu_has_bf16(),
    }


def _display_path(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root).as_posix()
    except ValueError:
        return path.name


def write_eval(report: dict[str, Any], out: Path, *, with_plot: bool = True) -> list[Path]:
    """Write the evaluation JSON (and its plot beside it)."""
    import json

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    written = [out]
    if with_plot and report.get("backends"):
        written.append(plot(report, out.with_suffix(".png")))
    return written


def parse_backends(choice: str) -> list[Backend]:
    """``qdrant``, ``milvus`` or ``all``."""
    if choice == "all":
        return list(BACKENDS)
    if choice not in BACKENDS:
        raise ValueError(f"unknown backend {choice!r}")
    return [choice]
