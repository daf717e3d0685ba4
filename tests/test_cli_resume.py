"""`kill -9` during the training stage of `bge-finetune run`, then the same command again: it resumes from
the last checkpoint and ends where an uninterrupted run ends (validation metrics within 0.005)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.cli_helpers import FinishedRun, cli_argv, cli_env, run_cli
from tests.training_data import topics_dataset

pytestmark = pytest.mark.xdist_group("tiny_cli_run")  # under -n 2: the session's finished tiny run is made once, on one worker


def _checkpoint_steps(model_dir: Path) -> list:
    return sorted(int(p.parent.name.split("-")[1]) for p in (model_dir / "checkpoints").glob("checkpoint-*/trainer_state.json"))


@pytest.mark.slow
def test_killed_run_resumes_training_and_matches_an_uninterrupted_run(tiny_cli_run: FinishedRun) -> None:
    # The uninterrupted run is the shared one; the killed run goes beside it, from the same docs and settings.
    work = tiny_cli_run.work
    total = json.loads((tiny_cli_run.out / "model" / "training_result.json").read_text())["steps"]
    assert total >= 16

    killed = work / "killed"
    proc = subprocess.Popen(cli_argv(*tiny_cli_run.command("killed")), cwd=work, env=cli_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None and not any(s >= total // 2 for s in _checkpoint_steps(killed / "model")):
        time.sleep(0.05)
    assert proc.poll() is None, "training finished before the checkpoint half-way; make it longer"
    os.killpg(proc.pid, signal.SIGKILL)  # kill -9, the whole process group
    proc.wait()
    assert not (killed / "report.json").exists() and not (killed / "model" / "training_result.json").exists()
    last = _checkpoint_steps(killed / "model")[-1]
    assert total // 2 <= last < total

    resumed = run_cli(*tiny_cli_run.command("killed"), cwd=work)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"Training resumed from step {last}" in resumed.stderr
    result = json.loads((killed / "model" / "training_result.json").read_text())
    assert result["resumed_from_step"] == last and result["steps"] == total
    assert not (killed / "model" / "checkpoints").exists(), "checkpoints are removed after success"

    reports = {name: json.loads((work / name / "report.json").read_text())["models"]["fine-tuned"]["metrics"]
               for name in ("reference", "killed")}
    for metric in ("hit_rate@1", "hit_rate@5", "mrr@10", "ndcg@10"):
        a, b = reports["killed"][metric]["value"], reports["reference"][metric]["value"]
        assert abs(a - b) <= 0.005, (metric, a, b)

    from sentence_transformers import SentenceTransformer

    val = json.loads((killed / "val_dataset.json").read_text())
    texts = list(val["queries"].values()) + list(val["corpus"].values())
    vectors = {name: SentenceTransformer(str(path), device="cpu").encode(texts)
               for name, path in (("base", tiny_cli_run.base_model), ("reference", tiny_cli_run.out / "model"),
                                  ("killed", killed / "model"))}
    trained = abs(vectors["reference"] - vectors["base"]).max()
    gap = abs(vectors["killed"] - vectors["reference"]).max()
    assert gap < trained / 20, f"the resumed model is not the uninterrupted one ({gap=} vs {trained=})"

    again = run_cli(*tiny_cli_run.command("killed"), cwd=work, timeout=300)
    assert again.returncode == 2 and "--overwrite" in again.stderr, "a finished run is not redone"


def test_resuming_with_other_settings_is_refused(tiny_model_path: Path, tmp_path: Path) -> None:
    """Checkpoints of one training run are not continued with another dataset or learning rate."""
    from llama_index_bge_finetune import pipeline
    from llama_index_bge_finetune.errors import OutputExistsError

    train = topics_dataset(8, 2)
    model_dir = tmp_path / "model"
    settings = pipeline.training_settings(train, str(tiny_model_path), learning_rate=1e-4)
    (model_dir / "checkpoints" / "checkpoint-4").mkdir(parents=True)
    from llama_index_bge_finetune import outputs

    outputs.write_settings(model_dir / "checkpoints" / pipeline.TRAIN_SETTINGS_FILE, settings)
    before = sorted(p.name for p in model_dir.rglob("*"))
    with pytest.raises(OutputExistsError, match=r"learning_rate: 0\.0001 before, 2e-05 now") as err:
        pipeline.train_model(train, str(tiny_model_path), model_dir, learning_rate=2e-5)
    assert "--overwrite" in str(err.value)
    other = topics_dataset(9, 2)
    with pytest.raises(OutputExistsError, match="train_dataset: '16 queries, 8 passages"):
        pipeline.train_model(other, str(tiny_model_path), model_dir, learning_rate=1e-4)
    assert sorted(p.name for p in model_dir.rglob("*")) == before
