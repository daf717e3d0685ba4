"""Evaluate several models on the same prepared queries, then any rows that rerank one of them.

:func:`evaluate_models` is the evaluation behind
:func:`~llama_index_bge_finetune.report.compare.compare_models`: every model is searched on the same
queries and cut-offs, each as deep as the deepest second stage that reranks it needs, and each
second stage (a :class:`SecondStage`, e.g. reranking's ``Reranking``) then reorders its first
stage's result. It returns the results by label, in order; comparing them is
:func:`~llama_index_bge_finetune.evaluation.comparison.build_comparison`'s work.

Example::

    from llama_index_bge_finetune.evaluation.model_runs import evaluate_models
    from llama_index_bge_finetune.evaluation.queries import load_dataset, scorable_queries

    ds = load_dataset("val.json")
    qids, rels, info = scorable_queries(ds)
    results = evaluate_models({"base": "BAAI/bge-small-en-v1.5", "fine-tuned": "out/model"},
                              ds, qids, rels, info, (1, 5, 10))
"""

from __future__ import annotations

import logging
from typing import Any, Dict, Mapping, Optional, Protocol, Sequence, Tuple, runtime_checkable

from llama_index_bge_finetune.encoding.backends import EncodeBackendSpec
from llama_index_bge_finetune.encoding.encoders import ModelSpec
from llama_index_bge_finetune.encoding.resolve import resolve_encoder
from llama_index_bge_finetune.errors import EvaluationError
from llama_index_bge_finetune.evaluation.embedding_evaluator import CacheSpec, _cache, _cache_dir, evaluate_encoder
from llama_index_bge_finetune.evaluation.results import EvaluationResult

logger = logging.getLogger(__name__)


@runtime_checkable
class SecondStage(Protocol):
    """Reorders a first stage's ranking: a row of the comparison that reranks another row.

    ``depth`` is how many of the first stage's results per query it needs; calling it with the
    first stage's result (evaluated that deep) and the dataset returns the new result on the same
    queries, labelled ``name``.
    """

    depth: int

    def __call__(self, first_stage: EvaluationResult, dataset: Any, name: str) -> EvaluationResult: ...


def evaluate_models(
    models: Mapping[str, ModelSpec],
    ds: Any,
    qids: Sequence[str],
    rels: Mapping[str, Mapping[str, float]],
    info: Any,
    ks: Sequence[int],
    *,
    query_instructions: Optional[Mapping[str, Optional[str]]] = None,
    backend: str = "torch",
    batch_size: int = 64,
    cache: CacheSpec = True,
    rerank: Optional[Mapping[str, Tuple[str, SecondStage]]] = None,
    encode_backend: EncodeBackendSpec = "local",
    index: str = "auto",
) -> Dict[str, EvaluationResult]:
    """Evaluate every model on the same queries, then every second stage on its first stage's result.

    Args:
        models: label -> model spec (as for :func:`~llama_index_bge_finetune.report.compare.compare_models`),
            or an :class:`EvaluationResult` already computed on these queries and cut-offs.
        ds: the loaded dataset (its ``queries`` and ``corpus``).
        qids: the scorable query ids, in order.
        rels: query id -> {passage id: relevance grade}.
        info: the :class:`~llama_index_bge_finetune.evaluation.results.DatasetInfo` each result carries.
        ks: checked cut-offs (see :func:`~llama_index_bge_finetune.evaluation.metrics.check_k_values`).
        query_instructions: label -> explicit query instruction (``""`` for none), overriding the saved one.
        backend: ``"torch"`` or ``"onnx-int8"`` for every sentence-transformers model.
        batch_size: texts per forward pass.
        cache: the corpus-embedding cache (see :func:`~llama_index_bge_finetune.evaluation.evaluate_embeddings`).
        rerank: label -> ``(first-stage label, second stage)``; each first stage is a label of ``models``.
        encode_backend: where the corpus is encoded: ``"local"`` or ``"ray"``.
        index: the top-k search (see :func:`~llama_index_bge_finetune.evaluation.evaluate_embeddings`).

    Returns:
        label -> result: the models in order, then the reranked rows in order.

    Raises:
        EvaluationError: a precomputed result was made on other queries or cut-offs.
    """
    results: Dict[str, EvaluationResult] = {}
    for label, spec in models.items():
        if isinstance(spec, EvaluationResult):
            results[label] = _checked_precomputed(label, spec, qids, ks)
            continue
        encoder = resolve_encoder(spec, name=label, query_instruction=(query_instructions or {}).get(label),
                                  backend=backend, batch_size=batch_size, cache_dir=_cache_dir(cache),
                                  encode_backend=encode_backend)
        logger.info("Evaluating %s ...", label)
        result = evaluate_encoder(encoder, ds, qids, rels, info, ks, cache=_cache(cache),
                                  depth=_first_stage_depth(label, ks, rerank), index=index)
        result.name = label
        results[label] = result
    for label, (first, stage) in (rerank or {}).items():
        logger.info("Evaluating %s (reordering the top %d of %s) ...", label, stage.depth, first)
        results[label] = stage(results[first], ds, label)
    return results


def _checked_precomputed(label: str, result: EvaluationResult, qids: Sequence[str],
                         ks: Sequence[int]) -> EvaluationResult:
    """A precomputed result, refused unless it was made on exactly these queries and cut-offs."""
    if [q.query_id for q in result.queries] != list(qids) or tuple(result.k_values) != tuple(ks):
        raise EvaluationError(f"The precomputed result for {label!r} was made on other queries or k values.")
    return result


def _first_stage_depth(label: str, ks: Sequence[int],
                       rerank: Optional[Mapping[str, Tuple[str, SecondStage]]]) -> Optional[int]:
    """How deep to search for ``label``: the deepest of its second stages (at least max k), or ``None`` (max k)."""
    depths = [stage.depth for first, stage in (rerank or {}).values() if first == label]
    return max(max(depths), max(ks)) if depths else None
