"""The CLI's first screen: other libraries' progress bars and notices are off by default and back with --verbose.

`bge-finetune train` on the tiny model with enough pairs to mine hard negatives loads a model
(transformers' "Loading weights"), encodes the corpus for mining (sentence-transformers' "Batches"),
builds the trainer (sentence-transformers' "Computing widget examples"), trains (the trainer's tqdm
bar and its printed loss lines) and saves (transformers' "Writing model shards").
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Iterator

import pytest

from tests.cli_helpers import run_cli
from tests.training_data import topics_dataset

# What the libraries print on their own: none of it may reach a default run's output.
LIBRARY_OUTPUT = ("Batches", "Loading weights", "Computing widget examples", "Writing model shards", "it/s", "{'loss'")


def _train(tiny_model_path: Path, work: Path, *extra: str) -> str:
    """Run `bge-finetune train` on 237 pairs (mining needs 200) and return its stdout and stderr."""
    data = work / "train.json"
    if not data.exists():
        topics_dataset(100, 3).save_json(data)  # every help topic, 3 questions each
    out = f"model{len(extra)}"
    proc = run_cli("train", "train.json", "-o", out, "--base-model", str(tiny_model_path), "--epochs", "1",
                   "--batch-size", "64", "--checkpoint-minutes", "0", *extra, cwd=work, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (work / out / "modules.json").is_file()
    return proc.stdout + proc.stderr


@pytest.mark.slow
def test_train_shows_only_its_own_progress_unless_verbose(tiny_model_path: Path, tmp_path: Path) -> None:
    quiet = _train(tiny_model_path, tmp_path)
    assert "Hard negatives:" in quiet, quiet  # mining ran, so its encode would have shown "Batches"
    assert "Fine-tuning (optimizer steps)" in quiet, quiet  # the CLI's own bar
    assert "Model saved to" in quiet
    for text in LIBRARY_OUTPUT:
        assert text not in quiet, f"{text!r} in the default output:\n{quiet}"

    verbose = _train(tiny_model_path, tmp_path, "--verbose")
    for text in ("Loading weights", "Batches", "Writing model shards", "it/s"):
        assert text in verbose, f"{text!r} missing with --verbose:\n{verbose}"
    # the model-card widget examples are not computed at all: the engine writes its own model card
    assert "Computing widget examples" not in verbose


@pytest.fixture
def library_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The quieting's variables unset for the test and restored after it, with the libraries' switches and loggers."""
    import datasets
    import huggingface_hub.utils as hub_utils
    from transformers.utils import logging as hf_logging

    from llama_index_bge_finetune.cli.quiet import NOISY_LOGGERS, QUIET_ENVIRONMENT

    for name in QUIET_ENVIRONMENT:
        monkeypatch.setenv(name, "placeholder")  # recorded, so the teardown restores the original (or its absence)
        monkeypatch.delenv(name)
    levels = {name: logging.getLogger(name).level for name in NOISY_LOGGERS}
    bars = (hf_logging.is_progress_bar_enabled(), hub_utils.are_progress_bars_disabled(), datasets.is_progress_bar_enabled())
    verbosity = (hf_logging.get_verbosity(), datasets.logging.get_verbosity())
    yield
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
    (hf_logging.enable_progress_bar if bars[0] else hf_logging.disable_progress_bar)()
    (hub_utils.disable_progress_bars if bars[1] else hub_utils.enable_progress_bars)()
    (datasets.enable_progress_bars if bars[2] else datasets.disable_progress_bars)()
    hf_logging.set_verbosity(verbosity[0])
    datasets.logging.set_verbosity(verbosity[1])


def test_quieting_switches_imported_libraries_and_leaves_user_settings(library_state: None,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets
    import huggingface_hub.utils as hub_utils
    from transformers.utils import logging as hf_logging

    from llama_index_bge_finetune.cli.quiet import configure_library_output

    assert "transformers" in sys.modules
    monkeypatch.setenv("TRANSFORMERS_VERBOSITY", "info")  # the user's own choice stays
    configure_library_output(verbose=False)
    assert not hf_logging.is_progress_bar_enabled()
    assert hub_utils.are_progress_bars_disabled()
    assert not datasets.is_progress_bar_enabled()
    assert hf_logging.get_verbosity() == hf_logging.ERROR
    assert logging.getLogger("sentence_transformers").level == logging.ERROR
    assert os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "1" and os.environ["TQDM_DISABLE"] == "1"
    assert os.environ["TRANSFORMERS_VERBOSITY"] == "info"

    configure_library_output(verbose=True)
    assert hf_logging.is_progress_bar_enabled()
    assert not hub_utils.are_progress_bars_disabled()
    assert datasets.is_progress_bar_enabled()
    assert logging.getLogger("sentence_transformers").level == logging.DEBUG
    assert "HF_HUB_DISABLE_PROGRESS_BARS" not in os.environ and "TQDM_DISABLE" not in os.environ
    assert os.environ["TRANSFORMERS_VERBOSITY"] == "info"
