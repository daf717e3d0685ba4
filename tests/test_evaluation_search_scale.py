"""Search over large corpora: FAISS exact equals numpy exact, the size switch, approximate recall, memory-mapped caches."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from llama_index_bge_finetune.errors import EvaluationError
from llama_index_bge_finetune.evaluation import EmbeddingCache, compare_models, evaluate_embeddings
from llama_index_bge_finetune.retrieval import search as search_module
from llama_index_bge_finetune.retrieval.faiss_search import flat_top_k, recall_against_exact
from llama_index_bge_finetune.retrieval.exact_search import top_k
from llama_index_bge_finetune.retrieval.search import search
from llama_index_bge_finetune.retrieval.vector_file import read_vectors, write_vectors
from tests.evaluation_data import evaluation_topics_dataset
from tests.requirements import SCALE, require_module

require_module("faiss", SCALE)


def _unit(rows: int, dim: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((rows, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _clustered(rows: int, dim: int, centres: int, seed: int) -> np.ndarray:
    """Noisy copies of a few directions: the structure approximate indexes rely on, as real embeddings have."""
    rng = np.random.default_rng(seed)
    base = _unit(centres, dim, seed + 1)
    x = base[rng.integers(0, centres, rows)] + 0.3 / np.sqrt(dim) * rng.standard_normal((rows, dim)).astype(np.float32)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_faiss_exact_search_equals_numpy_across_chunks():
    corpus, queries = _unit(3000, 32, 0), _unit(60, 32, 1)
    ids = [f"p{i:05d}" for i in range(len(corpus))]
    ref_idx, ref_scores = top_k(queries, corpus, 10, ids)
    idx, scores = flat_top_k(queries, corpus, 10, ids, chunk_rows=700)  # five chunks, merged
    assert np.array_equal(idx, ref_idx)
    np.testing.assert_allclose(scores, ref_scores, atol=1e-5)
    # k larger than the corpus is clipped, as in numpy.
    assert flat_top_k(queries[:2], corpus[:7], 10, ids[:7])[0].shape == (2, 7)


def test_faiss_exact_search_breaks_ties_by_ascending_id_like_numpy():
    # Small integer vectors score exactly, so many passages tie, also across chunk borders; ids are
    # not in row order, so "ties by id" differs from "ties by row".
    rng = np.random.default_rng(3)
    corpus = rng.integers(0, 2, (400, 6)).astype(np.float32)
    queries = rng.integers(0, 2, (30, 6)).astype(np.float32)
    ids = [f"id-{v}" for v in rng.permutation(400)]
    ref_idx, ref_scores = top_k(queries, corpus, 5, ids)
    idx, scores = flat_top_k(queries, corpus, 5, ids, chunk_rows=64)
    assert np.array_equal(idx, ref_idx) and np.array_equal(scores, ref_scores)
    for row in range(len(queries)):  # best first; equal scores in ascending id order
        pairs = list(zip(-scores[row], [ids[i] for i in idx[row]]))
        assert pairs == sorted(pairs)


def test_auto_switches_from_numpy_to_faiss_above_the_threshold(monkeypatch):
    corpus, queries = _unit(300, 16, 4), _unit(5, 16, 5)
    ids = [str(i) for i in range(300)]
    assert search(queries, corpus, 3, ids).method == "exact"  # 300 <= NUMPY_MAX_PASSAGES
    monkeypatch.setattr(search_module, "NUMPY_MAX_PASSAGES", 299)
    above = search(queries, corpus, 3, ids)
    assert above.method == "flat" and above.exact and above.recall is None
    assert np.array_equal(above.indices, top_k(queries, corpus, 3, ids)[0])
    with pytest.raises(EvaluationError, match="auto, exact, flat, ivf, hnsw"):
        search(queries, corpus, 3, ids, index="annoy")


@pytest.mark.parametrize("method", ["ivf", "hnsw"])
def test_approximate_search_reports_its_recall_against_exact(method):
    corpus, queries = _clustered(4000, 32, 40, 6), _clustered(300, 32, 40, 7)
    ids = [f"p{i}" for i in range(len(corpus))]
    found = search(queries, corpus, 10, ids, index=method, recall_sample=120, seed=2)
    assert found.method == method and not found.exact
    assert found.recall_queries == 120 and 0.0 <= found.recall <= 1.0
    # The reported figure is the recall of these very results on the sampled queries.
    rows = np.sort(np.random.default_rng(2).choice(300, size=120, replace=False))
    exact = top_k(queries[rows], corpus, 10, ids)[0]
    direct = np.mean([len(set(found.indices[r]) & set(e)) / 10 for r, e in zip(rows, exact)])
    assert found.recall == pytest.approx(direct)
    assert found.describe()["recall@10_vs_exact"] == found.recall
    assert f"recall@10 against exact search {found.recall:.3f} on 120 sampled queries" in found.note()
    # Returning the exact answer scores 1; returning nothing scores 0.
    assert recall_against_exact(queries, corpus, top_k(queries, corpus, 10, ids)[0], 10, ids, 50)[0] == 1.0
    assert recall_against_exact(queries, corpus, np.full((300, 10), -1), 10, ids, 50)[0] == 0.0


def test_approximate_search_recall_reaches_the_report(tiny_model_path, tmp_path):
    ds = evaluation_topics_dataset(n_docs=40)
    exact = evaluate_embeddings(str(tiny_model_path), ds, k_values=(1, 5), cache=False)
    assert exact.search["method"] == "exact" and "recall@5_vs_exact" not in exact.search
    cmp = compare_models({"base": str(tiny_model_path)}, ds, k_values=(1, 5), cache=False, index="ivf",
                         n_bootstrap=50, n_permutations=50)
    result = cmp.results["base"]
    assert result.search["method"] == "ivf" and 0.0 <= result.search["recall@5_vs_exact"] <= 1.0
    paths = cmp.save(tmp_path / "report")
    note = result.search["note"]
    assert note.startswith("approximate search (FAISS IVF): recall@5 against exact search")
    assert note in paths["markdown"].read_text()
    assert json.loads(paths["json"].read_text())["models"]["base"]["search"]["recall@5_vs_exact"] == result.search["recall@5_vs_exact"]
    assert note in paths["html"].read_text(encoding="utf-8")


def test_vector_file_is_memory_mapped_and_resumes_after_a_crash(tmp_path):
    data = _unit(50, 8, 9)
    calls = []

    def failing(start, stop):
        calls.append(start)
        if start >= 20:
            raise KeyboardInterrupt
        return data[start:stop]

    path = tmp_path / "v.npy"
    with pytest.raises(KeyboardInterrupt):
        write_vectors(path, 50, failing, chunk_rows=10)
    assert not path.exists() and read_vectors(path) is None  # no half-written file in place
    calls.clear()
    out = write_vectors(path, 50, lambda s, e: (calls.append(s), data[s:e])[1], chunk_rows=10)
    assert calls == [20, 30, 40]  # the two finished chunks were not encoded again
    assert isinstance(out, np.memmap) and not out.flags.writeable
    assert np.array_equal(np.asarray(out), data)
    assert not [p.name for p in tmp_path.iterdir() if "partial" in p.name]
    assert read_vectors(path, expected_rows=51) is None


def test_two_writers_of_one_file_take_turns_and_encode_once(tmp_path):
    import threading

    data = _unit(30, 4, 11)
    calls = []

    def slow(start, stop):
        calls.append(start)
        time.sleep(0.05)
        return data[start:stop]

    results = []
    threads = [threading.Thread(target=lambda: results.append(write_vectors(tmp_path / "v.npy", 30, slow, chunk_rows=10)))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == [0, 10, 20]  # the second writer read the first one's file
    assert len(results) == 2 and all(np.array_equal(r, data) for r in results)


def test_embedding_cache_round_trip_float32_and_float16(tmp_path):
    texts = [f"passage {i}" for i in range(40)]
    vectors = _unit(40, 16, 10)
    f32 = EmbeddingCache(tmp_path, chunk_rows=16)
    f16 = EmbeddingCache(tmp_path, dtype="float16", chunk_rows=16)
    p32, p16 = f32.put("fp", texts, vectors), f16.put("fp", texts, vectors)
    assert p32 != p16  # the dtype is part of the key
    back32, back16 = f32.get("fp", texts), f16.get("fp", texts)
    assert isinstance(back32, np.memmap) and back32.dtype == np.float32 and np.array_equal(back32, vectors)
    assert back16.dtype == np.float16 and np.abs(back16.astype(np.float32) - vectors).max() < 1e-3
    assert p16.stat().st_size < 0.6 * p32.stat().st_size
    assert f32.get("fp", texts[:-1]) is None  # other texts, another key
    # Searching the float16 matrix converts chunks to float32 and finds the same neighbours here.
    ids = [str(i) for i in range(40)]
    assert np.array_equal(search(vectors[:5], back16, 5, ids).indices, search(vectors[:5], back32, 5, ids).indices)
    with pytest.raises(ValueError, match="float32, float16"):
        EmbeddingCache(tmp_path, dtype="int8")


def test_mining_finds_the_same_negatives_through_faiss_as_through_numpy(tiny_model_path):
    from sentence_transformers import SentenceTransformer

    from llama_index_bge_finetune.training import HardNegativeMiner

    ds = evaluation_topics_dataset(n_docs=40)
    model = SentenceTransformer(str(tiny_model_path), device="cpu")
    pairs = [(q, docs[0]) for q, docs in ds.relevant_docs.items()]
    mined = {index: HardNegativeMiner(num_negatives=2, skip_top=1, max_rank=10, relative_margin=0.0, index=index).mine(
        model, ds.queries, ds.corpus, ds.relevant_docs, pairs) for index in ("exact", "flat")}
    assert mined["exact"] == mined["flat"] and any(mined["exact"])
    with pytest.raises(ValueError, match="auto, exact, flat, ivf, hnsw"):
        HardNegativeMiner(index="annoy")
