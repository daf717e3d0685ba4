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

import hashlib
import logging
import os
from typing import TYPE_CHECKING, Any, List, Optional, Sequence, Union

import numpy as np

from llama_index_bge_finetune.errors import EncodeBackendError

if TYPE_CHECKING:
    from llama_index_bge_finetune.encoding.ray_backend import RayEncodeBackend

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
        from llama_index_bge_finetune.encoding.ray_backend import RayEncodeBackend

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


def hash_state_dict(module: Any) -> List[Any]:
    """Raw bytes of every parameter and buffer, in order (fast: no copies for CPU tensors)."""
    import torch

    parts: List[Any] = []
    for key, tensor in module.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        parts.append(key)
        parts.append(memoryview(t.view(-1).view(torch.uint8).numpy()))
    return parts


def model_fingerprint(model: Any) -> str:
    """A hex digest of a ``SentenceTransformer``'s weights and module settings (truncation, pooling, prompts)."""
    h = hashlib.blake2b(digest_size=16)
    parts: List[Any] = [str(model.max_seq_length), repr(sorted((getattr(model, "prompts", None) or {}).items()))]
    parts += [repr(m) for m in model] + hash_state_dict(model)
    for part in parts:
        h.update(b"\0")
        h.update(part if isinstance(part, memoryview) else str(part).encode())
    return h.hexdigest()
