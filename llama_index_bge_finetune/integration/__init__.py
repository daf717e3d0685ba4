"""Putting a fine-tuned model into an existing LlamaIndex app.

- :func:`use_finetuned` / :func:`from_finetuned`: the model as ``Settings.embed_model`` or as an
  index's ``embed_model``; :func:`settings_from_service_context` migrates ``ServiceContext`` code.
- :func:`reembed_index`: re-embed an existing index (persisted folder or Qdrant), resumably.
- :func:`record_embed_model`, :func:`check_embed_model`, :func:`load_index`: the stale-vector guard.
- :class:`HybridRetriever`: the retrieval pipeline chosen for the model (dense, BM25 or a hybrid) as a
  LlamaIndex retriever over an existing index.
- :class:`QueryAdapterFinetuneEngine`, :class:`QueryAdapterEmbedding`: a query-side linear adapter
  for indexes that cannot be re-embedded.
"""

import importlib
from typing import Any

from llama_index_bge_finetune.encoding.llamaindex_embedding import from_finetuned
from llama_index_bge_finetune.integration.fingerprint import EmbedModelFingerprint, fingerprint_embed_model
from llama_index_bge_finetune.integration.guard import (
    StaleVectorsWarning,
    UnfingerprintedIndexWarning,
    check_embed_model,
    load_index,
    persisted_at,
    record_embed_model,
    recorded_embed_model,
)
from llama_index_bge_finetune.integration.hybrid_retriever import HybridRetriever
from llama_index_bge_finetune.integration.reembed import reembed_index
from llama_index_bge_finetune.integration.settings import settings_from_service_context, use_finetuned

_LAZY = {  # these import torch; load them on first use
    "QueryAdapterEmbedding": "llama_index_bge_finetune.integration.adapter",
    "QueryAdapterFinetuneEngine": "llama_index_bge_finetune.integration.adapter",
}

__all__ = [
    "EmbedModelFingerprint",
    "HybridRetriever",
    "QueryAdapterEmbedding",
    "QueryAdapterFinetuneEngine",
    "StaleVectorsWarning",
    "UnfingerprintedIndexWarning",
    "check_embed_model",
    "fingerprint_embed_model",
    "from_finetuned",
    "load_index",
    "persisted_at",
    "record_embed_model",
    "recorded_embed_model",
    "reembed_index",
    "settings_from_service_context",
    "use_finetuned",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
