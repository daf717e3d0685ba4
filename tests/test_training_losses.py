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


def _triplet_features(model):
    anchors = ["cats purr", "dogs bark loudly at night", "fish swim"]
    positives = ["a cat purrs when content and calm " * 3, "dogs are loud", "fish live in water and swim all day " * 2]
    negatives = ["birds fly", "cows moo", "owls"]
    return [model.tokenize(texts) for texts in (anchors, positives, negatives)]


def test_default_loss_is_the_in_batch_objective_with_one_forward_per_column(tiny):
    import torch
    from sentence_transformers import losses

    tiny.eval()  # no dropout: both losses see the same embeddings
    ours = build_loss("mnrl", tiny)
    reference = losses.MultipleNegativesRankingLoss(tiny, scale=20.0)
    features = _triplet_features(tiny)
    widths = []
    hook = tiny.register_forward_pre_hook(lambda module, args: widths.append(args[0]["input_ids"].shape[1]))
    try:
        loss = ours([dict(f) for f in features], None)
    finally:
        hook.remove()
    assert widths == [f["input_ids"].shape[1] for f in features], "each column is padded to its own width"
    assert widths[2] < widths[1]
    loss.backward()
    grads = {name: p.grad.clone() for name, p in tiny.named_parameters() if p.grad is not None}
    tiny.zero_grad(set_to_none=True)
    expected = reference([dict(f) for f in features], None)
    expected.backward()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    reference_grads = {name: p.grad for name, p in tiny.named_parameters() if p.grad is not None}
    assert grads.keys() == reference_grads.keys() and len(grads) > 10
    for name, grad in grads.items():
        torch.testing.assert_close(grad, reference_grads[name], rtol=1e-4, atol=1e-6)


def test_detached_negatives_keep_the_loss_value_and_skip_their_backward(tiny):
    import torch

    tiny.eval()
    features = _triplet_features(tiny)
    detached = build_loss("mnrl", tiny, negative_gradients=False)
    attached = build_loss("mnrl", tiny)  # the default
    seen = []
    hook = tiny.register_forward_hook(lambda module, args, out: seen.append(out["sentence_embedding"].requires_grad))
    try:
        loss = detached([dict(f) for f in features], None)
    finally:
        hook.remove()
    assert seen == [True, True, False]
    assert loss.item() == pytest.approx(attached([dict(f) for f in features], None).item(), rel=1e-5)
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in tiny.parameters() if p.grad is not None)
