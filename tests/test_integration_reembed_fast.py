"""reembed_index plumbing on the tiny real BERT: in-memory indexes, StorageContext input, bad options."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from llama_index.core import StorageContext, VectorStoreIndex

from llama_index_bge_finetune.errors import IntegrationError, MissingFilesError
from llama_index_bge_finetune.integration import (
    fingerprint_embed_model,
    from_finetuned,
    load_index,
    record_embed_model,
    recorded_embed_model,
    reembed_index,
)
from tests.integration_helpers import documents


@pytest.fixture
def two_models(tiny_model_path, tmp_path):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(tiny_model_path), device="cpu")
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1.5)
    model.save(str(tmp_path / "other"))
    return from_finetuned(tiny_model_path), from_finetuned(tmp_path / "other")


def test_in_memory_index_gets_new_vectors_and_the_old_one_is_untouched(two_models):
    base, other = two_models
    index = VectorStoreIndex.from_documents(documents(), embed_model=base)
    old_vectors = dict(index.vector_store.data.embedding_dict)
    new_index = reembed_index(index, other, batch_size=5, show_progress=False)
    new_vectors = new_index.vector_store.data.embedding_dict
    assert new_vectors.keys() == old_vectors.keys()
    node = index.docstore.get_node(next(iter(index.index_struct.nodes_dict.values())))
    from llama_index.core.schema import MetadataMode

    expected = other.get_text_embedding(node.get_content(metadata_mode=MetadataMode.EMBED))
    assert np.allclose(new_vectors[node.node_id], expected, atol=1e-5)
    assert not np.allclose(new_vectors[node.node_id], old_vectors[node.node_id], atol=1e-3)
    assert index.vector_store.data.embedding_dict == old_vectors  # the old store was not modified
    assert recorded_embed_model(new_index).same_vectors_as(fingerprint_embed_model(other))
    assert recorded_embed_model(index) is None  # the old index does not claim the new model's vectors
    assert new_index.vector_store.data.text_id_to_ref_doc_id == index.vector_store.data.text_id_to_ref_doc_id


def test_storage_context_input_with_persist_dir(two_models, tmp_path):
    base, other = two_models
    index = VectorStoreIndex.from_documents(documents(), embed_model=base)
    record_embed_model(index)
    index.storage_context.persist(str(tmp_path / "s"))
    sc = StorageContext.from_defaults(persist_dir=str(tmp_path / "s"))
    reembed_index(sc, other, persist_dir=tmp_path / "s", show_progress=False)
    loaded = load_index(tmp_path / "s", embed_model=other)
    assert len(loaded.as_retriever(similarity_top_k=3).retrieve("rent")) == 3


def test_bad_batch_size_is_refused(two_models):
    base, other = two_models
    index = VectorStoreIndex.from_documents(documents()[:2], embed_model=base)
    with pytest.raises(IntegrationError, match="batch_size"):
        reembed_index(index, other, batch_size=0)
    with pytest.raises(MissingFilesError, match="storage_context.persist"):
        reembed_index("no-such-dir", other)
