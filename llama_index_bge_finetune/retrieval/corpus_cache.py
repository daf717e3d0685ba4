"""Corpus embeddings cached on disk, keyed by the encoder's fingerprint and a hash of the texts.

Re-running an evaluation, or evaluating another query set over the same corpus, reads the passage
vectors back instead of re-encoding them. The key covers the model's weights and settings (see
:meth:`~llama_index_bge_finetune.encoding.encoders.Encoder.fingerprint`) and every passage text in
order, so a changed model or corpus is a different key and never reads stale vectors.

Vectors are written chunk by chunk and read back memory-mapped (see
:mod:`~llama_index_bge_finetune.retrieval.vector_file`), so a corpus larger than RAM can be cached
and searched, and a killed encoding resumes at its last finished chunk. ``dtype="float16"`` halves
the disk and memory it takes.

The default folder is ``$BGE_FINETUNE_CACHE_DIR`` or ``~/.cache/llama-index-bge-finetune/embeddings``;
delete it at any time.

Example::

    from llama_index_bge_finetune.retrieval.corpus_cache import EmbeddingCache

    cache = EmbeddingCache("/tmp/emb-cache")                 # or dtype="float16"
    vectors = cache.get_or_encode(encoder, ["passage one", "passage two"])   # a read-only np.memmap
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence, Union

import numpy as np

from llama_index_bge_finetune.cache_dir import default_cache_dir
from llama_index_bge_finetune.retrieval.vector_file import DEFAULT_CHUNK_ROWS, check_dtype, read_vectors, write_vectors

if TYPE_CHECKING:
    from llama_index_bge_finetune.encoding.encoders import Encoder

logger = logging.getLogger(__name__)


def texts_digest(texts: Sequence[str]) -> str:
    """A hash of the texts in order (length-prefixed, so no two lists collide by concatenation)."""
    h = hashlib.blake2b(digest_size=16)
    for t in texts:
        b = t.encode("utf-8")
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.hexdigest()


class EmbeddingCache:
    """A folder of ``.npy`` files, one per (encoder fingerprint, corpus texts, storage dtype).

    Args:
        directory: the folder (default: :func:`default_cache_dir`).
        dtype: ``"float32"`` (default) or ``"float16"`` storage.
        chunk_rows: passages encoded and written per step.
    """

    def __init__(self, directory: Union[str, os.PathLike, None] = None, dtype: str = "float32",
                 chunk_rows: int = DEFAULT_CHUNK_ROWS) -> None:
        check_dtype(dtype)
        self.directory = Path(directory) if directory is not None else default_cache_dir()
        self.dtype = dtype
        self.chunk_rows = chunk_rows

    def path_for(self, fingerprint: str, texts: Sequence[str]) -> Path:
        """Where the vectors for these texts under this fingerprint live."""
        suffix = "" if self.dtype == "float32" else f"-{self.dtype}"
        return self.directory / f"{fingerprint}-{texts_digest(texts)}{suffix}.npy"

    def get(self, fingerprint: str, texts: Sequence[str]) -> Optional[np.ndarray]:
        """The cached vectors memory-mapped, or ``None`` (a missing or unreadable file is a miss)."""
        return read_vectors(self.path_for(fingerprint, texts), expected_rows=len(texts))

    def put(self, fingerprint: str, texts: Sequence[str], vectors: np.ndarray) -> Path:
        """Store vectors (written beside the final file, then renamed into place)."""
        path = self.path_for(fingerprint, texts)
        write_vectors(path, len(vectors), lambda start, stop: vectors[start:stop], self.dtype, self.chunk_rows)
        return path

    def get_or_encode(self, encoder: "Encoder", texts: Sequence[str]) -> np.ndarray:
        """Cached corpus vectors for ``texts``, encoding the missing chunks on a miss."""
        fp = encoder.fingerprint()
        hit = self.get(fp, texts)
        if hit is not None:
            logger.info("Corpus embeddings for %s read from cache (%d passages).", encoder.name, len(texts))
            return hit
        return write_vectors(self.path_for(fp, texts), len(texts),
                             lambda start, stop: encoder.encode_corpus(texts[start:stop]), self.dtype, self.chunk_rows)
