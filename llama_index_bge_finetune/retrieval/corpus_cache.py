"""The corpus-embedding cache: passage vectors kept on disk, so no corpus is encoded twice.

Evaluation, the adapter, hard-negative mining, training-time metrics and reranker data all read
and write the same cache: a folder of ``.npy`` files, one per entry, named by :func:`cache_key`.

**What a key covers.** ``<encoder fingerprint>-<texts digest>[-<dtype>]``:

* the encoder's fingerprint (:meth:`~llama_index_bge_finetune.encoding.encoders.Encoder.fingerprint`):
  the encoder class, whether vectors are L2-normalised, and for a sentence-transformers model its
  passage prompt, its ``max_seq_length`` at encoding time, every module's settings (pooling,
  dimensions) and the bytes of every weight;
* a digest of every passage text, in order (:func:`texts_digest`);
* the storage dtype, when it is not ``float32``.

So a changed model, prompt, truncation window or corpus is a different entry and never reads stale
vectors, and two routes to the same vectors share one entry: a raw ``SentenceTransformer`` given to
:func:`encode_cached` (the training path) is keyed as the :class:`SentenceTransformerEncoder` the
evaluation builds for it, so mining vectors serve a later evaluation of the same model and corpus
when both use the same folder.

Vectors are written chunk by chunk and read back memory-mapped (see
:mod:`~llama_index_bge_finetune.retrieval.vector_file`), so a corpus larger than RAM can be cached
and searched, and a killed encoding resumes at its last finished chunk. ``dtype="float16"`` halves
the disk and memory it takes.

The default folder is ``$BGE_FINETUNE_CACHE_DIR`` or ``~/.cache/llama-index-bge-finetune/embeddings``;
delete it at any time. (Hosted embedding models also keep a per-text cache of what each text cost,
:mod:`~llama_index_bge_finetune.encoding.hosted_text_cache`; that one is a different kind.)

Example::

    from sentence_transformers import SentenceTransformer
    from llama_index_bge_finetune.retrieval.corpus_cache import EmbeddingCache, encode_cached

    cache = EmbeddingCache("/tmp/emb-cache")                 # or dtype="float16"
    vectors = cache.get_or_encode(encoder, ["passage one", "passage two"])   # a read-only np.memmap

    model = SentenceTransformer("sentence-transformers/all-MiniLM-L6-v2")
    same_kind = encode_cached(model, ["passage one", "passage two"], "/tmp/emb-cache")
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np

from llama_index_bge_finetune.cache_dir import default_cache_dir
from llama_index_bge_finetune.encoding.backends import EncodeBackendSpec
from llama_index_bge_finetune.encoding.encoders import Encoder, SentenceTransformerEncoder
from llama_index_bge_finetune.retrieval.vector_file import DEFAULT_CHUNK_ROWS, check_dtype, read_vectors, write_vectors

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]


def texts_digest(texts: Sequence[str]) -> str:
    """A hash of the texts in order (length-prefixed, so no two lists collide by concatenation)."""
    h = hashlib.blake2b(digest_size=16)
    for t in texts:
        b = t.encode("utf-8", "surrogatepass")
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.hexdigest()


def cache_key(fingerprint: str, texts: Sequence[str], dtype: str = "float32") -> str:
    """The name (without ``.npy``) of the entry holding ``texts`` encoded by the encoder with ``fingerprint``.

    It is the fingerprint, the digest of the texts (:func:`texts_digest`) and, unless ``float32``,
    the storage dtype; see the module docstring for what a fingerprint covers.
    """
    check_dtype(dtype)
    suffix = "" if dtype == "float32" else f"-{dtype}"
    return f"{fingerprint}-{texts_digest(texts)}{suffix}"


class EmbeddingCache:
    """A folder of ``.npy`` files, one per :func:`cache_key` (encoder fingerprint, corpus texts, storage dtype).

    Args:
        directory: the folder (default: :func:`default_cache_dir`).
        dtype: ``"float32"`` (default) or ``"float16"`` storage.
        chunk_rows: passages encoded and written per step.
    """

    def __init__(self, directory: Optional[PathLike] = None, dtype: str = "float32",
                 chunk_rows: int = DEFAULT_CHUNK_ROWS) -> None:
        check_dtype(dtype)
        self.directory = Path(directory) if directory is not None else default_cache_dir()
        self.dtype = dtype
        self.chunk_rows = chunk_rows

    def path_for(self, fingerprint: str, texts: Sequence[str]) -> Path:
        """Where the vectors for these texts under this fingerprint live."""
        return self.directory / f"{cache_key(fingerprint, texts, self.dtype)}.npy"

    def get(self, fingerprint: str, texts: Sequence[str]) -> Optional[np.ndarray]:
        """The cached vectors memory-mapped, or ``None`` (a missing or unreadable file is a miss)."""
        return read_vectors(self.path_for(fingerprint, texts), expected_rows=len(texts))

    def put(self, fingerprint: str, texts: Sequence[str], vectors: np.ndarray) -> Path:
        """Store vectors (written beside the final file, then renamed into place)."""
        path = self.path_for(fingerprint, texts)
        write_vectors(path, len(vectors), lambda start, stop: vectors[start:stop], self.dtype, self.chunk_rows)
        return path

    def get_or_encode(self, encoder: Encoder, texts: Sequence[str]) -> np.ndarray:
        """Cached corpus vectors for ``texts``, encoding the missing chunks on a miss."""
        fp = encoder.fingerprint()
        path = self.path_for(fp, texts)
        hit = read_vectors(path, expected_rows=len(texts))
        if hit is not None:
            logger.info("Corpus embeddings for %s read from %s (%d passages).", encoder.name, path, len(texts))
            return hit
        return write_vectors(path, len(texts), lambda start, stop: encoder.encode_corpus(texts[start:stop]),
                             self.dtype, self.chunk_rows)


def encode_cached(
    model: Any,
    texts: Sequence[str],
    cache_dir: Optional[PathLike],
    *,
    prompt: Optional[str] = None,
    batch_size: int = 64,
    show_progress_bar: bool = False,
    encode_backend: EncodeBackendSpec = "local",
) -> np.ndarray:
    """L2-normalised float32 vectors of ``texts`` from a ``SentenceTransformer``, through the cache in ``cache_dir``.

    The model is encoded as a :class:`SentenceTransformerEncoder` whose passage prompt is ``prompt``
    and which always normalises, and its entry is :meth:`EmbeddingCache.get_or_encode`'s: same key,
    same file, same chunked, resumable write. The key takes ``model.max_seq_length`` as it is at the
    call, so a corpus read at a shorter window (``read_at``) is its own entry.

    Args:
        model: the ``SentenceTransformer``.
        texts: what to encode, in order.
        cache_dir: the cache folder; ``None`` encodes without caching (queries, for instance).
        prompt: text put before every input (a query instruction), or ``None``.
        batch_size: texts per forward pass.
        show_progress_bar: sentence-transformers' progress bar.
        encode_backend: ``"local"`` (default) or ``"ray"`` (see :mod:`llama_index_bge_finetune.encoding`).
    """
    encoder = SentenceTransformerEncoder(model, batch_size=batch_size, encode_backend=encode_backend,
                                         document_prompt=prompt or "", normalize=True,
                                         show_progress_bar=show_progress_bar)
    if cache_dir is None:
        return encoder.encode_corpus(texts)
    return EmbeddingCache(cache_dir).get_or_encode(encoder, texts)
