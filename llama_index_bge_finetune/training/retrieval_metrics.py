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
from typing import Dict, List, NamedTuple, Optional, Union

import numpy as np

from llama_index_bge_finetune.evaluation.metrics import score_ranking
from llama_index_bge_finetune.retrieval.corpus_cache import encode_cached
from llama_index_bge_finetune.retrieval.search import search

PathLike = Union[str, os.PathLike]
HEADLINE = ("ndcg@10", "hit_rate@5", "mrr@10")


class RetrievalVectors(NamedTuple):
    """The vectors :func:`retrieval_scores` ranks with: scorable question ids, corpus ids, and both L2-normalised matrices.

    ``queries @ corpus.T`` is every question's dense score against the whole corpus (for fusion with BM25).
    """

    qids: List[str]
    doc_ids: List[str]
    queries: np.ndarray
    corpus: np.ndarray


def retrieval_vectors(
    model: "SentenceTransformer",  # noqa: F821
    dataset: "EmbeddingQAFinetuneDataset",  # noqa: F821
    query_prompt: Optional[str] = None,
    cache_dir: Optional[PathLike] = None,
    batch_size: int = 64,
) -> RetrievalVectors:
    """Encode ``dataset``'s corpus and its questions that have a relevant document, as :func:`retrieval_scores` does.

    Example::

        vectors = retrieval_vectors(model, dataset)
        scores = scores_from_vectors(vectors, dataset)      # == retrieval_scores(model, dataset)
        dense = vectors.queries @ vectors.corpus.T          # whole-corpus scores, for fusion
    """
    doc_ids = list(dataset.corpus)
    qids = [q for q in dataset.queries if dataset.relevant_docs.get(q)]
    docs = encode_cached(model, [dataset.corpus[d] for d in doc_ids], cache_dir, batch_size=batch_size)
    qs = encode_cached(model, [dataset.queries[q] for q in qids], None, prompt=query_prompt, batch_size=batch_size)
    return RetrievalVectors(qids, doc_ids, np.asarray(qs), np.asarray(docs))


def scores_from_vectors(vectors: RetrievalVectors, dataset: "EmbeddingQAFinetuneDataset") -> Dict[str, float]:  # noqa: F821
    """nDCG@10, hit rate@5 and MRR@10 (binary relevance) of exact search over ``vectors``, plus the question count."""
    doc_ids = vectors.doc_ids
    idx = search(vectors.queries, vectors.corpus, 10, doc_ids).indices
    totals = dict.fromkeys(HEADLINE, 0.0)
    for row, q in enumerate(vectors.qids):
        scores = score_ranking([doc_ids[i] for i in idx[row]], dict.fromkeys(dataset.relevant_docs[q], 1.0), (5, 10))
        for key in HEADLINE:
            totals[key] += scores[key]
    n = max(len(vectors.qids), 1)
    return {**{key: value / n for key, value in totals.items()}, "queries": float(len(vectors.qids))}


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
    return scores_from_vectors(retrieval_vectors(model, dataset, query_prompt, cache_dir, batch_size), dataset)
