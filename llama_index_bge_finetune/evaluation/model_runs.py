"""Evaluate several models on the same prepared queries, then any rows that fuse or rerank them.

:func:`evaluate_models` is the evaluation behind
:func:`~llama_index_bge_finetune.report.compare.compare_models`: every model is searched on the same
queries and cut-offs, each as deep as the deepest second stage that reranks it needs. A model spec
``"bm25"`` (or a :class:`~llama_index_bge_finetune.retrieval.bm25.BM25Settings`) is the BM25
retriever (:func:`~llama_index_bge_finetune.evaluation.bm25_evaluator.evaluate_bm25`). Each hybrid
(:class:`~llama_index_bge_finetune.evaluation.hybrid.Hybrid`) fuses a dense row with a BM25 row, and
each second stage (a :class:`SecondStage`, e.g. reranking's ``Reranking``) then reorders its first
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
from typing import Any, Dict, Mapping, Optional, Protocol, Sequence, Set, Tuple, runtime_checkable

from llama_index_bge_finetune.encoding.backends import EncodeBackendSpec
from llama_index_bge_finetune.encoding.encoders import ModelSpec
from llama_index_bge_finetune.encoding.resolve import resolve_encoder
from llama_index_bge_finetune.errors import EmptyVocabularyError, EvaluationError
from llama_index_bge_finetune.evaluation.bm25_evaluator import evaluate_bm25, is_bm25_spec
from llama_index_bge_finetune.evaluation.embedding_evaluator import CacheSpec, _cache, _cache_dir, evaluate_encoder
from llama_index_bge_finetune.evaluation.hybrid import DenseVectors, HybridRow, hybrid_plan
from llama_index_bge_finetune.evaluation.results import EvaluationResult
from llama_index_bge_finetune.retrieval.bm25 import BM25Index, BM25Settings

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
    bm25_settings: Optional[BM25Settings] = None,
    hybrid: Optional[Mapping[str, HybridRow]] = None,
) -> Dict[str, EvaluationResult]:
    """Evaluate every model on the same queries, then every hybrid and every second stage.

    Args:
        models: label -> model spec (as for :func:`~llama_index_bge_finetune.report.compare.compare_models`),
            ``"bm25"`` or a :class:`~llama_index_bge_finetune.retrieval.bm25.BM25Settings` for BM25, or an
            :class:`EvaluationResult` already computed on these queries and cut-offs.
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
        bm25_settings: the tokenisation of a ``"bm25"`` row (default: English stemming and stopwords).
        hybrid: label -> ``(dense label, BM25 label[, Hybrid])``: that dense row fused with that BM25
            row, cross-fitted (see :mod:`~llama_index_bge_finetune.evaluation.hybrid`).

    Returns:
        label -> result: the models in order, then the hybrids, then the reranked rows. A BM25 row
        whose corpus has no BM25 term is left out (one warning says why), with the rows built on it.

    Raises:
        EvaluationError: a precomputed result was made on other queries or cut-offs.
    """
    plan = hybrid_plan(hybrid)
    runs = _Runs(keep_vectors={dense for dense, _, _ in plan.values()})
    results: Dict[str, EvaluationResult] = {}
    for label, spec in models.items():
        if isinstance(spec, EvaluationResult):
            results[label] = _checked_precomputed(label, spec, qids, ks)
            continue
        depth = _first_stage_depth(label, ks, rerank)
        if is_bm25_spec(spec):
            settings = spec if isinstance(spec, BM25Settings) else bm25_settings
            found = runs.bm25(label, ds, qids, rels, info, ks, settings, depth)
            if found is not None:
                results[label] = found
            continue
        encoder = resolve_encoder(spec, name=label, query_instruction=(query_instructions or {}).get(label),
                                  backend=backend, batch_size=batch_size, cache_dir=_cache_dir(cache),
                                  encode_backend=encode_backend)
        logger.info("Evaluating %s ...", label)
        results[label] = runs.dense(label, encoder, ds, qids, rels, info, ks, _cache(cache), depth, index)
    for label, (dense, lexical, stage) in plan.items():
        if _present(label, (dense, lexical), results) and runs.can_fuse(label, dense, lexical, stage, len(qids)):
            logger.info("Evaluating %s (%s fused with %s over the whole corpus) ...", label, dense, lexical)
            results[label] = stage(results[dense], results[lexical], runs.vectors[dense], runs.indexes[lexical],
                                   ds, label)
    for label, (first, second) in (rerank or {}).items():
        if _present(label, (first,), results):
            logger.info("Evaluating %s (reordering the top %d of %s) ...", label, second.depth, first)
            results[label] = second(results[first], ds, label)
    return results


class _Runs:
    """Evaluates dense and BM25 rows, keeping what a hybrid row needs (dense vectors, BM25 indexes)."""

    def __init__(self, keep_vectors: Set[str]) -> None:
        self.keep_vectors = keep_vectors
        self.vectors: Dict[str, DenseVectors] = {}
        self.indexes: Dict[str, BM25Index] = {}

    def dense(self, label: str, encoder: Any, ds: Any, qids: Sequence[str], rels: Mapping[str, Mapping[str, float]],
              info: Any, ks: Sequence[int], cache: Any, depth: Optional[int], index: str) -> EvaluationResult:
        """A dense row; its vectors are kept when a hybrid fuses it."""
        keep = (lambda q, c: self.vectors.__setitem__(label, DenseVectors(q, c))) if label in self.keep_vectors \
            else None
        result = evaluate_encoder(encoder, ds, qids, rels, info, ks, cache=cache, depth=depth, index=index,
                                  on_vectors=keep)
        result.name = label
        return result

    def bm25(self, label: str, ds: Any, qids: Sequence[str], rels: Mapping[str, Mapping[str, float]], info: Any,
             ks: Sequence[int], settings: Optional[BM25Settings], depth: Optional[int]) -> Optional[EvaluationResult]:
        """A BM25 row, or ``None`` (one warning) when the corpus has no BM25 term under ``settings``."""
        logger.info("Evaluating %s (BM25) ...", label)
        try:
            return evaluate_bm25(ds, qids, rels, info, ks, settings, depth=depth, name=label,
                                 on_index=lambda built: self.indexes.__setitem__(label, built))
        except EmptyVocabularyError as exc:
            logger.warning("No %r row in this comparison: %s", label, exc)
            return None

    def can_fuse(self, label: str, dense: str, lexical: str, stage: Any, n_questions: int) -> bool:
        """Whether the hybrid ``label`` has its inputs; refuses a dense row evaluated elsewhere."""
        if dense not in self.vectors or lexical not in self.indexes:
            raise EvaluationError(f"hybrid[{label!r}] fuses {dense!r} with {lexical!r}, but {dense!r} must be a "
                                  f"dense model evaluated here (not a precomputed result) and {lexical!r} a BM25 "
                                  "row ('bm25' or BM25Settings).")
        if n_questions < stage.folds:
            logger.warning("No %r row: %d question(s) are too few to choose a fusion on %d folds.", label,
                           n_questions, stage.folds)
            return False
        return True


def _present(label: str, needs: Sequence[str], results: Mapping[str, EvaluationResult]) -> bool:
    """Whether the rows ``label`` is built on exist (a BM25 row is left out on an empty vocabulary)."""
    missing = [n for n in needs if n not in results]
    if missing:
        logger.info("No %r row: it is built on %s, which has no row.", label, " and ".join(map(repr, missing)))
    return not missing


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
