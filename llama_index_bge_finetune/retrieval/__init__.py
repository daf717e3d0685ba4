"""Retrieval: vectors on disk, the corpus-embedding cache, exact and FAISS top-k search, BM25 and score fusion.

Everything here finds passages for questions; nothing here scores or reports. Names load lazily,
so importing this package imports neither torch nor faiss::

    from llama_index_bge_finetune.retrieval.search import search

    found = search(query_vectors, corpus_vectors, k=10, corpus_ids=ids)
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "BM25Index": "llama_index_bge_finetune.retrieval.bm25",
    "BM25Settings": "llama_index_bge_finetune.retrieval.bm25",
    "FusionSpec": "llama_index_bge_finetune.retrieval.fusion",
    "fuse": "llama_index_bge_finetune.retrieval.fusion",
    "fuse_top_k": "llama_index_bge_finetune.retrieval.fusion",
    "RetrievalConfig": "llama_index_bge_finetune.retrieval.pipeline_config",
    "EmbeddingCache": "llama_index_bge_finetune.retrieval.corpus_cache",
    "SearchResult": "llama_index_bge_finetune.retrieval.search",
    "encode_cached": "llama_index_bge_finetune.retrieval.corpus_cache",
    "read_vectors": "llama_index_bge_finetune.retrieval.vector_file",
    "write_vectors": "llama_index_bge_finetune.retrieval.vector_file",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
