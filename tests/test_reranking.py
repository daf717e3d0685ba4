"""The reranker engine, its data builders, the blend guard and retrieve-then-rerank evaluation (tiny random BERT)."""

from __future__ import annotations

import inspect
import json
import logging

import numpy as np
import pytest

from llama_index_bge_finetune.errors import DatasetError, TrainingError
from llama_index_bge_finetune.reranking import (
    CrossEncoderFinetuneEngine, CrossEncoderFinetuningDatasetSample, load_samples, samples_from_qa_dataset, save_samples,
)
from llama_index_bge_finetune.reranking.losses import training_rows
from llama_index_bge_finetune.reranking.scoring import blend, choose_blend_weight
from tests.reranking_data import topic_samples
from tests.requirements import PEER, require_module
from tests.training_data import topics_dataset


def test_accepts_every_argument_of_the_peer_engine_in_order():
    peer_mod = require_module("llama_index.finetuning.cross_encoders.cross_encoder", PEER)
    peer = list(inspect.signature(peer_mod.CrossEncoderFinetuneEngine.__init__).parameters)
    ours = list(inspect.signature(CrossEncoderFinetuneEngine.__init__).parameters)
    assert ours[: len(peer)] == peer
    for name in ("finetune", "push_to_hub", "get_finetuned_model"):
        assert callable(getattr(CrossEncoderFinetuneEngine, name))
    import llama_index_bge_finetune as pkg

    assert pkg.CrossEncoderFinetuneEngine is CrossEncoderFinetuneEngine


def test_peer_samples_dicts_and_jsonl_round_trip(tmp_path):
    peer = require_module("llama_index.finetuning.cross_encoders.dataset_gen", PEER)
    s = CrossEncoderFinetuningDatasetSample.coerce(peer.CrossEncoderFinetuningDatasetSample(query="q", context="c", score=1))
    assert (s.query, s.context, s.score, s.first_stage_score) == ("q", "c", 1.0, None)
    samples = [s, CrossEncoderFinetuningDatasetSample.coerce({"query": "q", "context": "d", "score": 0, "first_stage_score": 0.3})]
    save_samples(samples, tmp_path / "ce.jsonl")
    assert load_samples(tmp_path / "ce.jsonl") == samples
    with pytest.raises(DatasetError, match="numeric score"):
        CrossEncoderFinetuningDatasetSample.coerce({"query": "q", "context": "c", "score": "high"})
    with pytest.raises(DatasetError, match="non-empty"):
        CrossEncoderFinetuningDatasetSample.coerce(("", "c", 1))


def test_samples_from_qa_dataset_mines_negatives_in_first_stage_order(tiny_model_path, tmp_path):
    ds = topics_dataset(20, 1)
    samples = samples_from_qa_dataset(ds, str(tiny_model_path), negatives=2, skip_top=0, max_rank=10,
                                      relative_margin=0.0, cache_dir=tmp_path / "cache")
    by_query = {}
    for s in samples:
        by_query.setdefault(s.query, []).append(s)
    assert len(by_query) == 20
    for qid, query in ds.queries.items():
        group = by_query[query]
        positives = [s for s in group if s.score == 1]
        assert [s.context for s in positives] == [ds.corpus[ds.relevant_docs[qid][0]]]
        assert all(s.context != positives[0].context for s in group if s.score == 0)
        scores = [s.first_stage_score for s in group]
        assert scores == sorted(scores, reverse=True)  # the retriever's order
    assert any(len(g) == 3 for g in by_query.values())
    assert list((tmp_path / "cache").glob("*.npy"))  # the embedding engine's cache was used

    from llama_index_bge_finetune.reranking import candidates_from_qa_dataset

    cands = candidates_from_qa_dataset(ds, str(tiny_model_path), top_k=5, cache_dir=tmp_path / "cache")
    assert len(cands) == 20 * 5  # every query's retrieved top 5, unfiltered
    for qid, query in list(ds.queries.items())[:5]:
        group = [c for c in cands if c.query == query]
        assert [c.first_stage_score for c in group] == sorted((c.first_stage_score for c in group), reverse=True)
        assert all((c.score == 1.0) == (c.context == ds.corpus[ds.relevant_docs[qid][0]]) for c in group)


def test_samples_from_qa_dataset_gives_every_query_a_negative_when_mining_finds_none(tiny_model_path, caplog):
    ds = topics_dataset(4, 1)  # 4 passages: skip_top=3 leaves no candidate for any query
    with caplog.at_level(logging.WARNING, logger="llama_index_bge_finetune.reranking.dataset"):
        samples = samples_from_qa_dataset(ds, str(tiny_model_path), negatives=2, seed=3)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and warnings[0].startswith("4 of 4 queries got no mined negative"), warnings
    for qid, query in ds.queries.items():
        group = [s for s in samples if s.query == query]
        relevant = {ds.corpus[d] for d in ds.relevant_docs[qid]}
        negatives = [s for s in group if s.score == 0]
        assert len(negatives) == 1 and negatives[0].context not in relevant and negatives[0].first_stage_score is not None
        assert [s.context for s in group if s.score == 1] == [ds.corpus[ds.relevant_docs[qid][0]]]
    again = samples_from_qa_dataset(ds, str(tiny_model_path), negatives=2, seed=3)
    assert [s.context for s in again] == [s.context for s in samples]  # seeded: the same negatives every run


def test_blend_weight_zero_keeps_first_stage_and_guard_prefers_it():
    first = [3.0, 2.0, 1.0]
    assert list(np.argsort(-blend(first, [0.0, 5.0, 9.0], 0.0))) == [0, 1, 2]
    assert list(np.argsort(-blend(first, [0.0, 5.0, 9.0], 1.0))) == [2, 1, 0]
    # A reranker that puts the relevant passage last loses to the first stage: weight 0.
    groups = [([3.0, 2.0, 1.0], [0.0, 1.0, 2.0], [1, 0, 0])] * 3
    choice = choose_blend_weight(groups)
    assert choice.weight == 0.0 and choice.table[0.0] == 1.0 and choice.table[1.0] < 1.0
    # One that fixes the first stage's mistake on every one of 12 queries wins with some weight > 0.
    groups = [([3.0, 2.0, 1.0], [0.0, 1.0, 5.0], [0, 0, 1])] * 12
    choice = choose_blend_weight(groups)
    assert choice.weight > 0.0 and choice.table[choice.weight] == 1.0


def _ranked(first_rank: int, reranker_rank: int, n: int = 5):
    """A query whose one relevant passage the first stage ranks ``first_rank`` and the reranker ``reranker_rank`` (0-based)."""
    labels = [0.0] * n
    labels[first_rank] = 1.0
    others = [i for i in range(n) if i != first_rank]
    order = others[:reranker_rank] + [first_rank] + others[reranker_rank:]  # the reranker's order of candidates
    ce = [0.0] * n
    for pos, i in enumerate(order):
        ce[i] = float(n - pos)
    return [float(n - i) for i in range(n)], ce, labels


def test_blend_guard_keeps_the_first_stage_when_the_gain_is_within_noise():
    # 31 validation questions: the reranker helps 4 a little, hurts 3 as much, leaves the rest: about +0.003.
    groups = [_ranked(3, 2)] * 4 + [_ranked(2, 3)] * 3 + [_ranked(0, 0)] * 24
    choice = choose_blend_weight(groups)
    assert choice.best_weight > 0.0 and 0.0 < choice.gain < 0.005, choice
    assert choice.weight == 0.0 and choice.p_value >= 0.05 and choice.queries == 31
    assert "within noise" in choice.rule and "first stage kept" in choice.rule and "31 validation queries" in choice.rule
    # Without the noise rule the best mean would have won: the guard is what keeps the first stage.
    assert choose_blend_weight(groups, alpha=1.0).weight == choice.best_weight


def test_blend_guard_picks_the_blend_for_a_large_consistent_gain():
    # 30 questions; the reranker lifts the relevant passage from third to first on 20 and changes nothing on 10.
    groups = [_ranked(2, 0)] * 20 + [_ranked(0, 0)] * 10
    choice = choose_blend_weight(groups)
    assert choice.weight > 0.0 and choice.weight == choice.best_weight
    assert choice.gain > 0.3 and choice.ci_low > 0 and choice.p_value < 0.001
    assert "beyond noise" in choice.rule and "blend kept" in choice.rule
    assert set(choice.as_dict()) >= {"weight", "gain", "ci_low", "ci_high", "p_value", "alpha", "queries", "rule"}


def test_listwise_rows_cycle_negatives_and_skip_queries_without_negatives():
    samples = topic_samples(4, negatives=2)
    samples.append(CrossEncoderFinetuningDatasetSample("lonely query", "a passage", 1))
    rows = training_rows("listwise", samples)
    assert list(rows) == ["query", "positive", "negative_1", "negative_2"] and len(rows["query"]) == 4
    rows = training_rows("listnet", samples)
    assert rows["labels"][0] == [1.0, 0.0, 0.0] and len(rows["docs"][0]) == 3


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_finetune_saves_reranker_card_config_and_result_without_val_set(tiny_model_path, tmp_path, caplog, precision):
    """Both CPU precision paths, on any CPU (bf16 autocast also runs where bf16 is not native, only slower)."""
    out = tmp_path / "reranker"
    engine = CrossEncoderFinetuneEngine(topic_samples(12), model_id=str(tiny_model_path), model_output_path=str(out),
                                        batch_size=4, epochs=1, show_progress_bar=False, logging_steps=1,
                                        precision=precision)
    with caplog.at_level(logging.WARNING):
        engine.finetune()
    assert sum("bi-encoder" in r.getMessage() for r in caplog.records) <= 1  # said once per process at most
    assert (out / "config.json").is_file() and not (out / "checkpoints").exists()
    config = json.loads((out / "reranker_config.json").read_text())
    # 256 asked (the default), clamped to the tiny model's 128 positions.
    assert config["blend_weight"] == 1.0 and config["started_from_bi_encoder"] is True and config["max_length"] == 128
    card = (out / "README.md").read_text()
    assert "Fine-tuned reranker" in card and "bi-encoder" in card and "FinetunedRerank" in card
    result = json.loads((out / "training_result.json").read_text())
    assert result["steps"] == 3 and result["total_seconds"] > 0 and any("loss" in e for e in result["log_history"])
    assert engine.result.hyperparameters["head_learning_rate"] == pytest.approx(30 * 3e-5)
    assert engine.result.hyperparameters["precision"] == f"{precision} ({precision})"

    from llama_index.core.postprocessor import SentenceTransformerRerank
    from llama_index.core.schema import NodeWithScore, TextNode

    rerank = engine.get_finetuned_model(top_n=2)
    assert isinstance(rerank, SentenceTransformerRerank)
    nodes = [NodeWithScore(node=TextNode(text=t), score=s) for t, s in (("alpha", 0.9), ("beta", 0.5), ("gamma", 0.1))]
    assert len(rerank.postprocess_nodes(nodes, query_str="alpha?")) == 2


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_validation_guard_keeps_first_stage_order_when_reranker_is_worse(tiny_model_path, tmp_path, caplog, precision):
    out = tmp_path / "reranker"
    val = topic_samples(10, offset=12)
    engine = CrossEncoderFinetuneEngine(topic_samples(12), model_id=str(tiny_model_path), model_output_path=str(out),
                                        batch_size=4, epochs=1, show_progress_bar=False, val_dataset=val, loss="bce",
                                        evaluation_steps=2, precision=precision)
    with caplog.at_level(logging.WARNING, logger="llama_index_bge_finetune.reranking.engine"):
        engine.finetune()
    # The first stage already ranks every positive first (nDCG 1.0): a random tiny reranker cannot beat it,
    # and the warning says why such validation queries cannot show a gain and what to validate on instead.
    assert engine.blend["first_stage"]["ndcg@10"] == 1.0
    assert engine.blend["blend_weight"] == 0.0
    warning = next(r.getMessage() for r in caplog.records if "does not beat the first stage" in r.getMessage())
    assert "questions the embedding model has not seen" in warning and "blend_weight=" in warning
    config = json.loads((out / "reranker_config.json").read_text())
    assert config["blend_weight"] == 0.0 and "no blend weight beats the first stage" in config["validation"]["decision"]["rule"]
    assert config["validation"]["decision"]["rule"] in (out / "README.md").read_text()
    from llama_index.core.schema import NodeWithScore, TextNode

    rerank = engine.get_finetuned_model(top_n=3)
    nodes = [NodeWithScore(node=TextNode(text=t, id_=t), score=s) for t, s in (("a", 0.2), ("b", 0.9), ("c", 0.5))]
    assert [n.node.node_id for n in rerank.postprocess_nodes(nodes, query_str="q")] == ["b", "c", "a"]


def test_resume_continues_from_last_checkpoint(tiny_model_path, tmp_path):
    out = tmp_path / "reranker"
    kwargs = dict(model_id=str(tiny_model_path), model_output_path=str(out), batch_size=4, show_progress_bar=False,
                  save_checkpoints=True, checkpoint_save_steps=2)
    CrossEncoderFinetuneEngine(topic_samples(12), epochs=1, **kwargs).finetune()
    assert (out / "checkpoints" / "checkpoint-2").is_dir()
    engine = CrossEncoderFinetuneEngine(topic_samples(12), epochs=2, resume_from_checkpoint=True, **kwargs)
    engine.finetune()
    assert engine.result.resumed_from_step == 3 and engine.result.steps == 6


def test_bad_input_errors_name_the_fix(tiny_model_path):
    with pytest.raises(DatasetError, match="both relevant"):
        CrossEncoderFinetuneEngine([CrossEncoderFinetuningDatasetSample("q", "c", 1)], model_id=str(tiny_model_path))
    with pytest.raises(TrainingError, match="Unknown loss"):
        CrossEncoderFinetuneEngine(topic_samples(2), model_id=str(tiny_model_path), loss="hinge")
    with pytest.raises(DatasetError, match="list of CrossEncoderFinetuningDatasetSample"):
        CrossEncoderFinetuneEngine({"q": "c"}, model_id=str(tiny_model_path))
    with pytest.raises(ValueError, match="repo_id"):
        CrossEncoderFinetuneEngine(topic_samples(2), model_id=str(tiny_model_path)).push_to_hub(None)


def _first_stage(labels_per_query):
    """A first-stage result whose candidates are ranked c0, c1, ... with the given relevance labels."""
    from llama_index_bge_finetune.evaluation.metrics import score_ranking
    from llama_index_bge_finetune.evaluation.results import DatasetInfo, EvaluationResult, QueryResult

    queries = []
    for i, labels in enumerate(labels_per_query):
        ids = [f"c{j}" for j in range(len(labels))]
        rel = {d: 1.0 for d, y in zip(ids, labels) if y}
        queries.append(QueryResult(f"q{i}", f"query {i}", rel, ids, [float(len(ids) - j) for j in range(len(ids))],
                                   score_ranking(ids, rel, (1, 3))))
    return EvaluationResult(name="first", k_values=(1, 3), queries=queries,
                            dataset=DatasetInfo(n_queries=len(queries), n_corpus=len(labels_per_query[0])))


def test_cross_fitted_blend_weight_is_chosen_on_the_other_fold_only():
    from llama_index_bge_finetune.reranking.evaluation import CROSS_FIT, cross_fitted_rerank

    # Even queries (fold 0): the reranker finds the relevant passage the first stage ranked last.
    # Odd queries (fold 1): the first stage is right and the reranker ranks the relevant passage last.
    labels = [[0, 0, 1] if i % 2 == 0 else [1, 0, 0] for i in range(12)]
    scores = {f"q{i}": np.array([0.0, 1.0, 9.0]) for i in range(12)}
    out = cross_fitted_rerank(_first_stage(labels), scores, top_n=3)
    # Fold 0 gets the weight chosen on fold 1, where the reranker only hurts: the first stage's order (0).
    # Fold 1 gets the weight chosen on fold 0, where the reranker helps on all 6 (beyond noise): a weight above 0,
    # which hurts fold 1.
    w0, w1 = out.model_info["blend_weights_per_fold"]
    assert w0 == 0.0 and w1 > 0.0 and out.model_info["blend_weight"] == CROSS_FIT
    rule0, rule1 = out.model_info["blend_rules_per_fold"]
    assert "no blend weight beats the first stage" in rule0 and "beyond noise" in rule1
    assert [q.retrieved_ids[0] for q in out.queries[::2]] == ["c0"] * 6  # first stage kept, relevant c2 not on top
    assert [q.retrieved_ids[0] for q in out.queries[1::2]] == ["c2"] * 6  # reranker applied, relevant c0 pushed down
    # Choosing the weight on all queries and scoring the same queries would have looked better than cross-fitting.
    assert out.metrics["hit_rate@1"] == 0.0
    with pytest.raises(Exception, match="at least 2 folds"):
        cross_fitted_rerank(_first_stage(labels[:1]), scores, top_n=3)
