"""Retrieval-augmented generation over the lab's docs and experiment results.

The pipeline is ingest -> chunk -> embed -> index -> search -> generate -> evaluate:

- :mod:`~workloads.rag.sources` finds Markdown/text documents and renders JSON experiment reports
  under ``build/`` to short text facts;
- :mod:`~workloads.rag.chunking` splits documents along Markdown headings with overlap;
- :mod:`~workloads.rag.embeddings` turns chunks into vectors (all-MiniLM-L6-v2 offline, or an
  OpenAI-compatible embeddings endpoint);
- :mod:`~workloads.rag.stores` holds one vector-store interface with Qdrant and Milvus backends,
  each embedded (Qdrant Edge, Milvus Lite) or a server from the stack outputs;
- :mod:`~workloads.rag.ingest` does incremental ingestion by content hash and zero-downtime
  re-indexing behind an alias;
- :mod:`~workloads.rag.generation` answers with citations, through an OpenAI-compatible chat
  endpoint or extractively;
- :mod:`~workloads.rag.evaluation` scores retrieval against a labelled question set.

Importing this package is cheap: engines and models load only when used.
"""
