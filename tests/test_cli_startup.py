"""`bge-finetune` answers `--help` and refuses bad arguments without loading torch, sentence-transformers
or LlamaIndex: each command imports what it needs once its arguments have passed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import List

from tests.cli_helpers import cli_env, write_topics

HEAVY = ("torch", "sentence_transformers", "transformers", "llama_index.core")

# Calls the CLI's main() once per argument list in one interpreter, then prints the exit codes, the
# messages and which heavy modules that interpreter loaded.
DRIVER = """
import contextlib, io, json, sys
from llama_index_bge_finetune.cli.main import main
calls, heavy = json.loads(sys.argv[1]), json.loads(sys.argv[2])
answers = []
for argv in calls:
    sys.argv = ["bge-finetune", *argv]
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main()
        except SystemExit as exc:
            code = exc.code
    answers.append({"argv": argv, "code": code, "text": out.getvalue() + err.getvalue()})
print(json.dumps({"answers": answers, "loaded": [m for m in heavy if m in sys.modules]}))
"""


def _drive(calls: List[List[str]], cwd: Path) -> dict:
    proc = subprocess.run([sys.executable, "-c", DRIVER, json.dumps(calls), json.dumps(HEAVY)], cwd=cwd,
                          env=cli_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_importing_the_cli_loads_no_model_library() -> None:
    code = "import json, sys, llama_index_bge_finetune.cli.main; print(json.dumps(sorted(sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", code], env=cli_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    loaded = set(json.loads(proc.stdout))
    assert "llama_index_bge_finetune.cli.main" in loaded
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_help_and_refused_arguments_load_no_model_library(tmp_path: Path) -> None:
    write_topics(tmp_path / "docs", names=("assignment",))
    (tmp_path / "empty").mkdir()
    (tmp_path / "taken").write_text("precious")
    (tmp_path / "train.json").write_text("{}")
    calls = {
        "help": (["--help"], 0, "Fine-tune an embedding model"),
        "run help": (["run", "--help"], 0, "--reranker"),
        "k": (["run", "docs", "-o", "out", "--k", "0"], 2, "k_values"),
        "learning rate": (["run", "docs", "-o", "out", "--learning-rate", "0"], 2, "learning rate must be positive"),
        "overlap": (["run", "docs", "-o", "out", "--chunk-size", "64", "--chunk-overlap", "64"], 2, "chunk_overlap"),
        "output is a file": (["run", "docs", "-o", "taken"], 2, "is a file"),
        "no documents": (["run", "no-such-folder", "-o", "out"], 2, "does not exist"),
        "empty folder": (["run", "empty", "-o", "out"], 2, "is empty"),
        "generator": (["run", "docs", "-o", "out", "--generator", "openai"], 2, "OPENAI_API_KEY"),
        "generate into a file": (["generate", "docs", "-o", "taken"], 2, "is a file"),
        "demo into a file": (["demo", "-o", "taken"], 2, "is a file"),
        "epochs": (["train", "nope.json", "-o", "m", "--epochs", "0"], 2, "epochs must be positive"),
        "precision": (["train", "train.json", "-o", "m", "--precision", "fp8"], 2,
                      "precision must be one of auto, fp32, fp16, bf16"),
        "run precision": (["run", "docs", "-o", "out", "--precision", "fp8"], 2, "precision must be one of"),
        "window": (["train", "train.json", "-o", "m", "--max-seq-length", "long"], 2,
                   "--max-seq-length must be auto, base or a number of tokens"),
        "run window": (["run", "docs", "-o", "out", "--max-seq-length", "4"], 2, "--max-seq-length must be"),
        "evaluate k": (["evaluate", "nope.json", "-m", "a=b", "--k", "0"], 2, "k_values"),
    }
    result = _drive([argv for argv, _, _ in calls.values()], tmp_path)
    for (name, (_, code, needle)), answer in zip(calls.items(), result["answers"]):
        assert answer["code"] == code, (name, answer["text"][-2000:])
        assert needle in " ".join(answer["text"].split()), (name, answer["text"][-2000:])
        assert "Traceback" not in answer["text"], name
    assert result["loaded"] == [], f"a refused argument loaded {result['loaded']}"
    assert not (tmp_path / "out").exists() and not (tmp_path / "m").exists(), "nothing was written"
    assert (tmp_path / "taken").read_text() == "precious"
