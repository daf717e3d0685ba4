"""The saved model's window: sized to the training passages, within the position limit, as the caller asks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llama_index_bge_finetune.errors import TrainingError
from llama_index_bge_finetune.training import SentenceTransformersFinetuneEngine
from llama_index_bge_finetune.training.window import choose_window, passage_length_percentile, position_limit
from tests.training_data import topics_dataset


@pytest.fixture
def tiny_model(tiny_model_path: Path):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(tiny_model_path), device="cpu")


def _passages(words: int, n: int = 10) -> list:
    return [" ".join(["python"] * words) for _ in range(n)]


def test_a_window_that_covers_the_passages_is_kept(tiny_model):
    tiny_model.max_seq_length = 64
    choice = choose_window(tiny_model, _passages(20), "auto")
    assert (choice.base, choice.chosen, choice.passage_tokens_p90) == (64, 64, 22)  # 20 words + [CLS] + [SEP]
    assert "covers 90%" in choice.reason


def test_auto_covers_the_90th_percentile_passage_rounded_to_64(tiny_model):
    tiny_model.max_seq_length = 32
    passages = _passages(10, 5) + _passages(70, 5)  # 12 and 72 tokens: the 90th percentile is 72
    assert passage_length_percentile(tiny_model.tokenizer, passages) == 72
    choice = choose_window(tiny_model, passages, "auto")
    assert (choice.base, choice.chosen, choice.limit) == (32, 128, 128)
    assert "72 tokens" in choice.reason


def test_auto_stops_at_the_position_limit(tiny_model):
    tiny_model.max_seq_length = 32
    assert position_limit(tiny_model) == 128
    choice = choose_window(tiny_model, _passages(500), "auto")
    assert choice.chosen == 128 and "position limit" in choice.reason


def test_explicit_settings(tiny_model):
    tiny_model.max_seq_length = 32
    assert choose_window(tiny_model, _passages(500), None).chosen == 32
    assert choose_window(tiny_model, _passages(500), 96).chosen == 96
    with pytest.raises(TrainingError, match="past the model's position limit of 128 tokens; pass at most 128"):
        choose_window(tiny_model, [], 512)
    for bad in (4, "long", True):
        with pytest.raises(TrainingError, match="max_seq_length must be 'auto', None"):
            SentenceTransformersFinetuneEngine(topics_dataset(4, 1), model_id="unused", max_seq_length=bad)


def test_the_engine_saves_the_wider_window_and_says_why(tiny_model_path, tmp_path, caplog):
    """Training runs at the base's window; the saved folder reads the passages whole."""
    from sentence_transformers import SentenceTransformer

    config = tiny_model_path / "sentence_bert_config.json"
    settings = json.loads(config.read_text())
    config.write_text(json.dumps({**settings, "max_seq_length": 32}))
    out = tmp_path / "out"
    engine = SentenceTransformersFinetuneEngine(
        topics_dataset(16, 1), model_id=str(tiny_model_path), model_output_path=str(out),
        batch_size=8, epochs=1, show_progress_bar=False,
    )
    trained_at = []
    original = engine.model.forward
    engine.model.forward = lambda features, **kw: trained_at.append(features["input_ids"].shape[1]) or original(features, **kw)
    with caplog.at_level("INFO", logger="llama_index_bge_finetune.training.engine"):
        engine.finetune()
    assert trained_at and max(trained_at) <= 32, "training ran past the base's window"
    assert SentenceTransformer(str(out), device="cpu").max_seq_length == 128
    saved = json.loads((out / "training_result.json").read_text())
    assert saved["window"]["base"] == 32 and saved["window"]["chosen"] == 128
    assert saved["hyperparameters"]["max_seq_length"] == 128
    assert "saved with 128 tokens" in caplog.text
    assert "max_seq_length" in (out / "README.md").read_text()


WORDS = ("apple river mountain violin planet copper tiger garden engine castle winter ocean pencil forest silver "
         "doctor island candle rocket bridge yellow hammer cotton window desert orange spider kettle marble parrot "
         "rabbit saddle tunnel wallet anchor button").split()
FILLER = " ".join(["the same words in every passage"] * 30)


def _val_set(telling_words_first: bool):
    """12 questions of three words each; each passage holds its question's words and a filler shared by all,
    the words first (so the first 32 tokens tell the passages apart) or after 40 filler tokens (so only a
    longer window does)."""
    from llama_index_bge_finetune.dataset import EmbeddingQAFinetuneDataset

    queries, corpus, relevant = {}, {}, {}
    for i in range(12):
        words = " ".join(WORDS[3 * i: 3 * i + 3])
        queries[f"q{i}"], relevant[f"q{i}"] = words, [f"d{i}"]
        corpus[f"d{i}"] = f"{words} {words} {FILLER}" if telling_words_first else f"{FILLER[:200]} {words} {words} {FILLER}"
    return EmbeddingQAFinetuneDataset(queries=queries, corpus=corpus, relevant_docs=relevant)


def _score(path: Path, val, window: int) -> float:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.evaluation import InformationRetrievalEvaluator

    model = SentenceTransformer(str(path), device="cpu")
    model.max_seq_length = window
    evaluator = InformationRetrievalEvaluator(val.queries, val.corpus, {q: set(d) for q, d in val.relevant_docs.items()},
                                              name="val", show_progress_bar=False, write_csv=False)
    return evaluator(model)["val_cosine_ndcg@10"]


@pytest.mark.parametrize("topic_first, saved_window", [(False, 128), (True, 32)])
def test_validation_scores_the_model_as_saved_and_confirms_its_window(tiny_model_path, tmp_path, caplog,
                                                                     topic_first, saved_window):
    """Base and fine-tuned validation scores (so keep-best too) are taken at the saved window, and the
    validation set decides between the base's window and the wider one the passages' length suggests."""
    from sentence_transformers import SentenceTransformer

    config = tiny_model_path / "sentence_bert_config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "max_seq_length": 32}))
    val = _val_set(topic_first)
    out = tmp_path / "out"
    engine = SentenceTransformersFinetuneEngine(
        topics_dataset(16, 2), model_id=str(tiny_model_path), model_output_path=str(out), batch_size=8,
        val_dataset=val, evaluation_steps=2, show_progress_bar=False, hard_negatives=0, learning_rate=1e-3,
    )
    with caplog.at_level("INFO", logger="llama_index_bge_finetune.training.engine"):
        engine.finetune()
    result = engine.result
    assert result.window["chosen"] == saved_window == result.hyperparameters["max_seq_length"]
    assert SentenceTransformer(str(out), device="cpu").max_seq_length == saved_window
    other = 32 if saved_window == 128 else 128
    assert _score(out, val, saved_window) > _score(out, val, other), "the saved window is not the better one"
    assert result.evaluation["fine_tuned"]["ndcg@10"] == pytest.approx(_score(out, val, saved_window), abs=1e-6)
    assert result.evaluation["base"]["ndcg@10"] == pytest.approx(_score(tiny_model_path, val, saved_window), abs=1e-6)
    if saved_window == 32:
        assert "the validation set scored the fine-tuned model higher at the base's 32 tokens" in caplog.text


def test_the_validation_set_overrules_the_passage_length_only_when_it_scores_higher():
    from llama_index_bge_finetune.training.window import WindowChoice, confirmed_by_validation

    wide = WindowChoice(256, 512, 512, 501, "90% of the passages run to 501 tokens")
    assert confirmed_by_validation(wide, at_chosen=0.70, at_base=0.69) is wide
    assert confirmed_by_validation(wide, at_chosen=0.70, at_base=0.70) is wide
    narrow = confirmed_by_validation(wide, at_chosen=0.70, at_base=0.71)
    assert narrow.chosen == 256 and "nDCG@10 0.7100 against 0.7000 at 512" in narrow.reason
    same = WindowChoice(256, 256, 512, 200, "covers")
    assert confirmed_by_validation(same, at_chosen=0.5, at_base=0.9) is same


def test_the_run_report_says_when_the_window_grew():
    from llama_index_bge_finetune import pipeline
    from llama_index_bge_finetune.cli.run import _report_sections
    from llama_index_bge_finetune.models import BaseModelChoice
    from llama_index_bge_finetune.training.result import FinetuneResult

    data = topics_dataset(4, 1)
    config = pipeline.RunConfig(output="out", documents="docs")
    choice = BaseModelChoice("m", "given", None)
    grown = FinetuneResult("out/model", window={"base": 256, "chosen": 512, "reason": "90% of the passages ..."})
    text = _report_sections(config, choice, "offline", data, data, grown, 4, [])["Run"]
    assert "reads up to 512 tokens of a chunk, the base 256 (90% of the passages ...; --max-seq-length)" in text
    same = FinetuneResult("out/model", window={"base": 256, "chosen": 256, "reason": "covers"})
    assert "Window" not in _report_sections(config, choice, "offline", data, data, same, 4, [])["Run"]
