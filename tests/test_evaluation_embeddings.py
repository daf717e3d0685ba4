"""The fast embedding evaluator on a real (tiny) model: agreement with sentence-transformers, cache, exclusions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

from llama_index_bge_finetune.errors import EvaluationError
from llama_index_bge_finetune.evaluation import EmbeddingCache, EvalModel, evaluate_embeddings
from llama_index_bge_finetune.encoding.resolve import resolve_encoder
from tests.evaluation_data import evaluation_topics_dataset

KS = (1, 3, 5, 10, 100)


def test_agrees_with_information_retrieval_evaluator_on_every_shared_metric(tiny_model_path):
    ds = evaluation_topics_dataset()
    ours = evaluate_embeddings(str(tiny_model_path), ds, k_values=KS, cache=False).metrics
    ir = InformationRetrievalEvaluator(
        ds.queries, ds.corpus, {q: set(d) for q, d in ds.relevant_docs.items()},
        mrr_at_k=list(KS), ndcg_at_k=list(KS), accuracy_at_k=list(KS), precision_recall_at_k=list(KS),
        map_at_k=list(KS), write_csv=False,
    )
    theirs = ir(SentenceTransformer(str(tiny_model_path), device="cpu"))
    names = {"accuracy": "hit_rate", "mrr": "mrr", "ndcg": "ndcg", "recall": "recall", "precision": "precision", "map": "map"}
    compared = 0
    for key, value in theirs.items():
        metric, k = key.split("_", 1)[1].split("@")
        assert ours[f"{names[metric]}@{k}"] == pytest.approx(value, abs=1e-6), key
        compared += 1
    assert compared == 6 * len(KS)


def test_corpus_cache_is_read_back_and_a_changed_model_misses(tiny_model_path, tmp_path):
    ds = evaluation_topics_dataset(n_docs=20)
    cache = EmbeddingCache(tmp_path / "cache")
    first = evaluate_embeddings(str(tiny_model_path), ds, cache=cache)
    files = list((tmp_path / "cache").glob("*.npy"))
    assert len(files) == 1
    # Overwrite the cached vectors: a second run must use them (and so score differently).
    vecs = np.load(files[0])
    np.save(files[0], -vecs)
    second = evaluate_embeddings(str(tiny_model_path), ds, cache=cache)
    assert second.metrics != first.metrics
    # Change the weights in the folder: another fingerprint, so a fresh encode and a second file.
    model = SentenceTransformer(str(tiny_model_path), device="cpu")
    with torch.no_grad():
        next(model.parameters()).mul_(1.5)
    model.save(str(tiny_model_path))
    third = evaluate_embeddings(str(tiny_model_path), ds, cache=cache)
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 2
    assert third.model_info["fingerprint"] != first.model_info["fingerprint"]


def test_training_and_evaluation_read_and_write_one_cache_entry(tiny_model_path, tmp_path):
    from llama_index_bge_finetune.retrieval.corpus_cache import encode_cached

    ds = evaluation_topics_dataset(n_docs=20)
    texts = list(ds.corpus.values())
    model = SentenceTransformer(str(tiny_model_path), device="cpu")

    # The training route (mining, training-time metrics, reranker data) writes the entry ...
    trained = np.array(encode_cached(model, texts, tmp_path / "train-first"))
    files = list((tmp_path / "train-first").glob("*.npy"))
    assert len(files) == 1
    stamp = files[0].stat().st_mtime_ns
    # ... and an evaluation of the same model and corpus reads it: same file name, nothing rewritten.
    result = evaluate_embeddings(str(tiny_model_path), ds, cache=EmbeddingCache(tmp_path / "train-first"))
    assert list((tmp_path / "train-first").glob("*.npy")) == files and files[0].stat().st_mtime_ns == stamp
    assert files[0].name.startswith(result.model_info["fingerprint"] + "-")

    # The other way round: the evaluation's entry serves the training route without an encode.
    evaluate_embeddings(str(tiny_model_path), ds, cache=EmbeddingCache(tmp_path / "eval-first"))
    model.encode = lambda *args, **kwargs: pytest.fail("the corpus was encoded again")
    read = encode_cached(model, texts, tmp_path / "eval-first")
    np.testing.assert_allclose(read, trained, atol=1e-6)
    assert [p.name for p in (tmp_path / "eval-first").glob("*.npy")] == [files[0].name]


def test_queries_without_relevant_passages_are_excluded_and_counted_or_raise(tiny_model_path):
    ds = evaluation_topics_dataset(n_docs=12)
    ds.relevant_docs["q-orphan"] = ["doc-not-in-corpus"]
    ds.queries["q-orphan"] = "a question about nothing here"
    ds.queries["q-empty"] = "another"
    result = evaluate_embeddings(str(tiny_model_path), ds, cache=False)
    assert result.dataset.n_queries == 12
    assert set(result.dataset.excluded) == {"q-orphan", "q-empty"}
    with pytest.raises(EvaluationError, match="2 queries cannot be scored"):
        evaluate_embeddings(str(tiny_model_path), ds, cache=False, on_missing="raise")


def test_huggingface_embedding_and_folder_give_the_same_results(tiny_model_path):
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding

    ds = evaluation_topics_dataset(n_docs=30)
    folder = evaluate_embeddings(str(tiny_model_path), ds, cache=False)
    hf = evaluate_embeddings(HuggingFaceEmbedding(model_name=str(tiny_model_path), device="cpu"), ds, cache=False)
    assert [q.retrieved_ids for q in hf.queries] == [q.retrieved_ids for q in folder.queries]
    assert hf.metrics == pytest.approx(folder.metrics)


def test_query_instruction_is_applied_and_worst_queries_show_what_came_instead(tiny_model_path):
    ds = evaluation_topics_dataset(n_docs=30)
    plain = resolve_encoder(str(tiny_model_path))
    instructed = resolve_encoder(EvalModel(str(tiny_model_path), query_instruction="Represent this question: "))
    assert instructed.query_instruction == "Represent this question: "
    assert not np.allclose(plain.encode_queries(["what is a for loop"]), instructed.encode_queries(["what is a for loop"]))
    assert plain.fingerprint() == instructed.fingerprint()  # passages are encoded identically: one cache entry
    result = evaluate_embeddings(instructed, ds, cache=False)
    worst = result.worst_queries(3)
    assert [q.metrics["ndcg@10"] for q in worst] == sorted(q.metrics["ndcg@10"] for q in worst)
    assert worst[0].metrics["ndcg@10"] == min(result.per_query_array("ndcg@10"))
    assert all(len(q.retrieved_ids) == 10 for q in worst)


def test_bad_inputs_raise_errors_naming_the_fix(tiny_model_path, tmp_path):
    ds = evaluation_topics_dataset(n_docs=5)
    with pytest.raises(EvaluationError, match="Cannot load the model"):
        evaluate_embeddings(str(tmp_path / "missing-model"), ds, cache=False)
    with pytest.raises(EvaluationError, match="Cannot evaluate a int"):
        evaluate_embeddings(42, ds, cache=False)
    with pytest.raises(EvaluationError, match="Unknown backend"):
        evaluate_embeddings(str(tiny_model_path), ds, backend="tensorrt", cache=False)
    with pytest.raises(EvaluationError, match="on_missing"):
        evaluate_embeddings(str(tiny_model_path), ds, on_missing="ignore", cache=False)


def test_llama_index_finetuning_dataset_and_its_json_are_accepted(tiny_model_path, tmp_path):
    from llama_index.finetuning.embeddings.common import EmbeddingQAFinetuneDataset as PeerDataset

    ds = evaluation_topics_dataset(n_docs=15)
    peer = PeerDataset(queries=ds.queries, corpus=ds.corpus, relevant_docs=ds.relevant_docs)
    peer.save_json(str(tmp_path / "peer.json"))
    from_object = evaluate_embeddings(str(tiny_model_path), peer, cache=False)
    from_file = evaluate_embeddings(str(tiny_model_path), tmp_path / "peer.json", cache=False)
    assert from_object.metrics == from_file.metrics
    assert from_object.dataset.n_queries == 15 and from_object.dataset.query_source is None
