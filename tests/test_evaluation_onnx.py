"""The opt-in int8 ONNX Runtime backend: close to the PyTorch vectors, cached export, clear refusals."""

from __future__ import annotations

import numpy as np
import pytest

from llama_index_bge_finetune.errors import EvaluationError
from llama_index_bge_finetune.evaluation import EvalModel, evaluate_embeddings
from llama_index_bge_finetune.evaluation.encoders import resolve_encoder
from tests.evaluation_data import evaluation_topics_dataset

pytest.importorskip("onnxruntime")


def test_int8_vectors_are_close_to_torch_and_the_export_is_reused(tiny_model_path, tmp_path):
    ds = evaluation_topics_dataset(n_docs=30)
    texts = list(ds.corpus.values())
    exact = resolve_encoder(str(tiny_model_path))
    int8 = resolve_encoder(EvalModel(str(tiny_model_path), backend="onnx-int8"), cache_dir=str(tmp_path))
    assert int8.backend == "onnx-int8" and int8.fingerprint() != exact.fingerprint()
    a, b = exact.encode_corpus(texts), int8.encode_corpus(texts)
    cos = (a * b).sum(axis=1)
    assert a.shape == b.shape and cos.mean() > 0.9
    # Query instruction and order are preserved: a batch equals one-by-one encoding.
    one = np.stack([int8.encode_queries([t])[0] for t in texts[:4]])
    assert np.allclose(one, int8.encode_queries(texts[:4]), atol=1e-4)
    stamp = int8.onnx_path.stat().st_mtime_ns
    again = resolve_encoder(EvalModel(str(tiny_model_path), backend="onnx-int8"), cache_dir=str(tmp_path))
    assert again.onnx_path == int8.onnx_path and again.onnx_path.stat().st_mtime_ns == stamp
    result = evaluate_embeddings(again, ds, cache=tmp_path / "emb")
    assert result.model_info["backend"] == "onnx-int8" and 0.0 <= result.metrics["ndcg@10"] <= 1.0


def test_int8_refuses_models_it_cannot_reproduce(tiny_model_path, tmp_path, openai_server):
    from llama_index.embeddings.openai import OpenAIEmbedding
    from sentence_transformers import SentenceTransformer, models

    st = SentenceTransformer(str(tiny_model_path), device="cpu")
    dense = SentenceTransformer(modules=[*st, models.Dense(32, 8)], device="cpu")
    with pytest.raises(EvaluationError, match="Use backend='torch'"):
        resolve_encoder(EvalModel(dense, backend="onnx-int8"), cache_dir=str(tmp_path))
    remote = OpenAIEmbedding(api_base=openai_server.base_url, api_key="sk-test")
    with pytest.raises(EvaluationError, match="needs a sentence-transformers model"):
        resolve_encoder(EvalModel(remote, backend="onnx-int8"))
