"""BM25 as a row of every comparison: the lexical retriever judged on the same questions as the dense models.

A report that compares dense models only can tell a user that fine-tuning helped while the BM25
retriever their stack already has retrieves better. :func:`evaluate_bm25` scores BM25 (exact, over
the whole corpus, see :mod:`~llama_index_bge_finetune.retrieval.bm25`) with the same metrics as
:func:`~llama_index_bge_finetune.evaluation.embedding_evaluator.evaluate_encoder`, so it gets the same
intervals and paired tests. :func:`is_bm25_spec` says whether a model spec asks for it: the string
``"bm25"`` or a :class:`~llama_index_bge_finetune.retrieval.bm25.BM25Settings`.

Example::

    from llama_index_bge_finetune.evaluation import compare_models

    cmp = compare_models({"bm25": "bm25", "base": "BAAI/bge-small-en-v1.5", "fine-tuned": "out/model"}, "val.json")
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Mapping, Optional, Sequence

from llama_index_bge_finetune.evaluation.metrics import score_ranking
from llama_index_bge_finetune.evaluation.results import EvaluationResult, QueryResult
from llama_index_bge_finetune.retrieval.bm25 import BM25Index, BM25Settings

logger = logging.getLogger(__name__)

#: The model spec that names the lexical retriever in ``compare_models`` and ``--model NAME=bm25``.
BM25_SPEC = "bm25"


def is_bm25_spec(spec: Any) -> bool:
    """True for ``"bm25"`` (any case) and for a :class:`BM25Settings`: a model spec that asks for BM25."""
    return isinstance(spec, BM25Settings) or (isinstance(spec, str) and spec.strip().lower() == BM25_SPEC)


def evaluate_bm25(ds: Any, qids: Sequence[str], rels: Mapping[str, Mapping[str, float]], info: Any,
                  ks: Sequence[int], settings: Optional[BM25Settings] = None, depth: Optional[int] = None,
                  name: str = BM25_SPEC, on_index: Optional[Callable[[BM25Index], None]] = None) -> EvaluationResult:
    """Evaluate BM25 over ``ds.corpus`` on prepared queries, like ``evaluate_encoder`` does a dense model.

    Args:
        ds: the dataset (``queries``, ``corpus``).
        qids: the scorable query ids, in report order.
        rels: query id -> {relevant doc id: grade}.
        info: the dataset description carried into the result.
        ks: metric cut-offs.
        settings: tokenisation and scoring (English stemming and stopwords by default).
        depth: how many passages per query to return (a second stage may need more than ``max(ks)``).
        name: the row's label.
        on_index: called with the built index (a hybrid row fuses its whole-corpus scores).

    Raises:
        EmptyVocabularyError: the corpus has no BM25 terms under ``settings`` (callers drop the row).
    """
    settings = settings or BM25Settings()
    corpus_ids = list(ds.corpus)
    t0 = time.perf_counter()
    index = BM25Index.build([ds.corpus[c] for c in corpus_ids], corpus_ids, settings)
    timings = {"build_index": time.perf_counter() - t0}
    if on_index is not None:
        on_index(index)
    t0 = time.perf_counter()
    found_ids, found_scores = index.top_k([ds.queries[q] for q in qids], depth or max(ks))
    results = []
    for row, qid in enumerate(qids):
        retrieved = [str(i) for i in found_ids[row]]
        results.append(QueryResult(
            query_id=qid, query=ds.queries[qid], relevant=dict(rels[qid]), retrieved_ids=retrieved,
            retrieved_scores=[float(s) for s in found_scores[row]], metrics=score_ranking(retrieved, rels[qid], ks),
        ))
    timings["search_and_score"] = time.perf_counter() - t0
    logger.info("Evaluated BM25 on %d queries over %d passages (%d terms) in %.1f s.", len(qids), len(corpus_ids),
                index.n_terms, sum(timings.values()))
    model_info = {"kind": "bm25", "source": f"BM25 ({settings.describe()})", "backend": "bm25s",
                  "terms": index.n_terms, "settings": settings.to_dict()}
    search = {"method": "bm25", "exact": True, "note": "exact BM25 scoring over the whole corpus (bm25s)"}
    return EvaluationResult(name=name, k_values=tuple(ks), queries=results, dataset=info,
                            timings=timings, model_info=model_info, search=search)
