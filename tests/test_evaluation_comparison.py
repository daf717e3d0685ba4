"""compare_models: intervals, paired tests, and the report files (Markdown, JSON, PNG), incl. OpenAI embeddings."""

from __future__ import annotations

import json

import pytest

from llama_index_bge_finetune.errors import EvaluationError
from llama_index_bge_finetune.evaluation import EvalModel, ModelComparison, compare_models
from tests.evaluation_data import evaluation_topics_dataset


def test_report_files_state_the_query_source_and_carry_intervals_and_tests(tiny_model_path, tmp_path):
    ds = evaluation_topics_dataset(query_source="pseudo")
    path = tmp_path / "val.json"
    ds.save_json(path)
    cmp = compare_models(
        {"base": str(tiny_model_path), "instructed": EvalModel(str(tiny_model_path), query_instruction="query: ")},
        path, k_values=(1, 5), cache=tmp_path / "cache", n_bootstrap=200, n_permutations=500,
        extra_sections={"Training": "2 epochs of MultipleNegativesRankingLoss."},
    )
    assert isinstance(cmp, ModelComparison) and cmp.base == "base"
    est = cmp.estimates["instructed"]["ndcg@5"]
    assert est.ci_low <= est.value <= est.ci_high
    diff = cmp.differences["instructed"]["ndcg@5"]
    assert diff.mean_diff == pytest.approx(est.value - cmp.estimates["base"]["ndcg@5"].value)
    assert 0 < diff.p_value <= 1 and diff.wins + diff.losses + diff.ties == len(ds.queries)

    frame = cmp.to_dataframe()
    assert frame.shape[0] == 2 * 12 and {"value", "ci_low", "ci_high", "p_value"} <= set(frame.columns)
    assert frame.loc[("base", "ndcg@5"), "p_value"] != frame.loc[("base", "ndcg@5"), "p_value"]  # NaN: no self-test

    paths = cmp.save(tmp_path / "report")
    md = paths["markdown"].read_text()
    assert "**Query source:** `pseudo`" in md and "Warning: pseudo-queries flatter" in md
    assert "## Training" in md and "MultipleNegativesRankingLoss" in md
    assert "![metrics at k=5](chart.png)" in md and "retrieved instead" in md
    assert "'query: '" in md  # the instruction each model was evaluated with
    data = json.loads(paths["json"].read_text())
    assert data["dataset"]["query_source"] == "pseudo" and data["base"] == "base"
    assert set(data["models"]["instructed"]["vs_base"]["ndcg@5"]) >= {"mean_diff", "ci_low", "ci_high", "p_value"}
    assert paths["chart"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = paths["html"].read_text(encoding="utf-8")
    assert paths["html"].name == "report.html" and "Warning: pseudo-queries flatter" in html and "vegaEmbed" in html


def test_folder_query_instruction_is_read_from_the_saved_prompt(tiny_model_path, tmp_path):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(tiny_model_path), device="cpu")
    model.prompts = {"query": "Find the passage: ", "document": ""}
    model.save(str(tmp_path / "tuned"))
    cmp = compare_models({"tuned": str(tmp_path / "tuned")}, evaluation_topics_dataset(n_docs=10, query_source=None), cache=False,
                         n_bootstrap=50, n_permutations=50)
    assert cmp.results["tuned"].model_info["query_instruction"] == "Find the passage: "
    assert "unset" in cmp.to_markdown()  # dataset without query_source says so


def test_openai_embeddings_compared_over_http_to_the_local_server(tiny_model_path, openai_server):
    from llama_index.embeddings.openai import OpenAIEmbedding

    api_key = "sk-test-secret-123"
    ds = evaluation_topics_dataset(n_docs=40)
    openai = OpenAIEmbedding(model="text-embedding-3-small", api_base=openai_server.base_url, api_key=api_key,
                             embed_batch_size=16)
    cmp = compare_models({"base": str(tiny_model_path), "openai": openai}, ds, k_values=(1, 10), cache=False,
                         n_bootstrap=100, n_permutations=200)
    assert openai_server.embedding_requests >= 40 + 3  # every query, and the corpus in batches of 16
    r = cmp.results["openai"]
    # The server's hashed bag of words matches a query to the passage it was cut from.
    assert r.metrics["hit_rate@10"] > 0.8
    assert len(r.queries) == 40
    report = json.dumps(cmp.to_dict()) + cmp.to_markdown()
    assert api_key not in report


def test_graded_relevance_is_used_as_in_evaluate_embeddings(tiny_model_path):
    from llama_index_bge_finetune.evaluation import evaluate_embeddings

    ds = evaluation_topics_dataset(n_docs=10)
    docs = list(ds.corpus)
    graded = {q: {d: 2.0 for d in rel} | {docs[0]: 1.0} for q, rel in ds.relevant_docs.items()}
    cmp = compare_models({"base": str(tiny_model_path)}, ds, k_values=(10,), cache=False, relevance=graded,
                         n_bootstrap=50, n_permutations=50)
    single = evaluate_embeddings(str(tiny_model_path), ds, k_values=(10,), cache=False, relevance=graded)
    binary = evaluate_embeddings(str(tiny_model_path), ds, k_values=(10,), cache=False)
    assert cmp.estimates["base"]["ndcg@10"].value == pytest.approx(single.metrics["ndcg@10"])
    assert single.metrics["ndcg@10"] != pytest.approx(binary.metrics["ndcg@10"])  # the grades mattered


def test_comparison_errors_name_the_problem(tiny_model_path):
    ds = evaluation_topics_dataset(n_docs=5)
    with pytest.raises(EvaluationError, match="at least one model"):
        compare_models({}, ds)
    with pytest.raises(EvaluationError, match="unknown models"):
        compare_models({"a": str(tiny_model_path)}, ds, query_instructions={"b": "x"})
