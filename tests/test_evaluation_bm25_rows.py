"""BM25 and a cross-fitted dense + BM25 hybrid as rows of every comparison, the verdict naming the best row,
and retrieval.json (the retrieval to ship with a model)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from llama_index_bge_finetune import pipeline
from llama_index_bge_finetune.dataset import EmbeddingQAFinetuneDataset
from llama_index_bge_finetune.errors import EvaluationError, RetrievalConfigError
from llama_index_bge_finetune.evaluation import compare_models
from llama_index_bge_finetune.evaluation.fusion_choice import choose_from_values
from llama_index_bge_finetune.evaluation.hybrid import Hybrid, cross_fitted_fusion, fold_assignment
from llama_index_bge_finetune.retrieval.bm25 import BM25Settings
from llama_index_bge_finetune.retrieval.fusion import FusionSpec, fuse, top_k_rows
from llama_index_bge_finetune.retrieval.pipeline_config import RetrievalConfig
from tests.cli_helpers import run_cli
from tests.evaluation_data import evaluation_topics_dataset

FAST = dict(n_bootstrap=200, n_permutations=2000)


@pytest.fixture(scope="module")
def tiny_vs_bm25(_tiny_model_master: Path):
    """The tiny random BERT, BM25 and their hybrid on 60 real help-topic passages (BM25 is far better)."""
    return compare_models({"base": str(_tiny_model_master), "bm25": "bm25"}, evaluation_topics_dataset(),
                          cache=False, hybrid={"base + bm25": ("base", "bm25")}, **FAST)


def test_bm25_is_a_row_with_the_same_metrics_intervals_and_paired_test(tiny_vs_bm25):
    cmp = tiny_vs_bm25
    assert list(cmp.results) == ["base", "bm25", "base + bm25"] and cmp.base == "base"
    bm25 = cmp.results["bm25"]
    assert bm25.metric_names == cmp.results["base"].metric_names
    assert bm25.model_info["kind"] == "bm25" and bm25.model_info["settings"] == BM25Settings().to_dict()
    assert [q.query_id for q in bm25.queries] == [q.query_id for q in cmp.results["base"].queries]
    diff = cmp.differences["bm25"]["hit_rate@5"]
    assert diff.mean_diff == pytest.approx(cmp.estimates["bm25"]["hit_rate@5"].value
                                           - cmp.estimates["base"]["hit_rate@5"].value)
    assert cmp.estimates["bm25"]["hit_rate@5"].value > 0.9 > cmp.estimates["base"]["hit_rate@5"].value
    assert diff.p_value < 0.01, "the paired test runs on the BM25 row as on any model"


def test_the_verdict_names_bm25_when_it_is_the_best_row(tiny_vs_bm25, tmp_path):
    cmp = tiny_vs_bm25
    best = cmp.best_retriever()
    # the hybrid chose BM25 alone on both folds (the tiny random model adds nothing): a tie, not a runner-up
    assert (best.best, best.ties, best.runner_up, best.beyond_noise) == ("bm25", ("base + bm25",), "base", True)
    assert best.sentence.startswith("Best retriever: bm25 (ndcg@10 ")
    assert "(base + bm25 scores the same on every question)" in best.sentence
    assert "it beats the next best, base (" in best.sentence and best.sentence.endswith(": beyond noise.")
    paths = cmp.save(tmp_path / "report")
    md = paths["markdown"].read_text()
    assert "## Verdict" in md and best.sentence in md
    assert json.loads(paths["json"].read_text())["best_retriever"]["best"] == "bm25"
    html = paths["html"].read_text(encoding="utf-8")
    assert "the best retriever is bm25" in html and "Best retriever: bm25" in html
    single = compare_models({"base": cmp.results["base"]}, evaluation_topics_dataset(), **FAST).best_retriever()
    assert single.runner_up is None and "no other retriever was evaluated" in single.sentence


def test_the_hybrid_row_is_cross_fitted_and_records_each_fold_and_the_shipped_choice(tiny_vs_bm25):
    cmp = tiny_vs_bm25
    hybrid, bm25, base = (cmp.results[k] for k in ("base + bm25", "bm25", "base"))
    info = hybrid.model_info
    assert info["kind"] == "hybrid" and info["fusion"] == "cross-fit" and info["folds"] == 2
    assert len(info["fusion_per_fold"]) == len(info["fusion_reasons_per_fold"]) == 2
    chosen = info["shipped"]["chosen"]
    assert info["shipped"]["questions"] == 60
    assert info["shipped_pipeline"] == (FusionSpec.from_dict(chosen).label if isinstance(chosen, dict) else chosen)
    assert info["fingerprint"] == base.model_info["fingerprint"] and info["corpus_digest"].startswith("sha256:")
    fold_of = fold_assignment(60, 2, 0)
    for i, (q, qb) in enumerate(zip(hybrid.queries, bm25.queries)):
        if info["fusion_per_fold"][fold_of[i]] == "bm25":  # a fold ranked by BM25 alone retrieves what BM25 does
            assert q.retrieved_ids == qb.retrieved_ids
    md = cmp.to_markdown()
    assert "## Hybrid retrieval (dense + BM25)" in md and "base + bm25, fold 2: " in md
    assert "**Shipped pipeline: " in md and "Chosen on all 60 questions" in md


def test_bm25_settings_reach_the_row(_tiny_model_master):
    ds = evaluation_topics_dataset(n_docs=12)
    settings = BM25Settings(language=None, stopwords=None)
    cmp = compare_models({"base": str(_tiny_model_master), "bm25": "bm25"}, ds, cache=False,
                         bm25_settings=settings, hybrid={"h": ("base", "bm25", Hybrid(folds=3))}, **FAST)
    assert cmp.results["bm25"].model_info["settings"] == settings.to_dict()
    assert cmp.results["h"].model_info["bm25_settings"] == settings.to_dict()
    assert len(cmp.results["h"].model_info["fusion_per_fold"]) == 3


def test_a_corpus_of_stopwords_gives_one_warning_and_no_bm25_row(_tiny_model_master, caplog):
    words = ["the and of", "it is a", "to be or not to be", "this that these", "they are there", "if it was"]
    ds = EmbeddingQAFinetuneDataset(queries={f"q{i}": w for i, w in enumerate(words)},
                                    corpus={f"d{i}": w for i, w in enumerate(words)},
                                    relevant_docs={f"q{i}": [f"d{i}"] for i in range(len(words))})
    with caplog.at_level(logging.INFO, logger="llama_index_bge_finetune"):
        cmp = compare_models({"base": str(_tiny_model_master), "bm25": "bm25"}, ds, cache=False,
                             hybrid={"base + bm25": ("base", "bm25")}, **FAST)
    assert list(cmp.results) == ["base"]
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "No 'bm25' row" in warnings[0].getMessage() and "BM25 has no terms" in warnings[0].getMessage()
    assert "stopwords=None" in warnings[0].getMessage(), "the warning names the fix"
    assert cmp.best_retriever().best == "base"


def test_a_hybrid_must_fuse_a_dense_model_with_a_bm25_row(_tiny_model_master):
    ds = evaluation_topics_dataset(n_docs=6)
    tiny = str(_tiny_model_master)
    with pytest.raises(EvaluationError, match="must be a BM25 row"):
        compare_models({"base": tiny, "other": tiny}, ds, hybrid={"h": ("base", "other")})
    with pytest.raises(EvaluationError, match="must be a dense model"):
        compare_models({"base": tiny, "bm25": "bm25"}, ds, hybrid={"h": ("bm25", "bm25")})
    with pytest.raises(EvaluationError, match=r"\(dense label, BM25 label\)"):
        compare_models({"base": tiny, "bm25": "bm25"}, ds, hybrid={"h": ("base",)})


def _signal_scores(n: int, docs: int, dense_signal: float, bm25_signal: float, seed: int):
    """Dense and BM25 score matrices, each an independent noisy view of one relevant document per question."""
    rng = np.random.default_rng(seed)
    rel = rng.integers(0, docs, n)
    dense = rng.normal(size=(n, docs))
    bm25 = 3.0 * rng.gamma(2.0, size=(n, docs))
    dense[np.arange(n), rel] += dense_signal
    bm25[np.arange(n), rel] += 3.0 * bm25_signal
    return dense, bm25, [{f"d{r}": 1.0} for r in rel], [f"d{j}" for j in range(docs)]


def test_fusion_that_truly_helps_is_chosen_on_both_folds_and_ranks_each_fold():
    dense, bm25, relevant, ids = _signal_scores(240, 50, 2.0, 2.0, seed=1)
    fit = cross_fitted_fusion(dense, bm25, relevant, ids, depth=10)
    assert all(isinstance(c.chosen, FusionSpec) for c in fit.fold_choices) and fit.shipped.hybrid
    assert [c.questions for c in fit.fold_choices] == [120, 120] and fit.shipped.questions == 240
    assert sorted(np.bincount(fold_assignment(241, 2, 0))) == [120, 121]
    assert not (fit.fold_of == np.arange(240) % 2).all(), "dealt at random, not by position"
    for f, choice in enumerate(fit.fold_choices):
        rows = np.flatnonzero(fit.fold_of == f)
        expected, _ = top_k_rows(fuse(dense[rows], bm25[rows], choice.chosen), 10)
        assert (fit.rows[rows] == expected).all(), "each fold is ranked by the fusion chosen on the other"


def test_each_fold_is_ranked_by_a_choice_made_without_its_own_questions():
    """Making dense perfect on fold 1's questions changes fold 2's choice, never fold 1's."""
    dense, bm25, relevant, ids = _signal_scores(200, 40, 1.5, 1.5, seed=4)
    before = cross_fitted_fusion(dense, bm25, relevant, ids, depth=5)
    rigged = dense.copy()
    for i in np.flatnonzero(before.fold_of == 0):  # fold 1's questions
        rigged[i, ids.index(next(iter(relevant[i])))] += 100.0
    after = cross_fitted_fusion(rigged, bm25, relevant, ids, depth=5)
    assert after.fold_choices[0].to_dict() == before.fold_choices[0].to_dict()
    assert after.fold_choices[1].means != before.fold_choices[1].means


def test_fusion_that_does_not_help_keeps_the_single_retriever():
    dense, bm25, relevant, ids = _signal_scores(160, 40, 4.0, 0.0, seed=2)
    fit = cross_fitted_fusion(dense, bm25, relevant, ids, depth=10)
    assert [c.chosen for c in fit.fold_choices] == ["dense", "dense"] and fit.shipped.chosen == "dense"
    expected, _ = top_k_rows(dense, 10)
    assert (fit.rows == expected).all()
    values = {"dense": np.ones(4), "bm25": np.zeros(4)}
    assert choose_from_values(values, ()).chosen == "dense"
    with pytest.raises(EvaluationError, match="a question per fold"):
        cross_fitted_fusion(dense[:1], bm25[:1], relevant[:1], ids, depth=10)
    with pytest.raises(EvaluationError, match="questions and 40 corpus ids"):
        cross_fitted_fusion(dense[:, :5], bm25, relevant, ids, depth=10)


def test_retrieval_config_round_trips_and_refuses_another_version(tmp_path):
    config = RetrievalConfig("hybrid", FusionSpec("zscore", 0.3), BM25Settings(language=None),
                             {"questions": 790, "how": "all validation questions"}, "hybrid beats bm25",
                             "abc123", "sha256:00", {"p_value": 0.01})
    path = config.save(tmp_path)
    assert path == tmp_path / "retrieval.json" and RetrievalConfig.load(tmp_path) == config
    data = json.loads(path.read_text())
    assert data["version"] == 1 and data["fusion"] == {"method": "zscore", "weight": 0.3, "rrf_k": 60}
    path.write_text(json.dumps({**data, "version": 2}))
    with pytest.raises(RetrievalConfigError, match="version 2; this package reads version 1"):
        RetrievalConfig.load(tmp_path)
    with pytest.raises(RetrievalConfigError, match="needs fusion spec|needs"):
        RetrievalConfig("hybrid", None, BM25Settings())
    with pytest.raises(RetrievalConfigError, match="No retrieval.json"):
        RetrievalConfig.load(tmp_path / "elsewhere")


def test_write_retrieval_config_ships_the_hybrid_rows_choice(tiny_vs_bm25, tmp_path):
    cmp = tiny_vs_bm25
    config = pipeline.write_retrieval_config(cmp, tmp_path, dense="base", hybrid="base + bm25")
    shipped = cmp.results["base + bm25"].model_info["shipped"]
    assert RetrievalConfig.load(tmp_path) == config and config.pipeline == shipped["chosen"] == "bm25"
    assert config.chosen_on == {"questions": 60, "how": "all validation questions; cross-fitted estimate in report"}
    assert config.reason == shipped["reason"] and config.bm25 == BM25Settings()
    assert config.model_fingerprint == cmp.results["base"].model_info["fingerprint"]
    without = pipeline.write_retrieval_config(cmp, tmp_path / "dense", dense="base", hybrid="absent")
    assert without.pipeline == "dense" and without.fusion is None and "kept dense" in without.reason


def test_with_bm25_appends_the_row_once():
    assert list(pipeline.with_bm25({"base": "m"})) == ["base", "bm25"]
    assert pipeline.with_bm25({"base": "m"}, False) == {"base": "m"}
    assert pipeline.with_bm25({"base": "m", "lex": "bm25"}) == {"base": "m", "lex": "bm25"}
    with pytest.raises(EvaluationError, match="label of the BM25 row"):
        pipeline.with_bm25({"base": "m", "bm25": "other-model"})


def test_cli_evaluate_with_a_bm25_model_and_without_bm25(_tiny_model_master, tmp_path):
    ds = evaluation_topics_dataset(n_docs=20)
    ds.save_json(tmp_path / "val.json")
    tiny = str(_tiny_model_master)
    proc = run_cli("evaluate", "val.json", "-m", f"base={tiny}", "-m", "bm25=bm25", "--bm25-stopwords", "none",
                   "-o", "with", "--k", "1", "--k", "5", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((tmp_path / "with" / "report.json").read_text())
    assert list(report["models"]) == ["base", "bm25"], "the named BM25 row, not a second default one"
    assert report["models"]["bm25"]["model"]["settings"]["stopwords"] is None
    assert report["best_retriever"]["best"] == "bm25"
    assert "Best retriever: bm25" in " ".join(proc.stdout.split())
    proc = run_cli("evaluate", "val.json", "-m", f"base={tiny}", "--no-bm25", "-o", "without", "--k", "5",
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert list(json.loads((tmp_path / "without" / "report.json").read_text())["models"]) == ["base"]
    proc = run_cli("evaluate", "val.json", "-m", f"base={tiny}", "--bm25-language", "klingon", "-o", "bad",
                   cwd=tmp_path)
    assert proc.returncode == 2 and "Unknown stemmer language 'klingon'" in " ".join(proc.stderr.split())
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
@pytest.mark.xdist_group("tiny_cli_run")  # under -n 2: the session's finished tiny run is made once, on one worker
def test_a_run_reports_bm25_and_the_hybrid_and_writes_retrieval_json(tiny_cli_run):
    out = tiny_cli_run.out
    report = json.loads((out / "report.json").read_text())
    assert list(report["models"]) == ["base", "fine-tuned", "bm25", "fine-tuned + bm25"]
    assert list(report["held_out_passages"]["models"]) == list(report["models"])
    info = report["models"]["fine-tuned + bm25"]["model"]
    assert info["fusion"] == "cross-fit" and len(info["fusion_per_fold"]) == 2
    config = RetrievalConfig.load(out / "model")
    chosen = info["shipped"]["chosen"]
    assert config.pipeline == ("hybrid" if isinstance(chosen, dict) else chosen) and config.reason == info["shipped"]["reason"]
    assert config.chosen_on["questions"] == report["dataset"]["n_queries"] and config.bm25 == BM25Settings()
    md = (out / "report.md").read_text()
    assert "## Verdict" in md and "**Shipped pipeline: " in md and report["best_retriever"]["sentence"] in md
    # The shipped retriever applies it to an app's index embedded with the run's model, and refuses another model's.
    from llama_index.core import Document, VectorStoreIndex

    from llama_index_bge_finetune.errors import StaleVectorsError
    from llama_index_bge_finetune.integration import HybridRetriever, from_finetuned, record_embed_model

    val = json.loads((out / "val_dataset.json").read_text())
    docs = [Document(text=text, doc_id=cid) for cid, text in val["corpus"].items()]
    index = VectorStoreIndex.from_documents(docs, embed_model=from_finetuned(out / "model"))
    record_embed_model(index)
    question = next(iter(val["queries"].values()))
    hits = HybridRetriever.from_index(index, pipeline=out / "model", similarity_top_k=3).retrieve(question)
    assert len(hits) == 3
    other = VectorStoreIndex.from_documents(docs, embed_model=from_finetuned(tiny_cli_run.base_model))
    record_embed_model(other)
    with pytest.raises(StaleVectorsError):
        HybridRetriever.from_index(other, pipeline=out / "model")
