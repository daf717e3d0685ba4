"""Turn a model spec (folder, hub id, ``SentenceTransformer``, LlamaIndex ``BaseEmbedding``) into an encoder.

:func:`resolve_encoder` picks the encoder class for what it is given (see
:mod:`~llama_index_bge_finetune.encoding.encoders`) and, for ``backend="onnx-int8"``, wraps it in
the ONNX int8 encoder.

Example::

    from llama_index_bge_finetune.encoding.resolve import resolve_encoder

    enc = resolve_encoder("out/model")          # applies the query instruction saved in the folder
    vectors = enc.encode_corpus(["a passage", "another one"])
"""

from __future__ import annotations

import os
from typing import Any, Optional

from llama_index_bge_finetune.encoding.backends import EncodeBackendSpec
from llama_index_bge_finetune.encoding.encoders import (
    BACKENDS,
    EvalModel,
    Encoder,
    HuggingFaceEmbeddingEncoder,
    LlamaIndexEncoder,
    ModelSpec,
    SentenceTransformerEncoder,
)
from llama_index_bge_finetune.encoding.onnx_encoder import OnnxInt8Encoder
from llama_index_bge_finetune.errors import EvaluationError
from llama_index_bge_finetune.models import query_instruction_for


def load_sentence_transformer(path_or_id: str) -> Any:
    """Load a model folder or hub id on CPU (or CUDA when present), with a clear error when it fails."""
    from sentence_transformers import SentenceTransformer

    try:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
        return SentenceTransformer(path_or_id, device=device)
    except Exception as exc:  # OSError for a missing folder, HTTP errors for an unreachable hub
        raise EvaluationError(
            f"Cannot load the model {path_or_id!r} ({type(exc).__name__}: {exc}). Pass a sentence-transformers "
            "model folder (e.g. the output of `bge-finetune train`) or a hub id that is cached locally."
        ) from exc


def resolve_encoder(spec: ModelSpec, name: str = "", query_instruction: Optional[str] = None,
                    backend: str = "torch", batch_size: int = 64, cache_dir: Optional[str] = None,
                    encode_backend: EncodeBackendSpec = "local") -> Encoder:
    """Build the encoder for ``spec`` (see :data:`ModelSpec`); an :class:`EvalModel` overrides the other arguments.

    ``encode_backend="ray"`` encodes the corpus on Ray (sentence-transformers models with the torch backend).
    """
    if isinstance(spec, Encoder):
        return spec
    if isinstance(spec, EvalModel):
        return resolve_encoder(spec.model, name=name, query_instruction=spec.query_instruction,
                               backend=spec.backend, batch_size=spec.batch_size, cache_dir=cache_dir,
                               encode_backend=encode_backend)
    on_ray = encode_backend not in (None, "local")
    if on_ray and backend != "torch":
        raise EvaluationError(f"encode_backend='ray' runs the torch model; it cannot be combined with backend={backend!r}.")
    if backend not in BACKENDS:
        raise EvaluationError(f"Unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}.")
    if isinstance(spec, (str, os.PathLike)):
        path = os.fspath(spec)
        if query_instruction is None:
            query_instruction = query_instruction_for(path) or ""
        st = load_sentence_transformer(path)
        encoder: Encoder = SentenceTransformerEncoder(st, query_instruction, batch_size, name or path, encode_backend)
        encoder.source = path
    elif _is_sentence_transformer(spec):
        encoder = SentenceTransformerEncoder(spec, query_instruction, batch_size, name, encode_backend)
    elif _is_hf_embedding(spec):
        encoder = HuggingFaceEmbeddingEncoder(spec, query_instruction, batch_size, name, encode_backend)
    elif _is_base_embedding(spec):
        if on_ray:
            raise EvaluationError(
                f"encode_backend='ray' needs a sentence-transformers model (a folder, hub id or SentenceTransformer), "
                f"not a {type(spec).__name__}; encode it locally."
            )
        if backend != "torch":
            raise EvaluationError(f"backend={backend!r} needs a sentence-transformers model, not a {type(spec).__name__}.")
        if query_instruction:
            raise EvaluationError(
                "query_instruction applies to sentence-transformers models; set it on the LlamaIndex "
                f"embedding ({type(spec).__name__}) itself instead."
            )
        return LlamaIndexEncoder(spec, name=name)
    else:
        raise EvaluationError(
            f"Cannot evaluate a {type(spec).__name__}: pass a model folder or hub id, a SentenceTransformer, "
            "a LlamaIndex BaseEmbedding, or an EvalModel wrapping one of these."
        )
    if backend == "onnx-int8":
        return OnnxInt8Encoder.from_encoder(encoder, cache_dir=cache_dir)  # type: ignore[arg-type]
    return encoder


def _is_sentence_transformer(obj: Any) -> bool:
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:  # pragma: no cover - dependency
        return False
    return isinstance(obj, SentenceTransformer)


def _is_hf_embedding(obj: Any) -> bool:
    try:
        from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    except ImportError:  # pragma: no cover - dependency
        return False
    return isinstance(obj, HuggingFaceEmbedding)


def _is_base_embedding(obj: Any) -> bool:
    from llama_index.core.base.embeddings.base import BaseEmbedding

    return isinstance(obj, BaseEmbedding)
