"""The engines' constructors keep their exact drop-in signatures: names, order, defaults and keyword-only markers.

Users pass these arguments positionally (the first sixteen of the embedding engine and the first
nine of the reranker engine are llama-index-finetuning 0.4.2's) and by keyword, so any change
here breaks someone's call.
"""

from __future__ import annotations

import inspect
from typing import Any, List, Tuple

import pytest

from llama_index_bge_finetune.reranking import CrossEncoderFinetuneEngine
from llama_index_bge_finetune.training import SentenceTransformersFinetuneEngine

EMPTY = inspect.Parameter.empty
POS = inspect.Parameter.POSITIONAL_OR_KEYWORD
KW = inspect.Parameter.KEYWORD_ONLY
SENTINEL = "<a bare object() sentinel>"  # query_instruction's "use the base model's own instruction"

TRAINING_SIGNATURE: List[Tuple[str, Any, Any]] = [
    ("self", EMPTY, POS),
    ("dataset", EMPTY, POS),
    ("model_id", "BAAI/bge-small-en-v1.5", POS),
    ("model_output_path", "exp_finetune", POS),
    ("batch_size", 32, POS),
    ("val_dataset", None, POS),
    ("loss", None, POS),
    ("epochs", None, POS),
    ("show_progress_bar", True, POS),
    ("evaluation_steps", 50, POS),
    ("use_all_docs", False, POS),
    ("trust_remote_code", False, POS),
    ("device", None, POS),
    ("save_checkpoints", None, POS),
    ("resume_from_checkpoint", False, POS),
    ("checkpoint_save_steps", None, POS),
    ("checkpoint_save_total_limit", 0, POS),
    ("checkpoint_save_seconds", 300.0, KW),
    ("query_instruction", SENTINEL, KW),
    ("learning_rate", "auto", KW),
    ("warmup_ratio", 0.1, KW),
    ("lr_scheduler_type", "linear", KW),
    ("weight_decay", 0.01, KW),
    ("seed", 42, KW),
    ("gradient_accumulation_steps", 1, KW),
    ("precision", "auto", KW),
    ("attention_dropout", 0.0, KW),
    ("frozen_layers", "auto", KW),
    ("hard_negatives", "auto", KW),
    ("hard_negative_skip_top", 3, KW),
    ("hard_negative_max_tokens", 64, KW),
    ("hard_negative_max_rank", 50, KW),
    ("hard_negative_margin", 0.05, KW),
    ("hard_negative_pool", "auto", KW),
    ("hard_negative_gradients", True, KW),
    ("temperature", 0.05, KW),
    ("mini_batch_size", 32, KW),
    ("matryoshka_dims", None, KW),
    ("guide_model_id", None, KW),
    ("train_max_seq_length", None, KW),
    ("max_seq_length", "auto", KW),
    ("forgetting_dataset", None, KW),
    ("forgetting_threshold", 0.02, KW),
    ("forgetting_alpha", 0.5, KW),
    ("cache_dir", None, KW),
    ("logging_steps", 10, KW),
    ("encode_backend", "local", KW),
    ("on_progress", None, KW),
]

RERANKING_SIGNATURE: List[Tuple[str, Any, Any]] = [
    ("self", EMPTY, POS),
    ("dataset", EMPTY, POS),
    ("model_id", "cross-encoder/ms-marco-MiniLM-L-6-v2", POS),
    ("model_output_path", "exp_finetune", POS),
    ("batch_size", 16, POS),
    ("val_dataset", None, POS),
    ("loss", None, POS),
    ("epochs", 2, POS),
    ("show_progress_bar", True, POS),
    ("evaluation_steps", 50, POS),
    ("learning_rate", 3e-05, KW),
    ("head_learning_rate", None, KW),
    ("max_length", 256, KW),
    ("warmup_ratio", 0.1, KW),
    ("weight_decay", 0.01, KW),
    ("lr_scheduler_type", "linear", KW),
    ("seed", 42, KW),
    ("precision", "auto", KW),
    ("attention_dropout", 0.0, KW),
    ("validation_fraction", 0.1, KW),
    ("blend_weights", (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0), KW),
    ("save_checkpoints", None, KW),
    ("resume_from_checkpoint", False, KW),
    ("checkpoint_save_steps", None, KW),
    ("checkpoint_save_seconds", 300.0, KW),
    ("checkpoint_save_total_limit", 0, KW),
    ("device", None, KW),
    ("trust_remote_code", False, KW),
    ("logging_steps", 10, KW),
]


def _described(cls: type) -> List[Tuple[str, Any, Any]]:
    described = []
    for p in inspect.signature(cls.__init__).parameters.values():
        default = SENTINEL if type(p.default) is object else p.default  # noqa: E721 (a bare sentinel, exactly)
        described.append((p.name, default, p.kind))
    return described


@pytest.mark.parametrize("cls, expected", [
    (SentenceTransformersFinetuneEngine, TRAINING_SIGNATURE),
    (CrossEncoderFinetuneEngine, RERANKING_SIGNATURE),
], ids=["training", "reranking"])
def test_constructor_signature_is_unchanged(cls: type, expected: List[Tuple[str, Any, Any]]) -> None:
    actual = _described(cls)
    assert [name for name, _, _ in actual] == [name for name, _, _ in expected]
    for got, want in zip(actual, expected):
        assert got == want, f"{got[0]}: {got[1:]} != {want[1:]}"
        assert type(got[1]) is type(want[1]), f"{got[0]}: default type {type(got[1])} != {type(want[1])}"


def test_the_default_query_instruction_is_the_base_models(tmp_path: Any) -> None:
    """The sentinel default resolves to the base model's instruction; None and "" turn it off."""
    from llama_index_bge_finetune.models import BGE_QUERY_INSTRUCTION
    from tests.training_data import topics_dataset

    ds = topics_dataset(4, 1)
    engine = SentenceTransformersFinetuneEngine(ds, model_output_path=str(tmp_path / "o"))
    assert engine.query_instruction == BGE_QUERY_INSTRUCTION
    for off in (None, ""):
        assert SentenceTransformersFinetuneEngine(ds, query_instruction=off).query_instruction is None


def test_engine_attributes_keep_their_names(tmp_path: Any) -> None:
    """Every constructor argument an engine kept as an attribute still reads (and writes) under its own name."""
    from tests.reranking_data import topic_samples
    from tests.training_data import topics_dataset

    engine = SentenceTransformersFinetuneEngine(topics_dataset(4, 1), model_id="unused", batch_size=8,
                                                model_output_path=tmp_path / "o", cache_dir=tmp_path / "c",
                                                matryoshka_dims=(8, 4), learning_rate=1e-4)
    assert (engine.model_id, engine.batch_size, engine.learning_rate) == ("unused", 8, 1e-4)
    assert engine.model_output_path == str(tmp_path / "o") and engine.cache_dir == str(tmp_path / "c")
    assert engine.matryoshka_dims == [8, 4] and engine.checkpoint_path == str(tmp_path / "o" / "checkpoints")
    engine.resume_from_checkpoint = True  # the pipeline sets it after construction
    assert engine.resume_from_checkpoint is True and engine.result is None and engine.miner is not None
    reranker = CrossEncoderFinetuneEngine(topic_samples(4), model_id="unused", blend_weights=[0.0, 1.0],
                                          model_output_path=tmp_path / "r")
    assert reranker.blend_weights == (0.0, 1.0) and reranker.model_output_path == str(tmp_path / "r")
    assert reranker.max_length == 256 and reranker.checkpoint_path == str(tmp_path / "r" / "checkpoints")
    assert reranker.new_head is False and reranker.blend == {} and reranker.result is None
    for name in [p for p, _, _ in TRAINING_SIGNATURE if p not in ("self", "dataset", "val_dataset",
                                                                  "forgetting_dataset", "forgetting_threshold",
                                                                  "forgetting_alpha", "hard_negative_skip_top",
                                                                  "hard_negative_max_rank", "hard_negative_margin")]:
        assert hasattr(engine, name), name
    for name in [p for p, _, _ in RERANKING_SIGNATURE if p not in ("self",)]:
        assert hasattr(reranker, name), name


def test_every_argument_but_the_datasets_is_an_option() -> None:
    """The options objects hold exactly the constructors' other arguments, in signature order."""
    from llama_index_bge_finetune.reranking.options import RerankingOptions
    from llama_index_bge_finetune.training.options import TrainingOptions

    datasets = ("self", "dataset", "val_dataset", "forgetting_dataset")
    assert TrainingOptions.field_names() == tuple(n for n, _, _ in TRAINING_SIGNATURE if n not in datasets)
    assert RerankingOptions.field_names() == tuple(n for n, _, _ in RERANKING_SIGNATURE if n not in datasets)
