"""Reranking: fine-tune the second stage (a cross-encoder) and use it as a LlamaIndex node postprocessor.

A drop-in for llama-index-finetuning's ``llama_index.finetuning.cross_encoders``::

    from llama_index_bge_finetune.reranking import (
        CrossEncoderFinetuneEngine, CrossEncoderFinetuningDatasetSample,
        generate_ce_fine_tuning_dataset, generate_synthetic_queries_over_documents,
    )

plus data without another LLM call (:func:`samples_from_qa_dataset`: positives from a
question/passage dataset, negatives mined with the embedding model), a postprocessor that blends
the reranker with the retriever's scores (:class:`FinetunedRerank`), and retrieve-then-rerank
evaluation (:func:`rerank_evaluation`, and :class:`Reranking` as a row of ``compare_models``). Names load lazily, so importing this package does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "CrossEncoderFinetuneEngine": "llama_index_bge_finetune.reranking.engine",
    "CrossEncoderFinetuningDatasetSample": "llama_index_bge_finetune.reranking.dataset",
    "samples_from_qa_dataset": "llama_index_bge_finetune.reranking.dataset",
    "candidates_from_qa_dataset": "llama_index_bge_finetune.reranking.dataset",
    "save_samples": "llama_index_bge_finetune.reranking.dataset",
    "load_samples": "llama_index_bge_finetune.reranking.dataset",
    "generate_ce_fine_tuning_dataset": "llama_index_bge_finetune.reranking.judge",
    "generate_synthetic_queries_over_documents": "llama_index_bge_finetune.reranking.judge",
    "RelevanceJudge": "llama_index_bge_finetune.reranking.judge",
    "FinetunedRerank": "llama_index_bge_finetune.reranking.postprocessor",
    "CrossEncoderScorer": "llama_index_bge_finetune.reranking.scoring",
    "choose_blend_weight": "llama_index_bge_finetune.reranking.scoring",
    "BlendChoice": "llama_index_bge_finetune.reranking.scoring",
    "rerank_evaluation": "llama_index_bge_finetune.reranking.evaluation",
    "Reranking": "llama_index_bge_finetune.reranking.evaluation",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'llama_index_bge_finetune.reranking' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
