"""The overwrite rule under hostile use: every writing command refuses to replace finished work (exit 2,
nothing changed), a file as output is refused before any model loads, unfinished work of other settings
is not resumed, arguments are checked before expensive stages, and a generation that wrote nothing fails."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path
from typing import Dict, Tuple

import pytest

from tests.cli_helpers import FinishedRun, run_cli, write_topics

pytestmark = pytest.mark.xdist_group("tiny_cli_run")  # under -n 2: the session's finished tiny run is made once, on one worker


def _refused(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr[-3000:]
    for needle in needles:
        assert needle in proc.stderr, proc.stderr[-3000:]


def _snapshot(folder: Path) -> Dict[str, Tuple[str, int]]:
    """Every file below ``folder``: its sha256 and its mtime in ns."""
    return {p.relative_to(folder).as_posix(): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_every_command_refuses_to_overwrite_a_finished_run(tiny_cli_run: FinishedRun) -> None:
    work, out, dest = tiny_cli_run.work, tiny_cli_run.out, tiny_cli_run.out.name
    tiny = str(tiny_cli_run.base_model)
    before = _snapshot(out)
    assert {"report.json", "report.md", "chart.png", "model/modules.json", "train_dataset.json"} <= set(before)
    commands = {
        "run": tiny_cli_run.command(dest),
        "run, other settings": ["run", "docs", "-o", dest, "--chunk-size", "256"],
        "demo": ["demo", "-o", dest],
        "generate": ["generate", "docs", "-o", dest, "--chunk-size", "128"],
        "train": ["train", f"{dest}/train_dataset.json", "-o", f"{dest}/model", "--base-model", tiny],
        "evaluate": ["evaluate", f"{dest}/val_dataset.json", "-m", f"base={tiny}", "-o", dest],
    }
    for name, args in commands.items():
        proc = run_cli(*args, cwd=work)
        _refused(proc, "already holds", "--overwrite", "nothing was changed")
        assert _snapshot(out) == before, f"`{name}` changed the finished run"


@pytest.mark.slow
def test_evaluate_overwrite_replaces_only_the_report(tiny_cli_run: FinishedRun, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    import shutil

    shutil.copytree(tiny_cli_run.out, copy)
    model_before = _snapshot(copy / "model")
    proc = run_cli("evaluate", str(copy / "val_dataset.json"), "-m", f"base={tiny_cli_run.base_model}",
                   "-o", str(copy), "--overwrite", cwd=tiny_cli_run.work)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert list(json.loads((copy / "report.json").read_text())["models"]) == ["base", "bm25"]
    assert _snapshot(copy / "model") == model_before


def test_output_that_is_a_file_is_refused_before_any_model_loads(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("precious")
    (tmp_path / "ds.json").write_text(json.dumps({"queries": {"q": "a question"}, "corpus": {"d": "a passage"},
                                                  "relevant_docs": {"q": ["d"]}}))
    write_topics(tmp_path / "docs", names=("assignment",))
    # The base models do not exist: reaching them would fail differently, so the file check came first.
    for args in (["train", "ds.json", "-o", "taken", "--base-model", "/no/such/model"],
                 ["train", "ds.json", "-o", "taken/model", "--base-model", "/no/such/model"],
                 ["evaluate", "ds.json", "-m", "a=/no/such/model", "-o", "taken"],
                 ["run", "docs", "-o", "taken", "--base-model", "/no/such/model"],
                 ["generate", "docs", "-o", "taken"]):
        _refused(run_cli(*args, cwd=tmp_path), "taken", "is a file" if args[3:4] != ["taken/model"] else "below the file",
                 "--output")
    assert (tmp_path / "taken").read_text() == "precious"


def test_bad_arguments_are_refused_before_any_work(tmp_path: Path) -> None:
    write_topics(tmp_path / "docs", names=("assignment",))
    _refused(run_cli("run", "docs", "-o", "out", "--k", "0", cwd=tmp_path), "k_values", "positive integers")
    _refused(run_cli("run", "docs", "-o", "out", "--learning-rate", "0", cwd=tmp_path), "learning rate must be positive")
    _refused(run_cli("run", "docs", "-o", "out", "--chunk-size", "64", "--chunk-overlap", "64", cwd=tmp_path),
             "chunk_overlap")
    _refused(run_cli("run", "docs", "-o", "out", "--base-model", "/no/such/model", cwd=tmp_path), "/no/such/model")
    _refused(run_cli("train", "nope.json", "-o", "m", "--epochs", "0", cwd=tmp_path), "epochs must be positive")
    _refused(run_cli("evaluate", "nope.json", "-m", "a=b", "--k", "0", cwd=tmp_path), "k_values")
    assert not (tmp_path / "out").exists() and not (tmp_path / "m").exists(), "nothing was written"


def test_generate_refuses_to_resume_another_runs_unfinished_work(tmp_path: Path) -> None:
    write_topics(tmp_path / "docs", names=("assignment", "class"))
    args = ["generate", "docs", "-o", "gen", "--chunk-size", "128", "--max-nodes", "8"]
    first = run_cli(*args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    gen = tmp_path / "gen"
    for name in ("dataset.json", "train_dataset.json", "val_dataset.json"):  # as if killed during generation
        (gen / name).unlink()
    before = _snapshot(gen)
    other = run_cli("generate", "docs", "-o", "gen", "--chunk-size", "256", "--max-nodes", "8", cwd=tmp_path)
    _refused(other, "unfinished run started with other settings", "chunk_size: 128 before, 256 now", "--overwrite")
    assert _snapshot(gen) == before
    same = run_cli(*args, cwd=tmp_path)
    assert same.returncode == 0, same.stderr[-3000:]
    assert (gen / "train_dataset.json").is_file()
    assert run_cli("generate", "docs", "-o", "gen", "--chunk-size", "256", "--max-nodes", "8", "--overwrite",
                   cwd=tmp_path).returncode == 0
    assert json.loads((gen / "run.json").read_text())["chunk_size"] == 256


def test_generate_with_an_unreachable_api_fails_and_lists_every_chunk(tmp_path: Path) -> None:
    write_topics(tmp_path / "docs", names=("assignment",))
    (tmp_path / "docs" / "0-blank.txt").write_text("   12   \n")  # sorted first: within --max-nodes
    secret = "sk-test-SECRET-unreachable-777"
    env = {"OPENAI_API_KEY": secret, "OPENAI_API_BASE": "http://127.0.0.1:9/v1"}  # port 9 (discard) is closed
    proc = run_cli("generate", "docs", "-o", "gen", "--generator", "openai", "--max-nodes", "4", "--max-retries", "0",
                   cwd=tmp_path, env=env, timeout=300)
    _refused(proc, "No question was written", "failures.jsonl", "reachable")
    lines = [json.loads(line) for line in (tmp_path / "gen" / "failures.jsonl").read_text().splitlines()]
    failed = [r for r in lines if r["kind"] == "failed"]
    skipped = [r for r in lines if r["kind"] == "skipped"]
    assert len(failed) == 3 and all(r["attempts"] == 1 and r["reason"] and r["node_id"] for r in failed)
    assert len(skipped) == 1 and skipped[0]["chars"] == 2 and skipped[0]["attempts"] == 0
    assert set(lines[0]) >= {"node_id", "reason", "attempts", "kind"}
    assert not (tmp_path / "gen" / "train_dataset.json").exists(), "no empty dataset files pass for a result"
    written = proc.stderr + "".join(p.read_text(errors="ignore") for p in (tmp_path / "gen").rglob("*") if p.is_file())
    assert secret not in written


def test_a_png_named_txt_is_skipped_and_named(tmp_path: Path) -> None:
    docs = write_topics(tmp_path / "docs", names=("assignment",))
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + os.urandom(4096)
    (docs / "photo.txt").write_bytes(png)
    proc = run_cli("generate", "docs", "-o", "gen", "--chunk-size", "128", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "photo.txt" in proc.stderr and "PNG image" in proc.stderr
    corpus = json.loads((tmp_path / "gen" / "dataset.json").read_text())["corpus"]
    assert corpus and all("\ufffd" not in text and "IHDR" not in text for text in corpus.values())
