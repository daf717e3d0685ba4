"""The fast path: evaluate an embedding model on a dataset by exact search over the whole corpus.

The corpus is encoded once in large batches (or read from the embedding cache), all queries in
batches, and the top k of every query found by chunked matrix products; no vector store, no
per-query Python round trip. Results equal sentence-transformers' ``InformationRetrievalEvaluator``
on every metric both compute.

Example::

    from llama_index_bge_finetune.evaluation import evaluate_embeddings

    result = evaluate_embeddings("out/model", "val.json", k_values=(1, 5, 10))
    print(result.metrics["ndcg@10"], result.metrics["recall@10"])
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any, Callable, Mapping, Optional, Sequence, Union

from llama_index_bge_finetune.encoding.backends import EncodeBackendSpec
from llama_index_bge_finetune.retrieval.corpus_cache import EmbeddingCache
from llama_index_bge_finetune.encoding.encoders import Encoder, ModelSpec
from llama_index_bge_finetune.encoding.resolve import resolve_encoder
from llama_index_bge_finetune.evaluation.metrics import check_k_values, score_ranking
from llama_index_bge_finetune.evaluation.queries import load_dataset, scorable_queries
from llama_index_bge_finetune.evaluation.results import EvaluationResult, QueryResult
from llama_index_bge_finetune.retrieval.search import DEFAULT_BLOCK, search

logger = logging.getLogger(__name__)

CacheSpec = Union[str, "os.PathLike[str]", EmbeddingCache, bool, None]


def evaluate_embeddings(
    model: ModelSpec,
    dataset: Any,
    k_values: Sequence[int] = (1, 3, 5, 10),
    *,
    name: str = "",
    query_instruction: Optional[str] = None,
    backend: str = "torch",
    batch_size: int = 64,
    cache: CacheSpec = True,
    relevance: Optional[Mapping[str, Mapping[str, float]]] = None,
    on_missing: str = "exclude",
    depth: Optional[int] = None,
    block: int = DEFAULT_BLOCK,
    encode_backend: EncodeBackendSpec = "local",
    index: str = "auto",
) -> EvaluationResult:
    """Score one embedding model on a dataset at every k, keeping per-query results.

    Args:
        model: a model folder or hub id, a ``SentenceTransformer``, a LlamaIndex ``BaseEmbedding``,
            or an :class:`~llama_index_bge_finetune.encoding.encoders.EvalModel`.
        dataset: an ``EmbeddingQAFinetuneDataset`` (ours or llama-index-finetuning's), a dict, or a path.
        k_values: cut-offs for every metric.
        name: the model's label in reports (default: derived from the model).
        query_instruction: text before every query; ``None`` uses the model's saved instruction.
        backend: ``"torch"`` (exact, default) or ``"onnx-int8"`` (faster on CPU, approximate).
        batch_size: texts per forward pass.
        cache: ``True`` for the default on-disk corpus-embedding cache, a folder or an
            :class:`EmbeddingCache` for another one, ``False``/``None`` for none.
        relevance: optional graded judgments (query id -> {doc id: grade}) instead of ``relevant_docs``.
        on_missing: ``"exclude"`` (default) leaves out, and counts, queries with no relevant
            passage in the corpus; ``"raise"`` raises :class:`~llama_index_bge_finetune.errors.EvaluationError`.
        depth: how many results to keep per query (default: the largest k).
        block: at most this many query-passage scores are held in memory at once.
        encode_backend: where the corpus is encoded: ``"local"`` (default) or ``"ray"`` (Ray Data
            actors, see :mod:`llama_index_bge_finetune.encoding`); queries are encoded here.
        index: the top-k search: ``"auto"`` (exact; numpy for small corpora, FAISS above
            :data:`~llama_index_bge_finetune.retrieval.search.NUMPY_MAX_PASSAGES`), ``"exact"``,
            ``"flat"``, or the approximate ``"ivf"`` / ``"hnsw"``, whose recall@k against exact search
            is logged and kept in ``result.search`` (and so in every report).
    """
    ks = check_k_values(k_values)
    ds = load_dataset(dataset)
    qids, rels, info = scorable_queries(ds, relevance=relevance, on_missing=on_missing)
    encoder = resolve_encoder(model, name=name, query_instruction=query_instruction, backend=backend,
                              batch_size=batch_size, cache_dir=_cache_dir(cache), encode_backend=encode_backend)
    return evaluate_encoder(encoder, ds, qids, rels, info, ks, cache=_cache(cache), depth=depth, block=block,
                            index=index)


def evaluate_encoder(encoder: Encoder, ds: Any, qids: Sequence[str], rels: Mapping[str, Mapping[str, float]],
                     info: Any, ks: Sequence[int], cache: Optional[EmbeddingCache] = None,
                     depth: Optional[int] = None, block: int = DEFAULT_BLOCK, index: str = "auto",
                     on_vectors: Optional[Callable[[Any, Any], None]] = None) -> EvaluationResult:
    """Evaluate an already-built encoder on prepared queries (see :func:`evaluate_embeddings`).

    ``on_vectors``, when given, is called with the query vectors (in ``qids`` order) and the corpus
    vectors (in ``ds.corpus`` order), e.g. to fuse the dense scores with BM25's afterwards.
    """
    corpus_ids = list(ds.corpus)
    corpus_texts = [ds.corpus[c] for c in corpus_ids]
    query_texts = [ds.queries[q] for q in qids]
    encoder.plan(corpus_texts + query_texts)
    timings = {}
    t0 = time.perf_counter()
    corpus_vecs = cache.get_or_encode(encoder, corpus_texts) if cache is not None else encoder.encode_corpus(corpus_texts)
    timings["encode_corpus"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    query_vecs = encoder.encode_queries(query_texts)
    timings["encode_queries"] = time.perf_counter() - t0
    if on_vectors is not None:
        on_vectors(query_vecs, corpus_vecs)
    t0 = time.perf_counter()
    found = search(query_vecs, corpus_vecs, depth or max(ks), corpus_ids, index=index, block=block)
    results = []
    for row, qid in enumerate(qids):
        hits = found.indices[row] >= 0  # an approximate index may return fewer than k
        retrieved = [corpus_ids[i] for i in found.indices[row][hits]]
        results.append(QueryResult(
            query_id=qid, query=ds.queries[qid], relevant=dict(rels[qid]), retrieved_ids=retrieved,
            retrieved_scores=[float(s) for s in found.scores[row][hits]], metrics=score_ranking(retrieved, rels[qid], ks),
        ))
    timings["search_and_score"] = time.perf_counter() - t0
    logger.info("Evaluated %s on %d queries over %d passages in %.1f s.", encoder.name, len(qids),
                len(corpus_ids), sum(timings.values()))
    return EvaluationResult(name=encoder.name, k_values=tuple(ks), queries=results, dataset=info,
                            timings=timings, model_info=encoder.describe(), search=found.describe())


def _cache(cache: CacheSpec) -> Optional[EmbeddingCache]:
    if cache is None or cache is False:
        return None
    if isinstance(cache, EmbeddingCache):
        return cache
    return EmbeddingCache(None if cache is True else cache)


def _cache_dir(cache: CacheSpec) -> Optional[str]:
    c = _cache(cache)
    return str(c.directory) if c is not None else None
