"""The model card: base model, data size, hyper-parameters, evaluation table, and never a secret."""

from __future__ import annotations

from llama_index_bge_finetune.training.model_card import render_model_card


def test_card_lists_everything_and_masks_secrets():
    card = render_model_card(
        base_model="BAAI/bge-small-en-v1.5",
        query_instruction="Represent this sentence for searching relevant passages: ",
        data={"queries": 809, "passages": 5183},
        hyperparameters={"learning_rate": 5e-05, "openai_api_key": "sk-abcdefghijklmnop1234", "note": "hf_ABCDEFGHIJKLMN"},
        training={"steps": 26},
        evaluation={"base": {"ndcg@10": 0.6451}, "fine_tuned": {"ndcg@10": 0.7012}},
    )
    assert "BAAI/bge-small-en-v1.5" in card and "| queries | 809 |" in card and "| learning_rate | 5e-05 |" in card
    assert "| fine_tuned | 0.7012 |" in card and "Represent this sentence" in card
    assert "sk-abcdefghijklmnop1234" not in card and "hf_ABCDEFGHIJKLMN" not in card and "openai_api_key" not in card


def test_card_without_evaluation_says_how_to_get_one():
    card = render_model_card(base_model="m", query_instruction=None, data={}, hyperparameters={}, training={}, evaluation={})
    assert "No query instruction" in card and "val_dataset" in card
