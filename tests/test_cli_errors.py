"""Bad input to the CLI: one clear paragraph, a non-zero exit, no traceback, nothing overwritten."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from llama_index_bge_finetune import pipeline
from llama_index_bge_finetune.errors import OutputExistsError


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "200"}
    env.pop("OPENAI_API_KEY", None)
    return subprocess.run([sys.executable, "-m", "llama_index_bge_finetune", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def _assert_clean_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    for needle in needles:
        assert needle in proc.stderr, proc.stderr


def test_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    _assert_clean_error(_cli("run", "docs", "-o", "out", cwd=tmp_path), "is empty", "bge-finetune demo")
    assert not (tmp_path / "out").exists()


def test_folder_with_no_readable_document(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "scan.pdf").write_bytes(b"%PDF-1.7 truncated")
    (docs / "data.bin").write_bytes(os.urandom(64))
    _assert_clean_error(_cli("run", "docs", cwd=tmp_path), "No readable document", "scan.pdf")


def test_missing_dataset_file(tmp_path: Path) -> None:
    _assert_clean_error(_cli("train", "nope.json", "-o", "m", cwd=tmp_path), "does not exist")


def test_malformed_dataset_file(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text(json.dumps({"queries": {}}))
    _assert_clean_error(_cli("evaluate", "bad.json", "--model", "a=b", cwd=tmp_path), "corpus", "relevant_docs")


def test_finished_run_is_not_overwritten(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "run.json").write_text("{}")
    (out / "report.json").write_text('{"keep": true}')
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Some text. " * 50)
    _assert_clean_error(_cli("run", "docs", "-o", "out", cwd=tmp_path), "already holds a finished run", "--overwrite")
    assert json.loads((out / "report.json").read_text()) == {"keep": True}


def test_prepare_output_rules(tmp_path: Path) -> None:
    stranger = tmp_path / "stranger"
    stranger.mkdir()
    (stranger / "thesis.tex").write_text("precious")
    with pytest.raises(OutputExistsError, match="does not hold a previous run"):
        pipeline.prepare_output(stranger, overwrite=False)
    unfinished = tmp_path / "unfinished"
    (unfinished / "cache").mkdir(parents=True)
    (unfinished / "cache" / "generation.jsonl").write_text("{}\n")
    pipeline.prepare_output(unfinished, overwrite=False)  # resumes
    (unfinished / "report.json").write_text("{}")
    (unfinished / "model").mkdir()
    pipeline.prepare_output(unfinished, overwrite=True)
    assert not (unfinished / "report.json").exists() and not (unfinished / "model").exists()
    assert (unfinished / "cache" / "generation.jsonl").exists(), "the content-keyed cache survives --overwrite"


def test_help_documents_every_option(tmp_path: Path) -> None:
    proc = _cli("run", "--help", cwd=tmp_path)
    assert proc.returncode == 0
    for option in ("--output", "--base-model", "--generator", "--questions-per-chunk", "--chunk-size",
                   "--val-fraction", "--epochs", "--batch-size", "--overwrite", "--max-nodes"):
        assert option in proc.stdout
