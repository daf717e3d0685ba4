"""The query-side adapter on the tiny real BERT: trains on cached embeddings, loads as a LlamaIndex embedding."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from llama_index.core import VectorStoreIndex

from llama_index_bge_finetune.dataset import EmbeddingQAFinetuneDataset
from llama_index_bge_finetune.errors import StaleVectorsError, TrainingError
from llama_index_bge_finetune.integration import (
    QueryAdapterEmbedding,
    QueryAdapterFinetuneEngine,
    check_embed_model,
    fingerprint_embed_model,
    from_finetuned,
    record_embed_model,
)
from tests.integration_helpers import PASSAGES, TRAIN_PAIRS, documents
from tests.requirements import PEER, require_module


def _dataset() -> EmbeddingQAFinetuneDataset:
    return EmbeddingQAFinetuneDataset(
        queries={f"q{i}": q for i, (q, _) in enumerate(TRAIN_PAIRS)},
        corpus=dict(PASSAGES),
        relevant_docs={f"q{i}": [d] for i, (_, d) in enumerate(TRAIN_PAIRS)},
    )


@pytest.fixture
def trained(tiny_model_path, tmp_path):
    base = from_finetuned(tiny_model_path)
    engine = QueryAdapterFinetuneEngine(_dataset(), base, epochs=40, lr=5e-2, batch_size=4,
                                        model_output_path=tmp_path / "adapter", cache=tmp_path / "cache")
    engine.finetune()
    return base, engine


def test_adapter_learns_and_is_evaluated_like_any_model(trained, tmp_path):
    base, engine = trained
    before = engine.evaluate(_dataset(), adapter=False).metrics["mrr@10"]
    after = engine.evaluate(_dataset()).metrics["mrr@10"]
    assert after > before + 0.2, (before, after)
    # passages were embedded once, into the cache, and a second engine reads them back
    cached = list((tmp_path / "cache").glob("*.npy"))
    assert len(cached) == 1
    mtime = cached[0].stat().st_mtime_ns
    again = QueryAdapterFinetuneEngine(_dataset(), base, epochs=1, model_output_path=tmp_path / "a2",
                                       cache=tmp_path / "cache")
    again.finetune()
    assert cached[0].stat().st_mtime_ns == mtime


def test_adapter_embedding_queries_the_base_models_index(trained, tmp_path):
    base, engine = trained
    index = VectorStoreIndex.from_documents(documents(), embed_model=base)
    record_embed_model(index)
    embed = engine.get_finetuned_model()
    assert fingerprint_embed_model(embed).same_vectors_as(fingerprint_embed_model(base))
    adapted = VectorStoreIndex(index_struct=index.index_struct, storage_context=index.storage_context, embed_model=embed)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_embed_model(adapted)  # no re-embedding needed: passages keep the base vectors
    hits = {q: adapted.as_retriever(similarity_top_k=1).retrieve(q)[0].node.metadata["key"] for q, _ in TRAIN_PAIRS}
    assert sum(hits[q] == d for q, d in TRAIN_PAIRS) >= len(TRAIN_PAIRS) - 3
    assert embed.get_text_embedding("rent") == base.get_text_embedding("rent")
    assert embed.get_query_embedding("rent") != base.get_query_embedding("rent")

    reloaded = QueryAdapterEmbedding.load(tmp_path / "adapter")  # base model found from the saved record
    assert np.allclose(reloaded.get_query_embedding("zorblat"), embed.get_query_embedding("zorblat"), atol=1e-6)


def test_adapter_files_are_compatible_with_llama_index_finetuning_both_ways(trained, tmp_path):
    adapter_pkg = require_module("llama_index.embeddings.adapter", PEER)
    finetuning = require_module("llama_index.finetuning", PEER)
    base, engine = trained
    peer = adapter_pkg.AdapterEmbeddingModel(base, str(tmp_path / "adapter"), device="cpu")
    ours = engine.get_finetuned_model()
    assert np.allclose(peer.get_query_embedding("zorblat"), ours.get_query_embedding("zorblat"), atol=1e-5)

    peer_engine = finetuning.EmbeddingAdapterFinetuneEngine(
        finetuning.EmbeddingQAFinetuneDataset(**_dataset().model_dump(exclude={"query_source"})), base,
        epochs=2, model_output_path=str(tmp_path / "peer"), device="cpu", optimizer_params={"lr": 5e-2},
        show_progress_bar=False,
    )
    peer_engine.finetune()
    peer_result = engine.evaluate(_dataset(), adapter=tmp_path / "peer")  # same evaluator, same cached passages
    assert peer_result.metrics["mrr@10"] != engine.evaluate(_dataset(), adapter=False).metrics["mrr@10"]
    loaded = QueryAdapterEmbedding(base, tmp_path / "peer")
    assert np.allclose(loaded.get_query_embedding("rent"),
                       peer_engine.get_finetuned_model().get_query_embedding("rent"), atol=1e-5)


def test_adapter_refuses_another_base_model_and_bad_options(trained, tmp_path, minilm_path):
    base, engine = trained
    with pytest.raises(StaleVectorsError, match="trained on"):
        QueryAdapterEmbedding(from_finetuned(minilm_path), tmp_path / "adapter")
    with pytest.raises(FileNotFoundError, match="adapter folder"):
        QueryAdapterEmbedding(base, tmp_path / "nothing")
    with pytest.raises(ValueError, match="negatives"):
        QueryAdapterFinetuneEngine(_dataset(), base, negatives="hard")
    with pytest.raises(TrainingError, match="finetune"):
        QueryAdapterFinetuneEngine(_dataset(), base, epochs=1).get_finetuned_model()
