"""Retrieve-then-rerank evaluation on the fast path: the first stage's top-N reranked to k.

The first stage is an :class:`~llama_index_bge_finetune.evaluation.EvaluationResult` evaluated with
``depth >= top_n`` (``compare_models(..., rerank={label: (first, Reranking(...))})`` does this); every query's candidates are
scored by the cross-encoder in batches, blended with the first stage's scores and scored with the
same metrics, so intervals and paired tests apply unchanged. The cost per query (median and p95 ms
for ``top_n`` candidates) is in ``timings``.

Example::

    from llama_index_bge_finetune.evaluation import evaluate_embeddings
    from llama_index_bge_finetune.reranking import rerank_evaluation

    first = evaluate_embeddings("exp_finetune", "val.json", depth=50)
    reranked = rerank_evaluation(first, "val.json", "exp_reranker", top_n=50)
    print(first.metrics["ndcg@10"], reranked.metrics["ndcg@10"], reranked.timings["rerank_median_ms"])
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

import numpy as np

from llama_index_bge_finetune.errors import EvaluationError
from llama_index_bge_finetune.evaluation.metrics import score_ranking
from llama_index_bge_finetune.evaluation.queries import load_dataset
from llama_index_bge_finetune.evaluation.results import EvaluationResult, QueryResult
from llama_index_bge_finetune.reranking.scoring import CrossEncoderScorer, blend, choose_blend_weight, read_reranker_config

CROSS_FIT = "cross-fit"

logger = logging.getLogger(__name__)


def score_candidates(first_stage: EvaluationResult, dataset: Any, reranker: Any, top_n: int = 50,
                     batch_size: int = 32, max_length: Optional[int] = None) -> Dict[str, np.ndarray]:
    """Cross-encoder scores of every query's first ``top_n`` candidates (query id -> scores, in candidate order).

    ``reranker``: a folder or hub id, a ``CrossEncoder`` or a :class:`CrossEncoderScorer`.
    The scorer's per-query times are in ``scorer.seconds_per_query`` (see :func:`latency`).
    """
    ds = load_dataset(dataset)
    scorer = _scorer(reranker, batch_size, max_length)
    out: Dict[str, np.ndarray] = {}
    for q in first_stage.queries:
        ids = q.retrieved_ids[:top_n]
        missing = [d for d in ids if d not in ds.corpus]
        if missing:
            raise EvaluationError(f"Retrieved passage {missing[0]!r} is not in the dataset's corpus; rerank with the dataset "
                                  "the first stage was evaluated on.")
        out[q.query_id] = scorer.score(q.query, [ds.corpus[d] for d in ids])
    score_candidates.last_scorer = scorer  # type: ignore[attr-defined]
    return out


def rerank_from_scores(first_stage: EvaluationResult, scores: Mapping[str, np.ndarray], blend_weight: float = 1.0,
                       top_n: int = 50, k_values: Optional[Sequence[int]] = None, name: str = "reranked") -> EvaluationResult:
    """The first stage's candidates reordered by the blend of its scores and ``scores``; same queries and metrics."""
    ks = tuple(k_values or first_stage.k_values)
    if len(first_stage.queries) and len(first_stage.queries[0].retrieved_ids) < min(top_n, first_stage.dataset.n_corpus):
        logger.warning("The first stage kept %d candidates per query, fewer than top_n=%d: evaluate it with depth=%d.",
                       len(first_stage.queries[0].retrieved_ids), top_n, top_n)
    queries = []
    for q in first_stage.queries:
        ids = list(q.retrieved_ids[:top_n])
        first = np.asarray(q.retrieved_scores[:top_n], dtype=np.float64)
        final = blend(first, scores[q.query_id], blend_weight) if ids else first
        order = np.argsort(-final, kind="stable")
        ranked = [ids[i] for i in order]
        queries.append(QueryResult(query_id=q.query_id, query=q.query, relevant=dict(q.relevant), retrieved_ids=ranked,
                                   retrieved_scores=[float(final[i]) for i in order],
                                   metrics=score_ranking(ranked, q.relevant, ks)))
    return EvaluationResult(name=name, k_values=ks, queries=queries, dataset=first_stage.dataset,
                            model_info={**first_stage.model_info, "reranker_top_n": top_n, "blend_weight": blend_weight,
                                        "first_stage": first_stage.name},
                            search=dict(first_stage.search))


def cross_fitted_rerank(first_stage: EvaluationResult, scores: Mapping[str, np.ndarray], top_n: int = 50,
                        k_values: Optional[Sequence[int]] = None, name: str = "reranked", folds: int = 2) -> EvaluationResult:
    """Rerank with a blend weight chosen on the *other* folds of these queries, so no query picks its own weight.

    Use it when the only questions the first stage has not seen are the ones being reported on: a
    weight chosen on them and then scored on them is optimistic. The queries are dealt into
    ``folds`` folds in order; each fold is reranked with the weight that scores best (nDCG@10, weight
    0 = the first stage's order unless the reranker beats it beyond noise, see
    :func:`~llama_index_bge_finetune.reranking.scoring.choose_blend_weight`) on the rest. The weights
    are in ``model_info["blend_weights_per_fold"]``, what decided each in ``"blend_rules_per_fold"``.
    """
    if folds < 2 or len(first_stage.queries) < folds:
        raise EvaluationError(f"Cross-fitting needs at least 2 folds and a query per fold; got {folds} folds for "
                              f"{len(first_stage.queries)} queries. Pass a fixed blend_weight instead.")
    ks = tuple(k_values or first_stage.k_values)
    parts = [[q for i, q in enumerate(first_stage.queries) if i % folds == f] for f in range(folds)]
    weights: List[float] = []
    rules: List[str] = []
    reranked: Dict[str, QueryResult] = {}
    for f, part in enumerate(parts):
        rest = [q for g, other in enumerate(parts) if g != f for q in other]
        groups = [(q.retrieved_scores[:top_n], scores[q.query_id], [1.0 if d in q.relevant else 0.0 for d in q.retrieved_ids[:top_n]])
                  for q in rest]
        choice = choose_blend_weight(groups)
        weight = choice.weight
        weights.append(weight)
        rules.append(choice.rule)
        sub = EvaluationResult(name=name, k_values=ks, queries=part, dataset=first_stage.dataset, model_info=first_stage.model_info)
        for q in rerank_from_scores(sub, scores, weight, top_n, ks, name).queries:
            reranked[q.query_id] = q
    out = rerank_from_scores(first_stage, scores, 0.0, top_n, ks, name)
    out.queries = [reranked[q.query_id] for q in first_stage.queries]
    out.model_info.update(blend_weight=CROSS_FIT, blend_weights_per_fold=weights, blend_rules_per_fold=rules)
    return out


@dataclass
class Reranking:
    """A reranker as a row of :func:`~llama_index_bge_finetune.evaluation.compare_models`: reranks a first stage's top ``top_n``.

    Args:
        reranker: a reranker folder or hub id, a ``CrossEncoder`` or a :class:`CrossEncoderScorer`.
        top_n: candidates reranked per query.
        blend_weight: as in :func:`rerank_evaluation` (``None``: the saved weight; ``"cross-fit"``:
            each half of the queries reranked with the weight chosen on the other half).

    Example::

        from llama_index_bge_finetune.evaluation import compare_models
        from llama_index_bge_finetune.reranking import Reranking

        report = compare_models({"fine-tuned": "out/model"}, "val.json",
                                rerank={"fine-tuned + reranker": ("fine-tuned", Reranking("out/reranker", top_n=50))})
    """

    reranker: Any
    top_n: int = 50
    blend_weight: Union[None, float, str] = None

    @property
    def depth(self) -> int:
        """How many first-stage results per query this needs."""
        return self.top_n

    def __call__(self, first_stage: EvaluationResult, dataset: Any, name: str) -> EvaluationResult:
        """The first stage's top ``top_n`` reranked, labelled ``name`` (see :func:`rerank_evaluation`)."""
        return rerank_evaluation(first_stage, dataset, self.reranker, top_n=self.top_n,
                                 blend_weight=self.blend_weight, name=name)


def rerank_evaluation(first_stage: EvaluationResult, dataset: Any, reranker: Any, top_n: int = 50,
                      blend_weight: Union[None, float, str] = None, k_values: Optional[Sequence[int]] = None,
                      name: Optional[str] = None, batch_size: int = 32, max_length: Optional[int] = None) -> EvaluationResult:
    """Rerank the first stage's top ``top_n`` with ``reranker`` and score the new order at every k.

    Args:
        first_stage: the first stage's result on ``dataset`` (evaluated with ``depth >= top_n``).
        dataset: the dataset (for passage texts).
        reranker: a reranker folder or hub id, a ``CrossEncoder`` or a :class:`CrossEncoderScorer`.
        top_n: candidates reranked per query.
        blend_weight: reranker weight against the first stage (``None``: the weight saved with the reranker, else 1;
            ``"cross-fit"``: chosen per half of these queries on the other half, see :func:`cross_fitted_rerank`).
        k_values: cut-offs (default: the first stage's).
        name: label in reports (default ``"<first stage> + reranker"``).
        batch_size, max_length: scoring settings (``max_length`` default: the trained one).
    """
    config = read_reranker_config(reranker) if isinstance(reranker, (str, bytes)) or hasattr(reranker, "__fspath__") else {}
    if isinstance(blend_weight, str) and blend_weight != CROSS_FIT:
        raise EvaluationError(f"blend_weight must be a number, None (the saved weight) or {CROSS_FIT!r}; got {blend_weight!r}.")
    t0 = time.perf_counter()
    scores = score_candidates(first_stage, dataset, reranker, top_n, batch_size, max_length or config.get("max_length"))
    label = name or f"{first_stage.name} + reranker"
    if blend_weight == CROSS_FIT:
        result = cross_fitted_rerank(first_stage, scores, top_n, k_values, label)
    else:
        weight = float(config.get("blend_weight", 1.0)) if blend_weight is None else float(blend_weight)
        result = rerank_from_scores(first_stage, scores, weight, top_n, k_values, label)
    result.timings = {"rerank": time.perf_counter() - t0, **latency(score_candidates.last_scorer)}  # type: ignore[attr-defined]
    result.model_info["reranker"] = str(reranker) if isinstance(reranker, str) else type(reranker).__name__
    return result


def latency(scorer: CrossEncoderScorer) -> Dict[str, float]:
    """``rerank_median_ms`` and ``rerank_p95_ms`` per query from a scorer's recorded times."""
    lat = scorer.latency_ms()
    return {"rerank_median_ms": lat["median_ms"], "rerank_p95_ms": lat["p95_ms"]} if lat else {}


def _scorer(reranker: Any, batch_size: int, max_length: Optional[int]) -> CrossEncoderScorer:
    if isinstance(reranker, CrossEncoderScorer):
        return reranker
    return CrossEncoderScorer(reranker, batch_size=batch_size, max_length=max_length)
