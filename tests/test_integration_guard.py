"""The stale-vector guard on real persisted LlamaIndex indexes, with the tiny real BERT."""

from __future__ import annotations

import shutil
import warnings

import pytest
import torch

from llama_index_bge_finetune.errors import StaleVectorsError
from llama_index_bge_finetune.integration import (
    StaleVectorsWarning,
    UnfingerprintedIndexWarning,
    fingerprint_embed_model,
    from_finetuned,
    load_index,
    recorded_embed_model,
)
from tests.integration_helpers import persist_index


@pytest.fixture
def other_model_path(tiny_model_path, tmp_path):
    """The tiny model with one weight changed: same name and shape, different vectors."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(tiny_model_path), device="cpu")
    with torch.no_grad():
        next(model.parameters()).add_(0.01)
    out = tmp_path / "other"
    model.save(str(out))
    return out


def _persisted(model_path, tmp_path, record=True):
    persist_index(from_finetuned(model_path), tmp_path / "storage", record=record)
    return tmp_path / "storage"


def test_fingerprint_tracks_weights_not_the_object(tiny_model_path, other_model_path, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(tiny_model_path, copy)
    a = fingerprint_embed_model(from_finetuned(tiny_model_path))
    assert a.same_vectors_as(fingerprint_embed_model(from_finetuned(copy)))
    assert not a.same_vectors_as(fingerprint_embed_model(from_finetuned(other_model_path)))
    # the query instruction does not change document vectors
    assert a.same_vectors_as(fingerprint_embed_model(from_finetuned(tiny_model_path, query_instruction="q: ")))


def test_mismatched_model_raises_with_the_fix(tiny_model_path, other_model_path, tmp_path):
    storage = _persisted(tiny_model_path, tmp_path)
    with pytest.raises(StaleVectorsError, match="reembed_index") as err:
        load_index(storage, embed_model=from_finetuned(other_model_path))
    assert str(tiny_model_path) in str(err.value)
    with pytest.warns(StaleVectorsWarning):
        index = load_index(storage, embed_model=from_finetuned(other_model_path), on_mismatch="warn")
    assert index.as_retriever(similarity_top_k=2).retrieve("rent")  # still usable when warned
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        index = load_index(storage, embed_model=from_finetuned(tiny_model_path))  # the same model: silent
    assert recorded_embed_model(index).same_vectors_as(fingerprint_embed_model(from_finetuned(tiny_model_path)))


def test_plain_llamaindex_index_loads_with_a_warning(tiny_model_path, tmp_path):
    storage = _persisted(tiny_model_path, tmp_path, record=False)
    with pytest.warns(UnfingerprintedIndexWarning, match="record_embed_model"):
        index = load_index(storage, embed_model=from_finetuned(tiny_model_path))
    assert len(index.as_retriever(similarity_top_k=3).retrieve("library books")) == 3
    with pytest.raises(ValueError, match="'raise' or 'warn'"):
        load_index(storage, embed_model=from_finetuned(tiny_model_path), on_mismatch="ignore")


def test_interrupted_swap_is_reported(tiny_model_path, tmp_path):
    storage = _persisted(tiny_model_path, tmp_path)
    (storage / ".reembed-abc").mkdir()
    (storage / ".reembed-abc" / "SWAPPING").touch()
    with pytest.raises(StaleVectorsError, match="rerun reembed_index"):
        load_index(storage, embed_model=from_finetuned(tiny_model_path))
    with pytest.raises(FileNotFoundError, match="storage_context.persist"):
        load_index(tmp_path / "empty", embed_model=from_finetuned(tiny_model_path))
