"""A dense model fused with BM25 as a row of every comparison, its fusion chosen honestly (cross-fitted).

:class:`Hybrid` makes the row ``"fine-tuned + bm25"``: every question's dense scores against the
whole corpus (query vectors times corpus vectors) and its BM25 scores
(:meth:`~llama_index_bge_finetune.retrieval.bm25.BM25Index.score_all`) are fused exactly, over the
whole corpus, by a :class:`~llama_index_bge_finetune.retrieval.fusion.FusionSpec`. Which fusion
(or dense alone, or BM25 alone) is decided by the beyond-noise rule of
:mod:`~llama_index_bge_finetune.evaluation.fusion_choice`.

The only questions to decide on are the ones being reported, and a rule chosen on a question and
then scored on it flatters itself. So the row is **cross-fitted**, as the reranker's blend weight
is (:func:`~llama_index_bge_finetune.reranking.evaluation.cross_fitted_rerank`): the questions are
dealt into ``folds`` folds, and each fold is ranked by the choice made on the *other* folds. The deal
is random (seeded), not by position: a dataset's order often carries structure (in the LlamaIndex
10-K validation set the first and second question of each passage differ in kind: dense retrieval
ties BM25 on the first ones and trails it far on the second), and folds dealt by position would then
differ systematically, each choosing for questions unlike its own. The choice may be ``"dense"`` or ``"bm25"`` alone; that fold is then ranked by it. No question
is scored by a rule chosen on itself, so the row's figures are an honest estimate of the chosen
pipeline.

The pipeline to *ship* is the choice made on all the questions (more evidence than any fold has);
it is in ``model_info["shipped"]`` (a :meth:`FusionChoice.to_dict
<llama_index_bge_finetune.evaluation.fusion_choice.FusionChoice.to_dict>`) with its reason, and
the row's figures are the cross-fitted estimate of it.

Example::

    from llama_index_bge_finetune.evaluation import compare_models

    cmp = compare_models({"base": "BAAI/bge-small-en-v1.5", "bm25": "bm25"}, "val.json",
                         hybrid={"base + bm25": ("base", "bm25")})
    info = cmp.results["base + bm25"].model_info
    print(info["fusion_per_fold"], info["shipped"]["reason"])
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from llama_index_bge_finetune.errors import EvaluationError
from llama_index_bge_finetune.evaluation.fusion_choice import (DEFAULT_CANDIDATES, FUSION_ALPHA, FusionChoice,
                                                             Relevance, candidate_values, choose_from_values,
                                                             id_tie_rank)
from llama_index_bge_finetune.evaluation.metrics import score_ranking
from llama_index_bge_finetune.evaluation.results import EvaluationResult, QueryResult
from llama_index_bge_finetune.retrieval.bm25 import BM25Index, text_digest
from llama_index_bge_finetune.retrieval.fusion import FusionSpec, fuse, top_k_rows

logger = logging.getLogger(__name__)

#: ``model_info["fusion"]`` of a cross-fitted row (as the reranker's ``blend_weight``).
CROSS_FIT = "cross-fit"
_BLOCK = 8_388_608  # scores of one matrix held at once (32 MB of float32)

#: Rows ``start`` to ``stop`` of a (n_questions, n_docs) score matrix.
ScoreRows = Callable[[int, int], np.ndarray]
Scores = Union[np.ndarray, ScoreRows]


@dataclass(frozen=True)
class DenseVectors:
    """A dense model's vectors of an evaluation: the questions' (in report order) and the corpus's (in corpus order)."""

    queries: np.ndarray
    corpus: np.ndarray

    def scores(self, start: int, stop: int) -> np.ndarray:
        """Dense scores of questions ``start`` to ``stop`` against the whole corpus (the search's inner product)."""
        return np.asarray(self.queries[start:stop], dtype=np.float32) @ np.asarray(self.corpus, dtype=np.float32).T


@dataclass
class CrossFitted:
    """Every question ranked by the fusion chosen on the other folds, and the choice made on all of them.

    Attributes:
        rows: (n_questions, depth) corpus rows, best first.
        scores: their scores under the fold's choice (dense, BM25 or fused).
        fold_of: (n_questions,) each question's fold.
        fold_choices: per fold, the :class:`FusionChoice` made on the other folds (which ranked it).
        shipped: the choice made on all the questions: the pipeline to ship.
    """

    rows: np.ndarray
    scores: np.ndarray
    fold_of: np.ndarray
    fold_choices: List[FusionChoice]
    shipped: FusionChoice


def choice_label(choice: FusionChoice) -> str:
    """``"dense"``, ``"bm25"`` or the chosen hybrid's label (``"zscore w=0.3"``)."""
    return choice.chosen.label if isinstance(choice.chosen, FusionSpec) else str(choice.chosen)


def cross_fitted_fusion(
    dense: Scores,
    lexical: Scores,
    relevant: Sequence[Relevance],
    corpus_ids: Sequence[str],
    depth: int,
    candidates: Sequence[FusionSpec] = DEFAULT_CANDIDATES,
    metric: str = "ndcg@10",
    alpha: float = FUSION_ALPHA,
    folds: int = 2,
    seed: int = 0,
) -> CrossFitted:
    """Rank every question by the retrieval chosen on the other folds (see the module docstring).

    Args:
        dense: (n_questions, n_docs) dense scores over the whole corpus, or a function of ``(start,
            stop)`` giving those rows (so a large evaluation is scored a block of questions at a time).
        lexical: BM25 scores of the same questions and documents, likewise.
        relevant: per question, its relevant documents (``{id: grade}`` or ids).
        corpus_ids: the columns' ids (ties rank by ascending id).
        depth: results kept per question.
        candidates: the hybrids tried (default: every normalisation at BM25 weights 0.1 .. 0.9).
        metric: the metric deciding, e.g. ``"ndcg@10"``.
        alpha: the one-sided p-value a hybrid's gain must stay below.
        folds: how many folds, of equal size (questions dealt at random, see the module docstring).
        seed: seed of the deal into folds and of each choice's selection/test split.

    Raises:
        EvaluationError: fewer questions than folds, fewer than 2 folds, or mismatched inputs.

    Example::

        fit = cross_fitted_fusion(dense, lexical, relevant, ids, depth=10)
        fit.fold_choices[0].reason, fit.shipped.chosen
    """
    n, n_docs = len(relevant), len(corpus_ids)
    if folds < 2 or n < folds:
        raise EvaluationError(f"Cross-fitting needs at least 2 folds and a question per fold; got {folds} folds "
                              f"for {n} questions.")
    dense_rows, lexical_rows = _rows(dense, "dense", n, n_docs), _rows(lexical, "BM25", n, n_docs)
    step = max(1, _BLOCK // max(1, n_docs))
    blocks = [(s, min(n, s + step)) for s in range(0, n, step)]
    kept: Dict[Tuple[int, int], Tuple[np.ndarray, np.ndarray]] = {}

    def block_scores(s: int, e: int) -> Tuple[np.ndarray, np.ndarray]:
        pair = kept.get((s, e)) or (dense_rows(s, e), lexical_rows(s, e))
        if len(blocks) == 1:  # one block: score it once
            kept[(s, e)] = pair
        return pair

    parts = [candidate_values(*block_scores(s, e), relevant[s:e], corpus_ids, candidates, metric) for s, e in blocks]
    values = {label: np.concatenate([p[label] for p in parts]) for label in parts[0]}
    fold_of = fold_assignment(n, folds, seed)
    fold_choices = [choose_from_values({label: v[fold_of != f] for label, v in values.items()}, candidates,
                                       metric, alpha, seed) for f in range(folds)]
    shipped = choose_from_values(values, candidates, metric, alpha, seed)
    k = min(depth, n_docs)
    rows, scores = np.zeros((n, k), dtype=np.int64), np.zeros((n, k), dtype=np.float64)
    tie_rank = id_tie_rank(corpus_ids)
    for s, e in blocks:
        d, b = block_scores(s, e)
        for f, choice in enumerate(fold_choices):
            sel = np.flatnonzero(fold_of[s:e] == f)
            if len(sel):
                r, sc = top_k_rows(_chosen_scores(choice, d[sel], b[sel]), k, tie_rank)
                rows[s + sel], scores[s + sel] = r, sc
    return CrossFitted(rows, scores, fold_of, fold_choices, shipped)


def fold_assignment(n: int, folds: int = 2, seed: int = 0) -> np.ndarray:
    """Each of ``n`` questions' fold: dealt at random (seeded), the folds' sizes differing by at most one.

    Example::

        fold_assignment(5, 2)   # e.g. array([1, 0, 0, 1, 0])
    """
    return np.random.default_rng(seed).permutation(n) % folds


def _rows(scores: Scores, what: str, n: int, n_docs: int) -> ScoreRows:
    """``scores`` as a function of (start, stop), checked against the questions and corpus."""
    if callable(scores):
        return scores
    matrix = np.asarray(scores)
    if matrix.shape != (n, n_docs):
        raise EvaluationError(f"The {what} scores are {matrix.shape}, but there are {n} questions and {n_docs} "
                              "corpus ids; pass one row per question and one column per document.")
    return lambda start, stop: matrix[start:stop]


def _chosen_scores(choice: FusionChoice, dense: np.ndarray, lexical: np.ndarray) -> np.ndarray:
    if choice.chosen == "dense":
        return dense
    if choice.chosen == "bm25":
        return lexical
    return fuse(dense, lexical, choice.chosen)


@dataclass
class Hybrid:
    """A dense row fused with the BM25 row, the fusion cross-fitted over the reported questions.

    A row of :func:`~llama_index_bge_finetune.evaluation.compare_models`:
    ``hybrid={"fine-tuned + bm25": ("fine-tuned", "bm25")}`` uses the defaults; pass
    ``("fine-tuned", "bm25", Hybrid(folds=3))`` to change them.

    Args:
        candidates: the hybrids tried.
        metric: the metric deciding (default: the comparison's primary metric, nDCG at the largest k).
        alpha: the one-sided p-value a hybrid's gain must stay below.
        folds: cross-fitting folds (2: each half ranked by the choice made on the other half).
        seed: seed of each choice's selection/test split.

    Example::

        from llama_index_bge_finetune.evaluation.hybrid import Hybrid

        cmp = compare_models({"fine-tuned": "out/model", "bm25": "bm25"}, "val.json",
                             hybrid={"fine-tuned + bm25": ("fine-tuned", "bm25", Hybrid(folds=2))})
    """

    candidates: Sequence[FusionSpec] = DEFAULT_CANDIDATES
    metric: Optional[str] = None
    alpha: float = FUSION_ALPHA
    folds: int = 2
    seed: int = 0

    def __call__(self, dense: EvaluationResult, bm25: EvaluationResult, vectors: DenseVectors, index: BM25Index,
                 ds: Any, name: str) -> EvaluationResult:
        """The fused row, labelled ``name``, on the questions of ``dense`` (which ``bm25`` shares).

        Args:
            dense: the dense row's result (its questions, relevance and description).
            bm25: the BM25 row's result on the same questions.
            vectors: the dense model's question and corpus vectors of that evaluation.
            index: the BM25 index of the corpus (in ``ds.corpus`` order).
            ds: the dataset (question texts, corpus).
            name: the row's label.
        """
        ks = tuple(dense.k_values)
        metric = self.metric or f"ndcg@{max(ks)}"
        corpus_ids = [str(c) for c in ds.corpus]
        _check_alignment(dense, bm25, vectors, index, corpus_ids)
        texts = [q.query for q in dense.queries]
        t0 = time.perf_counter()
        fit = cross_fitted_fusion(vectors.scores, lambda s, e: index.score_all(texts[s:e]),
                                  [q.relevant for q in dense.queries], corpus_ids, max(ks), self.candidates,
                                  metric, self.alpha, self.folds, self.seed)
        queries = []
        for i, q in enumerate(dense.queries):
            ids = [corpus_ids[r] for r in fit.rows[i]]
            queries.append(QueryResult(query_id=q.query_id, query=q.query, relevant=dict(q.relevant),
                                       retrieved_ids=ids, retrieved_scores=[float(s) for s in fit.scores[i]],
                                       metrics=score_ranking(ids, q.relevant, ks)))
        _log(name, fit)
        return EvaluationResult(
            name=name, k_values=ks, queries=queries, dataset=dense.dataset,
            timings={"fuse": time.perf_counter() - t0},
            model_info=self._info(dense, bm25, fit, text_digest([ds.corpus[c] for c in corpus_ids], corpus_ids)),
            search={"method": "hybrid", "exact": True,
                    "note": f"exact fusion of dense and BM25 scores over the whole corpus; each of {self.folds} "
                            "folds ranked by the fusion chosen on the other folds"})

    def _info(self, dense: EvaluationResult, bm25: EvaluationResult, fit: CrossFitted,
              corpus_digest: str) -> Dict[str, Any]:
        shipped = fit.shipped
        return {
            "kind": "hybrid", "source": f"{dense.name} fused with {bm25.name}", "backend": "fusion",
            "fingerprint": dense.model_info.get("fingerprint", ""), "dense": dense.name, "bm25": bm25.name,
            "bm25_settings": bm25.model_info.get("settings"), "fusion": CROSS_FIT, "folds": self.folds,
            "fusion_per_fold": [choice_label(c) for c in fit.fold_choices],
            "fusion_reasons_per_fold": [c.reason for c in fit.fold_choices],
            "shipped": shipped.to_dict(), "shipped_pipeline": choice_label(shipped), "corpus_digest": corpus_digest,
        }


def _check_alignment(dense: EvaluationResult, bm25: EvaluationResult, vectors: DenseVectors, index: BM25Index,
                     corpus_ids: List[str]) -> None:
    """Refuse inputs that do not describe the same questions and corpus."""
    if [q.query_id for q in dense.queries] != [q.query_id for q in bm25.queries]:
        raise EvaluationError(f"{dense.name!r} and {bm25.name!r} were evaluated on other questions; fuse rows of "
                              "one comparison.")
    if len(vectors.queries) != len(dense.queries) or len(vectors.corpus) != len(corpus_ids) \
            or index.ids != corpus_ids:
        raise EvaluationError(f"The vectors of {dense.name!r} ({len(vectors.queries)} questions, "
                              f"{len(vectors.corpus)} passages) or the BM25 index ({index.n_docs} passages) do "
                              f"not match the {len(dense.queries)} questions and {len(corpus_ids)} passages "
                              "evaluated; fuse rows of one comparison.")


def _log(name: str, fit: CrossFitted) -> None:
    for f, choice in enumerate(fit.fold_choices, 1):
        logger.info("%s, fold %d ranked by %s (chosen on the other folds): %s.", name, f, choice_label(choice),
                    choice.reason)
    logger.info("%s: the pipeline to ship, chosen on all %d questions, is %s: %s.", name, fit.shipped.questions,
                choice_label(fit.shipped), fit.shipped.reason)


HybridRow = Union[Tuple[str, str], Tuple[str, str, Hybrid]]


def hybrid_plan(hybrid: Optional[Mapping[str, HybridRow]]) -> Dict[str, Tuple[str, str, Hybrid]]:
    """``label -> (dense label, BM25 label[, Hybrid])`` with the default :class:`Hybrid` filled in; bad entries refused."""
    plan: Dict[str, Tuple[str, str, Hybrid]] = {}
    for label, row in (hybrid or {}).items():
        if not isinstance(row, tuple) or len(row) not in (2, 3) or (len(row) == 3 and not isinstance(row[2], Hybrid)):
            raise EvaluationError(f"hybrid[{label!r}] must be (dense label, BM25 label) or (dense label, BM25 label, "
                                  f"Hybrid(...)), e.g. ('fine-tuned', 'bm25'); got {row!r}.")
        plan[label] = (row[0], row[1], row[2] if len(row) == 3 else Hybrid())
    return plan
