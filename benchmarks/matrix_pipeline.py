"""The benchmark matrix's pipeline rows: BM25 alone, base + BM25, and ours' shipped pipeline (ours + BM25).

A retrieval pipeline is judged like a model: on the set's test questions, with the matrix's metrics
(nDCG@10, hit rate@5, MRR@10, binary relevance), over the whole corpus.

- ``bm25``: :class:`~llama_index_bge_finetune.retrieval.bm25.BM25Index` with its defaults (English
  stemming and stopwords, k1 1.5, b 0.75, Lucene's variant), each passage's title and text as one
  field (the sets store them joined), exact scoring over the whole corpus.
- ``base_bm25``: the base model's dense scores fused with BM25's, the fusion chosen by
  :func:`~llama_index_bge_finetune.evaluation.fusion_choice.choose_fusion` (dense, BM25, or one of 36
  hybrids, a hybrid kept only when it beats the better single retriever beyond noise).
- ``ours_pipeline``: the same with our fine-tuned model: what our engine ships, the model plus the
  retrieval chosen for it by the same rule.

**How the fusion is chosen without the questions it is scored on: 2-fold cross-fitting on the test
questions.** The test questions are split at random (seed 0) into two folds; each fold is scored with
the choice ``choose_fusion`` made on the other fold (which itself picks on one half and tests on the
other). Every question is scored once, by a choice it played no part in. This was preferred over
holding out training questions, which would take them from our training in this run only, and which
the sets without a validation split (all of them) cannot spare; the cost is that the two folds may
choose differently, so the row reports both choices with their reasons. The decision metric is the
set's headline metric.

Dense scores are ``query vectors @ corpus vectors`` (both normalised) from the vectors the matrix
already encoded for its dense rows (:func:`~llama_index_bge_finetune.training.retrieval_metrics.retrieval_vectors`).
The time of the fusion is the shipped path's: each retriever's top-100 per question
(:func:`~llama_index_bge_finetune.retrieval.fusion.fuse_top_k`), timed over all test questions at once
and one question at a time; the whole-corpus fusion used for scoring is timed beside it.

Example::

    lexical = LexicalScores.build(test, vectors.qids, vectors.doc_ids)
    rows["bm25"] = lexical.row()
    rows["ours_pipeline"] = crossfit_row(vectors.queries @ vectors.corpus.T, lexical, "ndcg@10")
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Dict, List, Sequence, Set, Union

import numpy as np

from llama_index_bge_finetune.evaluation.fusion_choice import FusionChoice, choose_fusion
from llama_index_bge_finetune.evaluation.metrics import score_ranking
from llama_index_bge_finetune.retrieval.bm25 import BM25Index, BM25Settings
from llama_index_bge_finetune.retrieval.fusion import FusionSpec, fuse, fuse_top_k, top_k_rows

logger = logging.getLogger("matrix_pipeline")

HEADLINE = ("ndcg@10", "hit_rate@5", "mrr@10")
FOLDS = 2
SEED = 0
TOP_N = 100  # each retriever's list the shipped path fuses
ONE_AT_A_TIME = 50  # questions timed one call each
HOW_CHOSEN = (f"{FOLDS}-fold cross-fitting on the test questions (seed {SEED}): each fold scored with the fusion "
              "choose_fusion chose on the other fold, on the set's headline metric")


def pipeline_key() -> Dict[str, Any]:
    """What a cached pipeline row depends on beyond the data and the models: this design and BM25's packages."""
    def ver(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "absent"

    return {"design": "crossfit-v1", "folds": FOLDS, "seed": SEED, "bm25s": ver("bm25s"), "PyStemmer": ver("PyStemmer"),
            "bm25": BM25Settings().to_dict()}


@dataclass
class LexicalScores:
    """BM25's whole-corpus scores of the test questions, with what scoring needs and BM25's timings."""

    qids: List[str]
    doc_ids: List[str]
    relevant: List[Dict[str, float]]
    full: np.ndarray
    tie_rank: np.ndarray
    timings: Dict[str, float]

    @classmethod
    def build(cls, test: Any, qids: Sequence[str], doc_ids: Sequence[str]) -> "LexicalScores":
        """Index ``test.corpus`` (in ``doc_ids`` order) and score the questions ``qids`` against all of it."""
        texts = [test.corpus[d] for d in doc_ids]
        questions = [test.queries[q] for q in qids]
        t0 = time.perf_counter()
        index = BM25Index.build(texts, list(doc_ids), BM25Settings())
        build = time.perf_counter() - t0
        t0 = time.perf_counter()
        full = index.score_all(questions)
        score_all = time.perf_counter() - t0
        t0 = time.perf_counter()
        index.top_k_rows(questions, TOP_N)
        top = time.perf_counter() - t0
        tie_rank = np.empty(len(doc_ids), dtype=np.int64)
        tie_rank[np.argsort(np.asarray(doc_ids, dtype=object), kind="stable")] = np.arange(len(doc_ids))
        n = max(len(qids), 1)
        timings = {"build_seconds": build, "terms": float(index.n_terms), "score_all_ms_per_query": 1000 * score_all / n,
                   f"top{TOP_N}_ms_per_query": 1000 * top / n}
        relevant = [dict.fromkeys(test.relevant_docs[q], 1.0) for q in qids]
        return cls(list(qids), list(doc_ids), relevant, full, tie_rank, timings)

    def row(self) -> Dict[str, Any]:
        """The BM25 row: its metrics and timings."""
        return {**summarise(per_query(self.full, self, np.arange(len(self.qids)))), **self.timings,
                "settings": BM25Settings().to_dict(), "note": "exact BM25 over the whole corpus, title and text as one field"}


def per_query(scores: np.ndarray, lexical: LexicalScores, rows: np.ndarray) -> Dict[str, np.ndarray]:
    """Per-question headline metrics of ranking by ``scores`` (one row per question in ``rows``), ties by id."""
    top, _ = top_k_rows(scores, 10, lexical.tie_rank)
    out = {k: np.zeros(len(rows)) for k in HEADLINE}
    for i, r in enumerate(rows):
        got = score_ranking([lexical.doc_ids[j] for j in top[i]], lexical.relevant[r], (5, 10))
        for k in HEADLINE:
            out[k][i] = got[k]
    return out


def summarise(values: Dict[str, np.ndarray]) -> Dict[str, float]:
    """Means of per-question metrics, and the question count."""
    n = len(next(iter(values.values())))
    return {**{k: float(v.mean()) if n else 0.0 for k, v in values.items()}, "queries": float(n)}


def fold_rows(n: int) -> List[np.ndarray]:
    """The questions' rows split at random (seed :data:`SEED`) into :data:`FOLDS` folds, each sorted."""
    perm = np.random.default_rng(SEED).permutation(n)
    return [np.sort(part) for part in np.array_split(perm, FOLDS)]


def chosen_label(choice: FusionChoice) -> str:
    """``"zscore w=0.3"``, ``"dense"`` or ``"bm25"``."""
    return choice.chosen.label if isinstance(choice.chosen, FusionSpec) else str(choice.chosen)


def apply_choice(choice: FusionChoice, dense: np.ndarray, lexical: np.ndarray) -> np.ndarray:
    """The scores the choice ranks by: the fused scores, or one retriever's."""
    if isinstance(choice.chosen, FusionSpec):
        return fuse(dense, lexical, choice.chosen)
    return lexical if choice.chosen == "bm25" else dense


def crossfit_row(dense: np.ndarray, lexical: LexicalScores, metric: str) -> Dict[str, Any]:
    """Dense + BM25 with the fusion chosen by cross-fitting (module docstring): metrics, each fold's choice, timings."""
    n = len(lexical.qids)
    if dense.shape != lexical.full.shape:
        raise ValueError(f"dense scores {dense.shape} and BM25 scores {lexical.full.shape} must cover the same "
                         "questions and passages")
    per = {k: np.zeros(n) for k in HEADLINE}
    folds: List[Dict[str, Any]] = []
    timed: Dict[str, FusionSpec] = {}
    used: Set[str] = set()
    for rows in fold_rows(n):
        other = np.setdiff1d(np.arange(n), rows)
        choice = choose_fusion(dense[other], lexical.full[other], [lexical.relevant[i] for i in other],
                               lexical.doc_ids, metric=metric, seed=SEED)
        for k, v in per_query(apply_choice(choice, dense[rows], lexical.full[rows]), lexical, rows).items():
            per[k][rows] = v
        spec = choice.chosen if isinstance(choice.chosen, FusionSpec) else choice.best_hybrid
        if spec is not None:  # a fold that kept one retriever: its best hybrid is timed, marked unused
            timed[spec.label] = spec
            if choice.hybrid:
                used.add(spec.label)
        folds.append({"scored_questions": int(len(rows)), "chosen_on_questions": int(len(other)),
                      "chosen": chosen_label(choice), "reason": choice.reason, "gain": choice.gain,
                      "p_value": choice.p_value, "means_on_choice_questions": {
                          k: choice.means[k] for k in ("dense", "bm25") if k in choice.means}})
        logger.info("fold of %d questions: %s (%s)", len(rows), chosen_label(choice), choice.reason)
    row: Dict[str, Any] = summarise(per)
    row.update(chosen=[f["chosen"] for f in folds], folds=folds, how_chosen=HOW_CHOSEN, metric_deciding=metric,
               fusion_timing={label: {**fusion_timing(dense, lexical.full, spec, lexical.tie_rank),
                                      "chosen_by_a_fold": label in used}
                              for label, spec in sorted(timed.items(), key=lambda item: item[0] not in used)})
    return row


def fusion_timing(dense: np.ndarray, lexical: np.ndarray, spec: FusionSpec, tie_rank: np.ndarray,
                  repeats: int = 3) -> Dict[str, Union[float, int]]:
    """Milliseconds per question of fusing with ``spec``: top-100 lists (all at once, one at a time) and whole corpus."""
    d_rows, d_scores = top_k_rows(dense, TOP_N, tie_rank)
    b_rows, b_scores = top_k_rows(lexical, TOP_N, tie_rank)
    n = len(dense)

    def best(call: Any) -> float:
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            call()
            times.append(time.perf_counter() - t0)
        return min(times)

    batch = best(lambda: fuse_top_k(d_rows, d_scores, b_rows, b_scores, spec, k=10))
    m = min(n, ONE_AT_A_TIME)
    single = best(lambda: [fuse_top_k(d_rows[i:i + 1], d_scores[i:i + 1], b_rows[i:i + 1], b_scores[i:i + 1], spec,
                                      k=10) for i in range(m)])
    whole = best(lambda: fuse(dense, lexical, spec))
    return {"top_n": TOP_N, "top_n_batch_ms_per_query": 1000 * batch / max(n, 1),
            "top_n_one_query_ms": 1000 * single / max(m, 1), "whole_corpus_ms_per_query": 1000 * whole / max(n, 1),
            "passages": int(dense.shape[1])}
