"""The training-time scores agree with the evaluation suite (one definition of each metric)."""

from __future__ import annotations

import pytest

from llama_index_bge_finetune.evaluation import evaluate_embeddings
from llama_index_bge_finetune.training.retrieval_metrics import retrieval_scores
from tests.training_data import topics_dataset


def test_retrieval_scores_equal_evaluate_embeddings(tiny_model_path, tmp_path):
    from sentence_transformers import SentenceTransformer

    ds = topics_dataset(30, 2)
    model = SentenceTransformer(str(tiny_model_path), device="cpu")
    ours = retrieval_scores(model, ds, cache_dir=tmp_path)
    suite = evaluate_embeddings(str(tiny_model_path), ds, k_values=(5, 10), cache=False).metrics
    assert ours["queries"] == 60
    for key in ("ndcg@10", "hit_rate@5", "mrr@10"):
        assert ours[key] == pytest.approx(suite[key], abs=1e-6)
    assert 0 < ours["ndcg@10"] < 1  # a random tiny model is neither perfect nor hopeless here
    # the second call reads the corpus vectors from the cache and gives the same numbers
    assert retrieval_scores(model, ds, cache_dir=tmp_path) == ours
