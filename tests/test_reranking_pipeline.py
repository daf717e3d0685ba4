"""Retrieve-then-rerank evaluation (fast path and through a LlamaIndex retriever) and the packaged MiniLM start."""

from __future__ import annotations

import logging

import pytest

from llama_index_bge_finetune.evaluation import RetrieverEvaluator, compare_models
from llama_index_bge_finetune.reranking import CrossEncoderFinetuneEngine, FinetunedRerank, Reranking
from tests.reranking_data import topic_samples
from tests.training_data import topics_dataset


# Under -n 2 the tests that read the module's tiny reranker go to one worker, which trains it once.
SHARES_TINY_RERANKER = pytest.mark.xdist_group("tiny-reranker")


@pytest.fixture(scope="module")
def tiny_reranker(_tiny_model_master, tmp_path_factory):
    """One cross-encoder fine-tuned from the tiny model for the module's tests, which only read it."""
    out = tmp_path_factory.mktemp("tiny-reranker") / "reranker"
    CrossEncoderFinetuneEngine(topic_samples(8), model_id=str(_tiny_model_master), model_output_path=str(out),
                               batch_size=4, epochs=1, show_progress_bar=False).finetune()
    return out


@SHARES_TINY_RERANKER
def test_compare_models_reranks_top_n_with_cost_and_paired_test(tiny_model_path, tiny_reranker, tmp_path):
    ds = topics_dataset(16, 1)
    cmp = compare_models({"fine-tuned": str(tiny_model_path)}, ds, k_values=(1, 5), cache=False,
                         rerank={"fine-tuned + reranker": ("fine-tuned", Reranking(str(tiny_reranker), top_n=8))},
                         n_bootstrap=50, n_permutations=100)
    first, reranked = cmp.results["fine-tuned"], cmp.results["fine-tuned + reranker"]
    assert [q.query_id for q in reranked.queries] == [q.query_id for q in first.queries]
    for a, b in zip(first.queries, reranked.queries):  # a permutation of the first stage's top 8
        assert sorted(b.retrieved_ids) == sorted(a.retrieved_ids[:8])
    assert reranked.timings["rerank_median_ms"] > 0 and reranked.timings["rerank_p95_ms"] >= reranked.timings["rerank_median_ms"]
    assert "ndcg@5" in cmp.differences["fine-tuned + reranker"]
    md = cmp.to_markdown()
    assert "## Reranking cost" in md and "fine-tuned + reranker" in md
    with pytest.raises(Exception, match="first stage"):
        compare_models({"a": str(tiny_model_path)}, ds, cache=False, rerank={"r": ("nope", Reranking(str(tiny_reranker)))})
    with pytest.raises(Exception, match="not a second stage"):  # a bare path: the evaluation package loads no reranker
        compare_models({"a": str(tiny_model_path)}, ds, cache=False, rerank={"r": ("a", str(tiny_reranker))})


@SHARES_TINY_RERANKER
def test_retriever_evaluator_with_reranker_postprocessor(tiny_model_path, tiny_reranker):
    from llama_index.core import VectorStoreIndex
    from llama_index.core.schema import TextNode
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding

    ds = topics_dataset(10, 1)
    nodes = [TextNode(id_=d, text=t) for d, t in ds.corpus.items()]
    index = VectorStoreIndex(nodes, embed_model=HuggingFaceEmbedding(model_name=str(tiny_model_path), device="cpu"))
    rerank = FinetunedRerank(model=str(tiny_reranker), top_n=3, device="cpu")
    evaluator = RetrieverEvaluator.from_metric_names(["hit_rate"], retriever=index.as_retriever(similarity_top_k=6),
                                                     node_postprocessors=[rerank])
    result = evaluator.evaluate_at_k(ds, k_values=(1, 3), workers=2)
    assert len(result.queries) == 10 and all(len(q.retrieved_ids) == 3 for q in result.queries)
    assert result.model_info["postprocessors"] == ["FinetunedRerank"]


def test_packaged_minilm_bi_encoder_start_trains_and_loads_in_core_rerank(minilm_path, tmp_path, caplog):
    from llama_index.core.postprocessor import SentenceTransformerRerank
    from llama_index.core.schema import NodeWithScore, TextNode

    out = tmp_path / "reranker"
    engine = CrossEncoderFinetuneEngine(topic_samples(8, negatives=2), model_id=str(minilm_path), model_output_path=str(out),
                                        batch_size=8, epochs=1, max_length=64, show_progress_bar=False)
    with caplog.at_level(logging.WARNING):
        engine.finetune()
    assert engine.new_head and any("bi-encoder" in r.getMessage() for r in caplog.records)
    assert engine.result.final_loss is not None
    # The saved folder is a plain cross-encoder: llama-index-core's own reranker loads it.
    core = SentenceTransformerRerank(model=str(out), top_n=1, device="cpu")
    nodes = [NodeWithScore(node=TextNode(text=t), score=0.5) for t in ("Python lists are mutable.", "Glaciers move.")]
    assert len(core.postprocess_nodes(nodes, query_str="What are Python lists?")) == 1


@SHARES_TINY_RERANKER
def test_int8_onnx_scorer_agrees_with_torch(tiny_reranker, tmp_path):
    import numpy as np

    from llama_index_bge_finetune.reranking.onnx_scorer import OnnxInt8CrossEncoderScorer
    from llama_index_bge_finetune.reranking.scoring import CrossEncoderScorer

    passages = [s.context for s in topic_samples(6, negatives=0)]
    torch_scores = CrossEncoderScorer(str(tiny_reranker)).score("How is assert used in Python?", passages)
    onnx = OnnxInt8CrossEncoderScorer(str(tiny_reranker), batch_size=4, onnx_path=tmp_path / "ce.onnx")
    int8_scores = onnx.score("How is assert used in Python?", passages)
    assert int8_scores.shape == torch_scores.shape == (6,)
    assert np.corrcoef(torch_scores, int8_scores)[0, 1] > 0.9
    assert onnx.latency_ms()["queries"] == 1.0
