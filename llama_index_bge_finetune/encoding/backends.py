"""Where a corpus is encoded: in this process (``"local"``, the default) or on a Ray cluster (``"ray"``).

Mining, evaluation, reranker data, the adapter cache and re-embedding all encode their corpus with
:func:`encode_texts`, so one switch, ``encode_backend``, moves every one of them onto Ray. Queries
are few and stay local.

Example::

    from sentence_transformers import SentenceTransformer
    from llama_index_bge_finetune.encoding import encode_texts

    model = SentenceTransformer("out/model")
    local = encode_texts(model, ["a passage", "another one"])
    on_ray = encode_texts(model, ["a passage", "another one"], encode_backend="ray")  # same rows, same order
"""

from __future__ import annotations

import logging
import os
from typing import Any, Optional, Sequence, Union

import numpy as np

from llama_index_bge_finetune.encoding.ray_backend import RayEncodeBackend
from llama_index_bge_finetune.errors import EncodeBackendError

logger = logging.getLogger(__name__)

ENCODE_BACKENDS = ("local", "ray")
EncodeBackendSpec = Union[str, "RayEncodeBackend", None]


def resolve_encode_backend(spec: EncodeBackendSpec) -> Optional["RayEncodeBackend"]:
    """``None`` for the local path, else the Ray backend to encode with.

    ``spec`` is ``"local"`` (or ``None``), ``"ray"`` (a :class:`RayEncodeBackend` with its defaults:
    the cluster at ``$RAY_ADDRESS``, or a local one) or a configured :class:`RayEncodeBackend`.
    """
    if spec is None or spec == "local":
        return None
    if spec == "ray":
        return RayEncodeBackend()
    if hasattr(spec, "encode") and hasattr(spec, "address"):
        return spec  # type: ignore[return-value]
    raise EncodeBackendError(
        f"Unknown encode_backend {spec!r}; choose one of {', '.join(ENCODE_BACKENDS)} or pass a RayEncodeBackend."
    )


def backend_from_cli(ray: bool) -> str:
    """The CLI's choice: ``"ray"`` with ``--ray`` or when ``$RAY_ADDRESS`` is set, else ``"local"``."""
    return "ray" if ray or os.environ.get("RAY_ADDRESS") else "local"


def encode_texts(
    model: Any,
    texts: Sequence[str],
    *,
    prompt: Optional[str] = None,
    batch_size: int = 64,
    normalize: bool = True,
    encode_backend: EncodeBackendSpec = "local",
    show_progress_bar: bool = False,
) -> np.ndarray:
    """Float32 vectors of ``texts`` (one row per text, in order) from a ``SentenceTransformer``.

    Args:
        model: the ``SentenceTransformer``; for Ray it is saved once per fingerprint and loaded by
            every actor from that folder.
        texts: what to encode.
        prompt: text put before every input (a passage or query prompt), or ``None``.
        batch_size: texts per forward pass.
        normalize: L2-normalise the vectors.
        encode_backend: ``"local"`` (default), ``"ray"`` or a :class:`RayEncodeBackend`.
        show_progress_bar: sentence-transformers' progress bar (local path).
    """
    backend = resolve_encode_backend(encode_backend)
    if backend is not None:
        return backend.encode(model, texts, prompt=prompt, batch_size=batch_size, normalize=normalize)
    vectors = model.encode(list(texts), prompt=prompt or None, batch_size=batch_size, normalize_embeddings=normalize,
                           convert_to_numpy=True, show_progress_bar=show_progress_bar)
    return np.asarray(vectors, dtype=np.float32)


