"""Exact top-k search with numpy: the reference every other search is held to.

It reads the corpus in blocks, so a memory-mapped matrix (see
:mod:`~llama_index_bge_finetune.retrieval.vector_file`) is never loaded whole, and it breaks ties by
ascending corpus id, as sentence-transformers' ``InformationRetrievalEvaluator`` does.

Example::

    from llama_index_bge_finetune.retrieval.exact_search import top_k

    idx, scores = top_k(query_vecs, corpus_vecs, k=10, corpus_ids=ids)
"""

from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np

DEFAULT_BLOCK = 16_777_216  # scores held at once (64 MB of float32)


def top_k(
    queries: np.ndarray, corpus: np.ndarray, k: int, corpus_ids: Sequence[str], block: int = DEFAULT_BLOCK
) -> Tuple[np.ndarray, np.ndarray]:
    """Indices and scores of the ``k`` best passages per query, best first, by exact numpy search.

    The reference search: :func:`search` uses it for small corpora, and the tests hold FAISS to it.

    Args:
        queries: (n_queries, dim) vectors.
        corpus: (n_corpus, dim) vectors.
        k: how many to return; clipped to the corpus size.
        corpus_ids: ids of the corpus rows, for tie-breaking.
        block: at most this many scores are materialised at once.

    Returns:
        ``(indices, scores)``, each (n_queries, min(k, n_corpus)).
    """
    n_q, n_c = len(queries), len(corpus)
    k = min(k, n_c)
    idx_out = np.zeros((n_q, k), dtype=np.int64)
    score_out = np.zeros((n_q, k), dtype=np.float32)
    if n_q == 0 or k == 0:
        return idx_out, score_out
    id_rank = np.empty(n_c, dtype=np.int64)
    id_rank[np.argsort(np.asarray(corpus_ids, dtype=object), kind="stable")] = np.arange(n_c)
    c_chunk = max(k, min(n_c, block // max(1, min(n_q, 256))))
    q_chunk = max(1, min(n_q, block // c_chunk))
    for qs in range(0, n_q, q_chunk):
        q = np.asarray(queries[qs:qs + q_chunk], dtype=np.float32)
        best_idx = np.zeros((len(q), 0), dtype=np.int64)
        best_score = np.zeros((len(q), 0), dtype=np.float32)
        for cs in range(0, n_c, c_chunk):
            scores = q @ np.asarray(corpus[cs:cs + c_chunk], dtype=np.float32).T
            kk = min(k, scores.shape[1])
            part = np.argpartition(-scores, kk - 1, axis=1)[:, :kk] if kk < scores.shape[1] else np.tile(
                np.arange(scores.shape[1]), (len(q), 1))
            part_scores = np.take_along_axis(scores, part, axis=1)
            # argpartition picks arbitrarily among scores tied with the k-th: redo those rows exactly.
            thresh = part_scores.min(axis=1, keepdims=True)
            tied = np.nonzero((scores >= thresh).sum(axis=1) > kk)[0]
            for r in tied:
                order = np.lexsort((id_rank[cs:cs + scores.shape[1]], -scores[r]))[:kk]
                part[r], part_scores[r] = order, scores[r, order]
            best_idx = np.concatenate([best_idx, part + cs], axis=1)
            best_score = np.concatenate([best_score, part_scores], axis=1)
            order = np.lexsort((id_rank[best_idx], -best_score), axis=1)[:, :k]
            best_idx = np.take_along_axis(best_idx, order, axis=1)
            best_score = np.take_along_axis(best_score, order, axis=1)
        idx_out[qs:qs + len(q)] = best_idx
        score_out[qs:qs + len(q)] = best_score
    return idx_out, score_out
