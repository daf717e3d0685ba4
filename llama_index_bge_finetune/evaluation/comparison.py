"""The comparison's result types: several models' results on the same questions, with intervals and paired tests.

:func:`build_comparison` turns :class:`~llama_index_bge_finetune.evaluation.results.EvaluationResult`
objects computed on the same queries (by any evaluation path) into a :class:`ModelComparison`:
means with bootstrap intervals and a paired test of every model against the first (the base).
This module computes nothing else and writes no file: the report writers
(:mod:`~llama_index_bge_finetune.report.markdown`, :mod:`~llama_index_bge_finetune.report.html_report`)
read these types, and :func:`~llama_index_bge_finetune.report.compare.compare_models` evaluates
models and returns a savable :class:`~llama_index_bge_finetune.report.comparison_report.ComparisonReport`.

Example::

    from llama_index_bge_finetune.evaluation import evaluate_embeddings
    from llama_index_bge_finetune.evaluation.comparison import build_comparison

    results = {"base": evaluate_embeddings("BAAI/bge-small-en-v1.5", "val.json", name="base"),
               "fine-tuned": evaluate_embeddings("out/model", "val.json", name="fine-tuned")}
    cmp = build_comparison(results)
    print(cmp.differences["fine-tuned"]["ndcg@10"].p_value)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from llama_index_bge_finetune.errors import EvaluationError
from llama_index_bge_finetune.evaluation.results import DatasetInfo, EvaluationResult
from llama_index_bge_finetune.evaluation.stats import PairedTest, bootstrap_ci, bootstrap_indices, paired_test

if TYPE_CHECKING:
    import pandas as pd

@dataclass(frozen=True)
class MetricEstimate:
    """A metric's mean over the queries and its bootstrap interval."""

    value: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class BestRetriever:
    """The best row of a comparison on its primary metric, and whether it beats the next best beyond noise.

    Attributes:
        best: the best row's label (any row: a dense model, BM25, a hybrid, a reranked row).
        metric: the metric deciding (the comparison's primary metric, nDCG at the largest k).
        value: the best row's mean of it.
        runner_up: the next best row that scores differently on some question (``None`` when there is none).
        runner_up_value: its mean.
        test: the paired test of best minus runner-up on the same questions (``None`` without a runner-up).
        beyond_noise: True when that difference is significant (two-sided p below 1 - confidence).
        sentence: the verdict in one paragraph, for reports and the CLI.
        ties: rows that score exactly as the best on every question (e.g. a hybrid that chose BM25 alone).
    """

    best: str
    metric: str
    value: float
    runner_up: Optional[str]
    runner_up_value: Optional[float]
    test: Optional[PairedTest]
    beyond_noise: bool
    sentence: str
    ties: Tuple[str, ...] = ()

    def to_dict(self) -> Dict[str, Any]:
        """JSON-able, with the test's fields under ``"vs_runner_up"``."""
        return {"best": self.best, "metric": self.metric, "value": self.value, "runner_up": self.runner_up,
                "runner_up_value": self.runner_up_value, "beyond_noise": self.beyond_noise,
                "vs_runner_up": asdict(self.test) if self.test is not None else None, "sentence": self.sentence,
                "ties": list(self.ties)}


@dataclass
class ModelComparison:
    """Several models' results on the same queries, with intervals and paired tests vs the first.

    Attributes:
        results: model label -> :class:`EvaluationResult`, in the order given (the first is the base).
        estimates: model -> metric -> :class:`MetricEstimate`.
        differences: model (all but the base) -> metric -> :class:`~llama_index_bge_finetune.evaluation.stats.PairedTest`.
        dataset: sizes, query source and excluded queries.
        confidence: the interval level (0.95).
        extra_sections: title -> Markdown body, appended to the report (e.g. training settings).
        worst: model -> the worst queries with what was retrieved instead (JSON-able dicts).
        corpus: passage id -> text of the evaluated corpus (for the HTML report's question browser).
        held_out: the same questions searched over the held-out passages only (a run's evaluation,
            whose headline is this comparison over the whole corpus); ``None`` otherwise.
    """

    results: Dict[str, EvaluationResult]
    estimates: Dict[str, Dict[str, MetricEstimate]]
    differences: Dict[str, Dict[str, PairedTest]]
    dataset: DatasetInfo
    confidence: float = 0.95
    extra_sections: Dict[str, str] = field(default_factory=dict)
    worst: Dict[str, List[Dict[str, Any]]] = field(default_factory=dict)
    n_bootstrap: int = 1000
    n_permutations: int = 10_000
    corpus: Dict[str, str] = field(default_factory=dict, repr=False)
    held_out: Optional["ModelComparison"] = field(default=None, repr=False)

    @property
    def base(self) -> str:
        """The label of the base model (the first one)."""
        return next(iter(self.results))

    @property
    def k_values(self) -> Sequence[int]:
        """The cut-offs evaluated."""
        return self.results[self.base].k_values

    @property
    def metric_names(self) -> List[str]:
        """Metric keys such as ``ndcg@10``."""
        return self.results[self.base].metric_names

    @property
    def primary_metric(self) -> str:
        """nDCG at the largest k: the one-number summary used in verdicts."""
        return f"ndcg@{max(self.k_values)}"

    def best_retriever(self) -> BestRetriever:
        """The best row overall on the primary metric (ties: the earlier row), tested against the next best.

        Every row competes, BM25 and hybrids included, not only the models compared with the base.

        Example::

            best = cmp.best_retriever()
            print(best.sentence)   # "Best retriever: bm25 (ndcg@10 0.712); it beats the next best, ..."
        """
        return _best_retriever(self)

    def to_dataframe(self) -> "pd.DataFrame":
        """One row per (model, metric): value, CI, and the paired difference vs the base."""
        import pandas as pd

        rows = []
        for model, per_metric in self.estimates.items():
            for metric, est in per_metric.items():
                diff = self.differences.get(model, {}).get(metric)
                rows.append({
                    "model": model, "metric": metric, "value": est.value, "ci_low": est.ci_low, "ci_high": est.ci_high,
                    "diff_vs_base": diff.mean_diff if diff else None,
                    "diff_ci_low": diff.ci_low if diff else None,
                    "diff_ci_high": diff.ci_high if diff else None,
                    "p_value": diff.p_value if diff else None,
                })
        return pd.DataFrame(rows).set_index(["model", "metric"])

    def to_dict(self) -> Dict[str, Any]:
        """Everything in the report, JSON-able."""
        return {
            "base": self.base,
            "k_values": list(self.k_values),
            "confidence": self.confidence,
            "n_bootstrap": self.n_bootstrap,
            "n_permutations": self.n_permutations,
            "dataset": {**asdict(self.dataset), "query_source_note": self.dataset.query_source_note},
            "models": {
                name: {
                    "model": r.model_info,
                    "timings": r.timings,
                    "search": r.search,
                    "metrics": {m: asdict(e) for m, e in self.estimates[name].items()},
                    "vs_base": {m: asdict(t) for m, t in self.differences.get(name, {}).items()},
                }
                for name, r in self.results.items()
            },
            "best_retriever": self.best_retriever().to_dict(),
            "worst_queries": self.worst,
            "extra_sections": dict(self.extra_sections),
            "held_out_passages": self.held_out.to_dict() if self.held_out is not None else None,
        }



def build_comparison(results: Mapping[str, EvaluationResult], dataset: Any = None, confidence: float = 0.95,
                     n_bootstrap: int = 1000, n_permutations: int = 10_000, seed: int = 0,
                     extra_sections: Optional[Mapping[str, str]] = None, n_worst: int = 5) -> ModelComparison:
    """Intervals and paired tests for results already computed on the same queries (any evaluation path)."""
    results = dict(results)
    if not results:
        raise EvaluationError("Nothing to compare: pass at least one EvaluationResult.")
    first = next(iter(results.values()))
    qids = [q.query_id for q in first.queries]
    for label, r in results.items():
        if [q.query_id for q in r.queries] != qids or r.k_values != first.k_values:
            raise EvaluationError(f"{label!r} was evaluated on other queries or k values than {first.name!r}; "
                                  "compare results of one dataset and one k_values.")
    idx = bootstrap_indices(len(qids), n_bootstrap, seed)
    estimates: Dict[str, Dict[str, MetricEstimate]] = {}
    differences: Dict[str, Dict[str, PairedTest]] = {}
    base = next(iter(results))
    for label, r in results.items():
        estimates[label] = {}
        for m in r.metric_names:
            values = r.per_query_array(m)
            lo, hi = bootstrap_ci(values, idx, confidence)
            estimates[label][m] = MetricEstimate(float(values.mean()), lo, hi)
        if label != base:
            differences[label] = {
                m: paired_test(r.per_query_array(m), results[base].per_query_array(m), idx, confidence,
                               n_permutations, seed)
                for m in r.metric_names
            }
    corpus = getattr(dataset, "corpus", None) or {}
    worst = {label: [_worst_entry(q, corpus) for q in r.worst_queries(n_worst)] for label, r in results.items()}
    return ModelComparison(results=results, estimates=estimates, differences=differences, dataset=first.dataset,
                           confidence=confidence, extra_sections=dict(extra_sections or {}), worst=worst,
                           n_bootstrap=n_bootstrap, n_permutations=n_permutations, corpus=dict(corpus))


def _best_retriever(cmp: ModelComparison) -> BestRetriever:
    """The best row on the primary metric (ties: the earlier row), tested against the next row that differs from it."""
    metric = cmp.primary_metric
    order = sorted(cmp.results, key=lambda m: -cmp.estimates[m][metric].value)  # stable: ties keep row order
    best, value = order[0], cmp.estimates[order[0]][metric].value
    a = cmp.results[best].per_query_array(metric)
    ties = tuple(m for m in order[1:] if np.array_equal(cmp.results[m].per_query_array(metric), a))
    same = f" ({', '.join(ties)} scores the same on every question)" if ties else ""
    head = f"Best retriever: {best} ({metric} {value:.4f}){same}"
    rest = [m for m in order[1:] if m not in ties]
    if not rest:
        return BestRetriever(best, metric, value, None, None, None, False,
                             f"{head}; no other retriever was evaluated." if not ties else f"{head}.", ties)
    second, second_value = rest[0], cmp.estimates[rest[0]][metric].value
    test = paired_test(a, cmp.results[second].per_query_array(metric), bootstrap_indices(len(a), cmp.n_bootstrap, 0),
                       cmp.confidence, cmp.n_permutations, 0)
    alpha = 1.0 - cmp.confidence
    beyond = test.significant(alpha) and test.mean_diff > 0
    lead = (f"{test.mean_diff:+.4f} [{int(round(cmp.confidence * 100))}% CI {test.ci_low:+.4f}, "
            f"{test.ci_high:+.4f}], p = {_p(test.p_value)}")
    if beyond:
        tail = f"it beats the next best, {second} ({second_value:.4f}), by {lead}: beyond noise."
    else:
        tail = (f"its lead over the next best, {second} ({second_value:.4f}), is {lead}: within noise (p >= "
                f"{alpha:.2g}); on {len(a)} questions the two cannot be told apart.")
    return BestRetriever(best, metric, value, second, second_value, test, beyond, f"{head}; {tail}", ties)


def _p(p: float) -> str:
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _worst_entry(q: Any, corpus: Mapping[str, str], n_retrieved: int = 3) -> Dict[str, Any]:
    def snippet(doc_id: str) -> str:
        text = " ".join(str(corpus.get(doc_id, "")).split())
        return text[:160] + ("..." if len(text) > 160 else "")

    return {
        "query_id": q.query_id,
        "query": q.query,
        "metrics": q.metrics,
        "relevant": [{"id": d, "grade": g, "text": snippet(d)} for d, g in q.relevant.items()],
        "retrieved": [{"id": d, "score": s, "relevant": d in q.relevant, "text": snippet(d)}
                      for d, s in zip(q.retrieved_ids[:n_retrieved], q.retrieved_scores[:n_retrieved])],
    }
