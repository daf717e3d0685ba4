"""`bge-finetune run` on a small real corpus, from documents to a loadable model and a report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture
def docs_folder(tmp_path: Path) -> Path:
    """Twelve topics of CPython's Language Reference as text and Markdown files."""
    from pydoc_data.topics import topics

    folder = tmp_path / "docs"
    folder.mkdir()
    for i, name in enumerate(["assignment", "async", "atom-identifiers", "attribute-access", "augassign",
                              "binary", "bitwise", "class", "comparisons", "compound", "context-managers",
                              "exceptions"]):
        suffix = ".md" if i % 2 else ".txt"
        (folder / f"{name}{suffix}").write_text(topics[name], encoding="utf-8")
    return folder


@pytest.mark.slow
def test_run_writes_model_datasets_and_report(docs_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "160"}
    env.pop("OPENAI_API_KEY", None)
    cmd = [sys.executable, "-m", "llama_index_bge_finetune", "run", str(docs_folder), "-o", str(out),
           "--chunk-size", "256", "--epochs", "1", "--max-nodes", "30"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "all-MiniLM-L6-v2" in proc.stderr, "the offline fallback model is named"
    assert "offline" in proc.stderr, "the question generator is named"

    for name in ("train_dataset.json", "val_dataset.json", "report.md", "report.json", "chart.png", "run.json",
                 "report.html"):
        assert (out / name).is_file(), name
    train = json.loads((out / "train_dataset.json").read_text())
    val = json.loads((out / "val_dataset.json").read_text())
    assert set(train) >= {"queries", "corpus", "relevant_docs"}
    assert not set(train["corpus"]) & set(val["corpus"]), "no passage on both sides"
    assert len(val["queries"]) >= 5
    report = (out / "report.md").read_text()
    assert "fine-tuned" in report and "base" in report
    assert "pseudo" in report.lower(), "the report says how the evaluation questions were made"
    assert (out / "chart.png").read_bytes()[:4] == b"\x89PNG"
    # The headline searches every chunk of the run; the held-out-passages figure is beside it.
    data = json.loads((out / "report.json").read_text())
    assert data["dataset"]["n_corpus"] == 30 and data["dataset"]["n_queries"] == len(val["queries"])
    assert data["held_out_passages"]["dataset"]["n_corpus"] == len(val["corpus"])
    assert str((out / "report.html").resolve()) in "".join(proc.stderr.split()), "the report's path is printed"

    from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    from sentence_transformers import SentenceTransformer

    vec = HuggingFaceEmbedding(model_name=str(out / "model"), device="cpu").get_text_embedding("What does yield do?")
    assert len(vec) == 384 and any(v != 0 for v in vec)
    assert SentenceTransformer(str(out / "model"), device="cpu").encode(["x"]).shape == (1, 384)

    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 2 and "--overwrite" in rerun.stderr and "Traceback" not in rerun.stderr


def test_generate_with_the_openai_generator_over_http(docs_folder: Path, tmp_path: Path, openai_server) -> None:
    """`bge-finetune generate --generator openai` talks to an OpenAI-compatible server; the key stays secret."""
    secret = "sk-test-SECRET-do-not-log-4242"
    out = tmp_path / "gen"
    env = {**os.environ, "OPENAI_API_KEY": secret, "OPENAI_API_BASE": openai_server.base_url, "COLUMNS": "160"}
    cmd = [sys.executable, "-m", "llama_index_bge_finetune", "generate", str(docs_folder), "-o", str(out),
           "--generator", "openai", "--chunk-size", "256", "--max-nodes", "12", "-v"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "gpt-4o-mini" in proc.stderr
    dataset = json.loads((out / "dataset.json").read_text())
    assert len(dataset["queries"]) >= 12 and dataset["query_source"] == "llm"
    assert openai_server.chat_requests >= 12
    assert any(secret in h for h in openai_server.auth_headers), "the key was sent to the server"
    written = proc.stdout + proc.stderr + "".join(p.read_text(errors="ignore") for p in out.rglob("*") if p.is_file())
    assert secret not in written, "the API key leaked into the output, logs or cache"

    requests_before = openai_server.chat_requests
    rerun = subprocess.run(cmd + ["--overwrite"], env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert openai_server.chat_requests == requests_before, "a rerun is served from the checkpoint"
