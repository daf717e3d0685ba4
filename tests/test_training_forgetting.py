"""The forgetting guard: measures a general dataset before/after and interpolates weights on a drop."""

from __future__ import annotations

import pytest
import torch

from llama_index_bge_finetune.errors import TrainingError
from llama_index_bge_finetune.training import ForgettingGuard, SentenceTransformersFinetuneEngine
from tests.training_data import topics_dataset


def test_guard_interpolates_when_the_drop_exceeds_the_threshold(tiny_model_path):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(tiny_model_path), device="cpu")
    guard = ForgettingGuard(topics_dataset(10, 1, offset=50), threshold=0.02, alpha=0.25)
    measured = guard.measure(model, None)
    assert 0.0 <= measured["ndcg@10"] <= 1.0 and measured["queries"] == 10
    base_state = {k: torch.zeros_like(v) for k, v in model.state_dict().items()}
    tuned = {k: v.clone() for k, v in model.state_dict().items()}
    # A "before" score above anything reachable forces the interpolation branch.
    report = guard.check(model, base_state, {"ndcg@10": measured["ndcg@10"] + 0.5}, None)
    assert report["interpolated_applied"] and report["interpolated"] is not None
    assert report["fine_tuned"]["ndcg@10"] == pytest.approx(measured["ndcg@10"])
    key = next(k for k in tuned if k.endswith("word_embeddings.weight"))
    assert torch.allclose(model.state_dict()[key], 0.25 * tuned[key])


def test_guard_leaves_weights_alone_within_the_threshold(tiny_model_path):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(tiny_model_path), device="cpu")
    guard = ForgettingGuard(topics_dataset(10, 1, offset=50), threshold=0.02)
    before = guard.measure(model, None)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    report = guard.check(model, state, before, None)
    assert not report["interpolated_applied"] and report["drop"] == pytest.approx(0.0, abs=1e-6)


def test_engine_reports_the_guard_in_result_and_card(tiny_model_path, tmp_path):
    out = tmp_path / "o"
    engine = SentenceTransformersFinetuneEngine(
        topics_dataset(12, 2), model_id=str(tiny_model_path), model_output_path=str(out), batch_size=8,
        show_progress_bar=False, hard_negatives=0, forgetting_dataset=topics_dataset(10, 1, offset=50),
        forgetting_threshold=0.5,
    )
    engine.finetune()
    f = engine.result.forgetting
    assert set(f) >= {"base", "fine_tuned", "drop", "interpolated_applied"}
    assert "general set: base" in (out / "README.md").read_text()


def test_bad_guard_settings():
    with pytest.raises(TrainingError, match="forgetting_alpha"):
        ForgettingGuard(topics_dataset(2, 1), alpha=1.0)
    with pytest.raises(TrainingError, match="forgetting_threshold"):
        ForgettingGuard(topics_dataset(2, 1), threshold=-0.1)
