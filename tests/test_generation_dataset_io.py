"""The dataset type's I/O: llama-index JSON both ways, JSONL, split, merge, stats, validation."""

from __future__ import annotations

import json

import pytest

from llama_index_bge_finetune import EmbeddingQAFinetuneDataset
from llama_index_bge_finetune.errors import DatasetError
from tests.requirements import PEER, require_module


def _dataset(n_docs: int = 10, per_doc: int = 2, source: str = "llm") -> EmbeddingQAFinetuneDataset:
    corpus = {f"d{i}": f"Passage {i} about topic {i} — naïve café {i}." for i in range(n_docs)}
    queries, relevant = {}, {}
    for i in range(n_docs):
        for j in range(per_doc):
            queries[f"q{i}-{j}"] = f"What about topic {i}, aspect {j}?"
            relevant[f"q{i}-{j}"] = [f"d{i}"]
    return EmbeddingQAFinetuneDataset(queries=queries, corpus=corpus, relevant_docs=relevant, query_source=source)


@pytest.fixture(scope="module")
def peer_cls():
    mod = require_module("llama_index.finetuning", PEER)
    return mod.EmbeddingQAFinetuneDataset


def test_peer_file_loads_in_ours(peer_cls, tmp_path):
    ours = _dataset()
    peer = peer_cls(queries=ours.queries, corpus=ours.corpus, relevant_docs=ours.relevant_docs)
    peer.save_json(str(tmp_path / "peer.json"))
    loaded = EmbeddingQAFinetuneDataset.from_json(tmp_path / "peer.json")
    assert (loaded.queries, loaded.corpus, loaded.relevant_docs, loaded.mode) == (ours.queries, ours.corpus, ours.relevant_docs, "text")
    assert loaded.query_docid_pairs == peer.query_docid_pairs


def test_our_file_loads_in_the_peer(peer_cls, tmp_path):
    ours = _dataset()
    ours.save_json(tmp_path / "ours.json")
    peer = peer_cls.from_json(str(tmp_path / "ours.json"))
    assert (peer.queries, peer.corpus, peer.relevant_docs) == (ours.queries, ours.corpus, ours.relevant_docs)
    assert EmbeddingQAFinetuneDataset.coerce(peer).queries == ours.queries


def test_published_llamaindex_dataset_loads(shared_data):
    ds = EmbeddingQAFinetuneDataset.from_json(shared_data / "llamaindex_10k" / "data" / "train_dataset.json")
    assert ds.validate_or_raise() is ds
    stats = ds.stats()
    assert (stats["queries"], stats["passages"], stats["passages_with_queries"]) == (668, 334, 334)


def test_jsonl_round_trip_keeps_everything(tmp_path):
    ds = _dataset(source="pseudo")
    ds.save_jsonl(tmp_path / "ds.jsonl")
    assert EmbeddingQAFinetuneDataset.from_json(tmp_path / "ds.jsonl") == ds
    lines = (tmp_path / "ds.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1 + 10 + 20 and "naïve" in lines[1]
    (tmp_path / "bad.jsonl").write_text(lines[1] + "\n{\"kind\": \"doc\"}\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"bad.jsonl:2"):
        EmbeddingQAFinetuneDataset.from_json(tmp_path / "bad.jsonl")


def test_split_by_node_with_seed_no_passage_on_both_sides():
    ds = _dataset(n_docs=20, per_doc=3)
    ds.relevant_docs["q0-0"] = ["d0", "d1", "d2"]  # a query with several passages
    train, val = ds.split(val_fraction=0.25, seed=7)
    assert not set(train.corpus) & set(val.corpus)
    assert set(train.corpus) | set(val.corpus) == set(ds.corpus) and len(val.corpus) == 5
    assert set(train.queries) | set(val.queries) == set(ds.queries) and not set(train.queries) & set(val.queries)
    for side in (train, val):
        assert not side.problems()
        for q, docs in side.relevant_docs.items():
            assert all(d in side.corpus for d in docs)
    again_train, again_val = ds.split(val_fraction=0.25, seed=7)
    assert again_val == val and again_train == train
    assert ds.split(val_fraction=0.25, seed=8)[1].corpus != val.corpus
    with pytest.raises(DatasetError, match="val_fraction"):
        ds.split(val_fraction=1.0)


def test_merge_and_conflicts():
    a = _dataset(n_docs=3)
    b = EmbeddingQAFinetuneDataset(
        queries={"x": "Where is topic 1?"}, corpus={"d1": a.corpus["d1"]}, relevant_docs={"x": ["d1"]}, query_source="user"
    )
    merged = EmbeddingQAFinetuneDataset.merge([a, b])
    assert len(merged.queries) == 7 and len(merged.corpus) == 3 and merged.query_source == "mixed"
    assert EmbeddingQAFinetuneDataset.merge([a, a]) == a
    clash = b.model_copy(update={"corpus": {"d1": "another text"}})
    with pytest.raises(DatasetError, match="'d1'"):
        EmbeddingQAFinetuneDataset.merge([a, clash])


def test_stats():
    stats = _dataset(n_docs=4, per_doc=2).stats()
    assert stats["queries"] == 8 and stats["passages"] == 4 and stats["passages_with_queries"] == 4
    assert stats["avg_query_words"] == pytest.approx(6.0)
    assert EmbeddingQAFinetuneDataset(queries={}, corpus={}, relevant_docs={}).stats()["avg_query_words"] == 0.0


def test_validation_names_every_problem():
    bad = EmbeddingQAFinetuneDataset(
        queries={"q1": "  ", "q2": "Fine question?", "q3": "Dangling?", "q4": "Twice?"},
        corpus={"d1": "text", "d2": "more"},
        relevant_docs={"q1": ["d1"], "q2": ["d2"], "q3": ["missing-doc"], "q4": ["d1", "d1"], "ghost": ["d1"]},
    )
    with pytest.raises(DatasetError) as err:
        bad.validate_or_raise("train dataset")
    message = str(err.value)
    for words in ("1 queries are empty", "not in the corpus", "missing-doc", "unknown queries", "same relevant id twice", "clean()"):
        assert words in message
    cleaned = bad.clean()
    assert set(cleaned.queries) == {"q2", "q4"} and cleaned.relevant_docs["q4"] == ["d1"] and not cleaned.problems()
    with pytest.raises(DatasetError, match="empty"):
        EmbeddingQAFinetuneDataset(queries={}, corpus={}, relevant_docs={}).validate_or_raise()


def test_duplicate_ids_in_a_file_are_an_error(tmp_path):
    # json.loads keeps the last of two equal keys silently; a hand-merged file must not lose queries quietly.
    text = '{"queries": {"q1": "First?", "q1": "Second?"}, "corpus": {"d1": "x"}, "relevant_docs": {"q1": ["d1"]}}'
    (tmp_path / "dup.json").write_text(text)
    with pytest.raises(DatasetError, match="q1"):
        EmbeddingQAFinetuneDataset.from_json(tmp_path / "dup.json")
    lines = [
        {"kind": "doc", "id": "d1", "text": "x"},
        {"kind": "query", "id": "q1", "text": "First?", "relevant_docs": ["d1"]},
        {"kind": "query", "id": "q1", "text": "Second?", "relevant_docs": ["d1"]},
    ]
    (tmp_path / "dup.jsonl").write_text("\n".join(json.dumps(x) for x in lines))
    with pytest.raises(DatasetError, match="q1"):
        EmbeddingQAFinetuneDataset.from_json(tmp_path / "dup.jsonl")


def test_file_errors_name_the_fix(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        EmbeddingQAFinetuneDataset.from_json(tmp_path / "nope.json")
    (tmp_path / "broken.json").write_text('{"queries": {')
    with pytest.raises(DatasetError, match="not valid JSON"):
        EmbeddingQAFinetuneDataset.from_json(tmp_path / "broken.json")
    (tmp_path / "partial.json").write_text('{"queries": {}}')
    with pytest.raises(DatasetError, match="corpus, relevant_docs"):
        EmbeddingQAFinetuneDataset.from_json(tmp_path / "partial.json")
    (tmp_path / "types.json").write_text('{"queries": [], "corpus": {}, "relevant_docs": {}}')
    with pytest.raises(DatasetError, match="wrong type"):
        EmbeddingQAFinetuneDataset.from_json(tmp_path / "types.json")
