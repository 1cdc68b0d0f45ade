"""Find the documents to ingest and load them as text.

Two kinds of sources:

- Markdown and plain text (the repo's ``README.md``, ``docs/``, ``adr/``);
- experiment results: the JSON reports under ``build/``, rendered to short Markdown facts
  (``- recall@5: 0.93``) grouped under headings, so the same heading-aware chunker and the same
  citations work for them.

Source paths are stored relative to the corpus root with forward slashes, which makes them stable
across machines and usable as citations and filters.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

SourceKind = Literal["doc", "adr", "readme", "result"]

TEXT_SUFFIXES = frozenset({".md", ".markdown", ".txt"})
DEFAULT_DOC_PATHS: tuple[str, ...] = ("README.md", "docs", "adr")
DEFAULT_RESULTS_PATH = "build"
RESULTS_EXCLUDE: tuple[str, ...] = ("build/rag",)
"""The RAG's own reports change on every evaluation; indexing them would make the index chase itself."""

MAX_RESULT_BYTES = 2_000_000
MAX_FACTS_PER_REPORT = 400
MAX_LIST_ITEMS = 25


@dataclass(frozen=True)
class Document:
    """One source document, loaded.

    Attributes:
        source: Path relative to the corpus root, with ``/`` separators.
        kind: ``doc``, ``adr``, ``readme`` or ``result``.
        title: First level-1 heading, or a title derived from the file name.
        text: The Markdown (or plain) text to chunk.
        markdown: Whether headings in ``text`` should drive chunking.
        content_hash: SHA-256 of the raw file bytes, the key of incremental re-ingestion.
    """

    source: str
    kind: SourceKind
    title: str
    text: str
    markdown: bool
    content_hash: str


def discover(
    root: Path,
    paths: Sequence[str] = DEFAULT_DOC_PATHS,
    *,
    results: str | None = DEFAULT_RESULTS_PATH,
) -> list[Document]:
    """Load every document under ``paths`` and, optionally, every JSON report under ``results``.

    Missing paths are skipped: a fresh clone has no ``build/`` and not every repo has ``adr/``.

    Args:
        root: Corpus root (the repository); stored source paths are relative to it.
        paths: Files or directories, relative to ``root`` or absolute inside it.
        results: Directory of JSON experiment reports, or ``None`` to skip results.

    Returns:
        Documents sorted by source path, without duplicates.
    """
    root = root.resolve()
    found: dict[str, Document] = {}
    for file in _walk(root, paths, TEXT_SUFFIXES):
        doc = load_text(root, file)
        if doc.text.strip():
            found[doc.source] = doc
    if results:
        excluded = tuple(str((root / e).resolve()) for e in RESULTS_EXCLUDE)
        for file in _walk(root, [results], frozenset({".json"})):
            if str(file).startswith(excluded) or file.stat().st_size > MAX_RESULT_BYTES:
                continue
            result_doc = load_result(root, file)
            if result_doc is not None:
                found[result_doc.source] = result_doc
    return [found[k] for k in sorted(found)]


def _walk(root: Path, paths: Iterable[str], suffixes: frozenset[str]) -> Iterator[Path]:
    for entry in paths:
        path = Path(entry)
        path = (path if path.is_absolute() else root / path).resolve()
        if path.is_file() and path.suffix.lower() in suffixes:
            yield path
        elif path.is_dir():
            for file in sorted(path.rglob("*")):
                if file.is_file() and file.suffix.lower() in suffixes and not _hidden(file, root):
                    yield file


def _hidden(file: Path, root: Path) -> bool:
    try:
        parts = file.relative_to(root).parts
    except ValueError:
        parts = file.parts
    return any(p.startswith(".") for p in parts)


def relative_source(root: Path, file: Path) -> str:
    """Return ``file`` relative to ``root`` with ``/`` separators (absolute if outside root)."""
    try:
        return file.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return file.resolve().as_posix()


def kind_of(source: str) -> SourceKind:
    """Classify a source path into a :data:`SourceKind`."""
    first = source.split("/", 1)[0].lower()
    if first == "adr":
        return "adr"
    if first == "build" or source.endswith(".json"):
        return "result"
    if "/" not in source and source.lower().startswith("readme"):
        return "readme"
    return "doc"


def load_text(root: Path, file: Path) -> Document:
    """Load a Markdown or text file as a :class:`Document`."""
    raw = file.read_bytes()
    text = raw.decode("utf-8", errors="replace")
    source = relative_source(root, file)
    markdown = file.suffix.lower() in {".md", ".markdown"}
    return Document(
        source=source,
        kind=kind_of(source),
        title=(first_heading(text) if markdown else None) or _title_from_name(file),
        text=text,
        markdown=markdown,
        content_hash=hashlib.sha256(raw).hexdigest(),
    )


def first_heading(text: str) -> str | None:
    """Return the first level-1 ATX heading of a Markdown text, outside code fences."""
    fence: str | None = None
    for line in text.splitlines():
        stripped = line.lstrip()
        if stripped.startswith(("```", "~~~")):
            marker = stripped[:3]
            fence = None if fence == marker else (fence or marker)
            continue
        if fence is None and stripped.startswith("# "):
            return stripped[2:].strip().rstrip("#").strip() or None
    return None


def _title_from_name(file: Path) -> str:
    return file.stem.replace("-", " ").replace("_", " ").strip().capitalize() or file.name


# --- experiment results ------------------------------------------------------------------------


def load_result(root: Path, file: Path) -> Document | None:
    """Render a JSON experiment report to a Markdown document of facts.

    Returns:
        The document, or ``None`` when the file is not valid JSON or holds no facts.
    """
    raw = file.read_bytes()
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    source = relative_source(root, file)
    text = render_result(source, data)
    if text is None:
        return None
    return Document(
        source=source,
        kind="result",
        title=_result_title(source),
        text=text,
        markdown=True,
        content_hash=hashlib.sha256(raw).hexdigest(),
    )


def _result_title(source: str) -> str:
    stem = source.rsplit("/", 1)[-1].removesuffix(".json")
    parent = source.rsplit("/", 2)[-2] if source.count("/") >= 1 else ""
    words = " ".join(w for w in (parent, stem) if w and w != "build")
    return "Experiment results: " + words.replace("-", " ").replace("_", " ")


def render_result(source: str, data: Any) -> str | None:
    """Turn a JSON report into Markdown facts, one section per top-level key.

    Scalars become ``- path: value`` lines; lists of records are labelled by their ``name``-like
    field; long numeric series are summarised (count, min, mean, max) instead of listed.

    Args:
        source: The report's source path, named in the title so facts carry their provenance.
        data: The parsed JSON.

    Returns:
        Markdown text, or ``None`` when the report has no facts.
    """
    title = _result_title(source)
    lines = [f"# {title}", "", f"Facts from the report `{source}`.", ""]
    budget = [MAX_FACTS_PER_REPORT]
    if isinstance(data, dict):
        scalars = {k: v for k, v in data.items() if not isinstance(v, dict | list)}
        nested = {k: v for k, v in data.items() if isinstance(v, dict | list)}
        if scalars:
            lines += ["## Summary", ""]
            for key, value in scalars.items():
                lines += _facts([str(key)], value, budget)
            lines.append("")
        for key, value in nested.items():
            lines += [f"## {key}", ""]
            lines += _facts([str(key)], value, budget)
            lines.append("")
    else:
        lines += _facts([], data, budget)
    facts = [ln for ln in lines if ln.startswith("- ")]
    return "\n".join(lines).rstrip() + "\n" if facts else None


_LABEL_KEYS = ("name", "backend", "model", "engine", "id", "label", "key", "stack", "strategy")


def _facts(path: list[str], value: Any, budget: list[int]) -> list[str]:
    if budget[0] <= 0:
        return []
    if isinstance(value, dict):
        out: list[str] = []
        for key, sub in value.items():
            out += _facts([*path, str(key)], sub, budget)
        return out
    if isinstance(value, list):
        return _list_facts(path, value, budget)
    budget[0] -= 1
    label = " ".join(path) if path else "value"
    return [f"- {label}: {_scalar(value)}"]


def _list_facts(path: list[str], items: list[Any], budget: list[int]) -> list[str]:
    label = " ".join(path) if path else "values"
    if not items:
        return []
    numbers = [x for x in items if isinstance(x, int | float) and not isinstance(x, bool)]
    if items and len(numbers) == len(items) and len(items) > 8:
        finite = [float(x) for x in numbers if math.isfinite(x)]
        budget[0] -= 1
        if not finite:
            return [f"- {label}: {len(items)} values"]
        mean = sum(finite) / len(finite)
        return [
            f"- {label}: {len(items)} values, min {_scalar(min(finite))}, "
            f"mean {_scalar(mean)}, max {_scalar(max(finite))}"
        ]
    if all(not isinstance(x, dict | list) for x in items):
        budget[0] -= 1
        shown = ", ".join(_scalar(x) for x in items[:MAX_LIST_ITEMS])
        more = f" (and {len(items) - MAX_LIST_ITEMS} more)" if len(items) > MAX_LIST_ITEMS else ""
        return [f"- {label}: {shown}{more}"]
    out: list[str] = []
    for index, item in enumerate(items[:MAX_LIST_ITEMS]):
        name = _record_label(item) or f"#{index + 1}"
        if isinstance(item, dict):
            rest = {k: v for k, v in item.items() if _record_label({k: v}) != name}
            out += _facts([*path, name], rest, budget)
        else:
            out += _facts([*path, name], item, budget)
    return out


def _record_label(item: Any) -> str | None:
    if not isinstance(item, dict):
        return None
    for key in _LABEL_KEYS:
        value = item.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool):
            return str(value)
    return None


def _scalar(value: Any) -> str:
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.4g}" if abs(value) < 1e6 else f"{value:.6g}"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    return text if len(text) <= 200 else text[:197] + "..."
