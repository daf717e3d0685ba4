"""Choose between dense retrieval, BM25 and a hybrid of the two, keeping a hybrid only when it is better beyond noise.

:func:`choose_fusion` scores every candidate on held-out questions over the whole corpus (exact:
both retrievers' full score matrices are fused, see :mod:`~llama_index_bge_finetune.retrieval.fusion`):
dense alone, BM25 alone, and each normalisation (z-score, min-max, dist, RRF) at each BM25 weight
0.1 .. 0.9. The rule, the project's beyond-noise rule (as for the reranker blend weight in
:mod:`~llama_index_bge_finetune.reranking.scoring`):

1. Dense is the baseline; BM25 alone replaces it only if its per-query gain over dense passes the
   same one-sided paired test on all the questions (one comparison, so no split is needed). Picking
   the larger mean instead flips between the two at random when they are within noise of each other.
2. The best hybrid replaces it only if its per-query gain over the baseline passes a one-sided paired
   sign-flip test (:func:`~llama_index_bge_finetune.evaluation.stats.paired_test`) with ``p < alpha``.

Picking the best of 36 hybrids and then testing it on the same questions would make a noise-level
gain look significant far more often than ``alpha`` (the winner's curse). So the held-out questions
are split at random, with a fixed seed, into two halves: the hybrid is *picked* on the selection
half and *tested* (and its gain reported) on the other half, which played no part in picking it.
The test is then an honest one-candidate test, and the reported gain is not inflated by the pick. A
Bonferroni correction (``alpha / 36`` on all questions) was the alternative; it is needlessly strict
here, because the 36 candidates are near copies of each other (neighbouring weights rank almost
alike), and the gain it reports is the inflated best-of-36 one.

Example::

    from llama_index_bge_finetune.evaluation.fusion_choice import choose_fusion

    dense = query_vecs @ corpus_vecs.T                   # (n_questions, n_docs)
    lexical = bm25_index.score_all(question_texts)        # same rows and columns
    choice = choose_fusion(dense, lexical, relevant, corpus_ids)
    print(choice.reason)   # e.g. "hybrid zscore w=0.4 beats dense by +0.031 nDCG@10 on 60 held-out questions ..."
    config["retrieval"] = choice.to_dict()
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Collection, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from llama_index_bge_finetune.errors import EvaluationError
from llama_index_bge_finetune.evaluation.metrics import METRIC_NAMES, score_ranking
from llama_index_bge_finetune.evaluation.stats import paired_test
from llama_index_bge_finetune.retrieval.fusion import METHODS, FusionSpec, normalise, top_k_rows

logger = logging.getLogger(__name__)

#: The BM25 weights tried for every normalisation.
DEFAULT_WEIGHTS: Tuple[float, ...] = tuple(round(0.1 * i, 1) for i in range(1, 10))
#: Every normalisation at every weight: 36 hybrids.
DEFAULT_CANDIDATES: Tuple[FusionSpec, ...] = tuple(FusionSpec(m, w) for m in METHODS for w in DEFAULT_WEIGHTS)
#: A hybrid replaces the better single retriever only when its gain has a one-sided paired p below this.
FUSION_ALPHA = 0.05
_DISPLAY = {"ndcg": "nDCG", "mrr": "MRR", "map": "MAP", "hit_rate": "hit rate", "recall": "recall",
            "precision": "precision"}

Relevance = Union[Mapping[str, float], Collection[str]]


@dataclass(frozen=True)
class FusionChoice:
    """The retrieval chosen on held-out questions, and the evidence for it.

    Attributes:
        chosen: the :class:`FusionSpec` of the chosen hybrid, or ``"dense"`` / ``"bm25"``.
        baseline: the single retriever a hybrid must beat: ``"dense"``, or ``"bm25"`` when it beats dense beyond noise.
        best_hybrid: the hybrid picked on the selection half (``None`` when none was tried).
        means: mean metric over all questions of every candidate, by label (``"dense"``, ``"bm25"``,
            ``"zscore w=0.4"``, ...).
        gain: mean per-query metric of ``best_hybrid`` minus ``baseline`` on the test half.
        ci_low, ci_high: 95% bootstrap interval of that gain.
        p_value: one-sided paired sign-flip p-value of the gain (1.0 when not tested).
        alpha: the threshold ``p_value`` had to pass.
        questions: held-out questions in all; ``select_questions`` picked the hybrid, ``test_questions`` tested it.
        metric: the metric, e.g. ``"ndcg@10"``.
        reason: one sentence saying what decided, for logs, configs and model cards.

    Example::

        choice = choose_fusion(dense, lexical, relevant, corpus_ids)
        choice.chosen, choice.reason, choice.to_dict()
    """

    chosen: Union[FusionSpec, str]
    baseline: str
    best_hybrid: Optional[FusionSpec]
    means: Dict[str, float] = field(repr=False)
    gain: float
    ci_low: float
    ci_high: float
    p_value: float
    alpha: float
    questions: int
    select_questions: int
    test_questions: int
    metric: str
    reason: str

    @property
    def hybrid(self) -> bool:
        """True when a hybrid was chosen."""
        return isinstance(self.chosen, FusionSpec)

    def to_dict(self) -> Dict[str, Any]:
        """JSON-able record for a saved config: the choice (a spec dict or a name) and its evidence."""
        out = {k: getattr(self, k) for k in ("baseline", "gain", "ci_low", "ci_high", "p_value", "alpha", "questions",
                                             "select_questions", "test_questions", "metric", "reason")}
        out["chosen"] = self.chosen.to_dict() if isinstance(self.chosen, FusionSpec) else self.chosen
        out["best_hybrid"] = self.best_hybrid.to_dict() if self.best_hybrid else None
        out["means"] = dict(self.means)
        return out


def choose_fusion(
    dense_full_scores: np.ndarray,
    bm25_full_scores: Optional[np.ndarray],
    relevant: Sequence[Relevance],
    corpus_ids: Sequence[str],
    candidates: Sequence[FusionSpec] = DEFAULT_CANDIDATES,
    metric: str = "ndcg@10",
    alpha: float = FUSION_ALPHA,
    seed: int = 0,
) -> FusionChoice:
    """Dense, BM25, or the best hybrid, decided on held-out questions by the rule in the module docstring.

    Args:
        dense_full_scores: (n_questions, n_docs) dense scores of every question against the whole corpus.
        bm25_full_scores: BM25 scores of the same questions and documents (``BM25Index.score_all``), or
            ``None`` when BM25 cannot index the corpus (then dense is kept, and the reason says so).
        relevant: per question, its relevant documents: ``{id: grade}`` or a collection of ids.
        corpus_ids: the ids of the score matrices' columns (ties rank by ascending id).
        candidates: the hybrids tried (default: :data:`DEFAULT_CANDIDATES`).
        metric: the metric deciding, ``"<name>@<k>"`` with a name from ``metrics.METRIC_NAMES``.
        alpha: the one-sided p-value a hybrid's gain must stay below.
        seed: seed of the split into a selection half and a test half.

    Raises:
        EvaluationError: mismatched shapes, a bad metric, or a question without a relevant document.
    """
    _parse_metric(metric)
    _check_inputs(np.asarray(dense_full_scores), bm25_full_scores, relevant, corpus_ids)
    values = candidate_values(dense_full_scores, bm25_full_scores, relevant, corpus_ids, candidates, metric)
    return choose_from_values(values, candidates if bm25_full_scores is not None else (), metric, alpha, seed)


def candidate_values(
    dense_scores: np.ndarray,
    bm25_scores: Optional[np.ndarray],
    relevant: Sequence[Relevance],
    corpus_ids: Sequence[str],
    candidates: Sequence[FusionSpec] = DEFAULT_CANDIDATES,
    metric: str = "ndcg@10",
) -> Dict[str, np.ndarray]:
    """Per-question metric values of dense, BM25 and every hybrid: what :func:`choose_from_values` decides on.

    The questions may be any block of rows of the full score matrices (values of separate blocks
    concatenate), so a large evaluation can be scored a block at a time.

    Args:
        dense_scores: (n_questions, n_docs) dense scores against the whole corpus.
        bm25_scores: BM25 scores of the same questions and documents, or ``None`` (then only ``"dense"``).
        relevant: per question, its relevant documents: ``{id: grade}`` or a collection of ids.
        corpus_ids: the ids of the columns (ties rank by ascending id).
        candidates: the hybrids scored.
        metric: ``"<name>@<k>"``.

    Returns:
        label (``"dense"``, ``"bm25"``, each ``spec.label``) -> (n_questions,) float64 metric values.

    Example::

        values = candidate_values(dense, lexical, relevant, corpus_ids, [FusionSpec("rrf", 0.5)])
        choice = choose_from_values(values, [FusionSpec("rrf", 0.5)])
    """
    _, k = _parse_metric(metric)
    dense = np.asarray(dense_scores)
    n = _check_inputs(dense, bm25_scores, relevant, corpus_ids)
    ids = np.asarray([str(i) for i in corpus_ids], dtype=object)
    tie_rank = id_tie_rank(ids)
    rels = [dict(r) if isinstance(r, Mapping) else {str(d): 1.0 for d in r} for r in relevant]

    def per_query(scores: np.ndarray) -> np.ndarray:
        rows, _ = top_k_rows(scores, k, tie_rank)
        return np.asarray([score_ranking(list(ids[rows[i]]), rels[i], [k])[metric] for i in range(n)],
                          dtype=np.float64)

    values: Dict[str, np.ndarray] = {"dense": per_query(dense)}
    if bm25_scores is None:
        return values
    lexical = np.asarray(bm25_scores)
    values["bm25"] = per_query(lexical)
    for (method, rrf_k), group in _by_normalisation(candidates).items():
        nd, nb = normalise(dense, method, rrf_k), normalise(lexical, method, rrf_k)
        for spec in group:
            values[spec.label] = per_query((1.0 - spec.weight) * nd + spec.weight * nb)
    return values


def id_tie_rank(corpus_ids: Sequence[str]) -> np.ndarray:
    """Each corpus column's rank in ascending id order: the tie-break every search here uses."""
    ids = np.asarray([str(i) for i in corpus_ids], dtype=object)
    rank = np.empty(len(ids), dtype=np.int64)
    rank[np.argsort(ids, kind="stable")] = np.arange(len(ids))
    return rank


def _parse_metric(metric: str) -> Tuple[str, int]:
    name, _, cut = metric.partition("@")
    if name not in METRIC_NAMES or not cut.isdigit() or int(cut) < 1:
        raise EvaluationError(f"metric must be '<name>@<k>' with a name in {', '.join(METRIC_NAMES)}, "
                              f"e.g. 'ndcg@10'; got {metric!r}.")
    return name, int(cut)


def _check_inputs(dense: np.ndarray, bm25: Optional[np.ndarray], relevant: Sequence[Relevance],
                  corpus_ids: Sequence[str]) -> int:
    if dense.ndim != 2:
        raise EvaluationError(f"Dense scores must be (n_questions, n_docs), got shape {dense.shape}.")
    if bm25 is not None and np.shape(bm25) != dense.shape:
        raise EvaluationError(f"Dense and BM25 scores must cover the same questions and documents, got shapes "
                              f"{dense.shape} and {np.shape(bm25)}.")
    n, n_docs = dense.shape
    if len(corpus_ids) != n_docs or len(relevant) != n:
        raise EvaluationError(f"Scores are {n} questions x {n_docs} documents, but {len(relevant)} relevance "
                              f"entries and {len(corpus_ids)} corpus ids were given; they must match.")
    if n == 0:
        raise EvaluationError("Choosing a retrieval needs at least one held-out question, got none.")
    return n


def _by_normalisation(candidates: Sequence[FusionSpec]) -> Dict[Tuple[str, int], List[FusionSpec]]:
    """Candidates grouped by normalisation, so each full matrix is normalised once (three held at a time)."""
    groups: Dict[Tuple[str, int], List[FusionSpec]] = {}
    for spec in dict.fromkeys(candidates):
        groups.setdefault((spec.method, spec.rrf_k), []).append(spec)
    return groups


def _single(values: Dict[str, np.ndarray], baseline: str, metric: str, alpha: float, n: int, reason: str,
            best: Optional[FusionSpec] = None, n_select: int = 0, n_test: int = 0,
            gain: float = 0.0, ci: Tuple[float, float] = (0.0, 0.0), p: float = 1.0) -> FusionChoice:
    means = {label: float(v.mean()) for label, v in values.items()}
    return FusionChoice(baseline, baseline, best, means, gain, ci[0], ci[1], p, alpha, n, n_select, n_test,
                        metric, reason)


def choose_from_values(
    values: Mapping[str, Sequence[float]],
    candidates: Sequence[FusionSpec],
    metric: str = "ndcg@10",
    alpha: float = FUSION_ALPHA,
    seed: int = 0,
) -> FusionChoice:
    """The rule of :func:`choose_fusion` applied to per-question metric values computed elsewhere.

    For callers that score the candidates themselves (e.g. fusing top-N lists with ``fuse_top_k``).

    Args:
        values: per-question metric values, same questions in the same order, keyed ``"dense"``,
            ``"bm25"`` (absent when BM25 could not index the corpus) and each candidate's ``label``.
        candidates: the hybrids tried, each with its values under ``spec.label``.
        metric: the metric's name, for the reason sentence.
        alpha: the one-sided p-value a hybrid's gain must stay below.
        seed: seed of the split into a selection half and a test half.

    Example::

        choice = choose_from_values({"dense": d, "bm25": b, "zscore w=0.3": h}, [FusionSpec("zscore", 0.3)])
    """
    vals = {label: np.asarray(v, dtype=np.float64) for label, v in values.items()}
    specs = {spec.label: spec for spec in candidates}
    missing = sorted({"dense", *(["bm25"] if specs else []), *specs} - set(vals))
    if missing or len({len(v) for v in vals.values()}) != 1 or not len(vals["dense"]):
        raise EvaluationError(f"Per-question values must hold the same non-empty questions for 'dense', 'bm25' and "
                              f"every candidate's label; missing: {missing or 'none'}, lengths: "
                              f"{sorted({len(v) for v in vals.values()})}.")
    n = len(vals["dense"])
    if "bm25" not in vals:
        reason = f"kept dense: BM25 has no scores for this corpus, so no hybrid was tried ({n} questions)"
        return _single(vals, "dense", metric, alpha, n, reason)
    return _decide(vals, specs, metric, alpha, seed)


def _decide(values: Dict[str, np.ndarray], specs: Dict[str, FusionSpec], metric: str, alpha: float,
            seed: int) -> FusionChoice:
    """Apply the rule to per-query metric values of every candidate (see the module docstring)."""
    n = len(values["dense"])
    shown = _show(metric)
    baseline = _baseline(values, alpha)
    if not specs:
        return _single(values, baseline, metric, alpha, n, f"kept {baseline}: no hybrid was tried ({n} questions)")
    perm = np.random.default_rng(seed).permutation(n)
    select, test = perm[: n - n // 2], perm[n - n // 2:]
    labels = list(specs)
    label = labels[int(np.argmax([values[lab][select].mean() for lab in labels]))]  # ties: the first listed
    best = specs[label]
    sel_gain = float(values[label][select].mean() - values[baseline][select].mean())
    split: Dict[str, Any] = {"best": best, "n_select": len(select), "n_test": len(test)}
    if len(test) == 0:
        return _single(values, baseline, metric, alpha, n, f"kept {baseline}: {n} held-out question is too few to "
                       "both pick and test a hybrid", **split)
    if sel_gain <= 1e-12:
        return _single(values, baseline, metric, alpha, n,
                       f"kept {baseline}: no hybrid beats it on the {len(select)} selection questions (best, "
                       f"{best.label}, {sel_gain:+.4f} {shown})", **split)
    t = paired_test(values[label][test], values[baseline][test], alternative="greater")
    evidence: Dict[str, Any] = {"gain": t.mean_diff, "ci": (t.ci_low, t.ci_high), "p": t.p_value}
    if t.p_value < alpha:
        reason = (f"hybrid {best.label} beats {baseline} by {t.mean_diff:+.4f} {shown} on {len(test)} held-out "
                  f"questions it was not picked on, one-sided paired p={t.p_value:.3g} (< {alpha}); picked among "
                  f"{len(specs)} hybrids on {len(select)} other questions")
        logger.debug("Retrieval choice: %s.", reason)
        means = {lab: float(v.mean()) for lab, v in values.items()}
        return FusionChoice(best, baseline, best, means, t.mean_diff, t.ci_low, t.ci_high, t.p_value, alpha, n,
                            len(select), len(test), metric, reason)
    reason = (f"kept {baseline}: best hybrid {best.label} gains {t.mean_diff:+.4f} {shown}, p={t.p_value:.2g}, "
              f"within noise (p >= {alpha}) for {len(test)} held-out questions it was not picked on")
    logger.debug("Retrieval choice: %s.", reason)
    return _single(values, baseline, metric, alpha, n, reason, **split, **evidence)


def _baseline(values: Dict[str, np.ndarray], alpha: float) -> str:
    """``"bm25"`` when BM25 alone beats dense beyond noise on all the questions (one-sided paired test), else ``"dense"``."""
    if values["bm25"].mean() <= values["dense"].mean() + 1e-12:
        return "dense"
    t = paired_test(values["bm25"], values["dense"], alternative="greater")
    logger.debug("BM25 alone against dense: %+.4f, one-sided paired p=%.3g (%s).", t.mean_diff, t.p_value,
                "BM25 is the baseline" if t.p_value < alpha else "within noise: dense stays the baseline")
    return "bm25" if t.p_value < alpha else "dense"


def _show(metric: str) -> str:
    name, _, k = metric.partition("@")
    return f"{_DISPLAY.get(name, name)}@{k}"
