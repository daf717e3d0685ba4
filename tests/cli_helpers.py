"""Running `bge-finetune` in a subprocess, and the one finished tiny run that several CLI tests read."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional

# The CPython help topics the shared run is made from, written as one .txt file each.
RUN_TOPICS = ("assignment", "class", "compound", "exceptions", "import", "numbers", "specialnames", "types")


def cli_env(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """The environment of a CLI subprocess: offline, wide enough for one-line messages, no API key."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "200", "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
    env.pop("OPENAI_API_KEY", None)
    return {**env, **(extra or {})}


def cli_argv(*args: str) -> List[str]:
    """The command line of ``bge-finetune ARGS`` with this interpreter."""
    return [sys.executable, "-m", "llama_index_bge_finetune", *args]


def run_cli(*args: str, cwd: Path, env: Optional[Dict[str, str]] = None, timeout: int = 900) -> subprocess.CompletedProcess:
    """``bge-finetune ARGS`` in ``cwd``, output captured; ``env`` adds to :func:`cli_env`."""
    return subprocess.run(cli_argv(*args), cwd=cwd, env=cli_env(env), capture_output=True, text=True, timeout=timeout)


def write_topics(folder: Path, names: Iterable[str]) -> Path:
    """One ``NAME.txt`` per CPython help topic in ``folder`` (created)."""
    from pydoc_data.topics import topics

    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / f"{name}.txt").write_text(topics[name], encoding="utf-8")
    return folder


@dataclass(frozen=True)
class FinishedRun:
    """A finished ``bge-finetune run DOCS -o OUT *args`` of the tiny model, made in ``work`` from ``work/docs``.

    ``command(out)`` repeats it into another output folder of ``work``, so a test can kill and resume the
    same run, or try to overwrite this one. Tests only read ``out``; they write elsewhere.
    """

    work: Path
    out: Path
    base_model: Path
    args: List[str]

    def command(self, out: str) -> List[str]:
        return ["run", "docs", "-o", out, *self.args]


def finished_tiny_run(base_model: Path, work: Path) -> FinishedRun:
    """Run the tiny model through `bge-finetune run` on eight help topics: 48 chunks, checkpoints every 4 steps."""
    write_topics(work / "docs", RUN_TOPICS)
    args = ["--base-model", str(base_model), "--chunk-size", "128", "--max-nodes", "48", "--batch-size", "4",
            "--epochs", "1", "--seed", "3", "--checkpoint-steps", "4", "--checkpoint-minutes", "0"]
    run = FinishedRun(work=work, out=work / "reference", base_model=base_model, args=args)
    proc = run_cli(*run.command("reference"), cwd=work)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run
