"""Corpus embeddings computed once and kept on disk, so mining and evaluation never encode twice.

The cache key is the model, its ``max_seq_length``, the prompt and every text, so a changed
corpus or model never reuses stale vectors. Vectors are written chunk by chunk and read back
memory-mapped (:mod:`~llama_index_bge_finetune.retrieval.vector_file`), so a corpus larger than RAM
can be mined; a killed run resumes at its last finished chunk and a finished entry appears only whole.

Example::

    from sentence_transformers import SentenceTransformer
    from llama_index_bge_finetune.training.embedding_cache import encode_cached

    model = SentenceTransformer("sentence-transformers/all-MiniLM-L6-v2")
    vectors = encode_cached(model, ["a passage", "another"], cache_dir="cache", model_key="minilm")
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

from llama_index_bge_finetune.encoding.backends import EncodeBackendSpec, encode_texts
from llama_index_bge_finetune.retrieval.vector_file import read_vectors, write_vectors

logger = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]


def cache_key(model_key: str, max_seq_length: Optional[int], prompt: Optional[str], texts: Sequence[str]) -> str:
    """A hex digest naming one (model, truncation, prompt, texts) combination."""
    h = hashlib.sha256()
    h.update(f"{model_key}\x00{max_seq_length}\x00{prompt or ''}\x00{len(texts)}\x00".encode())
    for t in texts:
        h.update(t.encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    return h.hexdigest()[:32]


def encode_cached(
    model: "SentenceTransformer",  # noqa: F821
    texts: Sequence[str],
    cache_dir: Optional[PathLike],
    model_key: str,
    prompt: Optional[str] = None,
    batch_size: int = 64,
    show_progress_bar: bool = False,
    encode_backend: EncodeBackendSpec = "local",
) -> np.ndarray:
    """L2-normalised float32 embeddings of ``texts``, memory-mapped from ``cache_dir`` when cached.

    Args:
        model: the encoder.
        texts: what to encode, in order.
        cache_dir: folder for ``<key>.npy`` files; ``None`` disables caching.
        model_key: names the model's weights (a hub id or a folder path); part of the key.
        prompt: text prepended to every input (a query instruction), or ``None``.
        batch_size: encoding batch size.
        show_progress_bar: show sentence-transformers' progress bar.
        encode_backend: ``"local"`` (default) or ``"ray"`` (see :mod:`llama_index_bge_finetune.encoding`).
    """
    def encode(start: int, stop: int) -> np.ndarray:
        return encode_texts(model, list(texts[start:stop]), prompt=prompt, batch_size=batch_size, normalize=True,
                            encode_backend=encode_backend, show_progress_bar=show_progress_bar).astype(np.float32)

    if cache_dir is None:
        return encode(0, len(texts))
    key = cache_key(model_key, getattr(model, "max_seq_length", None), prompt, texts)
    path = Path(cache_dir) / f"{key}.npy"
    vectors = read_vectors(path, expected_rows=len(texts))
    if vectors is not None:
        logger.info("Loaded %d cached embeddings from %s", len(texts), path)
        return vectors
    return write_vectors(path, len(texts), encode)
