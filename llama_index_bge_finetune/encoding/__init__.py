"""Corpus encoding in this process or on a Ray cluster, behind one switch (``encode_backend``).

Ray is imported only when the Ray backend runs (``pip install "llama-index-bge-finetune[scale]"``).
"""

from __future__ import annotations

from llama_index_bge_finetune.encoding.backends import (
    ENCODE_BACKENDS,
    EncodeBackendSpec,
    backend_from_cli,
    encode_texts,
    resolve_encode_backend,
)
from llama_index_bge_finetune.encoding.fingerprint import model_fingerprint
from llama_index_bge_finetune.encoding.ray_backend import CorpusEncoderActor, RayEncodeBackend

__all__ = [
    "ENCODE_BACKENDS",
    "CorpusEncoderActor",
    "EncodeBackendSpec",
    "RayEncodeBackend",
    "backend_from_cli",
    "encode_texts",
    "model_fingerprint",
    "resolve_encode_backend",
]
