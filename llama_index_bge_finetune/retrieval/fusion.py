"""Hybrid retrieval: mix a dense retriever's scores with BM25's, per query, after normalising each.

Dense similarities and BM25 scores live on different scales (cosine in [-1, 1], BM25 unbounded and
growing with query length), so each is first normalised per query over the candidates it is given,
then mixed with a weight ``w`` for the lexical side::

    fused = (1 - w) * normalise(dense) + w * normalise(bm25)

The normalisations (:data:`METHODS`):

- ``"zscore"``: ``(x - mean) / std``.
- ``"minmax"``: ``(x - min) / (max - min)``, into [0, 1].
- ``"dist"``: LlamaIndex's ``dist_based_score`` (``QueryFusionRetriever``): min-max against
  ``mean - 3 std`` and ``mean + 3 std`` instead of the observed extremes, ``(x - mean + 3 std) / (6 std)``,
  so one outlier does not squash the rest. Like LlamaIndex, values beyond 3 std are not clipped
  (clipping would tie the outliers, which are usually the best matches).
- ``"rrf"``: reciprocal rank fusion, ``1 / (rrf_k + rank)`` with ``rrf_k = 60`` and rank 1 the best;
  tied scores share their average rank. The weights apply to it as to the others.

A query whose scores are all equal normalises to zeros (it carries no order). ``w = 0`` keeps the dense
order, ``w = 1`` the BM25 order.

Two entry points: :func:`fuse` for two score matrices over the same candidates (e.g. both retrievers
scored on the whole corpus, ``queries @ corpus.T`` and :meth:`BM25Index.score_all
<llama_index_bge_finetune.retrieval.bm25.BM25Index.score_all>`, which is exact fusion for evaluation),
and :func:`fuse_top_k` for the shipped path, where each retriever returns its own top-N lists.

Example::

    import numpy as np
    from llama_index_bge_finetune.retrieval.fusion import FusionSpec, fuse, fuse_top_k

    spec = FusionSpec("zscore", 0.3)
    fused = fuse(np.array([[0.9, 0.8, 0.1]]), np.array([[0.0, 7.5, 1.2]]), spec)   # doc 1 first
    ids, scores = fuse_top_k(np.array([[4, 7]]), np.array([[0.9, 0.8]]),
                             np.array([[7, 2]]), np.array([[7.5, 1.2]]), spec, k=3)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Dict, Mapping, Optional, Tuple

import numpy as np

#: The score normalisations :class:`FusionSpec` accepts.
METHODS: Tuple[str, ...] = ("zscore", "minmax", "dist", "rrf")
#: The rank offset of reciprocal rank fusion (Cormack et al., 2009).
RRF_K = 60
_FLAT = 1e-12  # a spread below this is "all scores equal"


@dataclass(frozen=True)
class FusionSpec:
    """How to fuse dense and BM25 scores: a normalisation and the weight of the lexical side.

    Attributes:
        method: one of :data:`METHODS` (``"zscore"``, ``"minmax"``, ``"dist"``, ``"rrf"``).
        weight: ``w`` in [0, 1]; ``fused = (1 - w) * dense + w * bm25`` after normalisation.
        rrf_k: the rank offset of ``"rrf"`` (ignored by the other methods).

    Example::

        spec = FusionSpec("rrf", 0.5)
        FusionSpec.from_dict(spec.to_dict()) == spec   # True; to_dict() is JSON-able, for saved configs
    """

    method: str
    weight: float
    rrf_k: int = RRF_K

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"Unknown fusion method {self.method!r}; use one of {', '.join(METHODS)}.")
        w = self.weight
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not 0.0 <= w <= 1.0:
            raise ValueError(f"The fusion weight is the BM25 share and must be a number in [0, 1] "
                             f"(0 = dense only, 1 = BM25 only), got {self.weight!r}.")
        if isinstance(self.rrf_k, bool) or not isinstance(self.rrf_k, int) or self.rrf_k < 1:
            raise ValueError(f"rrf_k must be a positive integer (60 is the usual value), got {self.rrf_k!r}.")
        object.__setattr__(self, "weight", float(self.weight))

    @property
    def label(self) -> str:
        """A short name for tables and logs, e.g. ``"zscore w=0.4"`` (``"rrf(k=20) w=0.5"`` for a non-default rrf_k)."""
        method = f"rrf(k={self.rrf_k})" if self.method == "rrf" and self.rrf_k != RRF_K else self.method
        return f"{method} w={self.weight:g}"

    def to_dict(self) -> Dict[str, Any]:
        """The spec as a JSON-able dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "FusionSpec":
        """The spec saved by :meth:`to_dict`; unknown keys are an error (a config from another version)."""
        unknown = set(data) - {"method", "weight", "rrf_k"}
        if unknown:
            raise ValueError(f"Unknown fusion setting(s) {sorted(unknown)}; "
                             "a fusion spec has method, weight and rrf_k.")
        return cls(**dict(data))


def normalise(scores: np.ndarray, method: str, rrf_k: int = RRF_K) -> np.ndarray:
    """Each row of ``scores`` normalised over its own entries by ``method`` (see the module docstring).

    Non-finite entries (``-inf`` beside an approximate search's ``-1`` ids, say) are absent: the row is
    normalised over its finite entries and the absent ones get the row's minimum normalised score.

    Args:
        scores: (n_queries, n_candidates) scores, higher is better; a 1-D array is one query.
        method: one of :data:`METHODS`.
        rrf_k: the rank offset of ``"rrf"``.

    Returns:
        An array of the same shape (float32 for float32 input, else float64).
    """
    if method not in METHODS:
        raise ValueError(f"Unknown fusion method {method!r}; use one of {', '.join(METHODS)}.")
    x = np.asarray(scores)
    dtype = np.float32 if x.dtype == np.float32 else np.float64
    one_row = x.ndim == 1
    x = np.atleast_2d(x).astype(dtype, copy=False)
    if x.ndim != 2:
        raise ValueError(f"Scores must be (n_queries, n_candidates), got shape {x.shape}.")
    if x.shape[1] == 0:
        return x.copy()[0] if one_row else x.copy()
    valid = np.isfinite(x)
    complete = bool(valid.all())
    out = _rrf(x, valid, rrf_k) if method == "rrf" else _scale(x, valid, complete, method)
    if not complete:
        floor = np.where(valid, out, np.inf).min(axis=1, keepdims=True)
        out = np.where(valid, out, np.where(np.isfinite(floor), floor, 0.0)).astype(dtype, copy=False)
    return out[0] if one_row else out


def _scale(x: np.ndarray, valid: np.ndarray, complete: bool, method: str) -> np.ndarray:
    """z-score, min-max or dist normalisation of each row over its valid entries."""
    if complete:
        xv = x
        count = np.full((len(x), 1), x.shape[1], dtype=x.dtype)
    else:
        xv = np.where(valid, x, 0.0).astype(x.dtype, copy=False)
        count = np.maximum(valid.sum(axis=1, keepdims=True), 1).astype(x.dtype)
    if method == "minmax":
        lo = np.where(valid, x, np.inf).min(axis=1, keepdims=True) if not complete else x.min(axis=1, keepdims=True)
        hi = np.where(valid, x, -np.inf).max(axis=1, keepdims=True) if not complete else x.max(axis=1, keepdims=True)
        lo, hi = np.where(np.isfinite(lo), lo, 0.0), np.where(np.isfinite(hi), hi, 0.0)
        span = hi - lo
    else:
        mean = xv.sum(axis=1, keepdims=True) / count
        dev = np.where(valid, x - mean, 0.0) if not complete else x - mean
        std = np.sqrt((dev * dev).sum(axis=1, keepdims=True) / count)
        if method == "zscore":
            lo, span = mean, std
        else:  # "dist": min-max against mean -/+ 3 std
            lo, span = mean - 3.0 * std, 6.0 * std
    flat = span <= _FLAT
    out = (np.where(valid, x, 0.0) - lo) / np.where(flat, 1.0, span)
    return np.where(flat, 0.0, out).astype(x.dtype, copy=False)


def _rrf(x: np.ndarray, valid: np.ndarray, rrf_k: int) -> np.ndarray:
    """``1 / (rrf_k + rank)`` per row, rank 1 the best, tied scores sharing their average rank."""
    from scipy.stats import rankdata

    keyed = np.where(valid, -x, np.inf)  # absent entries rank last (then get the row's minimum)
    ranks = rankdata(keyed, method="average", axis=1)
    return (1.0 / (rrf_k + ranks)).astype(x.dtype, copy=False)


def fuse(dense_scores: np.ndarray, bm25_scores: np.ndarray, spec: FusionSpec) -> np.ndarray:
    """Fused scores of two retrievers over the same candidates, per query.

    Args:
        dense_scores: (n_queries, n_candidates) dense similarities; a 1-D array is one query.
        bm25_scores: BM25 scores of the same queries and candidates, in the same column order.
        spec: the normalisation and the BM25 weight.

    Returns:
        ``(1 - w) * normalise(dense) + w * normalise(bm25)``, the shape of the inputs; rank by it descending.

    Example::

        fused = fuse(queries @ corpus.T, bm25.score_all(texts), FusionSpec("zscore", 0.4))
    """
    d, b = np.asarray(dense_scores), np.asarray(bm25_scores)
    if d.shape != b.shape:
        raise ValueError(f"Dense and BM25 scores must cover the same queries and candidates, got shapes "
                         f"{d.shape} and {b.shape}; use fuse_top_k for two separate top-N lists.")
    w = spec.weight
    nd = normalise(d, spec.method, spec.rrf_k)
    nb = normalise(b, spec.method, spec.rrf_k)
    return (1.0 - w) * nd + w * nb


def fuse_top_k(
    dense_ids: np.ndarray,
    dense_scores: np.ndarray,
    bm25_ids: np.ndarray,
    bm25_scores: np.ndarray,
    spec: FusionSpec,
    k: int,
) -> Tuple[np.ndarray, np.ndarray]:
    """The ``k`` best of the union of each query's dense and BM25 top-N lists, by fused score.

    Each list is normalised over its own entries; a candidate missing from one list gets that list's
    minimum normalised score for the query (it ranked below everything the retriever returned, so it
    is scored as its worst returned candidate, a lenient guess). Entries with a non-finite score (an
    approximate search's ``-1`` padding) are ignored. Ties rank by ascending id. Vectorised: two
    top-100 lists fuse in a few microseconds per query.

    Args:
        dense_ids, dense_scores: (n_queries, N1) the dense top-N ids (corpus rows or id strings) and scores.
        bm25_ids, bm25_scores: (n_queries, N2) the same for BM25 (ids of the same kind as the dense ones).
        spec: the normalisation and the BM25 weight.
        k: results per query; clipped to ``N1 + N2``.

    Returns:
        ``(ids, scores)``, each (n_queries, k), best first. Where a query's union holds fewer than ``k``
        candidates the rest is padding: score ``-inf``, id ``-1`` (integer ids) or ``None`` (others).

    Example::

        dense = search(query_vecs, corpus_vecs, k=100, corpus_ids=ids)
        rows, scores = index.top_k_rows(questions, 100)
        fused_rows, fused = fuse_top_k(dense.indices, dense.scores, rows, scores, FusionSpec("zscore", 0.3), k=10)
    """
    d_ids, b_ids = _ids_2d(dense_ids, "dense_ids"), _ids_2d(bm25_ids, "bm25_ids")
    d_sc, b_sc = np.atleast_2d(np.asarray(dense_scores)), np.atleast_2d(np.asarray(bm25_scores))
    if d_ids.shape != d_sc.shape or b_ids.shape != b_sc.shape or len(d_ids) != len(b_ids):
        raise ValueError(f"Each id array must match its scores and both must hold the same queries, got dense "
                         f"{d_ids.shape}/{d_sc.shape} and BM25 {b_ids.shape}/{b_sc.shape}.")
    integer = d_ids.dtype.kind in "iu"
    if integer != (b_ids.dtype.kind in "iu"):
        raise ValueError("Dense and BM25 ids must be of one kind: both corpus row numbers or both id strings.")
    if not integer:
        d_ids, b_ids = d_ids.astype(str), b_ids.astype(str)
    n = len(d_ids)
    nd = normalise(d_sc, spec.method, spec.rrf_k).astype(np.float64, copy=False)
    nb = normalise(b_sc, spec.method, spec.rrf_k).astype(np.float64, copy=False)
    md = nd.min(axis=1, keepdims=True) if nd.shape[1] else np.zeros((n, 1))
    mb = nb.min(axis=1, keepdims=True) if nb.shape[1] else np.zeros((n, 1))
    ids = np.concatenate([d_ids, b_ids], axis=1)
    dense_part = np.concatenate([nd, np.broadcast_to(md, b_ids.shape)], axis=1)
    bm25_part = np.concatenate([np.broadcast_to(mb, d_ids.shape), nb], axis=1)
    valid = np.concatenate([np.isfinite(d_sc), np.isfinite(b_sc)], axis=1)
    # Sort each row by id (stable: a dense entry precedes the BM25 entry of the same id), so an id in
    # both lists is a pair of neighbours; the pair's first gets the second's BM25 score, the second goes.
    flat = np.argsort(ids, axis=1, kind="stable") + (np.arange(n) * ids.shape[1])[:, None]
    ids, valid = ids.ravel()[flat], valid.ravel()[flat]
    dense_part, bm25_part = dense_part.ravel()[flat], bm25_part.ravel()[flat]
    pair = (ids[:, 1:] == ids[:, :-1]) & valid[:, 1:] & valid[:, :-1]
    bm25_part[:, :-1] = np.where(pair, bm25_part[:, 1:], bm25_part[:, :-1])
    keep = valid.copy()
    keep[:, 1:] &= ~pair
    fused = np.where(keep, (1.0 - spec.weight) * dense_part + spec.weight * bm25_part, -np.inf)
    rows, top = top_k_rows(fused, k)
    out_ids = np.take_along_axis(ids, rows, 1)
    if integer:
        out_ids = np.where(np.isfinite(top), out_ids, -1)
    else:
        out_ids = out_ids.astype(object)
        out_ids[~np.isfinite(top)] = None
    return out_ids, top


def _ids_2d(ids: Any, name: str) -> np.ndarray:
    arr = np.asarray(ids)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise ValueError(f"{name} must be (n_queries, N) ids, got shape {arr.shape}.")
    return arr


def top_k_rows(scores: np.ndarray, k: int, tie_rank: Optional[np.ndarray] = None) -> Tuple[np.ndarray, np.ndarray]:
    """Column indices and values of each row's ``k`` largest scores, best first, exact.

    Ties are broken by ascending ``tie_rank`` (default: ascending column), also at the k-th place, so
    the result does not depend on numpy's partition order.

    Args:
        scores: (n_rows, n_cols) scores (no NaN).
        k: how many per row; clipped to ``n_cols``.
        tie_rank: (n_cols,) a distinct rank per column, e.g. the rank of each corpus id in sorted order.

    Returns:
        ``(columns, values)``, each (n_rows, min(k, n_cols)).

    Example::

        cols, vals = top_k_rows(np.array([[0.2, 0.9, 0.2]]), 2)   # cols [[1, 0]]
    """
    s = np.atleast_2d(np.asarray(scores))
    n, m = s.shape
    k = max(0, min(int(k), m))
    tr = np.arange(m) if tie_rank is None else np.asarray(tie_rank)
    if k == 0 or n == 0:
        return np.zeros((n, k), dtype=np.int64), np.zeros((n, k), dtype=s.dtype)
    if k < m:
        cols = np.argpartition(-s, k - 1, axis=1)[:, :k]
        thresh = np.take_along_axis(s, cols, 1).min(axis=1)
        # argpartition picks arbitrarily among the scores tied with the k-th: redo those rows exactly.
        for r in np.flatnonzero((s >= thresh[:, None]).sum(axis=1) > k):
            cand = np.flatnonzero(s[r] >= thresh[r])
            cols[r] = cand[np.lexsort((tr[cand], -s[r, cand]))[:k]]
    else:
        cols = np.broadcast_to(np.arange(m), (n, m)).copy()
    vals = np.take_along_axis(s, cols, 1)
    order = np.lexsort((tr[cols], -vals), axis=-1)
    cols = np.take_along_axis(cols, order, 1).astype(np.int64, copy=False)
    return cols, np.take_along_axis(vals, order, 1)
