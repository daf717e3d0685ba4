"""Metrics at k, exact top-k search and the statistics, against hand computations and llama-index's metrics."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from llama_index.core.evaluation.retrieval.metrics import MRR, NDCG, HitRate

from llama_index_bge_finetune.errors import EvaluationError
from llama_index_bge_finetune.evaluation.metrics import score_ranking
from llama_index_bge_finetune.retrieval.exact_search import top_k
from llama_index_bge_finetune.evaluation.stats import bootstrap_ci, bootstrap_indices, paired_test


def test_perfect_top2_with_five_expected_scores_1_where_llama_index_gives_0553():
    expected = ["a", "b", "c", "d", "e"]
    ours = score_ranking(["a", "b"], {d: 1.0 for d in expected}, k_values=[2])
    theirs = NDCG().compute(expected_ids=expected, retrieved_ids=["a", "b"]).score
    assert ours["ndcg@2"] == pytest.approx(1.0)
    assert theirs == pytest.approx(0.553, abs=1e-3)
    assert ours["recall@2"] == pytest.approx(0.4)
    assert ours["map@2"] == pytest.approx(1.0)


def test_hand_computed_values_at_several_k():
    m = score_ranking(["x", "a", "y", "b"], {"a": 1.0, "b": 1.0, "c": 1.0}, k_values=[1, 2, 4])
    assert m["hit_rate@1"] == 0.0 and m["hit_rate@2"] == 1.0
    assert m["mrr@1"] == 0.0 and m["mrr@4"] == pytest.approx(0.5)
    assert m["precision@4"] == pytest.approx(0.5)
    assert m["recall@4"] == pytest.approx(2 / 3)
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    idcg = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert m["ndcg@4"] == pytest.approx(dcg / idcg)
    assert m["map@4"] == pytest.approx((1 / 2 + 2 / 4) / 3)
    assert m["map@2"] == pytest.approx((1 / 2) / 2)


def test_graded_relevance_uses_linear_gain_and_ideal_order():
    m = score_ranking(["low", "high"], {"high": 2.0, "low": 1.0}, k_values=[2])
    ideal = 2.0 + 1.0 / math.log2(3)
    assert m["ndcg@2"] == pytest.approx((1.0 + 2.0 / math.log2(3)) / ideal)
    assert score_ranking(["high", "low"], {"high": 2.0, "low": 1.0}, k_values=[2])["ndcg@2"] == pytest.approx(1.0)


def test_empty_retrieval_scores_zero_without_exception():
    m = score_ranking([], {"a": 1.0}, k_values=[1, 10])
    assert set(m.values()) == {0.0}


def test_k_larger_than_the_list_and_duplicates_count_once():
    m = score_ranking(["a", "a", "a"], {"a": 1.0, "b": 1.0}, k_values=[100])
    assert m["precision@100"] == pytest.approx(1 / 100)
    assert m["recall@100"] == pytest.approx(0.5)
    assert m["mrr@100"] == 1.0
    assert m["map@100"] == pytest.approx(0.5)


def test_query_without_relevant_documents_and_bad_k_raise():
    with pytest.raises(EvaluationError, match="no relevant document"):
        score_ranking(["a"], {}, k_values=[1])
    with pytest.raises(EvaluationError, match="positive integers"):
        score_ranking(["a"], {"a": 1.0}, k_values=[0, 3])


def test_hit_rate_and_mrr_agree_with_llama_index_per_query():
    rng = random.Random(0)
    docs = [f"d{i}" for i in range(30)]
    for _ in range(200):
        retrieved = rng.sample(docs, rng.randint(1, 10))
        expected = rng.sample(docs, rng.randint(1, 4))
        k = len(retrieved)
        ours = score_ranking(retrieved, {d: 1.0 for d in expected}, k_values=[k])
        assert ours[f"hit_rate@{k}"] == HitRate().compute(expected_ids=expected, retrieved_ids=retrieved).score
        assert ours[f"mrr@{k}"] == pytest.approx(MRR().compute(expected_ids=expected, retrieved_ids=retrieved).score)


def test_top_k_breaks_ties_by_corpus_id_and_clips_k():
    corpus = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0]], dtype=np.float32)
    ids = ["c", "b", "z", "a"]
    idx, scores = top_k(np.array([[1.0, 0.0]], dtype=np.float32), corpus, k=2, corpus_ids=ids)
    assert [ids[i] for i in idx[0]] == ["a", "b"]
    idx, _ = top_k(np.array([[1.0, 0.0]], dtype=np.float32), corpus, k=50, corpus_ids=ids)
    assert [ids[i] for i in idx[0]] == ["a", "b", "c", "z"]


def test_chunked_search_equals_one_block():
    rng = np.random.default_rng(0)
    q = rng.standard_normal((37, 8)).astype(np.float32)
    c = rng.standard_normal((501, 8)).astype(np.float32)
    ids = [f"d{i:04d}" for i in range(501)]
    full_idx, full_scores = top_k(q, c, 10, ids)
    small_idx, small_scores = top_k(q, c, 10, ids, block=300)
    assert (full_idx == small_idx).all()
    assert np.allclose(full_scores, small_scores)
    brute = np.argsort(-(q @ c.T), axis=1, kind="stable")[:, :10]
    assert (full_idx == brute).all()


def test_paired_test_tells_a_real_gain_from_noise():
    rng = np.random.default_rng(1)
    base = rng.uniform(0, 1, 200)
    better = np.clip(base + 0.1 + rng.normal(0, 0.05, 200), 0, 1)
    noisy = np.clip(base + rng.normal(0, 0.05, 200), 0, 1)
    idx = bootstrap_indices(200, 500, seed=0)
    real = paired_test(better, base, idx, n_permutations=2000)
    noise = paired_test(noisy, base, idx, n_permutations=2000)
    assert real.p_value < 0.01 and real.ci_low > 0
    assert noise.p_value > 0.05 and noise.ci_low < 0 < noise.ci_high
    assert paired_test(base, base, idx).p_value == 1.0
    # One-sided ("is the model better?"): a gain passes, a loss of the same size is nowhere near.
    assert paired_test(better, base, idx, n_permutations=2000, alternative="greater").p_value < 0.01
    assert paired_test(base, better, idx, n_permutations=2000, alternative="greater").p_value > 0.5
    with pytest.raises(EvaluationError, match="alternative must be"):
        paired_test(better, base, alternative="less")
    lo, hi = bootstrap_ci(base, idx)
    assert lo < base.mean() < hi
