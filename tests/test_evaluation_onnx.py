"""The opt-in int8 ONNX Runtime backend: close to the PyTorch vectors, cached export, clear refusals."""

from __future__ import annotations

import numpy as np
import pytest

from llama_index_bge_finetune.errors import EvaluationError
from llama_index_bge_finetune.evaluation import EvalModel, evaluate_embeddings
from llama_index_bge_finetune.encoding.resolve import resolve_encoder
from tests.evaluation_data import evaluation_topics_dataset
from tests.requirements import ONNX, require_module

require_module("onnx", ONNX)  # the exporter
require_module("onnxruntime", ONNX)


def test_int8_vectors_are_close_to_torch_and_the_export_is_reused(tiny_model_path, tmp_path):
    ds = evaluation_topics_dataset(n_docs=30)
    texts = list(ds.corpus.values())
    exact = resolve_encoder(str(tiny_model_path))
    int8 = resolve_encoder(EvalModel(str(tiny_model_path), backend="onnx-int8"), cache_dir=str(tmp_path))
    assert int8.backend == "onnx-int8" and int8.fingerprint() != exact.fingerprint()
    a, b = exact.encode_corpus(texts), int8.encode_corpus(texts)
    cos = (a * b).sum(axis=1)
    assert a.shape == b.shape and cos.min() > 0.99
    # A text's vector does not depend on its batch (per-token scales, no padding): a batch of four
    # queries of different lengths equals one-by-one encoding, with the query instruction and order kept.
    one = np.stack([int8.encode_queries([t])[0] for t in texts[:4]])
    np.testing.assert_allclose(int8.encode_queries(texts[:4]), one, rtol=0, atol=1e-6)
    alone = np.stack([int8.encode_corpus([t])[0] for t in texts])
    np.testing.assert_allclose(b, alone, rtol=0, atol=1e-6)
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


def test_int8_quantises_activations_per_token_with_7_bit_weights(tiny_model_path, tmp_path):
    """The export uses per-token activation scales (no whole-tensor DynamicQuantizeLinear) and weights in
    [-64, 63], whose u8 x s8 pair sums fit int16: exact on AVX2 (vpmaddubsw) as on VNNI CPUs."""
    import onnx
    from onnx import numpy_helper

    int8 = resolve_encoder(EvalModel(str(tiny_model_path), backend="onnx-int8"), cache_dir=str(tmp_path))
    model = onnx.load(str(int8.onnx_path))
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("MatMulInteger") == 2 * 6 and "DynamicQuantizeLinear" not in ops  # 2 layers x 6 weight MatMuls
    weights = [numpy_helper.to_array(t) for t in model.graph.initializer if t.data_type == onnx.TensorProto.INT8]
    assert weights and all(w.min() >= -64 and w.max() <= 63 for w in weights)
    assert max(int(np.abs(w.astype(np.int32)).max()) for w in weights) * 255 * 2 <= 32767
