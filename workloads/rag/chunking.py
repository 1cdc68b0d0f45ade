"""Markdown-heading-aware chunking with overlap.

A document is cut into sections at its ATX headings (``#`` to ``######``, ignoring ``#`` lines
inside code fences); every chunk belongs to exactly one section and carries the section's heading
path (``Title > Section > Subsection``) as metadata. Inside a section the text is packed greedily
into chunks of at most ``max_tokens``, preferring to break between blocks (paragraphs, list
items, code blocks, tables), then between sentences or lines, and only as a last resort inside a
sentence. Consecutive chunks of one section share ``overlap_tokens`` of text so a fact that
straddles a boundary is whole in at least one chunk; overlap never crosses a heading because
the next section is about something else.

Token counts come from a pluggable function: the embedder's own tokenizer at ingestion (the
model truncates at its limit, so counts must be real), a cheap estimate elsewhere.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from workloads.rag.sources import Document

TokenCounter = Callable[[str], int]

CHUNKER_VERSION = "1"
"""Bumped when chunk boundaries change, so every document is re-chunked on the next ingestion."""

CHUNK_ID_NAMESPACE = uuid.UUID("6f1c1d2e-3b0a-5c61-9a57-1f0f8e2a4b10")

_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_SENTENCE_END = re.compile(r"(?<=[.!?:;])\s+(?=\S)")
_WORDISH = re.compile(r"\w+|[^\w\s]")
_LIST_ITEM = re.compile(r"^\s{0,3}(?:[-*+]|\d{1,3}[.)])\s+")


def estimate_tokens(text: str) -> int:
    """Estimate WordPiece tokens: words and punctuation marks, plus a share for long words."""
    count = 0
    for match in _WORDISH.finditer(text):
        word = match.group()
        count += 1 + max(0, len(word) - 6) // 5
    return count


@dataclass(frozen=True)
class Chunk:
    """A piece of a document, ready to embed and index.

    Attributes:
        id: Deterministic UUID from the source, heading path and text (and the occurrence number
            of identical text), so re-ingesting unchanged content produces the same ids and an
            interrupted ingestion leaves no duplicates.
        source: Source path of the document.
        kind: Source kind (``doc``, ``adr``, ``readme``, ``result``).
        title: Document title.
        heading: Heading path, ``" > "``-joined; the title alone for text before any heading.
        text: The chunk's text (Markdown).
        position: Ordinal of the chunk within its document.
        tokens: Token count of ``text``.
    """

    id: str
    source: str
    kind: str
    title: str
    heading: str
    text: str
    position: int
    tokens: int

    @property
    def embed_text(self) -> str:
        """Text given to the embedder: the heading path first, because it says what the text is about."""
        return f"{self.heading}\n{self.text}" if self.heading else self.text


@dataclass
class _Piece:
    text: str
    tokens: int
    block: int
    fence: str | None = None  # opening fence line when the piece is a line of a code block


@dataclass
class _Section:
    path: list[str]
    lines: list[str] = field(default_factory=list)


def chunk_document(
    doc: Document,
    *,
    max_tokens: int = 200,
    overlap_tokens: int = 40,
    count_tokens: TokenCounter = estimate_tokens,
) -> list[Chunk]:
    """Chunk a document along its headings.

    Args:
        doc: The document.
        max_tokens: Upper bound on a chunk's tokens (the heading path is added at embedding time).
        overlap_tokens: Tokens of trailing text repeated at the start of the next chunk of the
            same section.
        count_tokens: Token counter; use the embedder's tokenizer for exact budgets.

    Returns:
        Chunks in document order with positions ``0..n-1``.

    Raises:
        ValueError: If ``overlap_tokens`` is not smaller than ``max_tokens``.
    """
    if overlap_tokens >= max_tokens:
        raise ValueError("overlap_tokens must be smaller than max_tokens")
    sections = (
        _sections(doc.text, doc.title) if doc.markdown else [_Section([doc.title], doc.text.splitlines())]
    )
    texts: list[tuple[str, str]] = []
    for section in sections:
        heading = " > ".join(section.path)
        pieces = _pieces(section.lines, max_tokens, count_tokens)
        for body in _pack(pieces, max_tokens, overlap_tokens, count_tokens):
            texts.append((heading, body))
    seen: dict[str, int] = {}
    chunks = []
    for position, (heading, body) in enumerate(texts):
        digest = hashlib.sha256(f"{heading}\x00{body}".encode()).hexdigest()
        occurrence = seen.get(digest, 0)
        seen[digest] = occurrence + 1
        chunk_id = uuid.uuid5(CHUNK_ID_NAMESPACE, f"{doc.source}\x00{digest}\x00{occurrence}")
        chunks.append(
            Chunk(
                id=str(chunk_id),
                source=doc.source,
                kind=doc.kind,
                title=doc.title,
                heading=heading,
                text=body,
                position=position,
                tokens=count_tokens(body),
            )
        )
    return chunks


def _sections(text: str, title: str) -> list[_Section]:
    """Split Markdown into sections; each keeps the path of headings above it."""
    lines = _strip_front_matter(text.splitlines())
    stack: list[tuple[int, str]] = []
    current = _Section([title])
    sections = [current]
    fence: str | None = None
    for line in lines:
        fence_match = _FENCE.match(line)
        if fence_match:
            marker = fence_match.group(1)
            if fence is None:
                fence = marker
            elif marker[0] == fence[0] and len(marker) >= len(fence):
                fence = None
            current.lines.append(line)
            continue
        heading = _HEADING.match(line) if fence is None else None
        if heading:
            level = len(heading.group(1))
            name = _clean_heading(heading.group(2))
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, name))
            path = [name for _, name in stack]
            if stack[0][0] != 1 and title:
                path = [title, *path]
            current = _Section(path)
            sections.append(current)
            continue
        current.lines.append(line)
    return [s for s in sections if any(ln.strip() for ln in s.lines)]


def _strip_front_matter(lines: list[str]) -> list[str]:
    if lines and lines[0].strip() == "---":
        for index in range(1, min(len(lines), 200)):
            if lines[index].strip() in {"---", "..."}:
                return lines[index + 1 :]
    return lines


def _clean_heading(text: str) -> str:
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # links -> their text
    return text.replace("`", "").replace("*", "").strip()


def _blocks(lines: list[str]) -> Iterator[tuple[str, list[str], str | None]]:
    """Yield ``(kind, lines, fence)`` blocks: ``code``, ``table``, ``list`` or ``para``."""
    index = 0
    while index < len(lines):
        line = lines[index]
        if not line.strip():
            index += 1
            continue
        fence_match = _FENCE.match(line)
        if fence_match:
            marker = fence_match.group(1)
            end = index + 1
            while end < len(lines):
                close = _FENCE.match(lines[end])
                if close and close.group(1)[0] == marker[0] and len(close.group(1)) >= len(marker):
                    break
                end += 1
            yield "code", lines[index + 1 : end], line.strip()
            index = end + 1
            continue
        end = index
        while end < len(lines) and lines[end].strip() and not _FENCE.match(lines[end]):
            end += 1
        block = lines[index:end]
        if all(ln.lstrip().startswith("|") for ln in block):
            yield "table", block, None
        elif _LIST_ITEM.match(block[0]):
            yield "list", block, None
        else:
            yield "para", block, None
        index = end


def _pieces(lines: list[str], max_tokens: int, count: TokenCounter) -> list[_Piece]:
    """Cut a section into the smallest units the packer may break between."""
    pieces: list[_Piece] = []
    for number, (kind, block, fence) in enumerate(_blocks(lines)):
        text = "\n".join(block)
        if kind == "code":
            whole = f"{fence}\n{text}\n{_closing(fence)}"
            if count(whole) <= max_tokens:
                pieces.append(_Piece(whole, count(whole), number))
            else:
                for line in block:
                    for part in _split_long(line, max_tokens - 8, count):
                        pieces.append(_Piece(part, count(part), number, fence=fence))
            continue
        tokens = count(text)
        if tokens <= max_tokens and kind != "list":
            pieces.append(_Piece(text, tokens, number))
            continue
        if kind in {"list", "table"}:
            units = _list_items(block) if kind == "list" else block
        else:
            units = _SENTENCE_END.split(" ".join(ln.strip() for ln in block))
        for unit in units:
            for part in _split_long(unit, max_tokens, count):
                pieces.append(_Piece(part, count(part), number))
    return pieces


def _list_items(block: list[str]) -> list[str]:
    items: list[str] = []
    for line in block:
        if _LIST_ITEM.match(line) or not items:
            items.append(line)
        else:
            items[-1] += "\n" + line
    return items


def _split_long(text: str, max_tokens: int, count: TokenCounter) -> list[str]:
    """Split text longer than ``max_tokens`` at word boundaries (last resort)."""
    if count(text) <= max_tokens:
        return [text]
    parts: list[str] = []
    current: list[str] = []
    for word in text.split(" "):
        candidate = " ".join([*current, word])
        if current and count(candidate) > max_tokens:
            parts.append(" ".join(current))
            current = [word]
        else:
            current.append(word)
    if current:
        parts.append(" ".join(current))
    # A single "word" longer than the budget (a URL, a hash) is cut by characters.
    out: list[str] = []
    for part in parts:
        while count(part) > max_tokens and len(part) > 1:
            cut = max(1, len(part) * max_tokens // max(count(part), 1))
            out.append(part[:cut])
            part = part[cut:]
        out.append(part)
    return [p for p in out if p.strip()]


def _closing(fence: str | None) -> str:
    if not fence:
        return ""
    marker = re.match(r"`+|~+", fence)
    return marker.group() if marker else "```"


def _render(pieces: list[_Piece]) -> str:
    """Join pieces: blank lines between blocks, code lines re-fenced, sentences by spaces."""
    out: list[str] = []
    index = 0
    while index < len(pieces):
        piece = pieces[index]
        if piece.fence is not None:
            group = [piece]
            while index + 1 < len(pieces) and pieces[index + 1].block == piece.block:
                index += 1
                group.append(pieces[index])
            body = "\n".join(p.text for p in group)
            out.append(f"{piece.fence}\n{body}\n{_closing(piece.fence)}")
        else:
            group = [piece]
            while (
                index + 1 < len(pieces)
                and pieces[index + 1].block == piece.block
                and pieces[index + 1].fence is None
            ):
                index += 1
                group.append(pieces[index])
            joiner = (
                "\n"
                if any("\n" in p.text or p.text.lstrip().startswith(("|", "-", "*")) for p in group)
                else " "
            )
            out.append(joiner.join(p.text for p in group))
        index += 1
    return "\n\n".join(out).strip()


def _pack(pieces: list[_Piece], max_tokens: int, overlap: int, count: TokenCounter) -> list[str]:
    """Greedily pack pieces into chunks, carrying ``overlap`` tokens of tail into the next one."""
    chunks: list[str] = []
    current: list[_Piece] = []
    size = 0
    fresh = 0  # pieces in `current` that are not overlap from the previous chunk
    for piece in pieces:
        separator = 2 if current else 0
        if current and size + separator + piece.tokens > max_tokens:
            if fresh:
                chunks.append(_render(current))
            tail: list[_Piece] = []
            tail_size = 0
            for previous in reversed(current):
                if tail_size + previous.tokens > overlap:
                    break
                tail.insert(0, previous)
                tail_size += previous.tokens
            while tail and tail_size + piece.tokens + 2 > max_tokens:
                tail_size -= tail.pop(0).tokens
            current, size, fresh = tail, tail_size, 0
        current.append(piece)
        size += piece.tokens + (2 if len(current) > 1 else 0)
        fresh += 1
    if current and fresh:
        chunks.append(_render(current))
    return [c for c in chunks if c.strip()]
