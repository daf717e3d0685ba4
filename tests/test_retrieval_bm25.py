"""BM25Index on 500 real SciFact abstracts: retrieval, agreement with bm25s, verified save/load, rebuilds, errors."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import List, Tuple

import numpy as np
import pytest

from llama_index_bge_finetune.errors import (
    BgeFinetuneError,
    BM25IndexCorrupt,
    EmptyVocabularyError,
    MissingFilesError,
    OutputExistsError,
)
from llama_index_bge_finetune.retrieval.bm25 import META_NAME, BM25Index, BM25Settings, text_digest

PASSAGES = 500
LOGGER = "llama_index_bge_finetune.retrieval.bm25"


@pytest.fixture(scope="module")
def scifact_passages(shared_data: Path) -> Tuple[List[str], List[str]]:
    """(texts, ids) of the first 500 SciFact abstracts, title and text as one field."""
    path = shared_data / "scifact" / "corpus.jsonl"
    if not path.is_file():
        pytest.skip(f"SciFact corpus not found at {path}")
    texts, ids = [], []
    with open(path, encoding="utf-8") as f:
        for line, _ in zip(f, range(PASSAGES)):
            row = json.loads(line)
            texts.append((row.get("title", "") + " " + row["text"]).strip())
            ids.append(str(row["_id"]))
    return texts, ids


@pytest.fixture(scope="module")
def index(scifact_passages: Tuple[List[str], List[str]]) -> BM25Index:
    return BM25Index.build(*scifact_passages, BM25Settings())


def test_a_span_copied_from_a_passage_retrieves_that_passage_first(scifact_passages, index):
    texts, ids = scifact_passages
    picked = list(range(0, PASSAGES, 25))
    queries = [" ".join(texts[i].split()[10:25]) for i in picked]
    top, scores = index.top_k(queries, k=5)
    assert top.shape == scores.shape == (len(picked), 5)
    assert list(top[:, 0]) == [ids[i] for i in picked]
    assert np.all(np.diff(scores, axis=1) <= 0)  # best first
    assert index.n_docs == PASSAGES and index.n_terms > 5000


def test_scores_agree_with_bm25s_and_top_k_agrees_with_score_all(scifact_passages, index):
    import bm25s
    import Stemmer

    texts, ids = scifact_passages
    questions = ["Vitamin D deficiency and the risk of fractures", "microRNA regulation of stem cell differentiation",
                 "does smoking increase the risk of tuberculosis?"]
    stemmer = Stemmer.Stemmer("english")
    reference = bm25s.BM25(k1=1.5, b=0.75, method="lucene")
    reference.index(bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False), show_progress=False)
    full = index.score_all(questions)
    assert full.shape == (3, PASSAGES) and full.dtype == np.float32
    for row, q in zip(full, bm25s.tokenize(questions, stopwords="en", stemmer=stemmer, return_ids=False,
                                           show_progress=False)):
        np.testing.assert_allclose(row, reference.get_scores(q), rtol=1e-5, atol=1e-5)
    rows, scores = index.top_k_rows(questions, k=10)
    for r in range(3):
        expected = sorted(range(PASSAGES), key=lambda j: (-full[r, j], ids[j]))[:10]
        assert list(rows[r]) == expected
        np.testing.assert_array_equal(scores[r], full[r, expected])


def test_a_query_with_no_corpus_term_scores_zero_and_ranks_by_id(index):
    rows, scores = index.top_k_rows(["zzqx qqzv"], k=3)
    assert np.all(scores == 0)
    assert [index.ids[r] for r in rows[0]] == sorted(index.ids)[:3]
    assert index.top_k("zzqx", k=10_000)[0].shape == (1, PASSAGES)  # one string is one query; k clipped


def test_save_and_load_round_trip_the_scores_exactly(tmp_path, index):
    questions = ["cancer cell proliferation", "antibiotic resistance in bacteria"]
    folder = index.save(tmp_path / "bm25")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bm25"]  # no temporary folder left behind
    meta = json.loads((folder / META_NAME).read_text())
    assert meta["n_docs"] == PASSAGES and meta["ids"] == index.ids and meta["settings"] == index.settings.to_dict()
    assert {"data.csc.index.npy", "vocab.index.json", "params.index.json"} <= set(meta["files"])
    loaded = BM25Index.load(folder)
    assert (loaded.ids, loaded.settings, loaded.digest) == (index.ids, index.settings, index.digest)
    np.testing.assert_array_equal(loaded.score_all(questions), index.score_all(questions))
    index.save(folder)  # replacing an existing index is allowed
    assert BM25Index.load(folder).digest == index.digest


def test_a_corrupted_file_is_refused_and_load_or_build_rebuilds_with_one_warning(tmp_path, scifact_passages, index,
                                                                                 caplog):
    texts, ids = scifact_passages
    folder = index.save(tmp_path / "bm25")
    data = folder / "data.csc.index.npy"
    raw = bytearray(data.read_bytes())
    raw[-7] ^= 0xFF
    data.write_bytes(bytes(raw))
    with pytest.raises(BM25IndexCorrupt, match="data.csc.index.npy fails its checksum") as err:
        BM25Index.load(folder)
    assert isinstance(err.value, BgeFinetuneError)
    with caplog.at_level(logging.INFO, logger=LOGGER):
        rebuilt = BM25Index.load_or_build(folder, texts, ids, BM25Settings())
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "Rebuilding" in warnings[0].getMessage() and "checksum" in warnings[0].getMessage()
    np.testing.assert_array_equal(rebuilt.score_all(["protein folding"]), index.score_all(["protein folding"]))
    assert BM25Index.load(folder).digest == index.digest  # the rebuilt folder is sound again


def test_load_or_build_reuses_a_matching_index_and_rebuilds_on_other_texts_or_settings(tmp_path, scifact_passages,
                                                                                      caplog):
    texts, ids = scifact_passages[0][:60], scifact_passages[1][:60]
    folder = tmp_path / "bm25"
    with caplog.at_level(logging.INFO, logger=LOGGER):
        BM25Index.load_or_build(folder, texts, ids)
    assert [r.levelno for r in caplog.records if r.levelno >= logging.WARNING] == []  # a first build is no warning
    caplog.clear()
    with caplog.at_level(logging.INFO, logger=LOGGER):
        BM25Index.load_or_build(folder, texts, ids)
    assert not caplog.records  # loaded, not rebuilt
    edited = texts[:-1] + [texts[-1] + " edited"]
    cases = [(edited, BM25Settings(), "other texts"), (edited, BM25Settings(k1=1.2), "other settings")]
    for new_texts, settings, reason in cases:
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger=LOGGER):
            got = BM25Index.load_or_build(folder, new_texts, ids, settings)
        assert len(caplog.records) == 1 and reason in caplog.records[0].getMessage()
        assert got.digest == text_digest(new_texts, ids) and got.settings == settings


def test_a_folder_without_its_meta_file_is_corrupt_and_a_missing_one_is_reported(tmp_path, scifact_passages):
    texts, ids = scifact_passages[0][:30], scifact_passages[1][:30]
    folder = BM25Index.build(texts, ids).save(tmp_path / "bm25")
    (folder / META_NAME).unlink()
    with pytest.raises(BM25IndexCorrupt, match="bm25_meta.json is missing"):
        BM25Index.load(folder)
    with pytest.raises(MissingFilesError, match="No BM25 index at"):
        BM25Index.load(tmp_path / "nowhere")


def test_save_refuses_a_folder_holding_other_files(tmp_path, scifact_passages):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    with pytest.raises(OutputExistsError, match="notes.txt"):
        BM25Index.build(scifact_passages[0][:10], scifact_passages[1][:10]).save(folder)
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]
    assert len(list(tmp_path.iterdir())) == 1  # and no temporary folder was left


@pytest.mark.parametrize("texts", [["The of and", "it is as it is", "to be or not to be"],
                                   ["!!! ???", "— … ·", "a b c"]],
                         ids=["only-stopwords", "nothing-the-tokenizer-keeps"])
def test_an_empty_vocabulary_raises_a_clear_error_and_writes_nothing(tmp_path, texts):
    ids = [f"d{i}" for i in range(len(texts))]
    with pytest.raises(EmptyVocabularyError, match=r"no terms .* language='english', stopwords='en'.*stopwords=None"):
        BM25Index.load_or_build(tmp_path / "bm25", texts, ids)
    assert not (tmp_path / "bm25").exists()
    if texts[0] == "The of and":
        kept = BM25Index.build(texts, ids, BM25Settings(stopwords=None))
        assert kept.top_k(["as it is"], 1)[0][0, 0] == "d1"


def test_settings_round_trip_and_validate():
    s = BM25Settings(language=None, stopwords=["The", "of", "of"], k1=1.2, b=0.5, method="bm25+")
    assert s.stopwords == ("of", "the")
    assert BM25Settings.from_dict(json.loads(json.dumps(s.to_dict()))) == s
    assert BM25Settings.from_dict(BM25Settings().to_dict()) == BM25Settings()
    for bad, message in [({"language": "klingon"}, "english"), ({"stopwords": "xx"}, "'en'"),
                         ({"method": "bm26"}, "lucene"), ({"b": 2.0}, "b in")]:
        with pytest.raises(ValueError, match=message):
            BM25Settings(**bad)
    with pytest.raises(TypeError, match="a list of words or None"):
        BM25Settings(stopwords=5)
    with pytest.raises(ValueError, match="Unknown BM25 setting"):
        BM25Settings.from_dict({**BM25Settings().to_dict(), "delta": 0.5})


def test_stemming_and_corpus_checks():
    texts = ["The Moon pulls the oceans into tides.", "Cats purr when they are content."]
    stemmed, plain = BM25Index.build(texts, ["a", "b"]), BM25Index.build(texts, ["a", "b"], BM25Settings(language=None))
    assert stemmed.score_all(["pulling tide"])[0, 0] > 0 and plain.score_all(["pulling tide"])[0, 0] == 0
    with pytest.raises(ValueError, match="unique; 'a' repeats"):
        BM25Index.build(texts, ["a", "a"])
    with pytest.raises(ValueError, match="one id per text"):
        BM25Index.build(texts, ["a"])
