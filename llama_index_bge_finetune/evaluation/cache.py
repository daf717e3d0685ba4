"""Corpus embeddings cached on disk, keyed by the encoder's fingerprint and a hash of the texts.

Re-running an evaluation, or evaluating another query set over the same corpus, reads the passage
vectors back instead of re-encoding them. The key covers the model's weights and settings (see
:meth:`~llama_index_bge_finetune.evaluation.encoders.Encoder.fingerprint`) and every passage text in
order, so a changed model or corpus is a different key and never reads stale vectors.

The default folder is ``$BGE_FINETUNE_CACHE_DIR`` or ``~/.cache/llama-index-bge-finetune/embeddings``;
delete it at any time.

Example::

    from llama_index_bge_finetune.evaluation.cache import EmbeddingCache

    cache = EmbeddingCache("/tmp/emb-cache")
    vectors = cache.get_or_encode(encoder, ["passage one", "passage two"])
"""

from __future__ import annotations

import hashlib
import logging
import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence, Union

import numpy as np

if TYPE_CHECKING:
    from llama_index_bge_finetune.evaluation.encoders import Encoder

logger = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    """``$BGE_FINETUNE_CACHE_DIR``, else ``$XDG_CACHE_HOME`` (or ``~/.cache``) ``/llama-index-bge-finetune/embeddings``."""
    env = os.environ.get("BGE_FINETUNE_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "llama-index-bge-finetune" / "embeddings"


def texts_digest(texts: Sequence[str]) -> str:
    """A hash of the texts in order (length-prefixed, so no two lists collide by concatenation)."""
    h = hashlib.blake2b(digest_size=16)
    for t in texts:
        b = t.encode("utf-8")
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.hexdigest()


class EmbeddingCache:
    """A folder of ``.npy`` files, one per (encoder fingerprint, corpus texts)."""

    def __init__(self, directory: Union[str, os.PathLike, None] = None) -> None:
        self.directory = Path(directory) if directory is not None else default_cache_dir()

    def path_for(self, fingerprint: str, texts: Sequence[str]) -> Path:
        """Where the vectors for these texts under this fingerprint live."""
        return self.directory / f"{fingerprint}-{texts_digest(texts)}.npy"

    def get(self, fingerprint: str, texts: Sequence[str]) -> Optional[np.ndarray]:
        """The cached vectors, or ``None`` (a missing or unreadable file is a miss)."""
        path = self.path_for(fingerprint, texts)
        if not path.is_file():
            return None
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            logger.warning("Ignoring unreadable embedding cache file %s (%s).", path, exc)
            return None
        if arr.shape[0] != len(texts):
            logger.warning("Ignoring embedding cache file %s: %d rows for %d texts.", path, arr.shape[0], len(texts))
            return None
        return arr

    def put(self, fingerprint: str, texts: Sequence[str], vectors: np.ndarray) -> Path:
        """Store vectors atomically (write a temporary file, then rename)."""
        path = self.path_for(fingerprint, texts)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex}.tmp.npy")
        np.save(tmp, np.ascontiguousarray(vectors, dtype=np.float32), allow_pickle=False)
        os.replace(tmp, path)
        return path

    def get_or_encode(self, encoder: "Encoder", texts: Sequence[str]) -> np.ndarray:
        """Cached corpus vectors for ``texts``, encoding and storing them on a miss."""
        fp = encoder.fingerprint()
        hit = self.get(fp, texts)
        if hit is not None:
            logger.info("Corpus embeddings for %s read from cache (%d passages).", encoder.name, len(texts))
            return hit
        vectors = encoder.encode_corpus(texts)
        self.put(fp, texts, vectors)
        return vectors
