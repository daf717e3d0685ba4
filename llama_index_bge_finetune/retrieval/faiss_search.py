"""FAISS top-k search over a corpus that may be larger than RAM: exact in chunks, or an approximate index.

Reached through :func:`llama_index_bge_finetune.retrieval.search.search`; needs the ``scale`` extra
(``pip install "llama-index-bge-finetune[scale]"``).

- :func:`flat_top_k` is exact: it scores :data:`CHUNK_ROWS` passages at a time with ``faiss.knn``
  (the brute-force kernel behind ``IndexFlatIP``) and merges the running top k, so at most one
  chunk of a memory-mapped matrix is in RAM as float32. Ties are broken by ascending corpus id like
  the numpy search: each chunk returns k + 1 rows, and a query whose k-th score ties a passage left
  outside those is re-ranked by the numpy search.
- :func:`approximate_top_k` builds an ``IndexIVFFlat`` or ``IndexHNSWFlat``, adding the corpus in
  chunks. These indexes keep every vector in RAM as float32 (4 bytes x dim per passage); they
  trade exactness for speed, and :func:`recall_against_exact` says how much they miss.

Example::

    from llama_index_bge_finetune.retrieval.faiss_search import flat_top_k

    idx, scores = flat_top_k(query_vecs, corpus_vecs, k=10, corpus_ids=ids)
"""

from __future__ import annotations

import logging
import math
from typing import Any, Optional, Sequence, Tuple

import numpy as np

from llama_index_bge_finetune.errors import EvaluationError
from llama_index_bge_finetune.retrieval.exact_search import top_k

logger = logging.getLogger(__name__)

#: Passages scored (exact) or added to an index per step: 131,072 x 384 float32 is 192 MB.
CHUNK_ROWS = 131_072

#: HNSW graph degree, and the candidate-list sizes when building and searching. Building is the
#: cost: on 2 CPU cores an HNSW graph over 100,000 passages takes minutes; IVF trains in seconds.
HNSW_M, HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH = 16, 40, 128

#: IVF cells (``sqrt(n)``, at least 39 passages each), passages sampled per cell to train them, and
#: the share of cells probed per query.
IVF_CELLS_PER_SQRT, IVF_TRAIN_PER_CELL, IVF_PROBE_SHARE = 1, 40, 1 / 16


def import_faiss(method: str) -> Any:
    """The ``faiss`` module, or a one-line :class:`EvaluationError` naming the extra that installs it."""
    try:
        import faiss
    except ImportError as exc:
        raise EvaluationError(
            f"index={method!r} needs faiss, which is not installed; install it with "
            "`pip install \"llama-index-bge-finetune[scale]\"` or use index='exact'."
        ) from exc
    return faiss


def _f32(rows: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(rows, dtype=np.float32)


def _id_rank(corpus_ids: Sequence[str]) -> np.ndarray:
    """Each row's position in ascending id order (the tie-break)."""
    rank = np.empty(len(corpus_ids), dtype=np.int64)
    rank[np.argsort(np.asarray(corpus_ids, dtype=object), kind="stable")] = np.arange(len(corpus_ids))
    return rank


def flat_top_k(queries: np.ndarray, corpus: np.ndarray, k: int, corpus_ids: Sequence[str],
               chunk_rows: int = CHUNK_ROWS) -> Tuple[np.ndarray, np.ndarray]:
    """Exact top ``k`` by inner product, corpus read in chunks; same contract as ``exact_search.top_k``."""
    faiss = import_faiss("flat")
    q = _f32(queries)
    n_q, n_c = len(q), len(corpus)
    k = min(k, n_c)
    if n_q == 0 or k == 0:
        return np.zeros((n_q, k), dtype=np.int64), np.zeros((n_q, k), dtype=np.float32)
    rank = _id_rank(corpus_ids)
    best_idx = np.zeros((n_q, 0), dtype=np.int64)
    best_score = np.zeros((n_q, 0), dtype=np.float32)
    left_out = np.full(n_q, -np.inf, dtype=np.float32)  # best score among passages a chunk did not return
    for start in range(0, n_c, chunk_rows):
        block = _f32(corpus[start:start + chunk_rows])
        kk = min(k + 1, len(block))
        scores, idx = faiss.knn(q, block, kk, metric=faiss.METRIC_INNER_PRODUCT)
        if kk == k + 1:  # the (k+1)-th is a stand-in for everything this chunk left out
            left_out = np.maximum(left_out, scores[:, k])
            scores, idx = scores[:, :k], idx[:, :k]
        best_idx = np.concatenate([best_idx, idx + start], axis=1)
        best_score = np.concatenate([best_score, scores], axis=1)
        order = np.lexsort((rank[best_idx], -best_score), axis=1)[:, :k]
        best_idx = np.take_along_axis(best_idx, order, axis=1)
        best_score = np.take_along_axis(best_score, order, axis=1)
    tied = np.nonzero(left_out >= best_score[:, -1])[0]
    if len(tied):
        logger.debug("%d queries tie at rank %d; re-ranking them exactly by id.", len(tied), k)
        best_idx[tied], best_score[tied] = top_k(q[tied], corpus, k, corpus_ids)
    return best_idx, best_score


def build_index(corpus: np.ndarray, method: str, seed: int = 0, chunk_rows: int = CHUNK_ROWS) -> Any:
    """An ``IndexIVFFlat`` (``method="ivf"``) or ``IndexHNSWFlat`` (``"hnsw"``) over ``corpus``, added in chunks."""
    faiss = import_faiss(method)
    n, dim = corpus.shape
    if method == "hnsw":
        index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.hnsw.efSearch = HNSW_EF_SEARCH
    elif method == "ivf":
        cells = max(1, min(int(IVF_CELLS_PER_SQRT * math.sqrt(n)), n // 39))  # faiss wants >= 39 points per cell
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, cells, faiss.METRIC_INNER_PRODUCT)
        sample = np.sort(np.random.default_rng(seed).choice(n, size=min(n, IVF_TRAIN_PER_CELL * cells), replace=False))
        index.train(_f32(corpus[sample]))
        index.nprobe = max(1, int(round(cells * IVF_PROBE_SHARE)))
    else:
        raise EvaluationError(f"Unknown approximate index {method!r}; use 'ivf' or 'hnsw'.")
    for start in range(0, n, chunk_rows):
        index.add(_f32(corpus[start:start + chunk_rows]))
    return index


def approximate_top_k(queries: np.ndarray, corpus: np.ndarray, k: int, method: str, seed: int = 0,
                      index: Optional[Any] = None) -> Tuple[np.ndarray, np.ndarray]:
    """Top ``k`` from an approximate index (built here unless given); ``-1`` / ``-inf`` pad missing results."""
    index = index if index is not None else build_index(corpus, method, seed=seed)
    scores, idx = index.search(_f32(queries), k)
    scores = np.where(idx < 0, -np.inf, scores).astype(np.float32)
    return idx.astype(np.int64), scores


def recall_against_exact(queries: np.ndarray, corpus: np.ndarray, found: np.ndarray, k: int,
                         corpus_ids: Sequence[str], sample: int, seed: int = 0) -> Tuple[float, int]:
    """Mean recall@k of ``found`` against exact search on a seeded sample of queries, and the sample size."""
    n = min(len(queries), sample)
    if n == 0 or k == 0:
        return 1.0, 0
    rows = np.sort(np.random.default_rng(seed).choice(len(queries), size=n, replace=False))
    exact, _ = flat_top_k(queries[rows], corpus, k, corpus_ids)
    hits = [len(set(found[r][found[r] >= 0].tolist()) & set(e.tolist())) / len(e) for r, e in zip(rows, exact)]
    return float(np.mean(hits)), n
