"""Kill a training process after its first checkpoint; a restart with resume continues from that step."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

WORKER = Path(__file__).with_name("training_worker.py")


def _result(stdout: str) -> dict:
    line = next(l for l in stdout.splitlines() if l.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


@pytest.mark.slow
@pytest.mark.timeout(1200)  # the waits below scale with the CPU; the test ends as soon as the checkpoint exists
def test_sigkill_then_resume_continues_from_the_checkpoint(tiny_model_path, tmp_path):
    out = tmp_path / "out"
    cmd = [sys.executable, str(WORKER), str(tiny_model_path), str(out), "--passages", "80", "--batch", "2",
           "--steps-per-checkpoint", "5"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ckpt_dir = out / "checkpoints"
    # Generous: on a loaded AVX2-only CPU (or with bf16 emulated there) the worker's start-up and first
    # 5 steps took over 240 s; a fast CPU gets there in seconds and the loop stops at once.
    deadline = time.time() + 540
    while time.time() < deadline and proc.poll() is None:
        if list(ckpt_dir.glob("checkpoint-*/trainer_state.json")):
            break
        time.sleep(0.05)
    assert proc.poll() is None, "training finished before the first checkpoint; make it longer"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "model.safetensors").exists()
    steps = sorted(int(p.parent.name.split("-")[1]) for p in ckpt_dir.glob("checkpoint-*/trainer_state.json"))
    assert steps and steps[0] == 5

    done = subprocess.run(cmd + ["--resume"], env=env, capture_output=True, text=True, timeout=540)
    assert done.returncode == 0, done.stderr[-3000:]
    res = _result(done.stdout)
    assert res["resumed_from_step"] == steps[-1] > 0
    # Counted from the start of the first run: one epoch of batches of 2.
    assert res["steps"] == (res["pairs"] + 1) // 2 > steps[-1]
    from sentence_transformers import SentenceTransformer

    assert SentenceTransformer(str(out), device="cpu").encode(["x"]).shape == (1, 32)
