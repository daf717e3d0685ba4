"""Fine-tune BGE (or any sentence-transformers) embedding models for a LlamaIndex app.

The curated API, loaded lazily so that ``import llama_index_bge_finetune`` stays cheap::

    from llama_index_bge_finetune import (
        generate_qa_embedding_pairs, SentenceTransformersFinetuneEngine, use_finetuned,
    )
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    # dataset and errors
    "EmbeddingQAFinetuneDataset": "llama_index_bge_finetune.dataset",
    "BgeFinetuneError": "llama_index_bge_finetune.errors",
    "DatasetError": "llama_index_bge_finetune.errors",
    "resolve_base_model": "llama_index_bge_finetune.models",
    # generation
    "generate_qa_embedding_pairs": "llama_index_bge_finetune.generation",
    "QuestionGenerator": "llama_index_bge_finetune.generation",
    "BatchQuestionGenerator": "llama_index_bge_finetune.generation",
    "OfflineQuestionGenerator": "llama_index_bge_finetune.generation",
    "QuestionGenerationTransform": "llama_index_bge_finetune.generation",
    "QueryLogRecorder": "llama_index_bge_finetune.generation",
    "default_generator": "llama_index_bge_finetune.generation",
    # training
    "SentenceTransformersFinetuneEngine": "llama_index_bge_finetune.training",
    # reranking
    "CrossEncoderFinetuneEngine": "llama_index_bge_finetune.reranking",
    "CrossEncoderFinetuningDatasetSample": "llama_index_bge_finetune.reranking",
    "FinetunedRerank": "llama_index_bge_finetune.reranking",
    # corpus encoding (local or on Ray)
    "RayEncodeBackend": "llama_index_bge_finetune.encoding",
    # evaluation
    "RetrieverEvaluator": "llama_index_bge_finetune.evaluation",
    "compare_models": "llama_index_bge_finetune.evaluation",
    # integration
    "use_finetuned": "llama_index_bge_finetune.integration",
    "from_finetuned": "llama_index_bge_finetune.integration",
    "reembed_index": "llama_index_bge_finetune.integration",
    "QueryAdapterFinetuneEngine": "llama_index_bge_finetune.integration",
    "QueryAdapterEmbedding": "llama_index_bge_finetune.integration",
    "load_index": "llama_index_bge_finetune.integration",
    "HybridRetriever": "llama_index_bge_finetune.integration",
    "record_embed_model": "llama_index_bge_finetune.integration",
    "check_embed_model": "llama_index_bge_finetune.integration",
    "settings_from_service_context": "llama_index_bge_finetune.integration",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'llama_index_bge_finetune' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
