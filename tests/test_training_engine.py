"""The engine end to end on the tiny random BERT: drop-in API, saved folder, instruction, small data, errors."""

from __future__ import annotations

import inspect
import json
import logging
from pathlib import Path

import numpy as np
import pytest

from llama_index_bge_finetune.dataset import EmbeddingQAFinetuneDataset
from llama_index_bge_finetune.errors import DatasetError, TrainingError
from llama_index_bge_finetune.models import BGE_QUERY_INSTRUCTION
from llama_index_bge_finetune.training import SentenceTransformersFinetuneEngine
from tests.requirements import PEER, require_module
from tests.training_data import topics_dataset


def _weights(path: Path) -> np.ndarray:
    from safetensors.numpy import load_file

    tensors = load_file(str(path / "model.safetensors"))
    return np.concatenate([v.ravel() for k, v in sorted(tensors.items()) if v.dtype.kind == "f"])


def test_accepts_every_argument_of_the_peer_engine():
    peer_mod = require_module("llama_index.finetuning.embeddings.sentence_transformer", PEER)
    peer = inspect.signature(peer_mod.SentenceTransformersFinetuneEngine.__init__).parameters
    ours = inspect.signature(SentenceTransformersFinetuneEngine.__init__).parameters
    missing = [name for name in peer if name not in ours]
    assert not missing
    # Positional order matches too, so positional calls keep working.
    assert list(ours)[: len(peer)] == list(peer)


def test_accepts_peer_dataset_and_path(tmp_path):
    peer = require_module("llama_index.finetuning", PEER)
    ds = topics_dataset(4, 1)
    peer_ds = peer.EmbeddingQAFinetuneDataset(queries=ds.queries, corpus=ds.corpus, relevant_docs=ds.relevant_docs)
    engine = SentenceTransformersFinetuneEngine(peer_ds, model_id="unused", model_output_path=str(tmp_path / "o"))
    assert engine.dataset.queries == ds.queries
    ds.save_json(tmp_path / "train.json")
    engine = SentenceTransformersFinetuneEngine(str(tmp_path / "train.json"), model_id="unused")
    assert engine.dataset.corpus == ds.corpus


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_finetune_saves_a_loadable_model_with_card_and_result(tiny_model_path, tmp_path, monkeypatch, precision):
    """Both CPU precision paths, on any CPU (bf16 autocast also runs where bf16 is not native, only slower)."""
    from sentence_transformers import SentenceTransformer

    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    engine = SentenceTransformersFinetuneEngine(
        topics_dataset(24, 2), model_id=str(tiny_model_path), model_output_path=str(out),
        batch_size=8, show_progress_bar=False, learning_rate=1e-3, precision=precision,
    )
    engine.finetune()  # default evaluation_steps=50 without a validation set: the peer crashes here
    model = SentenceTransformer(str(out), device="cpu")
    assert model.encode(["hello"]).shape == (1, 32)
    assert not np.allclose(_weights(out), _weights(tiny_model_path)), "training did not change the weights"
    card = (out / "README.md").read_text()
    assert str(tiny_model_path) in card and "learning_rate" in card and "| queries | 48 |" in card
    res = engine.result
    # 48 rows, 24 passages: 6 batches of 8 with no passage twice, every epoch; 2 epochs would be 12 steps,
    # under the schedule's 20, so the epochs (not given) adapt to 4.
    assert res.hyperparameters["epochs"] == 4
    assert res.steps == 24 and res.final_loss is not None and res.examples_per_second > 0
    assert res.hyperparameters["batch_size"] == 8 and res.pairs == 48
    assert res.hyperparameters["precision"] == f"{precision} ({precision})"
    assert json.loads((out / "training_result.json").read_text())["steps"] == res.steps
    # Default checkpoints live under the output folder and are removed after success; none in the cwd.
    assert not (out / "checkpoints").exists() and not (tmp_path / "checkpoints").exists()


def test_instruction_is_saved_and_applied_for_a_non_bge_name(tiny_model_path, tmp_path):
    """HuggingFaceEmbedding would pass an empty prompt for 'tiny-bert'; the engine passes the saved one."""
    from sentence_transformers import SentenceTransformer

    out = tmp_path / "out"
    engine = SentenceTransformersFinetuneEngine(
        topics_dataset(8, 2), model_id=str(tiny_model_path), model_output_path=str(out), batch_size=8,
        show_progress_bar=False, query_instruction=BGE_QUERY_INSTRUCTION, hard_negatives=0,
    )
    engine.finetune()
    config = json.loads((out / "config_sentence_transformers.json").read_text())
    assert config["prompts"] == {"query": BGE_QUERY_INSTRUCTION} and config["default_prompt_name"] is None
    embed = engine.get_finetuned_model(embed_batch_size=3)
    assert embed.embed_batch_size == 3  # kwargs are passed on
    st = SentenceTransformer(str(out), device="cpu")
    q, p = "How is assert used in Python?", "The assert statement inserts debugging assertions."
    expected_q = st.encode(BGE_QUERY_INSTRUCTION + q, normalize_embeddings=True)
    expected_p = st.encode(p, normalize_embeddings=True)
    got_q = np.asarray(embed.get_query_embedding(q))
    got_p = np.asarray(embed.get_text_embedding(p))
    assert np.allclose(got_q / np.linalg.norm(got_q), expected_q, atol=1e-5)
    assert np.allclose(got_p / np.linalg.norm(got_p), expected_p, atol=1e-5)
    assert not np.allclose(expected_q, st.encode(q, normalize_embeddings=True), atol=1e-3)


def test_dataset_smaller_than_a_batch_still_trains(tiny_model_path, tmp_path, caplog):
    out = tmp_path / "out"
    engine = SentenceTransformersFinetuneEngine(
        topics_dataset(3, 1), model_id=str(tiny_model_path), model_output_path=str(out),
        batch_size=32, show_progress_bar=False, learning_rate=1e-3, hard_negatives=0,
    )
    with caplog.at_level(logging.WARNING, logger="llama_index_bge_finetune"):
        engine.finetune()
    assert any("fewer than batch_size=32" in r.getMessage() for r in caplog.records)
    assert engine.result.steps >= 1
    assert not np.allclose(_weights(out), _weights(tiny_model_path)), "learning rate was 0: nothing trained"


def test_validation_set_keeps_best_and_fills_the_card(tiny_model_path, tmp_path):
    out = tmp_path / "out"
    engine = SentenceTransformersFinetuneEngine(
        topics_dataset(16, 2), model_id=str(tiny_model_path), model_output_path=str(out), batch_size=8,
        val_dataset=topics_dataset(8, 1, offset=40), evaluation_steps=2, show_progress_bar=False,
        save_checkpoints=True, hard_negatives=0,
    )
    engine.finetune()
    ev = engine.result.evaluation
    assert set(ev) == {"base", "fine_tuned"} and 0.0 <= ev["fine_tuned"]["ndcg@10"] <= 1.0
    assert "| base |" in (out / "README.md").read_text()
    assert sorted(p.name for p in (out / "checkpoints").iterdir() if p.name.startswith("checkpoint-"))


def test_validation_corpus_is_encoded_once_per_evaluation_and_the_best_is_kept(tiny_model_path, tmp_path, monkeypatch):
    from sentence_transformers.evaluation import InformationRetrievalEvaluator

    calls = []
    original = InformationRetrievalEvaluator.__call__
    monkeypatch.setattr(InformationRetrievalEvaluator, "__call__",
                        lambda self, model, *a, **k: calls.append(1) or original(self, model, *a, **k))
    out = tmp_path / "out"
    engine = SentenceTransformersFinetuneEngine(
        topics_dataset(24, 2), model_id=str(tiny_model_path), model_output_path=str(out), batch_size=8,
        val_dataset=topics_dataset(8, 1, offset=40), show_progress_bar=False, hard_negatives=0, learning_rate=1e-3,
    )
    engine.finetune()  # 12 steps, evaluation_steps=50: evaluated twice (mid-run and at the end), not never
    res = engine.result
    evals = [e for e in res.log_history if "eval_val_cosine_ndcg@10" in e]
    assert len(evals) == 2, evals
    assert len(calls) == 1 + len(evals), "the validation corpus was encoded more than once per evaluation"
    best = max(e["eval_val_cosine_ndcg@10"] for e in evals)
    assert res.evaluation["fine_tuned"]["ndcg@10"] == pytest.approx(best)
    saved = json.loads((out / "training_result.json").read_text())
    assert saved["total_seconds"] > saved["train_seconds"] > 0
    # 12 steps with logging_steps=10: a short run still logs a loss at every step, for the report's curve.
    assert [e["step"] for e in saved["log_history"] if "loss" in e] == list(range(1, res.steps + 1))


@pytest.mark.parametrize(
    "make, error, words",
    [
        (lambda: EmbeddingQAFinetuneDataset(queries={}, corpus={}, relevant_docs={}), DatasetError, "empty"),
        (lambda: EmbeddingQAFinetuneDataset(queries={"q": "x"}, corpus={"d": "y"}, relevant_docs={"q": ["nope"]}),
         DatasetError, "not in the corpus"),
    ],
)
def test_bad_datasets_are_clear_errors(make, error, words):
    with pytest.raises(error, match=words):
        SentenceTransformersFinetuneEngine(make(), model_id="unused")


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"batch_size": 0}, "batch_size must be positive"),
        ({"loss": "triplet"}, "Unknown loss"),
        ({"precision": "fp8"}, "precision must be one of"),
        ({"hard_negatives": -1}, "hard_negatives"),
        ({"warmup_ratio": 1.5}, "warmup_ratio"),
    ],
)
def test_bad_settings_are_clear_errors(kwargs, words):
    with pytest.raises(TrainingError, match=words):
        SentenceTransformersFinetuneEngine(topics_dataset(4, 1), model_id="unused", **kwargs)


def test_single_pair_and_missing_model_are_errors(tiny_model_path, tmp_path):
    one = topics_dataset(1, 1)
    engine = SentenceTransformersFinetuneEngine(one, model_id=str(tiny_model_path), model_output_path=str(tmp_path / "o"))
    with pytest.raises(DatasetError, match="at least 2"):
        engine.finetune()
    with pytest.raises(TrainingError, match="call finetune"):
        engine.get_finetuned_model()
    with pytest.raises(TrainingError, match="does not exist"):
        SentenceTransformersFinetuneEngine(
            topics_dataset(4, 1), model_id=str(tiny_model_path), model_output_path=str(tmp_path / "o2"),
            resume_from_checkpoint=str(tmp_path / "nowhere"), show_progress_bar=False,
        ).finetune()


def test_base_validation_over_the_training_corpus_reuses_the_mining_vectors(tiny_model_path, tmp_path, monkeypatch):
    from sentence_transformers import SentenceTransformer

    from llama_index_bge_finetune.dataset import EmbeddingQAFinetuneDataset

    train = topics_dataset(24, 2)
    ids = sorted(train.queries)[:6]
    val = EmbeddingQAFinetuneDataset(queries={q: train.queries[q] + " ?" for q in ids}, corpus=train.corpus,
                                     relevant_docs={q: train.relevant_docs[q] for q in ids})
    sizes = []
    original = SentenceTransformer.encode
    monkeypatch.setattr(SentenceTransformer, "encode",
                        lambda self, inputs, *a, **k: sizes.append(len(inputs)) or original(self, inputs, *a, **k))
    engine = SentenceTransformersFinetuneEngine(
        train, model_id=str(tiny_model_path), model_output_path=str(tmp_path / "out"), batch_size=8, val_dataset=val,
        show_progress_bar=False, epochs=1, hard_negatives=1, hard_negative_max_tokens=None,  # mined at full length
    )
    engine.finetune()
    evals = [e for e in engine.result.log_history if "eval_val_cosine_ndcg@10" in e]
    corpus_encodes = sizes.count(len(train.corpus))
    # One encode for mining (reused by the base evaluation), one per evaluation during training.
    assert corpus_encodes == 1 + len(evals), (sizes, len(evals))
    assert "ndcg@10" in engine.result.evaluation["base"]
