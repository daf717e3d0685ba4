"""RetrieverEvaluator: upstream one-query API kept, empty retrievals scored 0, dataset evaluation at k."""

from __future__ import annotations

from typing import List

import pytest
from llama_index.core import VectorStoreIndex
from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.evaluation import RetrieverEvaluator as UpstreamRetrieverEvaluator
from llama_index.core.postprocessor import SimilarityPostprocessor
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from llama_index_bge_finetune.errors import EvaluationError
from llama_index_bge_finetune.evaluation import RetrieverEvaluator, evaluate_embeddings
from tests.evaluation_data import evaluation_topics_dataset


class NothingRetriever(BaseRetriever):
    """A retriever that finds nothing (an empty index, a too strict filter)."""

    def _retrieve(self, query_bundle: QueryBundle) -> List[NodeWithScore]:
        return []


@pytest.fixture
def index_and_dataset(tiny_model_path):
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding

    ds = evaluation_topics_dataset(n_docs=40)
    embed = HuggingFaceEmbedding(model_name=str(tiny_model_path), device="cpu")
    nodes = [TextNode(id_=i, text=t) for i, t in ds.corpus.items()]
    return VectorStoreIndex(nodes, embed_model=embed), ds, embed


def test_vector_index_path_equals_the_fast_path(index_and_dataset):
    index, ds, embed = index_and_dataset
    evaluator = RetrieverEvaluator.from_metric_names(["hit_rate", "mrr"], retriever=index.as_retriever(similarity_top_k=10))
    slow = evaluator.evaluate_at_k(ds, k_values=(1, 3, 10), workers=4)
    fast = evaluate_embeddings(embed, ds, k_values=(1, 3, 10), cache=False)
    assert [q.retrieved_ids for q in slow.queries] == [q.retrieved_ids for q in fast.queries]
    assert slow.metrics == pytest.approx(fast.metrics)
    assert slow.metrics["hit_rate@10"] > 0


def test_upstream_metrics_agree_with_ours_per_query(index_and_dataset):
    index, ds, _ = index_and_dataset
    evaluator = RetrieverEvaluator.from_metric_names(["hit_rate", "mrr"], retriever=index.as_retriever(similarity_top_k=5))
    upstream = evaluator.evaluate_dataset(ds, workers=4)
    ours = evaluator.evaluate_at_k(ds, k_values=(5,), workers=4)
    assert len(upstream) == len(ours.queries) == 40
    for theirs, mine in zip(upstream, ours.queries):
        assert theirs.retrieved_ids == mine.retrieved_ids
        assert theirs.metric_vals_dict["hit_rate"] == mine.metrics["hit_rate@5"]
        assert theirs.metric_vals_dict["mrr"] == pytest.approx(mine.metrics["mrr@5"])


def test_empty_retrieval_scores_zero_where_upstream_raises():
    retriever = NothingRetriever()
    upstream = UpstreamRetrieverEvaluator.from_metric_names(["hit_rate", "mrr"], retriever=retriever)
    with pytest.raises(ValueError):
        upstream.evaluate(query="anything", expected_ids=["doc-a"])
    ours = RetrieverEvaluator.from_metric_names(["hit_rate", "mrr"], retriever=retriever)
    result = ours.evaluate(query="anything", expected_ids=["doc-a"])
    assert result.metric_vals_dict == {"hit_rate": 0.0, "mrr": 0.0}
    at_k = ours.evaluate_at_k(evaluation_topics_dataset(n_docs=5), k_values=(1, 5))
    assert set(at_k.metrics.values()) == {0.0}


def test_postprocessors_are_applied(index_and_dataset):
    index, ds, _ = index_and_dataset
    strict = RetrieverEvaluator.from_metric_names(
        ["hit_rate"], retriever=index.as_retriever(similarity_top_k=10),
        node_postprocessors=[SimilarityPostprocessor(similarity_cutoff=1.01)],
    )
    result = strict.evaluate_at_k(ds, k_values=(10,))
    assert all(q.retrieved_ids == [] for q in result.queries)
    assert result.metrics["hit_rate@10"] == 0.0
    with pytest.raises(EvaluationError, match="workers"):
        strict.evaluate_at_k(ds, workers=0)
