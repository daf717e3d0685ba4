"""`bge-finetune run --reranker`: the report compares base, fine-tuned and fine-tuned + reranker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_run_with_reranker_flag_on_a_corpus_too_small_to_mine(tiny_model_path: Path, tmp_path: Path, precision: str) -> None:
    """Three training passages: the false-negative guard passes none, so every query gets a random negative.

    Both models train in each precision on any CPU (bf16 autocast also runs where bf16 is not native).
    """
    from pydoc_data.topics import topics

    docs = tmp_path / "docs"
    docs.mkdir()
    for name in ["assignment", "async"]:
        (docs / f"{name}.txt").write_text(topics[name], encoding="utf-8")
    out = tmp_path / "out"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "200"}
    env.pop("OPENAI_API_KEY", None)
    cmd = [sys.executable, "-m", "llama_index_bge_finetune", "run", str(docs), "-o", str(out), "--base-model",
           str(tiny_model_path), "--chunk-size", "256", "--epochs", "1", "--max-nodes", "4", "--reranker",
           "--precision", precision]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    logs = proc.stdout + proc.stderr
    assert "Hard negatives: 0 of" in logs and "got no mined negative that passes the false-negative guard" in logs
    for model in ("model", "reranker"):
        trained = json.loads((out / model / "training_result.json").read_text())
        assert trained["hyperparameters"]["precision"] == f"{precision} ({precision})" and trained["steps"] > 0
    config = json.loads((out / "reranker" / "reranker_config.json").read_text())
    assert config["started_from_bi_encoder"] is True and 0.0 <= config["blend_weight"] <= 1.0
    assert config["validation"]["validation_queries"] > 0  # the blend was checked on the held-out questions
    report = json.loads((out / "report.json").read_text())
    assert list(report["models"]) == ["base", "fine-tuned", "bm25", "fine-tuned + bm25", "fine-tuned + reranker"]
    assert "rerank_median_ms" in report["models"]["fine-tuned + reranker"]["timings"]
    # The saved weight was chosen on these held-out questions, so the report cross-fits it (2 folds).
    info = report["models"]["fine-tuned + reranker"]["model"]
    assert info["blend_weight"] == "cross-fit" and len(info["blend_weights_per_fold"]) == 2
    assert config["validation"]["decision"]["rule"] in (out / "reranker" / "README.md").read_text()
    md = (out / "report.md").read_text()
    assert "Reranking cost" in md and md.count("blend guard on half") == 2
    assert "fine-tuned + reranker" in proc.stdout
