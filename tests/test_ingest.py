"""Reading a folder of documents: what is read, what is skipped, and the errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from llama_index_bge_finetune.errors import InputDocumentsError
from llama_index_bge_finetune.ingest import LoadReport, chunk_documents, demo_documents, load_documents


def test_reads_text_and_markdown_with_stable_ids(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("Alpha beta gamma. " * 200, encoding="utf-8")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.md").write_text("# Title\n\nDelta epsilon. " * 100, encoding="utf-8")
    docs = load_documents(tmp_path)
    assert sorted(d.id_ for d in docs) == ["a.txt", "sub/b.md"]
    first = [n.node_id for n in chunk_documents(docs, chunk_size=64, chunk_overlap=8)]
    second = [n.node_id for n in chunk_documents(load_documents(tmp_path), chunk_size=64, chunk_overlap=8)]
    assert len(first) > 2 and first == second and len(set(first)) == len(first)


def test_empty_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputDocumentsError, match="is empty"):
        load_documents(tmp_path)


def test_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputDocumentsError, match="does not exist"):
        load_documents(tmp_path / "nope")


def test_corrupt_pdf_is_skipped_and_named(tmp_path: Path) -> None:
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4\nthis is not really a pdf\x00\xff")
    (tmp_path / "ok.txt").write_text("Some real text here.", encoding="utf-8")
    report = LoadReport()
    docs = load_documents(tmp_path, report)
    assert [d.id_ for d in docs] == ["ok.txt"]
    assert [p for p, _ in report.skipped] == ["broken.pdf"]


def test_only_unreadable_files_is_an_error_naming_them(tmp_path: Path) -> None:
    (tmp_path / "broken.pdf").write_bytes(b"garbage")
    (tmp_path / "image.png").write_bytes(b"\x89PNG")
    with pytest.raises(InputDocumentsError) as err:
        load_documents(tmp_path)
    assert "broken.pdf" in str(err.value) and "image.png" in str(err.value)


def test_non_utf8_text_is_decoded_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "latin.txt").write_bytes("Café crème brûlée".encode("cp1252"))
    report = LoadReport()
    docs = load_documents(tmp_path, report)
    assert docs[0].text == "Café crème brûlée"
    assert report.decoded_with_fallback == ["latin.txt"]
    assert "not UTF-8" in caplog.text


def test_real_pdf_pages(ten_k_excerpts: Path, tmp_path: Path) -> None:
    from pypdf import PdfReader

    shutil.copy(ten_k_excerpts / "pdfs" / "uber_2021.pdf", tmp_path)
    docs = load_documents(tmp_path)
    assert len(docs) == len(PdfReader(tmp_path / "uber_2021.pdf").pages) == 50, "one document per page"
    assert any("Uber" in d.text for d in docs)
    assert {d.metadata["file_path"] for d in docs} == {"uber_2021.pdf"}


def test_demo_corpus_is_cpythons_language_reference() -> None:
    docs = demo_documents()
    assert len(docs) >= 70
    assert any("lambda" in d.text for d in docs)
    nodes = chunk_documents(docs)
    assert 150 < len(nodes) < 600


def test_chunk_settings_are_validated() -> None:
    with pytest.raises(InputDocumentsError, match="chunk_overlap"):
        chunk_documents(demo_documents()[:1], chunk_size=64, chunk_overlap=64)
