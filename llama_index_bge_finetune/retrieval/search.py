"""Top-k search for mining and evaluation: exact numpy for small corpora, FAISS for large ones.

:func:`search` is the one entry point. With ``index="auto"`` it runs the exact numpy search
(:func:`~llama_index_bge_finetune.retrieval.exact_search.top_k`, the reference) up to :data:`NUMPY_MAX_PASSAGES` passages and FAISS exact search
above it; ``"exact"``, ``"flat"``, ``"ivf"`` and ``"hnsw"`` choose one. Approximate indexes report
their recall@k against exact search on a sample of queries, and the result carries it to the report.

Both exact searches read the corpus in chunks, so a memory-mapped matrix (see
:mod:`~llama_index_bge_finetune.retrieval.vector_file`) is never loaded whole, and both break ties by
ascending corpus id, as sentence-transformers' ``InformationRetrievalEvaluator`` does, so all three
rank identical scores identically.

Example::

    from llama_index_bge_finetune.retrieval.search import search

    found = search(query_vecs, corpus_vecs, k=10, corpus_ids=ids, index="ivf")
    found.indices, found.scores, found.recall   # recall@10 of IVF against exact search
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Dict, Optional, Sequence

import numpy as np

from llama_index_bge_finetune.errors import EvaluationError
from llama_index_bge_finetune.retrieval import faiss_search
from llama_index_bge_finetune.retrieval.exact_search import DEFAULT_BLOCK, top_k

logger = logging.getLogger(__name__)

#: ``index="auto"`` searches with numpy up to this many passages and with FAISS ``IndexFlatIP``
#: above it (both exact). Below it the numpy search takes well under a second per thousand queries
#: and needs nothing installed; above it FAISS's fused kernels are faster (``benchmarks/bench_scale.py``).
NUMPY_MAX_PASSAGES = 100_000

#: The searches :func:`search` accepts.
INDEX_KINDS = ("auto", "exact", "flat", "ivf", "hnsw")

#: The searches that need FAISS.
FAISS_KINDS = ("flat", "ivf", "hnsw")


def check_index(index: str) -> None:
    """Refuse an unknown search, or a FAISS one without faiss installed, before any model is loaded.

    Raises:
        EvaluationError: naming the valid searches, or the extra that installs faiss.
    """
    if index not in INDEX_KINDS:
        raise EvaluationError(f"Unknown search index {index!r}; use one of {', '.join(INDEX_KINDS)}.")
    if index in FAISS_KINDS:
        faiss_search.import_faiss(index)


#: Queries sampled to measure an approximate index's recall@k against exact search.
RECALL_SAMPLE = 200


@dataclass
class SearchResult:
    """The top ``k`` of every query, and how they were found.

    Attributes:
        indices: (n_queries, k) corpus rows, best first; ``-1`` where an approximate index found fewer than k.
        scores: (n_queries, k) inner products (``-inf`` beside a ``-1``).
        method: ``"exact"`` (numpy), ``"flat"`` (FAISS exact), ``"ivf"`` or ``"hnsw"`` (FAISS approximate).
        k: results per query.
        recall: for approximate methods, mean recall@k against exact search on ``recall_queries`` queries.
        recall_queries: how many queries that recall was measured on.
    """

    indices: np.ndarray
    scores: np.ndarray
    method: str
    k: int
    recall: Optional[float] = None
    recall_queries: int = 0

    @property
    def exact(self) -> bool:
        """Whether every query's top k is exactly the best k (ties by ascending id)."""
        return self.method in ("exact", "flat")

    def describe(self) -> Dict[str, Any]:
        """JSON-able summary for results and reports (method, recall and a one-line note)."""
        out: Dict[str, Any] = {"method": self.method, "exact": self.exact, "note": self.note()}
        if self.recall is not None:
            out.update({f"recall@{self.k}_vs_exact": self.recall, "recall_queries": self.recall_queries})
        return out

    def note(self) -> str:
        """One sentence for a report: which search, and for approximate ones how much it missed."""
        if self.method == "exact":
            return "exact search (numpy)"
        if self.method == "flat":
            return "exact search (FAISS IndexFlatIP)"
        return (f"approximate search (FAISS {self.method.upper()}): recall@{self.k} against exact search "
                f"{self.recall:.3f} on {self.recall_queries} sampled queries")


def search(
    queries: np.ndarray,
    corpus: np.ndarray,
    k: int,
    corpus_ids: Sequence[str],
    index: str = "auto",
    block: int = DEFAULT_BLOCK,
    recall_sample: int = RECALL_SAMPLE,
    seed: int = 0,
) -> SearchResult:
    """The ``k`` best passages per query by inner product, with the search method recorded.

    Args:
        queries: (n_queries, dim) vectors.
        corpus: (n_corpus, dim) vectors; a memory-mapped float32 or float16 matrix is read in chunks.
        k: how many to return; clipped to the corpus size.
        corpus_ids: ids of the corpus rows, for tie-breaking.
        index: ``"auto"`` (numpy up to :data:`NUMPY_MAX_PASSAGES`, FAISS exact above), ``"exact"``
            (numpy), ``"flat"`` (FAISS exact), ``"ivf"`` or ``"hnsw"`` (FAISS approximate).
        block: for the numpy search, at most this many scores are held at once.
        recall_sample: queries sampled to measure an approximate index's recall@k against exact.
        seed: seed of that sample and of IVF training.

    Raises:
        EvaluationError: an unknown ``index``, or a FAISS method without faiss installed.
    """
    check_index(index)
    method = index
    if index == "auto":
        method = "exact" if len(corpus) <= NUMPY_MAX_PASSAGES or not _faiss_installed() else "flat"
        if method == "exact" and len(corpus) > NUMPY_MAX_PASSAGES:
            logger.warning("Searching %d passages with numpy because faiss is not installed; "
                           "`pip install \"llama-index-bge-finetune[scale]\"` makes it faster.", len(corpus))
    k = min(k, len(corpus))
    if method == "exact":
        idx, scores = top_k(queries, corpus, k, corpus_ids, block=block)
        return SearchResult(idx, scores, "exact", k)
    if method == "flat":
        idx, scores = faiss_search.flat_top_k(queries, corpus, k, corpus_ids)
        return SearchResult(idx, scores, "flat", k)
    idx, scores = faiss_search.approximate_top_k(queries, corpus, k, method, seed=seed)
    recall, n = faiss_search.recall_against_exact(queries, corpus, idx, k, corpus_ids, recall_sample, seed)
    found = SearchResult(idx, scores, method, k, recall=recall, recall_queries=n)
    logger.info("Searched %d passages for %d queries with an %s", len(corpus), len(queries), found.note())
    return found


def _faiss_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("faiss") is not None


