"""Size-adaptive defaults: small data gets enough optimizer steps and no mined negatives; large data and explicit arguments keep theirs."""

from __future__ import annotations

import logging

import pytest

from llama_index_bge_finetune.errors import TrainingError
from llama_index_bge_finetune.training import SentenceTransformersFinetuneEngine
from llama_index_bge_finetune.training.schedule import (
    DEFAULT_EPOCHS,
    LEARNING_RATE,
    MAX_EPOCHS,
    MIN_STEPS,
    MINING_MIN_PAIRS,
    SMALL_DATA_LEARNING_RATE,
    count_steps,
    mined_negatives,
    peak_learning_rate,
    training_schedule,
)
from tests.training_data import topics_dataset


@pytest.mark.parametrize("rows", [400, 668, 809, 5000])
def test_large_data_trains_one_and_a_half_epochs(rows):
    s = training_schedule(rows)
    assert (s.epochs, s.adapted) == (DEFAULT_EPOCHS, False)
    assert s.steps == count_steps(rows, 32, DEFAULT_EPOCHS) >= MIN_STEPS


@pytest.mark.parametrize("rows, epochs", [(40, 4), (150, 4), (200, 3), (300, 2), (380, 2)])
def test_small_data_gets_more_epochs_up_to_the_cap(rows, epochs):
    s = training_schedule(rows)
    assert s.epochs == epochs and s.adapted == (epochs != DEFAULT_EPOCHS)
    assert s.steps >= MIN_STEPS or s.epochs == MAX_EPOCHS
    assert s.steps == count_steps(rows, 32, s.epochs)


def test_explicit_epochs_win():
    fixed = training_schedule(150, batch_size=32, epochs=2)
    assert (fixed.epochs, fixed.steps, fixed.adapted) == (2, 10, False)
    assert training_schedule(150, batch_size=10, epochs=None).epochs == 1.5  # 15 batches a pass: 23 steps in 1.5


def test_steps_count_devices_and_accumulation():
    assert count_steps(809, 32, 2) == 52
    assert count_steps(809, 32, 2, world=2) == 26
    assert count_steps(809, 32, 2, gradient_accumulation_steps=4) == 13
    # Two devices halve an epoch's steps, so a mid-sized table gets more epochs.
    assert training_schedule(500, world=2).epochs > training_schedule(500).epochs


def test_mining_turns_on_at_the_threshold_and_explicit_counts_win():
    assert mined_negatives("auto", MINING_MIN_PAIRS - 1) == 0
    assert mined_negatives("auto", MINING_MIN_PAIRS) == 1
    assert mined_negatives(0, 10_000) == 0 and mined_negatives(2, 10) == 2


def test_learning_rate_triples_at_the_threshold_and_an_explicit_rate_wins():
    assert peak_learning_rate("auto", MINING_MIN_PAIRS - 1) == SMALL_DATA_LEARNING_RATE == 5e-5
    assert peak_learning_rate("auto", MINING_MIN_PAIRS) == LEARNING_RATE == 1.5e-4
    assert peak_learning_rate(3e-5, 10_000) == 3e-5 and peak_learning_rate(2e-4, 10) == 2e-4


def test_the_trainer_runs_at_the_size_adapted_learning_rate(tiny_model_path, tmp_path):
    """210 pairs (past the threshold) peak at 1.5e-4 in the trainer's own log; the card records the rate used."""
    out = tmp_path / "o"
    engine = SentenceTransformersFinetuneEngine(
        topics_dataset(70, 3), model_id=str(tiny_model_path), model_output_path=str(out),
        show_progress_bar=False, batch_size=32, epochs=1, hard_negatives=0, frozen_layers=0, logging_steps=1,
    )
    assert engine.hyperparameters()["learning_rate"] == "auto"
    engine.finetune()
    res = engine.result
    assert res.pairs == 210 and res.hyperparameters["learning_rate"] == LEARNING_RATE
    logged = [e["learning_rate"] for e in res.log_history if "learning_rate" in e]
    assert logged and max(logged) == pytest.approx(LEARNING_RATE)
    assert f"| learning_rate | {LEARNING_RATE} |" in (out / "README.md").read_text()


def test_engine_trains_the_adaptive_schedule_without_mining_on_small_data(tiny_model_path, tmp_path, caplog):
    engine = SentenceTransformersFinetuneEngine(
        topics_dataset(24, 2), model_id=str(tiny_model_path), model_output_path=str(tmp_path / "o"),
        show_progress_bar=False, batch_size=8,
    )
    params = engine.hyperparameters()
    assert params["epochs"] == "auto" and params["hard_negatives"] == "auto" and params["learning_rate"] == "auto"
    with caplog.at_level(logging.INFO, logger="llama_index_bge_finetune"):
        engine.finetune()
    res, expected = engine.result, training_schedule(48, batch_size=8)
    assert expected.epochs > DEFAULT_EPOCHS
    assert res.steps == expected.steps and res.hyperparameters["epochs"] == expected.epochs
    # 48 pairs are below the mining threshold: no miner ran, every row is a plain pair.
    assert res.hyperparameters["hard_negatives"] == 0 and res.pairs_with_negatives == 0 and res.mining_seconds in (None, 0)
    assert res.hyperparameters["learning_rate"] == SMALL_DATA_LEARNING_RATE
    assert "in-batch negatives only" in caplog.text and "enough optimizer steps" in caplog.text


@pytest.mark.parametrize("kwargs, message", [
    ({"epochs": 0}, "epochs must be positive"),
    ({"hard_negatives": -1}, "hard_negatives must be 'auto' or >= 0"),
    ({"hard_negatives": "many"}, "hard_negatives must be 'auto' or >= 0"),
    ({"learning_rate": 0}, "learning_rate must be 'auto' or a positive number"),
    ({"learning_rate": "fast"}, "learning_rate must be 'auto' or a positive number"),
])
def test_engine_rejects_bad_schedule_arguments(kwargs, message):
    with pytest.raises(TrainingError, match=message):
        SentenceTransformersFinetuneEngine(topics_dataset(4, 1), model_id="unused", **kwargs)
