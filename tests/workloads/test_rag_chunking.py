"""Heading-aware chunking: sections, heading paths, budgets, overlap, deterministic ids."""

from __future__ import annotations

import hashlib

import pytest

from workloads.rag.chunking import chunk_document, estimate_tokens
from workloads.rag.sources import Document


def doc(text: str, source: str = "docs/guide.md", markdown: bool = True, title: str = "Guide") -> Document:
    return Document(source, "doc", title, text, markdown, hashlib.sha256(text.encode()).hexdigest())


GUIDE = """---
status: accepted
---
# Guide

Intro paragraph about the platform.

## Install

Run the installer. Then check the version.

```bash
# not a heading, a shell comment
make install
```

### On a laptop

Use kind or an existing context.

## Operate

Watch the dashboards.
"""


def test_sections_follow_headings_and_keep_their_path() -> None:
    chunks = chunk_document(doc(GUIDE))
    headings = [c.heading for c in chunks]
    assert headings == ["Guide", "Guide > Install", "Guide > Install > On a laptop", "Guide > Operate"]
    install = chunks[1].text
    assert "# not a heading, a shell comment" in install  # a '#' line inside a fence is code
    assert install.count("```") == 2
    assert "status: accepted" not in "".join(c.text for c in chunks)  # front matter dropped
    assert [c.position for c in chunks] == [0, 1, 2, 3]
    assert all(c.source == "docs/guide.md" and c.kind == "doc" and c.title == "Guide" for c in chunks)


def test_documents_without_h1_get_their_title_as_root() -> None:
    chunks = chunk_document(doc("## Only a section\n\nBody text here.\n", title="Notes"))
    assert chunks[0].heading == "Notes > Only a section"


def test_embed_text_starts_with_the_heading_path() -> None:
    chunk = chunk_document(doc(GUIDE))[2]
    assert chunk.embed_text.startswith("Guide > Install > On a laptop\n")


def long_section(sentences: int) -> str:
    body = " ".join(f"Sentence number {i} explains one more detail of GPU sharing." for i in range(sentences))
    return f"# Guide\n\n## Long\n\n{body}\n"


@pytest.mark.parametrize(("max_tokens", "overlap"), [(64, 0), (64, 16), (120, 40), (200, 40)])
def test_chunks_respect_the_budget_and_overlap(max_tokens: int, overlap: int) -> None:
    chunks = chunk_document(doc(long_section(60)), max_tokens=max_tokens, overlap_tokens=overlap)
    assert len(chunks) > 2
    assert all(estimate_tokens(c.text) <= max_tokens for c in chunks)
    for before, after in zip(chunks, chunks[1:], strict=False):
        first_sentence = after.text.split(". ")[0]
        if overlap:
            assert first_sentence in before.text  # the next chunk starts inside the previous one
        else:
            assert first_sentence not in before.text
    # Every sentence survives somewhere.
    joined = " ".join(c.text for c in chunks)
    assert all(f"Sentence number {i} " in joined for i in range(60))


def test_overlap_never_crosses_a_heading() -> None:
    text = long_section(30) + "\n## Next\n\nA short unrelated section.\n"
    chunks = chunk_document(doc(text), max_tokens=64, overlap_tokens=20)
    assert chunks[-1].heading == "Guide > Next"
    assert chunks[-1].text == "A short unrelated section."


def test_oversized_code_blocks_are_split_and_refenced() -> None:
    code = "\n".join(f"line_{i} = compute({i}) + offset" for i in range(80))
    text = f"# Guide\n\n## Code\n\n```python\n{code}\n```\n"
    chunks = chunk_document(doc(text), max_tokens=60, overlap_tokens=0)
    assert len(chunks) > 1
    for chunk in chunks:
        assert chunk.text.startswith("```python\n") and chunk.text.endswith("\n```")


def test_a_single_huge_word_is_cut() -> None:
    text = "# Guide\n\n" + "x" * 5000 + "\n"
    chunks = chunk_document(doc(text), max_tokens=50, overlap_tokens=0)
    assert "".join(c.text for c in chunks) == "x" * 5000
    assert all(estimate_tokens(c.text) <= 50 for c in chunks)


def test_lists_and_tables_break_between_items() -> None:
    items = "\n".join(f"- item {i} with some words to make it longer" for i in range(40))
    chunks = chunk_document(doc(f"# Guide\n\n{items}\n"), max_tokens=60, overlap_tokens=0)
    for chunk in chunks:
        assert all(line.startswith("- item ") for line in chunk.text.splitlines())


def test_ids_are_deterministic_and_content_addressed() -> None:
    first = chunk_document(doc(GUIDE))
    again = chunk_document(doc(GUIDE))
    assert [c.id for c in first] == [c.id for c in again]
    edited = chunk_document(doc(GUIDE.replace("Watch the dashboards.", "Watch the alerts.")))
    assert [c.id for c in first[:3]] == [c.id for c in edited[:3]]  # untouched sections keep ids
    assert first[3].id != edited[3].id
    other_file = chunk_document(doc(GUIDE, source="docs/other.md"))
    assert not {c.id for c in first} & {c.id for c in other_file}


def test_repeated_identical_chunks_get_distinct_ids() -> None:
    text = "# Guide\n\n## A\n\nSame.\n\n## A\n\nSame.\n"
    chunks = chunk_document(doc(text))
    assert len(chunks) == 2 and chunks[0].id != chunks[1].id


def test_plain_text_is_chunked_by_paragraph() -> None:
    text = "\n\n".join(f"Paragraph {i} about spot instances and scale to zero." for i in range(30))
    chunks = chunk_document(
        doc(text, source="notes.txt", markdown=False, title="Notes"), max_tokens=50, overlap_tokens=0
    )
    assert len(chunks) > 1 and all(c.heading == "Notes" for c in chunks)


def test_custom_token_counter_is_used() -> None:
    def count_chars(text: str) -> int:
        return len(text)

    chunks = chunk_document(doc(long_section(10)), max_tokens=100, overlap_tokens=0, count_tokens=count_chars)
    assert all(len(c.text) <= 100 for c in chunks)
    assert all(c.tokens == len(c.text) for c in chunks)


def test_overlap_must_be_smaller_than_the_budget() -> None:
    with pytest.raises(ValueError, match="overlap"):
        chunk_document(doc(GUIDE), max_tokens=40, overlap_tokens=40)
