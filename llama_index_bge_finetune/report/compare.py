"""Evaluate several models on the same questions and compare each with the first (the base).

Example::

    from llama_index_bge_finetune.evaluation import compare_models

    report = compare_models(
        {"base": "BAAI/bge-small-en-v1.5", "fine-tuned": "out/model"},
        "val.json",
        extra_sections={"Training": "2 epochs, MultipleNegativesRankingLoss"},
    )
    print(report.to_markdown())
    report.save("report/")   # report.md, report.json, chart.png, report.html

Rows that rerank a first stage come from any
:class:`~llama_index_bge_finetune.evaluation.model_runs.SecondStage` (reranking provides
:class:`~llama_index_bge_finetune.reranking.evaluation.Reranking`), so this module needs no reranker.
This module checks the options and builds the report; the evaluation itself is
:func:`~llama_index_bge_finetune.evaluation.model_runs.evaluate_models`.
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Optional, Sequence, Tuple

from llama_index_bge_finetune.encoding.backends import EncodeBackendSpec
from llama_index_bge_finetune.encoding.encoders import ModelSpec
from llama_index_bge_finetune.errors import EvaluationError
from llama_index_bge_finetune.evaluation.comparison import build_comparison
from llama_index_bge_finetune.evaluation.embedding_evaluator import CacheSpec
from llama_index_bge_finetune.evaluation.metrics import check_k_values
from llama_index_bge_finetune.evaluation.bm25_evaluator import is_bm25_spec
from llama_index_bge_finetune.evaluation.hybrid import HybridRow, hybrid_plan
from llama_index_bge_finetune.evaluation.model_runs import SecondStage, evaluate_models
from llama_index_bge_finetune.evaluation.results import EvaluationResult
from llama_index_bge_finetune.evaluation.queries import load_dataset, scorable_queries
from llama_index_bge_finetune.report.comparison_report import ComparisonReport
from llama_index_bge_finetune.retrieval.bm25 import BM25Settings

__all__ = ["SecondStage", "compare_models"]


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
    rerank: Optional[Mapping[str, Tuple[str, SecondStage]]] = None,
    encode_backend: EncodeBackendSpec = "local",
    index: str = "auto",
    bm25_settings: Optional[BM25Settings] = None,
    hybrid: Optional[Mapping[str, HybridRow]] = None,
) -> ComparisonReport:
    """Evaluate every model on the same queries and compare each with the first (the base).

    Args:
        models: label -> model spec: a folder or hub id (its saved query instruction is applied),
            ``"bm25"`` (or a :class:`~llama_index_bge_finetune.retrieval.bm25.BM25Settings`) for the
            BM25 retriever, a ``SentenceTransformer``, a LlamaIndex ``BaseEmbedding`` (e.g. ``OpenAIEmbedding``), an
            :class:`~llama_index_bge_finetune.encoding.encoders.EvalModel`, an encoder (e.g. a
            :class:`~llama_index_bge_finetune.encoding.hosted.HostedEmbeddingEncoder`), or an
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
        rerank: label -> ``(first-stage label, second stage)``: also evaluate that model's ranking
            reordered by a :class:`SecondStage`, e.g.
            ``Reranking("out/reranker", top_n=50)`` from :mod:`llama_index_bge_finetune.reranking.evaluation`
            (the report shows the reranking cost per query).
        encode_backend: where the corpus is encoded: ``"local"`` (default) or ``"ray"`` (Ray Data
            actors, see :mod:`llama_index_bge_finetune.encoding`); queries are encoded here.
        index: the top-k search (see :func:`~llama_index_bge_finetune.evaluation.evaluate_embeddings`);
            an approximate one's recall against exact search appears in the report's Models table.
        bm25_settings: tokenisation of the ``"bm25"`` rows (default: English stemming and stopwords). A
            corpus with no BM25 term under them gets no BM25 row (one warning says why), and no hybrid.
        hybrid: label -> ``(dense label, BM25 label[, Hybrid(...)])``, e.g. ``{"base + bm25": ("base",
            "bm25")}``: the dense model fused with BM25, cross-fitted (see
            :class:`~llama_index_bge_finetune.evaluation.hybrid.Hybrid`); ``model_info["shipped"]`` holds
            the choice made on all the questions.

    Raises:
        EvaluationError: no models, an unknown label in ``query_instructions``, ``rerank`` or ``hybrid``, or a bad option.
    """
    _check_models_and_stages(models, query_instructions, rerank)
    _check_hybrids(models, hybrid)
    ks = check_k_values(k_values)
    ds = load_dataset(dataset)
    qids, rels, info = scorable_queries(ds, relevance=relevance, on_missing=on_missing)
    info.name = dataset_name or (os.fspath(dataset) if isinstance(dataset, (str, os.PathLike)) else "")
    results = evaluate_models(models, ds, qids, rels, info, ks, query_instructions=query_instructions,
                              backend=backend, batch_size=batch_size, cache=cache, rerank=rerank,
                              encode_backend=encode_backend, index=index, bm25_settings=bm25_settings,
                              hybrid=hybrid)
    return ComparisonReport.of(build_comparison(
        results, ds, confidence=confidence, n_bootstrap=n_bootstrap, n_permutations=n_permutations, seed=seed,
        extra_sections=extra_sections, n_worst=n_worst))


def _check_models_and_stages(models: Mapping[str, ModelSpec],
                             query_instructions: Optional[Mapping[str, Optional[str]]],
                             rerank: Optional[Mapping[str, Tuple[str, SecondStage]]]) -> None:
    """Refuse no models, a query instruction for an unknown label, and a rerank row that is not a second stage of a model."""
    if not models:
        raise EvaluationError("compare_models needs at least one model, e.g. {'base': 'BAAI/bge-small-en-v1.5'}.")
    unknown = set(query_instructions or {}) - set(models)
    if unknown:
        raise EvaluationError(f"query_instructions names unknown models {sorted(unknown)}; use labels from {list(models)}.")
    for label, (first, stage) in (rerank or {}).items():
        if first not in models:
            raise EvaluationError(f"rerank[{label!r}] names the first stage {first!r}, which is not one of {list(models)}.")
        if not isinstance(stage, SecondStage):
            raise EvaluationError(
                f"rerank[{label!r}] holds a {type(stage).__name__}, not a second stage; pass "
                "(first-stage label, Reranking(reranker)) with Reranking from llama_index_bge_finetune.reranking."
            )


def _check_hybrids(models: Mapping[str, ModelSpec], hybrid: Optional[Mapping[str, HybridRow]]) -> None:
    """Refuse a hybrid whose dense row is not a dense model evaluated here or whose BM25 row is not BM25."""
    for label, (dense, lexical, _) in hybrid_plan(hybrid).items():
        if label in models:
            raise EvaluationError(f"hybrid[{label!r}] has the label of a model; give the hybrid row its own label, "
                                  f"e.g. '{dense} + {lexical}'.")
        spec = models.get(dense)
        if dense not in models or is_bm25_spec(spec) or isinstance(spec, EvaluationResult):
            raise EvaluationError(f"hybrid[{label!r}] fuses {dense!r}, which must be a dense model of {list(models)} "
                                  "(not BM25, not a precomputed result: its vectors are fused).")
        if not is_bm25_spec(models.get(lexical)):
            raise EvaluationError(f"hybrid[{label!r}] fuses {lexical!r}, which must be a BM25 row of the models, "
                                  "e.g. models={..., 'bm25': 'bm25'}, hybrid={'x + bm25': ('x', 'bm25')}.")
