"""Exact nDCG@10, hit rate@5 and MRR@10 of a model on a dataset, with numpy top-k.

Used by the forgetting guard and the model card; the full evaluation suite lives in
``llama_index_bge_finetune.evaluation``.

Example::

    from llama_index_bge_finetune.training.retrieval_metrics import retrieval_scores

    scores = retrieval_scores(model, dataset, query_prompt=None)
    scores["ndcg@10"]
"""

from __future__ import annotations

import math
import os
from typing import Dict, Optional, Union

import numpy as np

from llama_index_bge_finetune.training.embedding_cache import encode_cached

PathLike = Union[str, os.PathLike]


def retrieval_scores(
    model: "SentenceTransformer",  # noqa: F821
    dataset: "EmbeddingQAFinetuneDataset",  # noqa: F821
    query_prompt: Optional[str] = None,
    cache_dir: Optional[PathLike] = None,
    model_key: str = "",
    batch_size: int = 64,
) -> Dict[str, float]:
    """nDCG@10, hit rate@5 and MRR@10 (binary relevance) of ``model`` retrieving from ``dataset.corpus``.

    ``cache_dir`` with ``model_key`` reuses corpus embeddings (only pass it for unchanged weights).
    """
    doc_ids = list(dataset.corpus)
    qids = [q for q in dataset.queries if dataset.relevant_docs.get(q)]
    docs = encode_cached(model, [dataset.corpus[d] for d in doc_ids], cache_dir if model_key else None, model_key, batch_size=batch_size)
    qs = encode_cached(model, [dataset.queries[q] for q in qids], None, model_key, prompt=query_prompt, batch_size=batch_size)
    k = min(10, len(doc_ids))
    scores = qs @ docs.T
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    ndcg = hit5 = mrr = 0.0
    for row, q in enumerate(qids):
        ranked = top[row][np.argsort(-scores[row, top[row]], kind="stable")]
        rel = set(dataset.relevant_docs[q])
        gains = [1.0 if doc_ids[i] in rel else 0.0 for i in ranked]
        dcg = sum(g / math.log2(r + 2) for r, g in enumerate(gains))
        ideal = sum(1.0 / math.log2(r + 2) for r in range(min(len(rel), k)))
        ndcg += dcg / ideal
        hit5 += 1.0 if any(gains[:5]) else 0.0
        first = next((r for r, g in enumerate(gains) if g), None)
        mrr += 1.0 / (first + 1) if first is not None else 0.0
    n = max(len(qids), 1)
    return {"ndcg@10": ndcg / n, "hit_rate@5": hit5 / n, "mrr@10": mrr / n, "queries": float(len(qids))}
