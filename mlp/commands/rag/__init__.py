"""``mlp rag``: retrieval-augmented generation over the lab's docs and experiment results.

The commands live in modules by job: ``index`` (ingest, reindex), ``query`` (ask, search),
``evaluate`` (eval, bench) and ``ops`` (collections, alias, drop, backup, restore, crash-test);
``options`` holds what they share.

Exit codes (``mlp.common.ExitCode``): 0 success; 1 an operation failed (no index, engine busy,
endpoint down); 2 bad input (usage, malformed filter, empty question); 3 a verification failed
(restore count mismatch, crash test, out-of-date question set).
"""

from __future__ import annotations

import click

from .evaluate import bench, eval_
from .index import ingest, reindex
from .ops import alias, backup, collections, crash_test, drop, restore
from .query import ask, search
from .serve import serve, serve_bench


@click.group()
def rag() -> None:
    """Ask the lab's docs and experiment results, with cited answers.

    `mlp rag ingest` indexes README.md, docs/, adr/ and the JSON reports under build/ into
    Qdrant and Milvus (embedded engines locally, the stack's servers with --target). Re-running
    it only embeds what changed. `mlp rag ask "How do I share one GPU between pods?"` answers
    with citations: through an OpenAI-compatible chat endpoint when MLP_RAG_LLM_URL (or
    --llm-url) is set, otherwise extractively, quoting the retrieved passages.
    `mlp rag eval` scores retrieval (recall@k, MRR, latency) into build/rag/eval.json.

    Local state lives in .mlp/rag/ (or $MLP_HOME/rag).
    """


for _command in (
    ingest,
    reindex,
    ask,
    search,
    eval_,
    bench,
    collections,
    alias,
    drop,
    backup,
    restore,
    crash_test,
    serve,
    serve_bench,
):
    rag.add_command(_command)
