"""Input checked for what it is: binary files, huge text files, broken PDFs, empty nodes, empty passages,
and the older cores' ``aevaluate_dataset`` signature."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import pytest
from llama_index.core.schema import TextNode

from llama_index_bge_finetune import ingest, pipeline
from llama_index_bge_finetune.dataset import EmbeddingQAFinetuneDataset
from llama_index_bge_finetune.errors import DatasetError, GenerationError, InputDocumentsError
from llama_index_bge_finetune.generation import OfflineQuestionGenerator, QuestionGenerator
from llama_index_bge_finetune.ingest import LoadReport, chunk_documents, load_documents
from tests.generation_helpers import generation_nodes, local_llm


# ------------------------------------------------------------------ binary and broken files
def test_binary_files_are_skipped_by_content_whatever_their_name(tmp_path: Path) -> None:
    (tmp_path / "photo.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + os.urandom(2048))
    (tmp_path / "noise.md").write_bytes(bytes(range(1, 32)) * 100)  # control characters, no NUL
    (tmp_path / "blob.txt").write_bytes(b"text\x00" * 100)
    (tmp_path / "latin.txt").write_bytes("Café crème brûlée, a real note.".encode("cp1252"))
    report = LoadReport()
    docs = load_documents(tmp_path, report)
    assert [d.id_ for d in docs] == ["latin.txt"]
    reasons = dict(report.skipped)
    assert "PNG image" in reasons["photo.txt"] and "not text" in reasons["photo.txt"]
    assert "control characters" in reasons["noise.md"]
    assert "NUL bytes" in reasons["blob.txt"]


def test_broken_pdfs_are_named_in_plain_words(tmp_path: Path) -> None:
    (tmp_path / "truncated.pdf").write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog")
    (tmp_path / "image.pdf").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(64))
    (tmp_path / "empty.pdf").write_bytes(b"")
    with pytest.raises(InputDocumentsError) as err:
        load_documents(tmp_path)
    message = str(err.value)
    for words in ("truncated.pdf: a damaged or truncated PDF", "image.pdf: not a PDF (a PNG image)",
                  "empty.pdf: not a PDF", "re-export or re-download"):
        assert words in message
    assert "RetryError" not in message and "Future" not in message


# ------------------------------------------------------------------ huge text files
def test_a_long_text_file_streams_in_bounded_segments(tmp_path: Path) -> None:
    """3 MB with no line break at all: cut losslessly into segments the sentence splitter handles."""
    words = ("lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor. " * 40000)[:3_000_000]
    (tmp_path / "huge.txt").write_text(words, encoding="utf-8")
    docs = load_documents(tmp_path)
    assert len(docs) >= len(words) // ingest.SEGMENT_CHARS
    assert max(len(d.text) for d in docs) <= ingest.SEGMENT_CHARS
    assert "".join(d.text for d in docs) == words, "segmenting loses nothing"
    assert [d.id_ for d in docs][:2] == ["huge.txt#part=1", "huge.txt#part=2"]
    assert all(d.text.endswith(" ") for d in docs[:-1]), "cut at word boundaries"
    t0 = time.perf_counter()
    nodes = chunk_documents(docs[:2], chunk_size=512, chunk_overlap=32)
    per_mb = (time.perf_counter() - t0) / (sum(len(d.text) for d in docs[:2]) / 2**20)
    assert nodes and per_mb < 30, f"{per_mb:.1f} s per MB"  # ~2 s/MB on a loaded 2-core EPYC


def test_a_text_file_above_the_limit_is_refused_with_a_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ingest, "MAX_TEXT_FILE_BYTES", 2**20)
    (tmp_path / "big.txt").write_bytes(b"word " * 300_000)
    (tmp_path / "small.txt").write_text("A small file with enough text to keep.", encoding="utf-8")
    report = LoadReport()
    assert [d.id_ for d in load_documents(tmp_path, report)] == ["small.txt"]
    assert report.skipped == [("big.txt", "1 MB, above the 1 MB limit for one text file; split it into smaller files")]


def test_segments_cut_at_paragraphs_and_keep_stable_ids(tmp_path: Path) -> None:
    para = "A sentence about parsers. " * 50 + "\n\n"
    (tmp_path / "book.md").write_text(para * 400, encoding="utf-8")
    first = load_documents(tmp_path)
    assert len(first) > 1 and all(d.text.endswith("\n\n") for d in first[:-1])
    assert [d.id_ for d in first] == [d.id_ for d in load_documents(tmp_path)]


# ------------------------------------------------------------------ empty nodes are never asked about
def test_empty_and_near_empty_nodes_are_skipped_before_any_request(openai_server, tmp_path: Path) -> None:
    nodes = generation_nodes(3) + [TextNode(id_="blank", text=""), TextNode(id_="page-no", text="  - 12 -  ")]
    gen = QuestionGenerator(llm=local_llm(openai_server), max_in_flight=2, backoff_base=0.01, backoff_max=0.1)
    result = gen.generate(nodes)
    assert openai_server.chat_requests == 3, "the empty nodes cost nothing"
    assert set(result.dataset.corpus) == {"node-0", "node-1", "node-2"}
    skipped = {f.node_id: f for f in result.failures}
    assert set(skipped) == {"blank", "page-no"} and all(f.kind == "skipped" and f.attempts == 0 for f in skipped.values())
    assert skipped["page-no"].chars == len("- 12 -")
    pipeline.write_failures(tmp_path / "failures.jsonl", result.failures)
    lines = [json.loads(line) for line in (tmp_path / "failures.jsonl").read_text().splitlines()]
    assert lines == [{"node_id": "blank", "reason": skipped["blank"].reason, "attempts": 0, "kind": "skipped", "chars": 0},
                     {"node_id": "page-no", "reason": skipped["page-no"].reason, "attempts": 0, "kind": "skipped",
                      "chars": 6}]
    assert "2 skipped as empty or near-empty" in pipeline.failure_summary(result.failures)


def test_a_generation_with_no_question_fails_naming_the_cause(tmp_path: Path) -> None:
    nodes = [TextNode(id_="a", text=""), TextNode(id_="b", text="...")]
    with pytest.raises(GenerationError, match="No question was written for any of the 2 chunks: 2 skipped") as err:
        pipeline.generate_dataset(nodes, OfflineQuestionGenerator(), tmp_path)
    assert "failures.jsonl" in str(err.value)
    assert len((tmp_path / "failures.jsonl").read_text().splitlines()) == 2
    assert not (tmp_path / "dataset.json").exists()


# ------------------------------------------------------------------ empty passages
def _with_empty_passage(referenced: bool) -> EmbeddingQAFinetuneDataset:
    corpus = {f"d{i}": f"Passage number {i} about topic {i}." for i in range(4)}
    corpus["blank-page"] = "   "
    queries = {f"q{i}": f"What is topic {i}?" for i in range(4)}
    relevant = {f"q{i}": [f"d{i}"] for i in range(4)}
    if referenced:
        relevant["q0"] = ["blank-page"]
    return EmbeddingQAFinetuneDataset(queries=queries, corpus=corpus, relevant_docs=relevant)


def test_unreferenced_empty_passages_are_dropped_with_one_warning(tiny_model_path: Path, tmp_path: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    from llama_index_bge_finetune.training import SentenceTransformersFinetuneEngine

    with caplog.at_level(logging.WARNING, logger="llama_index_bge_finetune"):
        engine = SentenceTransformersFinetuneEngine(_with_empty_passage(referenced=False), model_id=str(tiny_model_path),
                                                    model_output_path=str(tmp_path / "m"))
    assert "blank-page" not in engine.dataset.corpus and len(engine.dataset.corpus) == 4
    warnings = [r for r in caplog.records if "empty passages that no query points at" in r.getMessage()]
    assert len(warnings) == 1


def test_a_question_pointing_at_an_empty_passage_is_still_an_error() -> None:
    with pytest.raises(DatasetError, match="1 passages are empty"):
        _with_empty_passage(referenced=True).validate_or_raise("training dataset")


# ------------------------------------------------------------------ older cores' evaluate_dataset
def test_aevaluate_dataset_takes_the_older_signature(tiny_model_path: Path) -> None:
    import asyncio

    from llama_index.core import VectorStoreIndex
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding

    from llama_index_bge_finetune.evaluation import RetrieverEvaluator
    from tests.evaluation_data import evaluation_topics_dataset

    ds = evaluation_topics_dataset(n_docs=12)
    embed = HuggingFaceEmbedding(model_name=str(tiny_model_path), device="cpu")
    index = VectorStoreIndex([TextNode(id_=i, text=t) for i, t in ds.corpus.items()], embed_model=embed)
    evaluator = RetrieverEvaluator.from_metric_names(["hit_rate", "mrr"], retriever=index.as_retriever(similarity_top_k=3))
    results = asyncio.run(evaluator.aevaluate_dataset(ds, workers=2, show_progress=True, expected_texts=None))
    assert len(results) == 12 and all(set(r.metric_vals_dict) == {"hit_rate", "mrr"} for r in results)
    assert evaluator.evaluate_dataset(ds, workers=2, show_progress=False)[0].query == results[0].query
