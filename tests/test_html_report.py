"""report.html without a browser: self-contained, no secret, the run's files read, the data profile right."""

from __future__ import annotations

import base64
import gzip
import json
import re
from pathlib import Path

from llama_index_bge_finetune.report.dataset_profile import copies_passage, near_duplicate_groups, profile_dataset
from llama_index_bge_finetune.report.html_report import question_data, render_html, report_data, write_html_report
from llama_index_bge_finetune.report.run_context import HIDDEN, read_training, redact
from tests.report_data import synthetic_comparison, write_run_files


def _embedded(html: str):
    data = json.loads(re.search(r'<script type="application/json" id="report-data">(.*?)</script>', html, re.S).group(1))
    blob = re.search(r'<script type="application/octet-stream" id="question-data">(.*?)</script>', html, re.S).group(1)
    return data, json.loads(gzip.decompress(base64.b64decode(blob)))


def test_page_is_self_contained_and_carries_every_section(tmp_path: Path) -> None:
    cmp = synthetic_comparison(60, 2)
    html = write_html_report(cmp, tmp_path / "report.html").read_text(encoding="utf-8")
    # Nothing to fetch: no src/href to anything but data: and fragments, and a CSP that forbids the network.
    markup = re.sub(r"<script[^>]*>.*?</script>", "<script></script>", html, flags=re.S)
    assert not re.search(r'\s(?:src|href)="(?!data:|#)', markup) and "<link rel=\"stylesheet\"" not in markup
    assert "default-src 'none'" in html and "vegaEmbed" in html
    assert html.count("</script>") == html.count("<script")  # inlined code never closes its element early
    for section in ("verdict", "metrics", "questions", "data", "training", "run"):
        assert f'<section id="{section}"' in html
    data, questions = _embedded(html)
    assert data["best"] in ("base", "fine-tuned") and data["primary"] == "ndcg@10"
    assert len(questions["q"]) == 60 and questions["models"] == ["base", "fine-tuned"]
    # Each row: id, text, expected passages, metric per model, (passage, score*1000) pairs per model.
    qid, text, expected, scores, retrieved = questions["q"][0]
    first = cmp.results["base"].queries[0]
    assert qid == first.query_id and [questions["pid"][p] for p in expected] == list(first.relevant)
    assert [questions["pid"][p] for p in retrieved[0][::2]] == first.retrieved_ids
    assert retrieved[0][1] == round(first.retrieved_scores[0] * 1000)


def test_verdict_states_the_difference_in_words_and_the_held_out_figure() -> None:
    cmp = synthetic_comparison(150, 2)
    cmp.held_out = synthetic_comparison(150, 2, n_passages=30, seed=3)
    data = report_data(cmp)
    v = data["verdict"]
    diff = cmp.differences["fine-tuned"]["ndcg@10"]
    assert len(v["differences"]) == 1
    assert ("real difference" in v["differences"][0]["text"]) == diff.significant(0.05)
    assert f"higher for {diff.wins} questions, lower for {diff.losses}" in v["differences"][0]["text"]
    assert "whole corpus" in v["headline"] and "30 held-out passages" in v["scope"]
    assert [s["name"] for s in data["scopes"]] == ["whole corpus", "held-out passages only"]
    assert "pseudo-queries flatter" in v["query_source"]
    assert "held-out passages only" in cmp.to_markdown().lower()


def test_run_files_fill_the_data_and_training_sections_and_secrets_stay_out(tmp_path: Path, monkeypatch) -> None:
    secret = "sk-test-0123456789abcdef"
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env-secret-value-42")
    cmp = synthetic_comparison(80, 2)
    write_run_files(tmp_path, cmp, n_chunks=50, secret=secret)
    (tmp_path / "failures.jsonl").open("a").write("not json\n")  # a broken line is skipped, not fatal
    html = render_html(cmp, tmp_path)
    assert secret not in html and "sk-env-secret-value-42" not in html
    data, _ = _embedded(html)
    assert data["run"]["extra"]["openai_api_key"] == HIDDEN
    training = data["training"]
    assert [r["loss"] for r in training["loss"]][:2] == [1.9, 1.8] and training["steps"] == 10
    assert {e["metric"] for e in training["evaluations"]} == {"val_cosine_ndcg@10", "loss"}  # eval_runtime left out
    assert training["base_model_reason"].startswith("the hub is unreachable")
    profile = data["data"]
    assert profile["source"].startswith("dataset.json") and profile["n_chunks"] == 50
    assert profile["no_question"]["failed"] == 1 and profile["no_question"]["skipped"] == 1
    assert {"kind": "skipped", "reason": "near-empty chunk", "chunks": 1} in profile["no_question"]["reasons"]
    assert profile["per_passage"][0] == {"questions": 0, "passages": 10}  # 50 chunks, 40 with questions


def test_without_run_files_the_sections_degrade_gracefully(tmp_path: Path) -> None:
    data = report_data(synthetic_comparison(30, 1), tmp_path)
    assert data["training"] is None and data["run"] is None and data["verdict"]["differences"] == []
    assert data["data"]["source"].startswith("the evaluated questions")


def test_profile_finds_near_duplicates_copies_and_question_counts() -> None:
    corpus = {"a": "The with statement wraps a block with methods defined by a context manager.",
              "b": "Assignment statements bind names to objects."}
    queries = {"1": "What does the with statement wrap?", "2": "what does the WITH statement wrap",
               "3": "Which methods does the context manager define for the with statement?",
               "4": "wraps a block with methods defined by a context manager", "5": "How are names bound?"}
    relevant = {"1": ["a"], "2": ["a"], "3": ["a"], "4": ["a"], "5": ["b"]}
    assert near_duplicate_groups(queries, relevant) == [["1", "2"]]
    assert copies_passage(queries["4"], corpus["a"]) and not copies_passage(queries["3"], corpus["a"])
    p = profile_dataset(queries, corpus, relevant, n_chunks=3)
    assert p["per_passage"] == [{"questions": 0, "passages": 1}, {"questions": 1, "passages": 1},
                                {"questions": 4, "passages": 1}]
    assert p["near_duplicates"]["questions"] == 2 and p["copies"]["questions"] == 1
    assert p["no_question"]["chunks"] == 1


def test_redact_hides_secret_keys_and_values() -> None:
    out = redact({"api_key": "abc", "nested": [{"Authorization": "Bearer x"}], "note": "key sk-abcdefghij12 used",
                  "model": "gpt-4o-mini", "empty_token": None}, secrets=["hunter2-long"])
    assert out == {"api_key": HIDDEN, "nested": [{"Authorization": HIDDEN}], "note": f"key {HIDDEN} used",
                   "model": "gpt-4o-mini", "empty_token": None}
    assert redact("pw hunter2-long", secrets=["hunter2-long"]) == f"pw {HIDDEN}"


def test_training_log_absent_gives_figures_without_curves(tmp_path: Path) -> None:
    (tmp_path / "training_result.json").write_text(json.dumps({"steps": 3, "train_seconds": 1.5}))
    t = read_training([tmp_path / "missing", tmp_path])
    assert t["steps"] == 3 and t["loss"] == [] and t["evaluations"] == []


def test_question_text_cannot_inject_markup(tmp_path: Path) -> None:
    cmp = synthetic_comparison(10, 2)
    cmp.results["base"].queries[0].query = "</script><script>alert(1)</script>"
    html = render_html(cmp)
    data, questions = _embedded(html)
    assert questions["q"][0][1] == "</script><script>alert(1)</script>"
    assert "<script>alert(1)" not in html


def test_ten_thousand_questions_stay_compact() -> None:
    cmp = synthetic_comparison(2000, 3, n_passages=1000, n_bootstrap=20, n_permutations=20)
    q = question_data(cmp)
    assert len(q["q"]) == 2000 and len(q["p"]) == 1000
    assert all(len(r[4][m]) <= 20 for r in q["q"] for m in range(3))
