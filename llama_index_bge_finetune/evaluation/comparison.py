"""Compare models on the same questions: means with bootstrap 95% intervals and a paired test vs the base.

The first model is the base; every other model is compared with it query by query.

Example::

    from llama_index_bge_finetune.evaluation import compare_models

    cmp = compare_models(
        {"base": "BAAI/bge-small-en-v1.5", "fine-tuned": "out/model"},
        "val.json",
        extra_sections={"Training": "2 epochs, MultipleNegativesRankingLoss"},
    )
    print(cmp.to_markdown())
    cmp.save("report/")   # report.md, report.json, chart.png, report.html
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence, Union

from llama_index_bge_finetune.errors import EvaluationError
from llama_index_bge_finetune.evaluation.embedding_evaluator import CacheSpec, _cache, _cache_dir, evaluate_encoder
from llama_index_bge_finetune.evaluation.encoders import ModelSpec, resolve_encoder
from llama_index_bge_finetune.evaluation.html_report import write_html_report
from llama_index_bge_finetune.evaluation.metrics import check_k_values
from llama_index_bge_finetune.evaluation.queries import load_dataset, scorable_queries
from llama_index_bge_finetune.evaluation.results import DatasetInfo, EvaluationResult
from llama_index_bge_finetune.evaluation.stats import PairedTest, bootstrap_ci, bootstrap_indices, paired_test

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MetricEstimate:
    """A metric's mean over the queries and its bootstrap interval."""

    value: float
    ci_low: float
    ci_high: float


REPORT_FILES = ("report.md", "report.json", "chart.png", "report.html")
"""The files :meth:`ModelComparison.save` writes (a folder holding any of them holds a finished report)."""


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
            "worst_queries": self.worst,
            "extra_sections": dict(self.extra_sections),
            "held_out_passages": self.held_out.to_dict() if self.held_out is not None else None,
        }

    def to_markdown(self) -> str:
        """The report as Markdown."""
        from llama_index_bge_finetune.evaluation.report import render_markdown

        return render_markdown(self)

    def plot(self, path: Union[str, os.PathLike], metrics: Optional[Sequence[str]] = None) -> Path:
        """Write a PNG bar chart (one group per metric, one bar per model, CI error bars)."""
        from llama_index_bge_finetune.evaluation.report import plot_comparison

        return plot_comparison(self, Path(path), metrics)

    def save(self, out_dir: Union[str, os.PathLike], overwrite: bool = False) -> Dict[str, Path]:
        """Write ``report.md``, ``report.json``, ``chart.png`` and ``report.html`` into ``out_dir``; return their paths.

        A report already in ``out_dir`` is replaced only with ``overwrite=True``
        (:class:`~llama_index_bge_finetune.errors.OutputExistsError` otherwise; nothing is written).
        """
        from llama_index_bge_finetune import outputs
        from llama_index_bge_finetune.evaluation.report import render_markdown

        out = Path(out_dir)
        outputs.check_folder(out, overwrite=overwrite, owned=REPORT_FILES, finished=REPORT_FILES,
                             what="an evaluation report (report.md, report.json, chart.png, report.html)",
                             option="out_dir", overwrite_flag="overwrite=True", allow_foreign=True)
        out.mkdir(parents=True, exist_ok=True)
        paths = {"markdown": out / "report.md", "json": out / "report.json", "chart": out / "chart.png"}
        self.plot(paths["chart"])
        paths["json"].write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False), encoding="utf-8")
        paths["markdown"].write_text(render_markdown(self, chart="chart.png"), encoding="utf-8")
        paths["html"] = write_html_report(self, out / "report.html")
        logger.info("Wrote the evaluation report to %s.", out)
        return paths


def compare_models(
    models: Mapping[str, ModelSpec],
    dataset: Any,
    k_values: Sequence[int] = (1, 3, 5, 10),
    *,
    query_instructions: Optional[Mapping[str, Optional[str]]] = None,
    backend: str = "torch",
    batch_size: int = 64,
    cache: CacheSpec = True,
    confidence: float = 0.95,
    n_bootstrap: int = 1000,
    n_permutations: int = 10_000,
    seed: int = 0,
    extra_sections: Optional[Mapping[str, str]] = None,
    on_missing: str = "exclude",
    dataset_name: str = "",
    n_worst: int = 5,
    relevance: Optional[Mapping[str, Mapping[str, float]]] = None,
    rerank: Optional[Mapping[str, Any]] = None,
    rerank_top_n: int = 50,
    rerank_blend: Union[None, float, str] = None,
    index: str = "auto",
) -> ModelComparison:
    """Evaluate every model on the same queries and compare each with the first (the base).

    Args:
        models: label -> model spec: a folder or hub id (its saved query instruction is applied), a
            ``SentenceTransformer``, a LlamaIndex ``BaseEmbedding`` (e.g. ``OpenAIEmbedding``), an
            :class:`~llama_index_bge_finetune.evaluation.encoders.EvalModel`, or an
            :class:`EvaluationResult` already computed on this dataset.
        dataset: an ``EmbeddingQAFinetuneDataset`` (ours or llama-index-finetuning's) or its JSON path.
        k_values: cut-offs for every metric.
        query_instructions: label -> explicit query instruction (``""`` for none), overriding the saved one.
        backend: ``"torch"`` (exact, default) or ``"onnx-int8"`` for every sentence-transformers model.
        batch_size: texts per forward pass.
        cache: the corpus-embedding cache (see :func:`~llama_index_bge_finetune.evaluation.evaluate_embeddings`).
        confidence: level of every interval.
        n_bootstrap: bootstrap resamples of the queries (shared by all models, so intervals are paired).
        n_permutations: sign flips for each paired test's p-value.
        seed: random seed of resampling, for reproducible reports.
        extra_sections: title -> Markdown body appended to the report (training settings, notes).
        on_missing: what to do with queries that have no relevant passage in the corpus.
        dataset_name: how the report names the dataset.
        n_worst: worst queries listed per model.
        relevance: optional graded judgments (query id -> {doc id: grade}) instead of the dataset's
            binary ``relevant_docs``, as in :func:`~llama_index_bge_finetune.evaluation.evaluate_embeddings`.
        rerank: label -> ``(first-stage label, reranker)``: also evaluate that model's top ``rerank_top_n``
            reranked by a cross-encoder (a folder, hub id or ``CrossEncoder``), with the blend weight
            saved by the reranker engine; the report shows the reranking cost per query.
        rerank_top_n: candidates per query the reranker scores.
        rerank_blend: the reranker's weight against the first stage: ``None`` (the weight saved by the
            engine), a number, or ``"cross-fit"`` (each half of these queries reranked with the weight
            chosen on the other half) when the saved weight was chosen on these same queries.
        index: the top-k search (see :func:`~llama_index_bge_finetune.evaluation.evaluate_embeddings`);
            an approximate one's recall against exact search appears in the report's Models table.

    Raises:
        EvaluationError: no models, an unknown label in ``query_instructions``, or a bad option.
    """
    if not models:
        raise EvaluationError("compare_models needs at least one model, e.g. {'base': 'BAAI/bge-small-en-v1.5'}.")
    unknown = set(query_instructions or {}) - set(models)
    if unknown:
        raise EvaluationError(f"query_instructions names unknown models {sorted(unknown)}; use labels from {list(models)}.")
    ks = check_k_values(k_values)
    ds = load_dataset(dataset)
    qids, rels, info = scorable_queries(ds, relevance=relevance, on_missing=on_missing)
    info.name = dataset_name or (os.fspath(dataset) if isinstance(dataset, (str, os.PathLike)) else "")
    results: Dict[str, EvaluationResult] = {}
    for label, spec in models.items():
        if isinstance(spec, EvaluationResult):
            if [q.query_id for q in spec.queries] != qids or tuple(spec.k_values) != ks:
                raise EvaluationError(f"The precomputed result for {label!r} was made on other queries or k values.")
            results[label] = spec
            continue
        qi = (query_instructions or {}).get(label)
        encoder = resolve_encoder(spec, name=label, query_instruction=qi, backend=backend,
                                  batch_size=batch_size, cache_dir=_cache_dir(cache))
        logger.info("Evaluating %s ...", label)
        depth = max(rerank_top_n, max(ks)) if any(first == label for first, _ in (rerank or {}).values()) else None
        result = evaluate_encoder(encoder, ds, qids, rels, info, ks, cache=_cache(cache), depth=depth, index=index)
        result.name = label
        results[label] = result
    for label, (first, reranker) in (rerank or {}).items():
        from llama_index_bge_finetune.reranking.evaluation import rerank_evaluation

        if first not in results:
            raise EvaluationError(f"rerank[{label!r}] names the first stage {first!r}, which is not one of {list(models)}.")
        logger.info("Evaluating %s (reranking the top %d of %s) ...", label, rerank_top_n, first)
        results[label] = rerank_evaluation(results[first], ds, reranker, top_n=rerank_top_n, name=label,
                                           blend_weight=rerank_blend)
    return build_comparison(results, ds, confidence=confidence, n_bootstrap=n_bootstrap,
                            n_permutations=n_permutations, seed=seed, extra_sections=extra_sections, n_worst=n_worst)


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
