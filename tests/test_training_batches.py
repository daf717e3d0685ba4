"""Batches never hold the same passage twice; hard negatives respect the false-negative guard; every pair trains."""

from __future__ import annotations

import numpy as np
import pytest

from llama_index_bge_finetune.dataset import EmbeddingQAFinetuneDataset
from llama_index_bge_finetune.training import HardNegativeMiner, SentenceTransformersFinetuneEngine
from llama_index_bge_finetune.training.examples import query_positive_pairs, training_table
from tests.training_data import topics_dataset


def _recording_loss(model):
    """A real MultipleNegativesRankingLoss that also records the passages of every batch it sees."""
    from sentence_transformers.losses import MultipleNegativesRankingLoss

    class Recording(MultipleNegativesRankingLoss):
        batches: list = []

        def forward(self, sentence_features, labels=None):
            tok = self.model.tokenizer
            passages = []
            for features in sentence_features[1:]:
                passages += tok.batch_decode(features["input_ids"], skip_special_tokens=True)
            self.batches.append(passages)
            return super().forward(sentence_features, labels)

    return Recording(model)


def test_no_passage_twice_in_a_batch(tiny_model_path, tmp_path):
    from sentence_transformers import SentenceTransformer

    # 12 passages x 3 questions: a plain sequential batch of 8 would hold each passage ~3 times.
    ds = topics_dataset(12, 3)
    model = SentenceTransformer(str(tiny_model_path), device="cpu")
    loss = _recording_loss(model)
    engine = SentenceTransformersFinetuneEngine(
        ds, model_id=str(tiny_model_path), model_output_path=str(tmp_path / "o"), batch_size=8, loss=loss,
        epochs=2, show_progress_bar=False, hard_negatives=0,
    )
    engine.finetune()
    assert engine.model is model
    # No row is left out and batches are even: 36 rows are 5 batches of 7 or 8 per epoch, not 4 x 8
    # and a batch of 4 (few in-batch negatives), although each passage is in 3 rows.
    assert len(loss.batches) == 10 and sum(len(b) for b in loss.batches) == 72
    assert {len(b) for b in loss.batches} == {7, 8}
    for passages in loss.batches:
        assert len(passages) == len(set(passages)), passages


def _echo_dataset(n: int = 30) -> EmbeddingQAFinetuneDataset:
    """Each query's positive is the query's own text, so it ranks first with score 1.0."""
    from pydoc_data.topics import topics

    names = sorted(topics)[:n]
    corpus = {f"d{i}": " ".join(topics[name].split())[:200] for i, name in enumerate(names)}
    queries = {f"q{i}": corpus[f"d{i}"] for i in range(n)}
    return EmbeddingQAFinetuneDataset(queries=queries, corpus=corpus, relevant_docs={q: ["d" + q[1:]] for q in queries})


def test_mined_negatives_skip_top_ranks_and_margin(tiny_model_path, tmp_path):
    from sentence_transformers import SentenceTransformer

    ds = _echo_dataset()
    ds.relevant_docs["q0"] = ["d0", "d1"]  # a second relevant passage is never a negative
    model = SentenceTransformer(str(tiny_model_path), device="cpu")
    pairs = query_positive_pairs(ds, use_all_docs=True)
    # The random tiny model scores most passage pairs 0.98-0.99, so a 1.5% margin is a real filter here.
    miner = HardNegativeMiner(num_negatives=2, skip_top=3, max_rank=20, relative_margin=0.015, cache_dir=tmp_path / "c")
    negs = miner.mine(model, ds.queries, ds.corpus, ds.relevant_docs, pairs)
    assert len(negs) == len(pairs)
    assert len(pairs) // 3 <= sum(1 for n in negs if n) < len(pairs)

    ids = list(ds.corpus)
    docs = model.encode([ds.corpus[d] for d in ids], normalize_embeddings=True)
    for (qid, pos), chosen in zip(pairs, negs):
        q = model.encode(ds.queries[qid], normalize_embeddings=True)
        scores = {d: float(docs[i] @ q) for i, d in enumerate(ids)}
        ranked = sorted((d for d in ids if d not in ds.relevant_docs[qid]), key=lambda d: -scores[d])
        assert len(chosen) <= 2
        for d in chosen:
            assert d not in ds.relevant_docs[qid]
            assert d not in ranked[:3], "a top-ranked (likely unlabelled positive) passage was used"
            assert d in ranked[:20]
            assert scores[d] <= scores[pos] * 0.985 + 1e-5
    # The corpus embeddings were cached; a second call reads them back.
    cached = list((tmp_path / "c").glob("*.npy"))
    assert len(cached) == 1
    stamp = cached[0].stat().st_mtime_ns
    assert miner.mine(model, ds.queries, ds.corpus, ds.relevant_docs, pairs) == negs
    assert cached[0].stat().st_mtime_ns == stamp


def test_pairs_without_a_qualifying_negative_are_kept(tiny_model_path):
    from sentence_transformers import SentenceTransformer

    ds = _echo_dataset(12)
    model = SentenceTransformer(str(tiny_model_path), device="cpu")
    pairs = query_positive_pairs(ds, use_all_docs=False)
    strict = HardNegativeMiner(num_negatives=1, skip_top=0, max_rank=5, relative_margin=0.99)
    negs = strict.mine(model, ds.queries, ds.corpus, ds.relevant_docs, pairs)
    negs = [[] for _ in pairs]
    negs[0] = ["d5"]  # one pair with a mined negative, the rest without
    table, mined, _ = training_table(ds, pairs, negs, seed=1)
    # One table, so batches are never split by width: every pair trains with a negative.
    assert len(table) == len(pairs) and mined == 1
    assert table.column_names == ["anchor", "positive", "negative_1"]
    assert table[0]["negative_1"] == ds.corpus["d5"]
    for (qid, pos), row in zip(pairs, table):
        assert row["negative_1"] not in {ds.corpus[d] for d in ds.relevant_docs[qid]}, "a random negative is relevant"
        assert row["negative_1"] != row["positive"]


def test_negatives_are_cut_to_a_verbatim_prefix(tiny_model_path):
    from sentence_transformers import SentenceTransformer

    ds = _echo_dataset(6)
    model = SentenceTransformer(str(tiny_model_path), device="cpu")
    pairs = query_positive_pairs(ds, use_all_docs=False)
    long_text = " ".join(["alpha beta gamma"] * 40)
    ds.corpus["d5"] = long_text
    table, _, keys = training_table(ds, pairs, [["d5"]] + [[] for _ in pairs[1:]], negative_max_tokens=8,
                                    tokenizer=model.tokenizer)
    cut = table[0]["negative_1"]
    assert long_text.startswith(cut) and 0 < len(cut) < len(long_text)
    assert len(model.tokenizer(cut, add_special_tokens=False)["input_ids"]) == 8
    assert table[0]["positive"] == ds.corpus[pairs[0][1]], "positives are never cut"
    # The batch keys stand for the full passage, so the cut negative still clashes with d5 as a positive.
    d5_row = [doc for _, doc in pairs].index("d5")
    assert keys[0][2] == keys[d5_row][1], "the cut negative and the positive d5 have different keys"
    assert len(set(keys[0])) == 3 and all(isinstance(k, int) for k in keys[0])


def test_bad_miner_settings():
    from llama_index_bge_finetune.errors import TrainingError

    with pytest.raises(TrainingError, match="skip_top"):
        HardNegativeMiner(skip_top=10, max_rank=5)
    with pytest.raises(TrainingError, match="relative_margin"):
        HardNegativeMiner(relative_margin=1.5)


def test_engine_trains_with_mined_negatives(tiny_model_path, tmp_path):
    engine = SentenceTransformersFinetuneEngine(
        _echo_dataset(24), model_id=str(tiny_model_path), model_output_path=str(tmp_path / "o"), batch_size=8,
        epochs=2, show_progress_bar=False, hard_negatives=1, hard_negative_skip_top=1,
    )
    engine.finetune()
    res = engine.result
    # 24 rows, each with two of the 24 passages: 3 batches an epoch, 2 epochs (given), however the rows clash.
    assert res.steps == 6
    assert res.pairs == 24 and 0 < res.pairs_with_negatives <= 24
    assert res.hyperparameters["hard_negatives"]["num_negatives"] == 1
    assert np.isfinite(res.final_loss)


def test_mining_ranks_passages_by_their_opening_and_restores_the_length(tiny_model_path, tmp_path):
    from sentence_transformers import SentenceTransformer

    ds = _echo_dataset(12)
    model = SentenceTransformer(str(tiny_model_path), device="cpu")
    full = model.max_seq_length
    pairs = query_positive_pairs(ds, use_all_docs=False)
    seen = []
    original = model.encode
    model.encode = lambda texts, **k: seen.append(model.max_seq_length) or original(texts, **k)
    HardNegativeMiner(num_negatives=1, skip_top=1, max_seq_length=16, cache_dir=tmp_path).mine(
        model, ds.queries, ds.corpus, ds.relevant_docs, pairs)
    assert seen[0] == 16, "the corpus was not encoded at the mining length"
    assert model.max_seq_length == full and seen[1] == full, "queries or the model kept the short length"


def test_batches_are_even_so_no_rows_are_left_out():
    from llama_index_bge_finetune.training.sampler import even_batches

    assert even_batches(150, 32) == (5, 30)  # 5 x 30: nothing left out (batches of 32 would leave 22 rows)
    assert even_batches(809, 32) == (26, 32)  # 26 batches of 31 or 32 rows
    assert even_batches(640, 32) == (20, 32)
    assert even_batches(20, 32) == (1, 20)  # smaller than a batch: one batch of everything
    for rows in range(33, 400):
        batches, largest = even_batches(rows, 32)
        assert rows // batches >= 16 and largest <= 32 and batches * largest >= rows


def test_mining_pool_ranks_every_positive_plus_a_seeded_sample(tiny_model_path):
    from sentence_transformers import SentenceTransformer

    from llama_index_bge_finetune.training.engine import mining_pool_size

    # 4 questions over 40 passages: the pool of 10 is the 4 positives plus 6 others, the same on every run.
    ds = topics_dataset(40, 1)
    ds = EmbeddingQAFinetuneDataset(queries=dict(list(ds.queries.items())[:4]), corpus=ds.corpus,
                                    relevant_docs={q: ds.relevant_docs[q] for q in list(ds.queries)[:4]})
    model = SentenceTransformer(str(tiny_model_path), device="cpu")
    pairs = query_positive_pairs(ds, use_all_docs=False)
    encoded = []
    original = model.encode
    model.encode = lambda texts, **k: encoded.append(list(texts)) or original(texts, **k)
    miner = HardNegativeMiner(num_negatives=1, skip_top=0, relative_margin=0.0, max_pool=10, seed=1)
    first = miner.mine(model, ds.queries, ds.corpus, ds.relevant_docs, pairs)
    pool = encoded[0]
    assert len(pool) == 10 and {ds.corpus[p] for _, p in pairs} <= set(pool)
    assert all(ds.corpus[n] in pool for negs in first for n in negs)
    assert miner.mine(model, ds.queries, ds.corpus, ds.relevant_docs, pairs) == first
    assert encoded[2] == pool, "the sample changed between runs with the same seed"
    assert miner.get_config_dict()["max_pool"] == 10
    # The engine's default: the whole corpus up to 8 passages per pair (at least 1,024).
    assert mining_pool_size(150) == 1200 and mining_pool_size(20) == 1024 and mining_pool_size(809) == 6472
    with pytest.raises(Exception, match="hard_negative_pool"):
        SentenceTransformersFinetuneEngine(ds, model_id=str(tiny_model_path), hard_negative_pool=1)
