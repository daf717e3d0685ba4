"""Data-parallel training under torchrun: 2 CPU processes (gloo) save exactly one model that loads."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

WORKER = Path(__file__).with_name("training_worker.py")


@pytest.mark.slow
def test_torchrun_two_processes_save_one_model(tiny_model_path, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    out = run_dir / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
           str(WORKER), str(tiny_model_path), str(out), "--passages", "16", "--batch", "4"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=400, cwd=run_dir)
    assert done.returncode == 0, done.stderr[-4000:]
    results = [json.loads(l[len("RESULT "):]) for l in done.stdout.splitlines() if l.startswith("RESULT ")]
    assert len(results) == 1  # only rank 0 reports
    # 32 pairs, batch 4 per process, 2 processes: 4 steps, each seeing 8 pairs.
    assert results[0]["steps"] == 4
    # Every rank returns from finetune() once the model is on disk, and the process group the trainer
    # opened is closed before the interpreter shuts down (left open, gloo can abort the process at exit).
    # (Both ranks share one stdout, so their lines can run together: match the reports, not lines.)
    assert sorted(re.findall(r"SAVED_ON_RETURN (\d) (True|False)", done.stdout)) == [("0", "True"), ("1", "True")]
    assert sorted(re.findall(r"GROUP_OPEN_AT_EXIT (\d) (True|False)", done.stdout)) == [("0", "False"), ("1", "False")]
    saved = sorted(p.relative_to(run_dir) for p in run_dir.rglob("model.safetensors"))
    assert saved == [Path("out/model.safetensors")]
    from sentence_transformers import SentenceTransformer

    assert SentenceTransformer(str(out), device="cpu").encode(["x"]).shape == (1, 32)
