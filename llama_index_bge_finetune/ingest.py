"""Documents in, nodes out: read a folder of PDF/Markdown/text files and chunk it.

Node ids are derived from the file path and chunk position, so rerunning on the same folder
gives the same ids (generation caches and dataset splits stay valid across runs)::

    from llama_index_bge_finetune.ingest import load_documents, chunk_documents

    nodes = chunk_documents(load_documents("docs/"), chunk_size=512)

Files are checked for what they are, not what they are named: a ``.txt`` holding NUL bytes or
more than 2% control characters in its first 8 KiB (an image, an archive, an executable) is
skipped and named. Text files stream in 1 MiB blocks and are cut into segments of at most
256 KiB at paragraph, line or word boundaries, so memory per step and chunking time per MB are
bounded (sentence splitting never sees a whole 50 MB file); files above ``MAX_TEXT_FILE_BYTES``
(100 MiB) are skipped with a message. A PDF that cannot be read is skipped with a plain reason.

LlamaIndex is imported when documents are made or chunked, not with this module, so the CLI checks
its arguments (:func:`check_chunking`, a missing folder) without loading it.
"""

from __future__ import annotations

import codecs
import hashlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, List, Optional, Sequence, Union

from llama_index_bge_finetune.errors import InputDocumentsError

if TYPE_CHECKING:
    from llama_index.core import Document
    from llama_index.core.schema import BaseNode

logger = logging.getLogger(__name__)

MAX_TEXT_FILE_BYTES = 100 * 2**20
"""Text files larger than this are skipped (split them into smaller files)."""
SEGMENT_CHARS = 256 * 2**10
"""A text file longer than this becomes several documents of at most this many characters."""
READ_BLOCK_BYTES = 2**20
SNIFF_BYTES = 8192
MAX_CONTROL_SHARE = 0.02
_ALLOWED_CONTROLS = frozenset(b"\t\n\r\f\v\b\x1b")
_MAGIC = ((b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"GIF8", "a GIF image"),
          (b"PK\x03\x04", "a ZIP archive (or .docx/.xlsx)"), (b"%PDF", "a PDF"), (b"\x7fELF", "an executable"),
          (b"\x1f\x8b", "a gzip archive"), (b"RIFF", "a media file"), (b"BM", None))

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
            if suffix in PDF_SUFFIXES:
                new_docs = _pdf_documents(path, rel)
            else:
                new_docs = _text_documents(path, rel, report)
        except _Unusable as exc:
            report.skipped.append((rel, str(exc)))
            continue
        except Exception as exc:  # any other reader failure: skip the file, name it, keep going
            report.skipped.append((rel, f"could not be read ({type(exc).__name__}: {exc})"))
            continue
        if not new_docs:
            report.skipped.append((rel, "holds no text"))
            continue
        docs.extend(new_docs)
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


def check_chunking(chunk_size: int, chunk_overlap: int) -> None:
    """Refuse chunk settings ``SentenceSplitter`` cannot use (before any document is read)."""
    if chunk_size < 32:
        raise InputDocumentsError(f"chunk_size must be at least 32 tokens, got {chunk_size}.")
    if not 0 <= chunk_overlap < chunk_size:
        raise InputDocumentsError(
            f"chunk_overlap must be between 0 and chunk_size ({chunk_size}), got {chunk_overlap}."
        )


def chunk_documents(documents: Sequence[Document], chunk_size: int = 512, chunk_overlap: int = 32) -> List[BaseNode]:
    """Split documents into nodes with LlamaIndex's ``SentenceSplitter``, with stable node ids.

    Documents are split one at a time (a long text file arrives as segments of at most
    ``SEGMENT_CHARS``), so the splitter's working memory stays bounded.
    """
    from llama_index.core.node_parser import SentenceSplitter

    check_chunking(chunk_size, chunk_overlap)
    splitter = SentenceSplitter(chunk_size=chunk_size, chunk_overlap=chunk_overlap, id_func=_node_id)
    nodes: List[BaseNode] = []
    for doc in documents:
        try:
            parts = splitter.get_nodes_from_documents([doc])
        except TimeoutError as exc:  # nltk's sentence splitter gives up on pathological text
            raise InputDocumentsError(
                f"The sentence splitter gave up on {doc.metadata.get('file_path', doc.id_)} ({exc}). "
                "Check that the file is ordinary prose, or remove it from the folder."
            ) from None
        nodes.extend(n for n in parts if n.get_content().strip())
    return nodes


def demo_documents() -> List[Document]:
    """The Python Language Reference topics that CPython ships as ``pydoc_data.topics``.

    Real text on every machine with Python, written by nobody in this project.
    """
    from llama_index.core import Document
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


class _Unusable(Exception):
    """A file that is not what its name says, or cannot be read; the message is the reason."""


def _sniff_binary(head: bytes) -> Optional[str]:
    """Why ``head`` (a file's first bytes) is not text, or ``None`` when it looks like text."""
    for magic, kind in _MAGIC:
        if kind and head.startswith(magic):
            return f"{kind}, not text (found by its content, whatever its name)"
    if b"\x00" in head:
        return "binary, not text: it holds NUL bytes (found by its content, whatever its name)"
    controls = sum(1 for b in head if (b < 32 and b not in _ALLOWED_CONTROLS) or b == 127)
    if head and controls / len(head) > MAX_CONTROL_SHARE:
        return (f"binary, not text: {controls / len(head):.0%} of its first bytes are control characters "
                "(found by its content, whatever its name)")
    return None


def _text_documents(path: Path, rel: str, report: LoadReport) -> List[Document]:
    """A text file as one document, or as segments of at most ``SEGMENT_CHARS`` when it is long."""
    from llama_index.core import Document

    size = path.stat().st_size
    if size > MAX_TEXT_FILE_BYTES:
        raise _Unusable(
            f"{size / 2**20:.0f} MB, above the {MAX_TEXT_FILE_BYTES // 2**20} MB limit for one text file; "
            "split it into smaller files"
        )
    with open(path, "rb") as f:
        head = f.read(SNIFF_BYTES)
    reason = _sniff_binary(head)
    if reason:
        raise _Unusable(reason)
    try:
        segments = list(_segments(_decoded_blocks(path, "utf-8-sig")))
    except UnicodeDecodeError:
        report.decoded_with_fallback.append(rel)
        logger.warning("%s is not UTF-8; read it as Windows-1252 (save it as UTF-8 to silence this).", rel)
        segments = list(_segments(_decoded_blocks(path, "cp1252")))
    texts = [t for t in segments if t.strip()]
    if len(texts) == 1:
        return [Document(text=texts[0], id_=rel, metadata={"file_path": rel, "page": 1})]
    return [Document(text=t, id_=f"{rel}#part={i + 1}", metadata={"file_path": rel, "page": 1, "part": i + 1})
            for i, t in enumerate(texts)]


def _decoded_blocks(path: Path, encoding: str) -> Iterator[str]:
    """The file's text in blocks of ``READ_BLOCK_BYTES`` (strict UTF-8; Windows-1252 replaces what it cannot map)."""
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict" if encoding != "cp1252" else "replace")
    with open(path, "rb") as f:
        while True:
            block = f.read(READ_BLOCK_BYTES)
            if not block:
                break
            yield decoder.decode(block)
    yield decoder.decode(b"", final=True)


def _segments(blocks: Iterator[str]) -> Iterator[str]:
    """Re-cut a stream of text into pieces of at most ``SEGMENT_CHARS``, preferring paragraph breaks."""
    buf = ""
    for block in blocks:
        buf += block
        while len(buf) > SEGMENT_CHARS:
            cut = _cut_point(buf, SEGMENT_CHARS)
            yield buf[:cut]
            buf = buf[cut:]
    if buf:
        yield buf


def _cut_point(text: str, limit: int) -> int:
    floor = limit // 2
    for sep in ("\n\n", "\n", " "):
        i = text.rfind(sep, floor, limit)
        if i > 0:
            return i + len(sep)
    return limit


def _pdf_documents(path: Path, rel: str) -> List[Document]:
    """One document per PDF page that holds text; ids and page numbers are the PDF's own."""
    from llama_index.core import Document

    with open(path, "rb") as f:
        head = f.read(1024)
    if b"%PDF" not in head:
        kind = _sniff_binary(head)
        what = kind.split(",")[0] if kind else "it does not start with %PDF"
        raise _Unusable(f"not a PDF ({what}); re-export or re-download it")
    try:
        pages = _read_pdf(path)
    except Exception as exc:  # pypdf's errors, often wrapped in tenacity's RetryError by the reader
        raise _Unusable(_pdf_problem(_unwrap(exc))) from None
    docs = []
    for page, text in enumerate(pages, 1):
        if text.strip():
            doc_id = rel if len(pages) == 1 else f"{rel}#page={page}"
            docs.append(Document(text=text, id_=doc_id, metadata={"file_path": rel, "page": page}))
    return docs


def _unwrap(exc: BaseException) -> BaseException:
    """The real error inside tenacity's ``RetryError[<Future ...>]``."""
    last = getattr(exc, "last_attempt", None)
    inner = last.exception() if last is not None and hasattr(last, "exception") else None
    return inner if inner is not None else exc


def _pdf_problem(exc: BaseException) -> str:
    """A plain sentence for a PDF reading error."""
    name = type(exc).__name__
    detail = str(exc).strip() or name
    if name == "EmptyFileError":
        return "an empty PDF (0 bytes of content); re-export or re-download it"
    if name in ("FileNotDecryptedError", "WrongPasswordError") or "encrypt" in detail.lower():
        return "a password-protected (encrypted) PDF; save an unencrypted copy (e.g. qpdf --decrypt in.pdf out.pdf)"
    if name in ("PdfStreamError", "PdfReadError", "ParseError") or "pdf" in name.lower():
        return f"a damaged or truncated PDF ({detail}); re-export or re-download it"
    return f"could not be read as a PDF ({name}: {detail}); re-export or re-download it"


def _read_pdf(path: Path) -> List[str]:
    from llama_index.readers.file import PDFReader

    return [d.text for d in PDFReader(return_full_document=False).load_data(path)]
