"""Score fusion (normalisations by hand, RRF, top-N union, speed) and the beyond-noise choice of a hybrid."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from llama_index_bge_finetune.errors import EvaluationError
from llama_index_bge_finetune.evaluation.fusion_choice import (
    DEFAULT_CANDIDATES,
    FusionChoice,
    choose_from_values,
    choose_fusion,
)
from llama_index_bge_finetune.evaluation.stats import paired_test
from llama_index_bge_finetune.retrieval.fusion import METHODS, FusionSpec, fuse, fuse_top_k, normalise, top_k_rows


def test_normalisations_by_hand():
    x = np.array([[1.0, 2.0, 3.0]])
    std = np.sqrt(2.0 / 3.0)
    np.testing.assert_allclose(normalise(x, "zscore"), [[-1 / std, 0.0, 1 / std]])
    np.testing.assert_allclose(normalise(x, "minmax"), [[0.0, 0.5, 1.0]])
    lo, span = 2.0 - 3 * std, 6 * std  # LlamaIndex's dist_based_score: min-max against mean -/+ 3 std
    np.testing.assert_allclose(normalise(x, "dist"), [[(1 - lo) / span, 0.5, (3 - lo) / span]])
    np.testing.assert_allclose(normalise(np.array([0.3, 0.9, 0.9, 0.1]), "rrf"), [1 / 63, 1 / 61.5, 1 / 61.5, 1 / 64])
    np.testing.assert_allclose(normalise(x, "rrf", rrf_k=1), [[1 / 4, 1 / 3, 1 / 2]])
    for method in METHODS[:3]:
        assert np.all(normalise(np.array([[5.0, 5.0, 5.0]]), method) == 0)  # no spread, no order
        out = normalise(np.array([[1.0, -np.inf, 3.0, 2.0]]), method)  # absent entry: the row's minimum
        np.testing.assert_allclose(out, normalise(np.array([[1.0, 1.0, 3.0, 2.0]]), method) if method == "minmax"
                                   else [[out[0, 0], out[0, 0], out[0, 2], out[0, 3]]])
        np.testing.assert_allclose(out[0, [0, 2, 3]], normalise(np.array([1.0, 3.0, 2.0]), method))
    assert normalise(np.zeros((2, 3), dtype=np.float32), "zscore").dtype == np.float32


def test_fuse_mixes_normalised_scores_with_the_bm25_weight():
    dense, bm25 = np.array([[0.9, 0.8, 0.1]]), np.array([[0.0, 7.5, 1.2]])
    d = (dense - dense.mean()) / dense.std()
    b = (bm25 - bm25.mean()) / bm25.std()
    np.testing.assert_allclose(fuse(dense, bm25, FusionSpec("zscore", 0.3)), 0.7 * d + 0.3 * b)
    assert np.argmax(fuse(dense, bm25, FusionSpec("zscore", 0.3))) == 1
    for method in METHODS:
        assert list(np.argsort(-fuse(dense, bm25, FusionSpec(method, 0.0))[0])) == [0, 1, 2]
        assert list(np.argsort(-fuse(dense, bm25, FusionSpec(method, 1.0))[0])) == [1, 2, 0]
    rrf = fuse(dense, bm25, FusionSpec("rrf", 0.5))
    np.testing.assert_allclose(rrf, [[0.5 / 61 + 0.5 / 63, 0.5 / 62 + 0.5 / 61, 0.5 / 63 + 0.5 / 62]])
    with pytest.raises(ValueError, match="same queries and candidates"):
        fuse(dense, bm25[:, :2], FusionSpec("zscore", 0.5))


def test_fusion_spec_validates_and_round_trips():
    spec = FusionSpec("rrf", 0.4, rrf_k=20)
    assert FusionSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    assert spec.label == "rrf(k=20) w=0.4" and FusionSpec("zscore", 1).label == "zscore w=1"
    with pytest.raises(ValueError, match="zscore, minmax, dist, rrf"):
        FusionSpec("convex", 0.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        FusionSpec("zscore", 1.5)
    with pytest.raises(ValueError, match="rrf_k"):
        FusionSpec("rrf", 0.5, rrf_k=0)
    with pytest.raises(ValueError, match="Unknown fusion setting"):
        FusionSpec.from_dict({"method": "rrf", "weight": 0.5, "k": 60})


def test_fuse_top_k_unions_the_lists_and_scores_a_missing_candidate_at_the_list_minimum():
    d_ids, d_sc, b_ids, b_sc = np.array([[4, 7]]), np.array([[0.9, 0.8]]), np.array([[7, 2]]), np.array([[7.5, 1.2]])
    # minmax: dense 4 -> 1, 7 -> 0 (2 missing -> 0); BM25 7 -> 1, 2 -> 0 (4 missing -> 0).
    ids, scores = fuse_top_k(d_ids, d_sc, b_ids, b_sc, FusionSpec("minmax", 0.7), k=5)  # k clipped to 2 + 2
    assert ids.tolist() == [[7, 4, 2, -1]]  # three distinct candidates, then padding
    np.testing.assert_allclose(scores, [[0.7, 0.3, 0.0, -np.inf]])
    ids, scores = fuse_top_k(d_ids, d_sc, b_ids, b_sc, FusionSpec("minmax", 0.5), k=2)
    assert ids.tolist() == [[4, 7]]  # tied at 0.5: ascending id
    ids, _ = fuse_top_k(d_ids.astype(str), d_sc, b_ids.astype(str), b_sc, FusionSpec("minmax", 0.7), k=3)
    assert ids.tolist() == [["7", "4", "2"]]
    with pytest.raises(ValueError, match="one kind"):
        fuse_top_k(d_ids, d_sc, b_ids.astype(str), b_sc, FusionSpec("minmax", 0.7), k=3)


def test_fuse_top_k_pads_a_short_union_and_ignores_an_approximate_search_padding():
    d_ids, d_sc = np.array([[3, 5, -1]]), np.array([[0.9, 0.2, -np.inf]])
    ids, scores = fuse_top_k(d_ids, d_sc, np.array([[5, 3]]), np.array([[2.0, 1.0]]), FusionSpec("zscore", 0.5), k=4)
    assert ids.tolist()[0][2:] == [-1, -1] and np.all(np.isinf(scores[0, 2:]))
    assert sorted(ids.tolist()[0][:2]) == [3, 5]
    sids, _ = fuse_top_k(np.array([["a", "b"]]), np.array([[0.9, 0.2]]), np.array([["b", "a"]]),
                         np.array([[2.0, 1.0]]), FusionSpec("rrf", 0.5), k=3)
    assert sids.tolist()[0][2] is None


@pytest.mark.parametrize("method", METHODS)
def test_fuse_top_k_over_full_lists_equals_fusing_the_full_matrices(method):
    rng = np.random.default_rng(3)
    dense, bm25 = rng.normal(size=(6, 40)), rng.gamma(2.0, size=(6, 40))
    spec = FusionSpec(method, 0.35)
    d_rows, d_sc = top_k_rows(dense, 40)
    b_rows, b_sc = top_k_rows(bm25, 40)
    ids, scores = fuse_top_k(d_rows, d_sc, b_rows, b_sc, spec, k=10)
    exp_rows, exp_scores = top_k_rows(fuse(dense, bm25, spec), 10)
    np.testing.assert_array_equal(ids, exp_rows)
    np.testing.assert_allclose(scores, exp_scores, rtol=1e-12)


def test_top_k_rows_breaks_ties_by_rank_also_at_the_cut():
    s = np.array([[0.5, 0.9, 0.5, 0.5, 0.1]])
    assert top_k_rows(s, 3)[0].tolist() == [[1, 0, 2]]
    assert top_k_rows(s, 3, tie_rank=np.array([4, 0, 3, 1, 2]))[0].tolist() == [[1, 3, 2]]


def test_fusing_two_top_1000_lists_is_fast():
    """Loose guard (5 ms per query; typically well under 1 ms) against an accidental per-query Python loop."""
    rng = np.random.default_rng(0)
    n, depth = 100, 1000
    d_ids = np.stack([rng.choice(100_000, depth, replace=False) for _ in range(n)])
    b_ids = np.concatenate([d_ids[:, :300], np.stack([rng.choice(100_000, depth - 300, replace=False) + 100_000
                                                      for _ in range(n)])], axis=1)
    d_sc, b_sc = -np.sort(-rng.random((n, depth)), axis=1), -np.sort(-rng.gamma(2.0, size=(n, depth)), axis=1)
    for method in METHODS:
        spec = FusionSpec(method, 0.3)
        best = min(_timed(lambda s=spec: fuse_top_k(d_ids, d_sc, b_ids, b_sc, s, k=10)) for _ in range(3))
        assert best / n < 0.005, f"{method}: {best / n * 1000:.2f} ms per query"


def test_bm25_and_fusion_import_nothing_from_evaluation():
    """retrieval sits below evaluation: evaluation may import it, never the reverse."""
    import ast

    import llama_index_bge_finetune.retrieval as retrieval

    folder = Path(retrieval.__file__).parent
    for name in ("bm25.py", "fusion.py"):
        tree = ast.parse((folder / name).read_text(encoding="utf-8"))
        imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert not {m for m in imported if m.startswith("llama_index_bge_finetune.evaluation")}, name


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _signal_scores(n: int, docs: int, dense_signal: float, bm25_signal: float, seed: int):
    """Dense and BM25 score matrices, each an independent noisy view of one relevant document per question."""
    rng = np.random.default_rng(seed)
    rel = rng.integers(0, docs, n)
    dense = rng.normal(size=(n, docs))
    bm25 = 3.0 * rng.gamma(2.0, size=(n, docs))
    dense[np.arange(n), rel] += dense_signal
    bm25[np.arange(n), rel] += 3.0 * bm25_signal
    return dense, bm25, [{f"d{r}": 1.0} for r in rel], [f"d{j}" for j in range(docs)]


def test_a_hybrid_truly_better_on_200_questions_is_chosen():
    dense, bm25, relevant, ids = _signal_scores(200, 50, 2.0, 2.0, seed=1)
    choice = choose_fusion(dense, bm25, relevant, ids)
    assert choice.hybrid and choice.chosen == choice.best_hybrid
    assert (choice.questions, choice.select_questions, choice.test_questions) == (200, 100, 100)
    assert choice.p_value < 0.05 and choice.gain > 0.05
    assert choice.reason.startswith(f"hybrid {choice.chosen.label} beats {choice.baseline} by +")
    assert "nDCG@10 on 100 held-out questions it was not picked on" in choice.reason
    assert len(choice.means) == 2 + len(DEFAULT_CANDIDATES)
    assert choice.means[choice.chosen.label] > max(choice.means["dense"], choice.means["bm25"])
    saved = json.loads(json.dumps(choice.to_dict()))
    assert FusionSpec.from_dict(saved["chosen"]) == choice.chosen and saved["p_value"] == choice.p_value


def test_a_tiny_gain_on_20_questions_keeps_dense():
    """Dense ranks the relevant document second every time; on 2 of 20 questions BM25 lifts it to first."""
    n, docs = 20, 12
    dense = np.tile(np.linspace(1.0, 0.0, docs), (n, 1))  # column 0 first, column 1 (relevant) second
    bm25 = np.tile(np.linspace(0.0, 1.0, docs), (n, 1))  # relevant near the bottom: no help
    bm25[:2, 1] = 50.0  # ... except on two questions
    relevant = [{"d1": 1.0}] * n
    choice = choose_fusion(dense, bm25, relevant, [f"d{j}" for j in range(docs)])
    assert choice.chosen == "dense" and choice.baseline == "dense" and not choice.hybrid
    assert choice.reason.startswith("kept dense: ")
    assert "within noise" in choice.reason or "no hybrid beats it" in choice.reason
    assert choice.to_dict()["chosen"] == "dense"


def test_bm25_alone_is_kept_when_it_is_the_better_single_retriever_and_no_hybrid_beats_it():
    dense, bm25, relevant, ids = _signal_scores(120, 40, 0.0, 4.0, seed=2)
    choice = choose_fusion(dense, bm25, relevant, ids)
    assert choice.baseline == "bm25" and choice.chosen == "bm25"
    assert choice.reason.startswith("kept bm25: ")


def test_without_bm25_scores_dense_is_kept_and_the_reason_says_why():
    dense, _, relevant, ids = _signal_scores(10, 20, 2.0, 0.0, seed=3)
    choice = choose_fusion(dense, None, relevant, ids)
    assert choice.chosen == "dense" and "BM25 has no scores" in choice.reason and set(choice.means) == {"dense"}


def test_picking_and_testing_on_separate_halves_keeps_false_adoptions_near_alpha():
    """36 candidates no better than dense (dense plus zero-mean noise): best-of-36 tested on the same
    questions would pass most of the time; picked on one half and tested on the other it passes ~5%."""
    specs = list(DEFAULT_CANDIDATES)
    rng = np.random.default_rng(7)
    trials, split_adopted, naive_adopted = 60, 0, 0
    for t in range(trials):
        dense = rng.random(60)
        values = {"dense": dense, "bm25": dense - 0.2}
        values.update({s.label: dense + rng.normal(0.0, 0.3, 60) for s in specs})
        choice = choose_from_values(values, specs, seed=t)
        split_adopted += choice.hybrid
        best = max(specs, key=lambda s: values[s.label].mean())
        naive = paired_test(values[best.label], dense, alternative="greater", n_permutations=2000)
        naive_adopted += naive.p_value < 0.05
    assert split_adopted <= 8, f"{split_adopted}/{trials} noise hybrids adopted"
    assert naive_adopted >= 20  # the scenario is one where selection bias matters


def test_bad_inputs_are_refused_with_the_fix():
    dense, bm25, relevant, ids = _signal_scores(4, 8, 1.0, 1.0, seed=4)
    with pytest.raises(EvaluationError, match="'<name>@<k>'"):
        choose_fusion(dense, bm25, relevant, ids, metric="ndcg")
    with pytest.raises(EvaluationError, match="same questions and documents"):
        choose_fusion(dense, bm25[:, :3], relevant, ids)
    with pytest.raises(EvaluationError, match="corpus ids"):
        choose_fusion(dense, bm25, relevant, ids[:3])
    with pytest.raises(EvaluationError, match="missing: \\['zscore w=0.5'\\]"):
        choose_from_values({"dense": [1.0], "bm25": [0.0]}, [FusionSpec("zscore", 0.5)])
    assert isinstance(choose_from_values({"dense": [1.0, 0.0], "bm25": [0.0, 0.0]}, []), FusionChoice)


def test_bm25_replaces_dense_only_beyond_noise():
    rng = np.random.default_rng(3)
    dense = rng.uniform(0.3, 0.7, 40)
    close = np.clip(dense + rng.normal(0.005, 0.2, 40), 0, 1)  # a little better on average, within noise
    within = choose_from_values({"dense": dense, "bm25": close}, [])
    assert within.chosen == "dense" and within.baseline == "dense", within.reason
    far = np.clip(dense + 0.25 + rng.normal(0, 0.02, 40), 0, 1)  # better on every question
    beyond = choose_from_values({"dense": dense, "bm25": far}, [])
    assert beyond.chosen == "bm25", beyond.reason
