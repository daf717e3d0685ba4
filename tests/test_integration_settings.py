"""use_finetuned / from_finetuned / the ServiceContext migration, on the tiny real BERT folder."""

from __future__ import annotations

import json

import pytest
from llama_index.core import Settings, VectorStoreIndex

from llama_index_bge_finetune.integration import from_finetuned, settings_from_service_context, use_finetuned
from tests.integration_helpers import documents


@pytest.fixture(autouse=True)
def _restore_settings():
    saved = (Settings._embed_model, Settings._node_parser, Settings._transformations)
    yield
    Settings._embed_model, Settings._node_parser, Settings._transformations = saved


def _with_query_prompt(path, prompt):
    cfg = path / "config_sentence_transformers.json"
    data = json.loads(cfg.read_text())
    data["prompts"] = {"query": prompt, "document": ""}
    cfg.write_text(json.dumps(data))
    return path


def test_use_finetuned_sets_settings_and_the_saved_instruction(tiny_model_path):
    _with_query_prompt(tiny_model_path, "query: ")
    use_finetuned(tiny_model_path)
    assert Settings.embed_model.model_name == str(tiny_model_path)
    assert Settings.embed_model.query_instruction == "query: "
    index = VectorStoreIndex.from_documents(documents()[:3])  # embeds with Settings.embed_model
    assert index._embed_model is Settings.embed_model
    assert len(index.index_struct.nodes_dict) == 3


def test_use_finetuned_as_context_manager_restores_previous(tiny_model_path):
    before = from_finetuned(tiny_model_path)
    Settings.embed_model = before
    other = from_finetuned(tiny_model_path, query_instruction="search: ")
    with use_finetuned(other) as active:
        assert active is other and Settings.embed_model is other
    assert Settings.embed_model is before
    with pytest.raises(RuntimeError):
        with use_finetuned(other):
            raise RuntimeError("boom")
    assert Settings.embed_model is before


def test_use_finetuned_rejects_a_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="model folder"):
        use_finetuned(tmp_path / "nope")
    with pytest.raises(TypeError, match="BaseEmbedding"):
        use_finetuned(42)


def test_service_context_raises_in_core_014_and_the_migration_sets_settings(tiny_model_path):
    from llama_index.core import ServiceContext

    with pytest.raises(ValueError, match="Settings"):
        ServiceContext.from_defaults(embed_model=from_finetuned(tiny_model_path))
    settings = settings_from_service_context(embed_model=tiny_model_path, chunk_size=64, chunk_overlap=8)
    assert settings.embed_model.model_name == str(tiny_model_path)
    assert settings.chunk_size == 64 and settings.chunk_overlap == 8
    with pytest.raises(ValueError, match="valid keywords"):
        settings_from_service_context(service_context_id="x")
