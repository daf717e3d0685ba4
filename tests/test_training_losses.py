"""Losses by name (temperature, cached mini-batches, Matryoshka, guided) and a cached + Matryoshka run."""

from __future__ import annotations

import pytest

from llama_index_bge_finetune.errors import TrainingError
from llama_index_bge_finetune.training import SentenceTransformersFinetuneEngine, build_loss
from tests.training_data import topics_dataset


@pytest.fixture
def tiny(tiny_model_path):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(tiny_model_path), device="cpu")


def test_losses_by_name(tiny):
    from sentence_transformers import losses

    mnrl = build_loss("mnrl", tiny, temperature=0.02)
    assert isinstance(mnrl, losses.MultipleNegativesRankingLoss) and mnrl.scale == pytest.approx(50.0)
    cached = build_loss("cached_mnrl", tiny, mini_batch_size=4)
    assert isinstance(cached, losses.CachedMultipleNegativesRankingLoss) and cached.mini_batch_size == 4
    gist = build_loss("gist", tiny, guide=tiny, temperature=0.01)
    assert isinstance(gist, losses.GISTEmbedLoss) and gist.temperature == pytest.approx(0.01)
    mat = build_loss("mnrl", tiny, matryoshka_dims=[16, 32, 8])
    assert isinstance(mat, losses.MatryoshkaLoss) and list(mat.matryoshka_dims) == [32, 16, 8]


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"name": "contrastive"}, "Unknown loss"),
        ({"name": "mnrl", "temperature": 0}, "temperature must be positive"),
        ({"name": "gist"}, "needs a guide"),
        ({"name": "mnrl", "matryoshka_dims": [64]}, "matryoshka_dims"),
    ],
)
def test_bad_loss_settings(tiny, kwargs, words):
    with pytest.raises(TrainingError, match=words):
        build_loss(model=tiny, **kwargs)


def test_cached_loss_with_matryoshka_trains(tiny_model_path, tmp_path):
    from sentence_transformers import SentenceTransformer

    out = tmp_path / "o"
    engine = SentenceTransformersFinetuneEngine(
        topics_dataset(16, 2), model_id=str(tiny_model_path), model_output_path=str(out), batch_size=16,
        loss="cached_mnrl", mini_batch_size=4, matryoshka_dims=[32, 16], temperature=0.1,
        show_progress_bar=False, hard_negatives=0,
    )
    engine.finetune()
    hp = engine.result.hyperparameters
    assert hp["loss"] == "cached_mnrl" and hp["mini_batch_size"] == 4 and hp["matryoshka_dims"] == [32, 16]
    assert engine.result.steps >= 2 and engine.result.final_loss > 0
    assert SentenceTransformer(str(out), device="cpu", truncate_dim=16).encode(["x"]).shape == (1, 16)
