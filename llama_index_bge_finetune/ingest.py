"""Documents in, nodes out: read a folder of PDF/Markdown/text files and chunk it.

Node ids are derived from the file path and chunk position, so rerunning on the same folder
gives the same ids (generation caches and dataset splits stay valid across runs)::

    from llama_index_bge_finetune.ingest import load_documents, chunk_documents

    nodes = chunk_documents(load_documents("docs/"), chunk_size=512)
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Sequence, Union

from llama_index.core import Document
from llama_index.core.node_parser import SentenceSplitter
from llama_index.core.schema import BaseNode

from llama_index_bge_finetune.errors import InputDocumentsError

logger = logging.getLogger(__name__)

TEXT_SUFFIXES = (".txt", ".md", ".markdown", ".rst")
PDF_SUFFIXES = (".pdf",)
SUPPORTED_SUFFIXES = TEXT_SUFFIXES + PDF_SUFFIXES


@dataclass
class LoadReport:
    """What :func:`load_documents` read and what it skipped, with reasons."""

    loaded: List[str] = field(default_factory=list)
    skipped: List[tuple] = field(default_factory=list)  # (path, reason)
    decoded_with_fallback: List[str] = field(default_factory=list)


def load_documents(folder: Union[str, os.PathLike], report: LoadReport | None = None) -> List[Document]:
    """Read every PDF, Markdown and text file below ``folder`` into LlamaIndex documents.

    Unreadable files (a corrupt PDF, an empty file, an unsupported type) are skipped with a
    warning that names them; a text file that is not UTF-8 is decoded as Windows-1252 with a
    warning. ``report`` (optional) receives the details.

    Raises:
        InputDocumentsError: the folder does not exist, is empty, or holds no readable document.
    """
    root = Path(folder)
    report = report if report is not None else LoadReport()
    if not root.is_dir():
        raise InputDocumentsError(
            f"The documents folder {root} does not exist or is not a folder. "
            "Pass the folder that holds your PDF, Markdown or text files."
        )
    files = sorted(p for p in root.rglob("*") if p.is_file() and not _hidden(p, root))
    if not files:
        raise InputDocumentsError(
            f"The documents folder {root} is empty. Put PDF (.pdf), Markdown (.md) or text (.txt) "
            "files in it, or run `bge-finetune demo` to try the loop on a bundled corpus."
        )
    docs: List[Document] = []
    for path in files:
        rel = path.relative_to(root).as_posix()
        suffix = path.suffix.lower()
        if suffix not in SUPPORTED_SUFFIXES:
            report.skipped.append((rel, f"unsupported file type {suffix or '(none)'}"))
            continue
        try:
            texts = _read_pdf(path) if suffix in PDF_SUFFIXES else [_read_text(path, rel, report)]
        except Exception as exc:  # any reader failure: skip the file, name it, keep going
            report.skipped.append((rel, f"could not be read ({type(exc).__name__}: {exc})"))
            continue
        texts = [t for t in texts if t.strip()]
        if not texts:
            report.skipped.append((rel, "holds no text"))
            continue
        for page, text in enumerate(texts):
            doc_id = rel if len(texts) == 1 else f"{rel}#page={page + 1}"
            docs.append(Document(text=text, id_=doc_id, metadata={"file_path": rel, "page": page + 1}))
        report.loaded.append(rel)
    for rel, reason in report.skipped:
        logger.warning("Skipped %s: %s", rel, reason)
    if not docs:
        reasons = "; ".join(f"{p}: {r}" for p, r in report.skipped[:5])
        raise InputDocumentsError(
            f"No readable document in {root} ({len(files)} files, none usable: {reasons}). "
            f"Supported types are {', '.join(SUPPORTED_SUFFIXES)}; check that PDFs are not corrupt "
            "or scanned images without a text layer."
        )
    return docs


def chunk_documents(documents: Sequence[Document], chunk_size: int = 512, chunk_overlap: int = 32) -> List[BaseNode]:
    """Split documents into nodes with LlamaIndex's ``SentenceSplitter``, with stable node ids."""
    if chunk_size < 32:
        raise InputDocumentsError(f"chunk_size must be at least 32 tokens, got {chunk_size}.")
    if not 0 <= chunk_overlap < chunk_size:
        raise InputDocumentsError(
            f"chunk_overlap must be between 0 and chunk_size ({chunk_size}), got {chunk_overlap}."
        )
    splitter = SentenceSplitter(chunk_size=chunk_size, chunk_overlap=chunk_overlap, id_func=_node_id)
    nodes = splitter.get_nodes_from_documents(list(documents))
    return [n for n in nodes if n.get_content().strip()]


def demo_documents() -> List[Document]:
    """The Python Language Reference topics that CPython ships as ``pydoc_data.topics``.

    Real text on every machine with Python, written by nobody in this project.
    """
    from pydoc_data.topics import topics

    return [
        Document(text=text, id_=f"pydoc:{name}", metadata={"topic": name})
        for name, text in sorted(topics.items())
        if text.strip()
    ]


def _node_id(i: int, doc: BaseNode) -> str:
    return hashlib.sha1(f"{doc.id_}\x00{i}".encode()).hexdigest()[:16]


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def _read_text(path: Path, rel: str, report: LoadReport) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        report.decoded_with_fallback.append(rel)
        logger.warning("%s is not UTF-8; read it as Windows-1252 (save it as UTF-8 to silence this).", rel)
        return raw.decode("cp1252", errors="replace")


def _read_pdf(path: Path) -> List[str]:
    from llama_index.readers.file import PDFReader

    return [d.text for d in PDFReader(return_full_document=False).load_data(path)]
