"""Ranking metrics at k for one query: hit rate, MRR, nDCG, recall, precision, MAP.

Definitions (``rel(d)`` is a document's graded relevance, 0 when not judged; ``R`` the number of
documents with ``rel > 0``; ranks start at 1):

- ``hit_rate@k``: 1 when a relevant document is in the top k, else 0 (sentence-transformers' accuracy@k).
- ``mrr@k``: 1 / rank of the first relevant document in the top k, 0 when none.
- ``precision@k``: relevant documents in the top k, divided by k (even when fewer were retrieved).
- ``recall@k``: relevant documents in the top k, divided by R.
- ``ndcg@k``: DCG@k / IDCG@k with linear gain, ``DCG@k = sum_i rel_i / log2(i + 1)`` over the top k and
  IDCG@k the DCG@k of the best possible ranking (trec_eval's ``ndcg_cut``, as BEIR and MTEB report).
- ``map@k``: sum of precision@i at each relevant rank i <= k, divided by ``min(k, R)``
  (sentence-transformers' MAP@k; a perfect top k scores 1).

llama-index-core's ``NDCG`` instead divides by an ideal DCG over *all* expected ids, whatever the
cut-off, so a perfect top-2 with 5 expected ids scores 0.553 there and 1.0 here; its ``HitRate`` and
``MRR`` equal ours at k = the retrieved list's length.

Example::

    from llama_index_bge_finetune.evaluation.metrics import score_ranking

    score_ranking(["d3", "d1"], {"d1": 1.0}, k_values=[1, 2])["mrr@2"]  # 0.5
"""

from __future__ import annotations

import math
from typing import Dict, List, Mapping, Sequence, Tuple

from llama_index_bge_finetune.errors import EvaluationError

METRIC_NAMES: Tuple[str, ...] = ("hit_rate", "mrr", "ndcg", "recall", "precision", "map")


def metric_keys(k_values: Sequence[int]) -> List[str]:
    """The result keys for ``k_values``, e.g. ``["hit_rate@1", ..., "map@10"]``, metric-major."""
    return [f"{name}@{k}" for name in METRIC_NAMES for k in k_values]


def check_k_values(k_values: Sequence[int]) -> Tuple[int, ...]:
    """Validate and sort cut-offs; raise :class:`EvaluationError` on anything but positive integers."""
    ks = tuple(sorted(set(k_values))) if k_values is not None else ()
    if not ks or any(not isinstance(k, int) or isinstance(k, bool) or k < 1 for k in ks):
        raise EvaluationError(
            f"k_values must be a non-empty list of positive integers such as (1, 3, 5, 10), got {k_values!r}."
        )
    return ks


def dedupe(ids: Sequence[str]) -> List[str]:
    """Keep the first occurrence of each id: a document retrieved twice counts once, at its best rank."""
    return list(dict.fromkeys(ids))


def score_ranking(
    retrieved_ids: Sequence[str], relevance: Mapping[str, float], k_values: Sequence[int]
) -> Dict[str, float]:
    """Every metric at every k for one ranked list.

    Args:
        retrieved_ids: document ids, best first. Duplicates count once, at their first rank; an empty
            list scores 0 everywhere.
        relevance: document id -> graded relevance (> 0 means relevant). Must hold at least one
            relevant id, else the metrics are undefined.
        k_values: cut-offs, positive integers; k larger than the list is allowed.
    """
    ks = check_k_values(k_values)
    rels = sorted((float(r) for r in relevance.values() if r > 0), reverse=True)
    if not rels:
        raise EvaluationError(
            "A query has no relevant document, so its metrics are undefined; exclude it or add its relevant ids."
        )
    ranked = dedupe(retrieved_ids)
    gains = [float(relevance.get(d, 0.0)) for d in ranked]
    n_rel = len(rels)
    out: Dict[str, float] = {}
    for k in ks:
        top = [g if g > 0 else 0.0 for g in gains[:k]]
        hits = [i for i, g in enumerate(top, start=1) if g > 0]
        dcg = sum(g / math.log2(i + 1) for i, g in enumerate(top, start=1) if g > 0)
        idcg = sum(g / math.log2(i + 1) for i, g in enumerate(rels[:k], start=1))
        ap = sum((n + 1) / rank for n, rank in enumerate(hits)) / min(k, n_rel)
        out[f"hit_rate@{k}"] = 1.0 if hits else 0.0
        out[f"mrr@{k}"] = 1.0 / hits[0] if hits else 0.0
        out[f"ndcg@{k}"] = dcg / idcg
        out[f"recall@{k}"] = len(hits) / n_rel
        out[f"precision@{k}"] = len(hits) / k
        out[f"map@{k}"] = ap
    return {key: out[key] for key in metric_keys(ks)}
