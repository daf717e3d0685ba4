"""The per-text cache of hosted embeddings: each text's vector from a hosted model, paid for once.

Unlike the corpus-embedding cache (:mod:`~llama_index_bge_finetune.retrieval.corpus_cache`: one
file of vectors per whole corpus, keyed by the encoder's fingerprint), this cache holds one row per
text, because a hosted model bills per text and a partly embedded corpus must not be paid for again.
An evaluation with the corpus cache on uses both: this one for the texts sent, the corpus cache for
the finished corpus.

One SQLite file holds (model, hash of the text) -> vector. The key names the model, not the
endpoint: the same model behind a proxy or another region reads the same vectors. Each batch is
committed as soon as it arrives, so a run interrupted after some batches re-sends only the
texts it never got back. Neither texts nor API keys are stored, only a SHA-256 of each text.

The file is ``hosted/vectors.sqlite`` in the embedding cache folder (``$BGE_FINETUNE_CACHE_DIR``
or ``~/.cache/llama-index-bge-finetune/embeddings``); delete it to pay again.

Example::

    from llama_index_bge_finetune.encoding.hosted_text_cache import HostedVectorCache

    cache = HostedVectorCache("/tmp/emb-cache")
    found = cache.get_many("text-embedding-3-small", ["a passage"])   # text -> vector, hits only
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from pathlib import Path
from typing import Dict, Sequence, Union

import numpy as np

from llama_index_bge_finetune.cache_dir import default_cache_dir

_LOOKUP_CHUNK = 500  # keys per SELECT (SQLite allows 999 parameters by default on old builds)


def text_key(text: str) -> str:
    """The cache key of a text: its SHA-256, hex."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class HostedVectorCache:
    """Per-text vectors of hosted models in one SQLite file, written batch by batch."""

    def __init__(self, directory: Union[str, os.PathLike, None] = None) -> None:
        self.path = Path(directory if directory is not None else default_cache_dir()) / "hosted" / "vectors.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()  # one connection, used by the request threads one at a time
        self._db = sqlite3.connect(self.path, timeout=60, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")  # readers and one writer at a time, from several processes
        self._db.execute("CREATE TABLE IF NOT EXISTS vectors (model TEXT NOT NULL, text_sha256 TEXT NOT NULL, "
                         "vector BLOB NOT NULL, PRIMARY KEY (model, text_sha256))")
        self._db.commit()

    def get_many(self, model: str, texts: Sequence[str]) -> Dict[str, np.ndarray]:
        """text -> cached vector (float32), for the texts that are cached."""
        keys = {text_key(t): t for t in texts}
        found: Dict[str, np.ndarray] = {}
        items = list(keys)
        for i in range(0, len(items), _LOOKUP_CHUNK):
            chunk = items[i:i + _LOOKUP_CHUNK]
            with self._lock:
                rows = self._db.execute(
                    f"SELECT text_sha256, vector FROM vectors WHERE model = ? AND text_sha256 IN ({','.join('?' * len(chunk))})",
                    [model, *chunk],
                ).fetchall()
            for key, blob in rows:
                found[keys[key]] = np.frombuffer(blob, dtype=np.float32)
        return found

    def put_many(self, model: str, texts: Sequence[str], vectors: np.ndarray) -> None:
        """Store one vector per text and commit (a crash afterwards keeps them)."""
        rows = [(model, text_key(t), np.ascontiguousarray(v, dtype=np.float32).tobytes()) for t, v in zip(texts, vectors)]
        with self._lock, self._db:
            self._db.executemany("INSERT OR REPLACE INTO vectors (model, text_sha256, vector) VALUES (?, ?, ?)", rows)

    def close(self) -> None:
        """Close the database (also done when the object is collected)."""
        with self._lock:
            self._db.close()
