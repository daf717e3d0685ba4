"""llama-index's ``RetrieverEvaluator``, extended to whole datasets, metrics at k, and empty retrievals.

The constructor, ``evaluate`` and ``aevaluate`` for one query are llama-index-core's, except that an
empty retrieval scores 0 instead of raising. Added:

- :meth:`RetrieverEvaluator.evaluate_at_k` / :meth:`~RetrieverEvaluator.aevaluate_at_k`: any LlamaIndex
  retriever (vector index, BM25, hybrid, with node postprocessors such as rerankers) over a whole
  ``EmbeddingQAFinetuneDataset``, many queries in flight, hit rate / MRR / nDCG / recall / precision /
  MAP at every k, per-query results kept.
- :meth:`RetrieverEvaluator.evaluate_dataset` / :meth:`~RetrieverEvaluator.aevaluate_dataset`: the
  per-query ``RetrievalEvalResult`` list with llama-index's own metrics (the method core 0.14 dropped).
- :meth:`RetrieverEvaluator.evaluate_embeddings`: the fast path for an embedding model, no retriever
  needed (exact search over the corpus, embeddings cached).

Example::

    from llama_index.core import VectorStoreIndex
    from llama_index_bge_finetune.evaluation import RetrieverEvaluator

    index = VectorStoreIndex(nodes, embed_model=embed_model)
    evaluator = RetrieverEvaluator.from_metric_names(["hit_rate", "mrr"], retriever=index.as_retriever(similarity_top_k=10))
    result = evaluator.evaluate_at_k("val.json", k_values=(1, 5, 10), workers=8)
    print(result.metrics["ndcg@10"])
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, List, Mapping, Optional, Sequence, Tuple

from llama_index.core.async_utils import asyncio_run
from llama_index.core.evaluation import RetrieverEvaluator as _LlamaIndexRetrieverEvaluator
from llama_index.core.evaluation.retrieval.base import RetrievalEvalMode, RetrievalEvalResult
from llama_index.core.evaluation.retrieval.metrics_base import RetrievalMetricResult

from llama_index_bge_finetune.errors import EvaluationError
from llama_index_bge_finetune.evaluation.embedding_evaluator import evaluate_embeddings
from llama_index_bge_finetune.encoding.encoders import retry_already_borrowed
from llama_index_bge_finetune.evaluation.metrics import check_k_values, score_ranking
from llama_index_bge_finetune.evaluation.queries import load_dataset, scorable_queries
from llama_index_bge_finetune.evaluation.results import EvaluationResult, QueryResult

logger = logging.getLogger(__name__)


class RetrieverEvaluator(_LlamaIndexRetrieverEvaluator):
    """Evaluate a LlamaIndex retriever on one query (as upstream) or on a whole dataset at several k.

    Args:
        metrics: llama-index metric objects used by ``evaluate``/``aevaluate``/``evaluate_dataset``
            (``RetrieverEvaluator.from_metric_names(["hit_rate", "mrr"], retriever=...)`` builds them).
        retriever: the retriever to evaluate.
        node_postprocessors: applied to every retrieval, in order (e.g. a reranker).
    """

    async def aevaluate(
        self,
        query: str,
        expected_ids: List[str],
        expected_texts: Optional[List[str]] = None,
        mode: RetrievalEvalMode = RetrievalEvalMode.TEXT,
        **kwargs: Any,
    ) -> RetrievalEvalResult:
        """Upstream's one-query evaluation; an empty retrieval scores 0 on every metric instead of raising."""
        retrieved_ids, retrieved_texts = await self._aget_retrieved_ids_and_texts(query, mode)
        metric_dict = {}
        for metric in self.metrics:
            if not retrieved_ids and expected_ids:
                metric_dict[metric.metric_name] = RetrievalMetricResult(score=0.0, metadata={"empty_retrieval": True})
            else:
                metric_dict[metric.metric_name] = metric.compute(
                    query, expected_ids, retrieved_ids, expected_texts, retrieved_texts
                )
        return RetrievalEvalResult(
            query=query, expected_ids=expected_ids, expected_texts=expected_texts, retrieved_ids=retrieved_ids,
            retrieved_texts=retrieved_texts, mode=mode, metric_dict=metric_dict,
        )

    async def _aget_retrieved_ids_and_texts(
        self, query: str, mode: RetrievalEvalMode = RetrievalEvalMode.TEXT
    ) -> Tuple[List[str], List[str]]:
        ids, texts, _ = await self._aretrieve(query)
        return ids, texts

    async def _aretrieve(self, query: str) -> Tuple[List[str], List[str], List[float]]:
        """Retrieve and post-process (asynchronously when the postprocessor supports it)."""
        nodes = await retry_already_borrowed(lambda: self.retriever.aretrieve(query))
        for post in self.node_postprocessors or []:
            nodes = await post.apostprocess_nodes(nodes, query_str=query)
        return ([n.node.node_id for n in nodes], [n.node.get_content() for n in nodes],
                [float(n.score) if n.score is not None else float("nan") for n in nodes])

    # ------------------------------------------------------------------ dataset level
    async def aevaluate_dataset(
        self, dataset: Any, workers: int = 8, show_progress: bool = False, **kwargs: Any
    ) -> List[RetrievalEvalResult]:
        """One upstream ``RetrievalEvalResult`` per query of ``dataset``, ``workers`` queries in flight.

        The signature of older llama-index-core releases: ``show_progress`` shows a tqdm bar, and extra
        keyword arguments go to every :meth:`aevaluate` call.
        """
        ds = load_dataset(dataset)
        sem = asyncio.Semaphore(_check_workers(workers))

        async def one(qid: str) -> RetrievalEvalResult:
            async with sem:
                return await self.aevaluate(ds.queries[qid], list(ds.relevant_docs.get(qid, [])), **kwargs)

        jobs = [one(q) for q in ds.queries]
        if show_progress:
            from tqdm.asyncio import tqdm_asyncio

            return list(await tqdm_asyncio.gather(*jobs))
        return list(await asyncio.gather(*jobs))

    def evaluate_dataset(
        self, dataset: Any, workers: int = 8, show_progress: bool = False, **kwargs: Any
    ) -> List[RetrievalEvalResult]:
        """Synchronous :meth:`aevaluate_dataset`."""
        return asyncio_run(self.aevaluate_dataset(dataset, workers=workers, show_progress=show_progress, **kwargs))

    async def aevaluate_at_k(
        self,
        dataset: Any,
        k_values: Sequence[int] = (1, 3, 5, 10),
        workers: int = 8,
        name: str = "retriever",
        relevance: Optional[Mapping[str, Mapping[str, float]]] = None,
        on_missing: str = "exclude",
    ) -> EvaluationResult:
        """Every query of ``dataset`` through the retriever (and postprocessors), scored at every k.

        Args:
            dataset: an ``EmbeddingQAFinetuneDataset`` (ours or llama-index-finetuning's) or its JSON path.
                Node ids returned by the retriever must be the dataset's passage ids.
            k_values: cut-offs; set the retriever's ``similarity_top_k`` to at least the largest.
            workers: queries in flight at once.
            name: label in reports.
            relevance: optional graded judgments (query id -> {doc id: grade}).
            on_missing: ``"exclude"`` or ``"raise"`` for queries with no relevant passage.
        """
        ks = check_k_values(k_values)
        ds = load_dataset(dataset)
        qids, rels, info = scorable_queries(ds, relevance=relevance, on_missing=on_missing, check_corpus=bool(ds.corpus))
        sem = asyncio.Semaphore(_check_workers(workers))
        t0 = time.perf_counter()

        async def one(qid: str) -> QueryResult:
            async with sem:
                ids, _, scores = await self._aretrieve(ds.queries[qid])
            return QueryResult(query_id=qid, query=ds.queries[qid], relevant=dict(rels[qid]), retrieved_ids=ids,
                               retrieved_scores=scores, metrics=score_ranking(ids, rels[qid], ks))

        results = list(await asyncio.gather(*(one(q) for q in qids)))
        short = sum(1 for r in results if len(r.retrieved_ids) < max(ks))
        if short:
            logger.warning("%d of %d retrievals returned fewer than k=%d results; raise the retriever's top k.",
                           short, len(results), max(ks))
        return EvaluationResult(name=name, k_values=ks, queries=results, dataset=info,
                                timings={"retrieve_and_score": time.perf_counter() - t0},
                                model_info={"source": type(self.retriever).__name__, "encoder": "retriever",
                                            "backend": "llama-index",
                                            "postprocessors": [type(p).__name__ for p in self.node_postprocessors or []]})

    def evaluate_at_k(self, dataset: Any, k_values: Sequence[int] = (1, 3, 5, 10), workers: int = 8,
                      name: str = "retriever", relevance: Optional[Mapping[str, Mapping[str, float]]] = None,
                      on_missing: str = "exclude") -> EvaluationResult:
        """Synchronous :meth:`aevaluate_at_k`."""
        return asyncio_run(self.aevaluate_at_k(dataset, k_values, workers, name, relevance, on_missing))

    evaluate_embeddings = staticmethod(evaluate_embeddings)


def _check_workers(workers: int) -> int:
    if not isinstance(workers, int) or workers < 1:
        raise EvaluationError(f"workers must be a positive integer (queries in flight), got {workers!r}.")
    return workers
