"""Retrieval evaluation: metrics at k, a fast embedding evaluator, any-retriever evaluation, model comparison.

Evaluate base vs fine-tuned on the same questions, with bootstrap confidence intervals and a paired test::

    from llama_index_bge_finetune.evaluation import compare_models

    cmp = compare_models({"base": "BAAI/bge-small-en-v1.5", "fine-tuned": "out/model"}, "val.json")
    cmp.save("report/")   # report.md, report.json, chart.png, report.html

Add a hosted model (any OpenAI-compatible embeddings endpoint; vectors cached on disk, paid once)
with ``{"ada": HostedEmbeddingEncoder("text-embedding-3-small")}``.

Names load lazily, so importing this package does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "RetrieverEvaluator": "llama_index_bge_finetune.evaluation.retriever_evaluator",
    "compare_models": "llama_index_bge_finetune.report.compare",
    "evaluate_models": "llama_index_bge_finetune.evaluation.model_runs",
    "SecondStage": "llama_index_bge_finetune.evaluation.model_runs",
    "Hybrid": "llama_index_bge_finetune.evaluation.hybrid",
    "ModelComparison": "llama_index_bge_finetune.evaluation.comparison",
    "ComparisonReport": "llama_index_bge_finetune.report.comparison_report",
    "HostedEmbeddingEncoder": "llama_index_bge_finetune.encoding.hosted",
    "evaluate_embeddings": "llama_index_bge_finetune.evaluation.embedding_evaluator",
    "EvaluationResult": "llama_index_bge_finetune.evaluation.results",
    "QueryResult": "llama_index_bge_finetune.evaluation.results",
    "EvalModel": "llama_index_bge_finetune.encoding.encoders",
    "EmbeddingCache": "llama_index_bge_finetune.retrieval.corpus_cache",
    "score_ranking": "llama_index_bge_finetune.evaluation.metrics",
    "load_beir": "llama_index_bge_finetune.evaluation.beir",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'llama_index_bge_finetune.evaluation' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
