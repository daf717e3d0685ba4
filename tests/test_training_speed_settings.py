"""Attention dropout off while training (restored afterwards) and the precision each setting picks."""

from __future__ import annotations

import logging

import pytest
import torch

from llama_index_bge_finetune.errors import TrainingError
from llama_index_bge_finetune.training import SentenceTransformersFinetuneEngine
from llama_index_bge_finetune.training.attention_dropout import attention_dropout_layers, set_attention_dropout
from llama_index_bge_finetune.training.core import cpu_has_native_bf16, precision_flags
from tests.training_data import topics_dataset


def _model(path):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(path), device="cpu")


def test_attention_dropout_is_set_and_restored(tiny_model_path):
    model = _model(tiny_model_path)
    layers = attention_dropout_layers(model)
    assert len(layers) == model[0].auto_model.config.num_hidden_layers
    before = [d.p for d in layers]
    hidden = [m.p for m in model.modules() if isinstance(m, torch.nn.Dropout) and m not in layers]
    restore = set_attention_dropout(model, 0.0)
    assert all(d.p == 0.0 for d in layers)
    assert [m.p for m in model.modules() if isinstance(m, torch.nn.Dropout) and m not in layers] == hidden
    restore()
    assert [d.p for d in layers] == before
    with pytest.raises(ValueError, match="attention dropout"):
        set_attention_dropout(model, 1.0)


def test_attention_dropout_off_gives_deterministic_train_mode_passes(tiny_model_path):
    """With only hidden dropout zeroed too, two train-mode passes agree: the attention dropout really is off."""
    model = _model(tiny_model_path)
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout) and m not in attention_dropout_layers(model):
            m.p = 0.0
    model.train()
    feats = model.tokenize(["a somewhat longer sentence about rent and leases"])
    on = [model(dict(feats))["sentence_embedding"] for _ in range(2)]
    set_attention_dropout(model, 0.0)
    off = [model(dict(feats))["sentence_embedding"] for _ in range(2)]
    assert not torch.allclose(on[0], on[1])  # the tiny model's attention dropout is 0.1
    assert torch.allclose(off[0], off[1])


def test_engine_trains_without_attention_dropout_and_restores_the_model(tiny_model_path, tmp_path):
    engine = SentenceTransformersFinetuneEngine(
        topics_dataset(8, 1), model_id=str(tiny_model_path), model_output_path=str(tmp_path / "o"),
        batch_size=4, epochs=1, show_progress_bar=False, hard_negatives=0,
    )
    layers = attention_dropout_layers(engine.model)
    engine.finetune()
    assert all(d.p == 0.1 for d in layers), "the model's own attention dropout is restored after training"
    assert engine.result.hyperparameters["attention_dropout"] == 0.0
    assert engine.result.hyperparameters["precision"].startswith("auto (")


@pytest.mark.parametrize("native_bf16", [False, True], ids=["avx2-cpu", "bf16-cpu"])
def testprecision_flags(monkeypatch, native_bf16):
    """Each setting's choice on both CPU kinds, whatever CPU runs the test (the detection is patched)."""
    from llama_index_bge_finetune.training import core

    monkeypatch.setattr(core, "cpu_has_native_bf16", lambda: native_bf16)
    assert precision_flags("fp32", use_cpu=True) == (False, False)
    assert precision_flags("bf16", use_cpu=True) == (False, True)
    assert precision_flags("auto", use_cpu=True) == (False, native_bf16)
    with pytest.raises(TrainingError, match="fp16 training needs a GPU"):
        precision_flags("fp16", use_cpu=True)
    with pytest.raises(TrainingError, match="attention_dropout"):
        SentenceTransformersFinetuneEngine(topics_dataset(4, 1), model_id="unused", attention_dropout=1.5)


def test_native_bf16_detection_matches_the_cpu_flags():
    """bf16 is reported native only where the CPU has AVX512-BF16 or AMX (not on AVX2-only CPUs like AMD EPYC
    Zen 2/3), and never without oneDNN's own bf16 support."""
    try:
        flags = open("/proc/cpuinfo", encoding="ascii", errors="replace").read()
    except OSError:
        pytest.skip("no /proc/cpuinfo on this platform")
    has_flag = "avx512_bf16" in flags or "amx_bf16" in flags
    assert cpu_has_native_bf16() == (has_flag and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported()))


def test_default_checkpoints_are_paced_a_minute_apart_and_skip_the_last_step(monkeypatch):
    from transformers import TrainerControl, TrainerState

    from llama_index_bge_finetune.training import core

    clock = [1000.0]
    monkeypatch.setattr(core.time, "monotonic", lambda: clock[0])
    paced = core.PacedCheckpoints(min_seconds=60)
    state = TrainerState(max_steps=10)
    saved = []
    for step in range(1, 11):  # a checkpoint is scheduled at every step, 25 s apart
        clock[0] += 25
        state.global_step = step
        control = paced.on_step_end(None, state, TrainerControl(should_save=True))
        if control.should_save:
            saved.append(step)
            paced.on_save(None, state, control)
    # the first one, then none within 60 s of the previous, and none at the last step (the model is saved then)
    assert saved == [1, 4, 7]
    # An explicit schedule (checkpoint_save_steps) is not paced; the default one is.
    callbacks, _ = core.training_callbacks("unused", "resume", None, paced=False)
    assert not any(isinstance(c, core.PacedCheckpoints) for c in callbacks)
    callbacks, _ = core.training_callbacks("unused", "resume", None, paced=True)
    assert any(isinstance(c, core.PacedCheckpoints) for c in callbacks)


def test_frozen_layers_stay_fixed_while_the_rest_trains_and_gradients_come_back(tiny_model_path, tmp_path):
    from sentence_transformers import SentenceTransformer

    engine = SentenceTransformersFinetuneEngine(
        topics_dataset(8, 1), model_id=str(tiny_model_path), model_output_path=str(tmp_path / "o"),
        batch_size=4, epochs=1, show_progress_bar=False, hard_negatives=0, frozen_layers=1, learning_rate=1e-3,
    )
    before = {k: v.clone() for k, v in engine.model.state_dict().items()}
    engine.finetune()
    after = SentenceTransformer(str(tmp_path / "o"), device="cpu").state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert not any(".embeddings." in k or ".layer.0." in k for k in changed), sorted(changed)[:5]
    assert any(".layer.1." in k for k in changed), "the top layer trained"
    assert all(p.requires_grad for p in engine.model.parameters()), "gradients are given back after training"
    assert engine.result.hyperparameters["frozen_layers"] == 1


def test_frozen_layers_auto_fixes_two_thirds_on_small_data_only_and_too_many_is_a_clear_error(
        tiny_model_path, tmp_path, caplog):
    from llama_index_bge_finetune.training.schedule import layers_to_freeze

    assert layers_to_freeze("auto", pairs=150, depth=6) == 4 and layers_to_freeze("auto", pairs=199, depth=12) == 8
    assert layers_to_freeze("auto", pairs=200, depth=6) == 0 and layers_to_freeze("auto", pairs=40, depth=0) == 0
    assert layers_to_freeze(3, pairs=10_000, depth=6) == 3, "a number is kept as given"
    caplog.set_level(logging.INFO, logger="llama_index_bge_finetune.training.engine")
    engine = SentenceTransformersFinetuneEngine(  # the default, "auto": 8 pairs is small data
        topics_dataset(8, 1), model_id=str(tiny_model_path), model_output_path=str(tmp_path / "auto"),
        batch_size=4, epochs=1, show_progress_bar=False, hard_negatives=0, learning_rate=1e-3,
    )
    before = {k: v.clone() for k, v in engine.model.state_dict().items()}
    engine.finetune()
    changed = {k for k, v in engine.model.state_dict().items() if not torch.equal(before[k], v)}
    assert engine.result.hyperparameters["frozen_layers"] == 1, "two thirds of the tiny model's 2 layers"
    assert not any(".embeddings." in k or ".layer.0." in k for k in changed) and any(".layer.1." in k for k in changed)
    assert "the bottom 1 of 2 layers stay fixed" in caplog.text
    engine = SentenceTransformersFinetuneEngine(
        topics_dataset(8, 1), model_id=str(tiny_model_path), model_output_path=str(tmp_path / "o"),
        batch_size=4, epochs=1, show_progress_bar=False, hard_negatives=0, frozen_layers=2,
    )
    with pytest.raises(TrainingError, match=r"frozen_layers=2 must leave some of the model's 2 layers.*use 0 to 1"):
        engine.finetune()
    with pytest.raises(TrainingError, match="frozen_layers must be 'auto' or 0 or more"):
        SentenceTransformersFinetuneEngine(topics_dataset(8, 1), model_id=str(tiny_model_path), frozen_layers=-1)


def test_cpu_description_says_when_pytorch_is_capped_below_the_cpu(monkeypatch):
    """Under ``ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2`` (how an AVX2-only CPU is emulated) every label
    of a timing says so, since the flags alone would name the faster CPU."""
    from llama_index_bge_finetune.precisions import ISA_CAPS, cpu_description

    for name in ISA_CAPS:
        monkeypatch.delenv(name, raising=False)
    assert "capped" not in cpu_description()
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "avx2")
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert cpu_description().endswith("; PyTorch's kernels capped by ATEN_CPU_CAPABILITY=avx2, ONEDNN_MAX_CPU_ISA=AVX2")
