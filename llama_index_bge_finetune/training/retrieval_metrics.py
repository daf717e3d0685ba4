"""nDCG@10, hit rate@5 and MRR@10 of a sentence-transformers model on a dataset, for training-time checks.

Used by the forgetting guard and the benchmarks; the search and the metric definitions are the
evaluation suite's (``llama_index_bge_finetune.evaluation``), so both always agree.

Example::

    from llama_index_bge_finetune.training.retrieval_metrics import retrieval_scores

    scores = retrieval_scores(model, dataset, query_prompt=None)
    scores["ndcg@10"]
"""

from __future__ import annotations

import os
from typing import Dict, Optional, Union

from llama_index_bge_finetune.evaluation.metrics import score_ranking
from llama_index_bge_finetune.retrieval.corpus_cache import encode_cached
from llama_index_bge_finetune.retrieval.search import search

PathLike = Union[str, os.PathLike]
HEADLINE = ("ndcg@10", "hit_rate@5", "mrr@10")


def retrieval_scores(
    model: "SentenceTransformer",  # noqa: F821
    dataset: "EmbeddingQAFinetuneDataset",  # noqa: F821
    query_prompt: Optional[str] = None,
    cache_dir: Optional[PathLike] = None,
    model_key: str = "",
    batch_size: int = 64,
) -> Dict[str, float]:
    """nDCG@10, hit rate@5 and MRR@10 (binary relevance) of ``model`` retrieving from ``dataset.corpus``.

    ``cache_dir`` keeps the corpus vectors in the corpus-embedding cache, keyed by the model's
    fingerprint (its weights and settings), so changed weights are never served stale vectors.
    ``model_key`` is accepted for older callers and not used.
    """
    doc_ids = list(dataset.corpus)
    qids = [q for q in dataset.queries if dataset.relevant_docs.get(q)]
    docs = encode_cached(model, [dataset.corpus[d] for d in doc_ids], cache_dir, batch_size=batch_size)
    qs = encode_cached(model, [dataset.queries[q] for q in qids], None, prompt=query_prompt, batch_size=batch_size)
    idx = search(qs, docs, 10, doc_ids).indices
    totals = dict.fromkeys(HEADLINE, 0.0)
    for row, q in enumerate(qids):
        scores = score_ranking([doc_ids[i] for i in idx[row]], dict.fromkeys(dataset.relevant_docs[q], 1.0), (5, 10))
        for key in HEADLINE:
            totals[key] += scores[key]
    n = max(len(qids), 1)
    return {**{key: value / n for key, value in totals.items()}, "queries": float(len(qids))}
